"""The OpenSTL path: registration, OpenSTL's parser and BaseExperiment running shrvqvae, baselines in our runner.

Every test that needs OpenSTL takes the ``openstl`` fixture and is skipped cleanly when it is absent.
"""
import argparse
import importlib.util
import logging

from openstl_hrvq import openstl_bridge
from tests.helpers import TINY_MODEL, square_loaders


def test_register_is_silent_noop_without_openstl(monkeypatch, caplog):
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a, **k: None)
    openstl_bridge._import_openstl.cache_clear()
    try:
        with caplog.at_level(logging.DEBUG):
            assert openstl_bridge.register() is False
            assert openstl_bridge.openstl_method_maps() == {}
            assert openstl_bridge.openstl_datasets() is None
        assert caplog.records == []
    finally:
        openstl_bridge._import_openstl.cache_clear()


def test_import_registers_method_and_parser_choices(openstl):
    import openstl_hrvq  # noqa: F401  (importing registers)
    from openstl.methods import method_maps
    from openstl.utils import create_parser
    from openstl_hrvq.methods import SHRVQVAE
    assert method_maps['shrvqvae'] is SHRVQVAE
    args = create_parser().parse_args(['-m', 'shrvqvae', '-d', 'mmnist'])
    assert args.method == 'shrvqvae'
    assert openstl_bridge.register() is True          # idempotent
    assert create_parser().parse_args(['-m', 'SHRVQVAE']).method == 'SHRVQVAE'


def openstl_args(tmp_path):
    from openstl.utils import default_parser
    config = default_parser()
    config.update(dict(TINY_MODEL, method='shrvqvae', dataname='mmnist', ex_name='openstl_run',
                       res_dir=str(tmp_path), device='cpu', vq_epochs=1, prior_epochs=1, epoch=2, lr=3e-3,
                       metrics=['mse', 'mae', 'ssim', 'psnr'], no_display_method_info=False, sched='constant',
                       gpus=[0]))
    return argparse.Namespace(**config)


def test_openstl_base_experiment_builds_and_fits_shrvqvae(openstl, tmp_path):
    import pytorch_lightning as pl
    from openstl.api import BaseExperiment

    class CPUExperiment(BaseExperiment):
        """OpenSTL's experiment with its hard-coded accelerator='gpu' swapped for the CPU (no GPU in CI)."""

        def _init_trainer(self, args, callbacks, strategy):
            return pl.Trainer(accelerator='cpu', devices=1, max_epochs=args.epoch, callbacks=callbacks,
                              limit_train_batches=2, limit_val_batches=1, default_root_dir=str(tmp_path))

    args = openstl_args(tmp_path)
    experiment = CPUExperiment(args, dataloaders=square_loaders())
    experiment.train()
    assert experiment.trainer.global_step == 4
    assert experiment.method.stage == 'prior'
    info, flops, fps, line = experiment.display_method_info(args)    # OpenSTL raises for unknown methods
    assert 'STPixelCNN' in info and 'module' in flops
    experiment.trainer.test(experiment.method, experiment.data)
    assert (tmp_path / 'openstl_run' / 'saved' / 'metrics.npy').exists()


def test_runner_trains_openstl_simvp_on_cpu(openstl, tmp_path):
    from openstl_hrvq.api import Experiment, resolve_config
    config_file = tmp_path / 'simvp.py'
    config_file.write_text("method = 'SimVP'\nmodel_type = 'gSTA'\nhid_S = 8\nhid_T = 16\nN_T = 2\nN_S = 2\n"
                           "spatio_kernel_enc = 3\nspatio_kernel_dec = 3\nlr = 1e-3\nbatch_size = 4\n"
                           "sched = 'onecycle'\n")
    config = resolve_config({'config_file': str(config_file), 'res_dir': str(tmp_path), 'ex_name': 'simvp',
                             'epoch': 1, 'in_shape': [4, 1, 16, 16], 'pre_seq_length': 4, 'aft_seq_length': 4})
    experiment = Experiment(config, dataloaders=square_loaders())
    experiment.train()
    results = experiment.test()
    assert experiment.trainer.global_step == 4
    assert {'mse', 'mae', 'ssim', 'psnr', 'copy-last-frame_mse', 'mean-frame_mse', 'all-black_mse'} <= set(results)
    assert experiment.model_info['flops'] > 0
