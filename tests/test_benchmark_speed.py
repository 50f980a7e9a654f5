"""tools/benchmark_speed.py: the step timings and the profile of a prior step."""
import logging

from tests.helpers import TINY_MODEL, load_tool
from tests.test_leaderboard import write_config


def test_profile_lists_the_prior_steps_operators_by_shape(tmp_path, caplog):
    config = write_config(tmp_path / 'tiny.py', method='SHRVQVAE', **TINY_MODEL, prior_loss_frames='all')
    with caplog.at_level(logging.INFO, logger='benchmark_speed'):
        results = load_tool('benchmark_speed').main(
            ['-c', config, '--batch-size', '2', '--repeats', '1', '--warmup', '0', '--threads', '1', '--device', 'cpu',
             '--no-simvp', '--decodings', 'argmax', '--profile', '1000'])
    assert set(results) == {'tokenizer step', 'prior step', 'decoding argmax'}
    table = next(record.getMessage() for record in caplog.records if 'costliest operators' in record.getMessage())
    # The profiled step is the prior's: its head convolves B x 7 predicted frames x L layers maps of the prior's half
    # width on the 4x4 token grid, a shape no tokenizer step or decoding has (the decoding runs one frame at a time).
    layers, dim = TINY_MODEL['vq_layers'], TINY_MODEL['prior_hidden'] // 2
    assert f'[{2 * 7 * layers}, {dim}, 4, 4]' in table
