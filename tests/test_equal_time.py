"""tools/equal_time.py: runs sized to one wall time from timed steps, a summary that is the leaderboard's numbers,
one-line errors. The end-to-end test needs OpenSTL (SimVP) and skips without it."""
import json

import pytest

from openstl_hrvq import openstl_bridge
from openstl_hrvq.benchmark import config_entry
from tests.helpers import load_tool
from tests.test_leaderboard import tiny_configs, write_config

equal_time = load_tool('equal_time')


def test_the_plan_costs_each_stage_at_its_own_step(tmp_path):
    config = write_config(tmp_path / 'staged.py', method='SHRVQVAE', vq_epochs=1, prior_epochs=3, joint_epochs=0)
    steps = {'tokenizer step': 0.1, 'prior step': 0.5}
    # 8 epochs scale the 1:3 schedule to 2 tokenizer + 6 prior epochs: (2 * 0.1 + 6 * 0.5) / 8 per step
    step_s = equal_time.epoch_step_seconds(config_entry(config), dict(vq_epochs=1, prior_epochs=3), steps, 8)
    assert step_s == pytest.approx(0.4)
    # 40 s over 8 epochs of 0.4 s steps: 12 whole steps per epoch (38.4 s), 13 would overrun
    assert equal_time.planned_train_size(40.0, 8, step_s, batch_size=4) == 48
    assert equal_time.planned_train_size(0.01, 8, step_s, batch_size=4) == 4      # never an empty epoch


def test_both_methods_train_for_the_planned_time_and_are_scored(tmp_path):
    if not openstl_bridge.openstl_available():
        pytest.skip('OpenSTL is not importable: SimVP is its model')
    shrvqvae, simvp = tiny_configs(tmp_path)
    seconds, epochs = 3.0, 2
    result = equal_time.main(['--config', shrvqvae, '--baseline', simvp, '--seconds', str(seconds), '--epochs',
                              str(epochs), '--test_size', '4', '--val_batches', '1', '--decodings', '--device', 'cpu',
                              '--repeats', '2', '--data_root', str(tmp_path / 'no_data'), '--out',
                              str(tmp_path / 'out')])
    for label, plan in result['plans'].items():
        steps_per_epoch = plan['train_size'] // 4
        # the plan fills the budget to within one step per epoch
        assert epochs * steps_per_epoch * plan['step_s'] <= seconds + 1e-9
        assert steps_per_epoch == 1 or epochs * (steps_per_epoch + 1) * plan['step_s'] > seconds
    assert set(result['plans']['tiny_shvqvae']['steps']) == {'tokenizer step', 'prior step'}
    rows = {row['method']: row for row in result['rows']}
    assert set(rows) == {'S-HR-VQVAE', 'SimVPv2 (gSTA)'}
    board = {row['label']: row for row in result['leaderboard']['rows']}
    for label, method in (('tiny_shvqvae', 'S-HR-VQVAE'), ('tiny_simvp', 'SimVPv2 (gSTA)')):
        row = rows[method]
        assert row['steps'] == epochs * result['plans'][label]['train_size'] // 4 == board[label]['train_steps']
        assert row['steps_per_s'] == pytest.approx(row['steps'] / board[label]['train_time_s'])
        assert row['mse'] == board[label]['mse'] and row['per_frame_mse'] == board[label]['per_frame']['mse']
    saved = json.loads((tmp_path / 'out' / 'equal_time.json').read_text())
    assert saved['rows'] == result['rows']
    table = (tmp_path / 'out' / 'equal_time.md').read_text()
    assert f"| S-HR-VQVAE | {rows['S-HR-VQVAE']['decoding']} |" in table
    assert f"{rows['SimVPv2 (gSTA)']['mse']:.2f}" in table


def test_a_baseline_that_is_not_simvp_is_one_line(tmp_path, capsys):
    shrvqvae = tiny_configs(tmp_path)[0]
    other = tmp_path / 'other_shvqvae.py'
    other.write_text(open(shrvqvae).read())
    status = equal_time.cli(['--config', shrvqvae, '--baseline', str(other), '--device', 'cpu',
                             '--out', str(tmp_path / 'out')])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1
    assert "--baseline a SimVP config; got the methods ['SHRVQVAE', 'SHRVQVAE']" in error
