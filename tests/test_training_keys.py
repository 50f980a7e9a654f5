"""S-HR-VQVAE's optimisation keys do what the key table says: opt and momentum choose the optimizer, clip_mode
how gradients are clipped, warmup_epoch/warmup_lr the warm-up, and the method's defaults are its own."""
import math
import os.path as osp

import pytest
import pytorch_lightning as pl
import torch

from openstl_hrvq.api import resolve_config
from openstl_hrvq.errors import ConfigError
from openstl_hrvq.methods import SHRVQVAE, TrainingConfig
from tests.helpers import TINY_MODEL, square_loaders

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def make_method(tmp_path, **overrides):
    config = dict(TINY_MODEL, vq_epochs=1, prior_epochs=1, epoch=2, metrics=['mse', 'mae'])
    config.update(overrides)
    return SHRVQVAE(steps_per_epoch=4, test_mean=0.0, test_std=1.0, save_dir=str(tmp_path), **config)


def one_step_change(tmp_path, **keys) -> list[torch.Tensor]:
    """How much each parameter of the encoder and decoder moved in stage vq's first step (the EMA codebooks move
    by their averages, not by gradients)."""
    method = make_method(tmp_path, **keys)
    learnt = {name: p for name, p in method.model.vqvae.named_parameters() if name.startswith(('encoder', 'decoder'))}
    assert learnt
    before = {name: p.detach().clone() for name, p in learnt.items()}
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(method, square_loaders()[0])
    return [p.detach() - before[name] for name, p in learnt.items()]


@pytest.mark.parametrize('mode', ['value', 'norm'])
def test_clip_mode_clips_by_value_or_by_norm(tmp_path, mode):
    # plain SGD with lr 1: a parameter moves by exactly its clipped gradient
    limit = 1e-3
    deltas = one_step_change(tmp_path, opt='sgd', momentum=0.0, lr=1.0, clip_grad=limit, clip_mode=mode)
    largest = max(delta.abs().max().item() for delta in deltas)
    norm = math.sqrt(sum(delta.pow(2).sum().item() for delta in deltas))
    if mode == 'value':
        assert largest <= limit * 1.0001 and norm > limit * 2      # each entry clipped, the whole not by norm
    else:
        assert norm == pytest.approx(limit, rel=1e-3) and largest < limit


def test_opt_and_momentum_choose_the_optimizer(tmp_path):
    optimizers, _ = make_method(tmp_path, opt='sgd', momentum=0.5, weight_decay=0.1,
                                filter_bias_and_bn=True).configure_optimizers()
    assert all(isinstance(opt, torch.optim.SGD) for opt in optimizers)
    decayed, plain = optimizers[0].param_groups
    assert decayed['momentum'] == 0.5 and (decayed['weight_decay'], plain['weight_decay']) == (0.1, 0.0)
    assert all(p.ndim > 1 for p in decayed['params']) and all(p.ndim == 1 for p in plain['params'])
    adamw, _ = make_method(tmp_path, opt='adamw', opt_betas=(0.5, 0.9)).configure_optimizers()
    assert isinstance(adamw[0], torch.optim.AdamW) and adamw[0].param_groups[0]['betas'] == (0.5, 0.9)


def test_warmup_rises_linearly_from_warmup_lr_then_follows_the_schedule(tmp_path):
    method = make_method(tmp_path, lr=1e-2, warmup_lr=1e-4, warmup_epoch=1, vq_epochs=3, prior_epochs=2, epoch=5,
                         sched='cosine', min_lr=1e-3)
    optimizers, schedulers = method.configure_optimizers()
    rates = []
    for _ in range(12):                          # stage vq: 3 epochs x 4 steps, the first 4 warming up
        rates.append(optimizers[0].param_groups[0]['lr'])
        optimizers[0].step()
        schedulers[0]['scheduler'].step()
    assert rates[0] == pytest.approx(1e-4)
    assert rates[2] == pytest.approx(1e-4 + (1e-2 - 1e-4) * 2 / 4)
    assert rates[4] == pytest.approx(1e-2)                         # warm-up done: the cosine starts at lr
    assert rates[4] > rates[8] > rates[11] > 1e-3                  # and falls towards min_lr


def test_a_stage_schedule_overrides_sched_for_that_stage_alone(tmp_path):
    method = make_method(tmp_path, lr=1e-2, vq_epochs=2, prior_epochs=2, epoch=4, sched='constant',
                         prior_sched='cosine', min_lr=1e-3)
    optimizers, schedulers = method.configure_optimizers()

    def rates(stage: int) -> list[float]:
        seen = []
        for _ in range(8):                       # each stage: 2 epochs x 4 steps
            seen.append(optimizers[stage].param_groups[0]['lr'])
            optimizers[stage].step()
            schedulers[stage]['scheduler'].step()
        return seen

    assert rates(0) == [pytest.approx(1e-2)] * 8                   # stage vq keeps sched's constant rate
    prior = rates(1)
    assert prior[0] == pytest.approx(1e-2) and all(a > b for a, b in zip(prior, prior[1:]))
    assert prior[-1] == pytest.approx(1e-3 + (1e-2 - 1e-3) * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    # a stage that does not train does not count: no stage that trains anneals to min_lr
    with pytest.raises(ConfigError, match="'min_lr' must be left out when no stage runs a cosine schedule"):
        resolve_config({'method': 'SHRVQVAE', 'vq_epochs': 0, 'prior_epochs': 1, 'vq_sched': 'cosine',
                        'min_lr': 1e-4})


def test_the_methods_defaults_apply_unless_set(tmp_path, openstl):
    config = tmp_path / 'plain.py'
    config.write_text("method = 'SHRVQVAE'\nvq_epochs = 1\nprior_epochs = 1\n")
    resolved = resolve_config({'config_file': str(config)})
    assert (resolved['lr'], resolved['sched'], resolved['min_lr']) == (3e-4, 'constant', 0.0)
    assert resolve_config({'config_file': str(config), 'lr': 0.01})['lr'] == 0.01
    simvp = tmp_path / 'simvp.py'
    simvp.write_text("method = 'SimVP'\nmodel_type = 'gSTA'\n")
    baseline = resolve_config({'config_file': str(simvp)})
    assert (baseline['lr'], baseline['sched']) == (1e-3, 'onecycle')   # OpenSTL's defaults for its own methods


CHECKERS_DISAGREED = {     # the runner's and the method's checks of the three cases: one verdict each
    'prior_resample_temperature': (0.0, True),
    'sched': ('Cosine', False),
    'joint_lambda': (-1.0, False),
}


@pytest.mark.parametrize('key', sorted(CHECKERS_DISAGREED))
def test_runner_and_method_give_one_verdict(tmp_path, key):
    value, accepted = CHECKERS_DISAGREED[key]
    config = tmp_path / 'one.py'
    config.write_text(f"method = 'SHRVQVAE'\nvq_epochs = 1\nprior_epochs = 1\n{key} = {value!r}\n")
    verdicts = []
    for check in (lambda: resolve_config({'config_file': str(config)}), lambda: TrainingConfig(**{key: value})):
        try:
            check()
            verdicts.append(True)
        except ConfigError as error:
            assert f"Config key '{key}' must be" in str(error)
            verdicts.append(False)
    assert verdicts == [accepted, accepted]
