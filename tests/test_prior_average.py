"""The moving average of the prior's weights (``prior_ema_decay``): the EMA recursion, the swap used for
validation, the checkpoint layout (the average where readers look, the live weights beside it) and ``--resume``,
which continues both."""
import pytest
import torch
from torch import nn

from openstl_hrvq.api import Experiment, create_parser, resolve_config
from openstl_hrvq.api.prediction import load_predictor
from openstl_hrvq.methods import SHRVQVAE
from openstl_hrvq.methods.prior_average import TRAINED_KEY, PriorAverage
from tests.test_runner import StopAt, argv

PREFIX = 'model.prior.'


def linear(value: float) -> nn.Linear:
    layer = nn.Linear(2, 2)
    with torch.no_grad():
        for p in layer.parameters():
            p.fill_(value)
    return layer


def test_the_average_follows_the_ema_recursion():
    live, decay = linear(0.0), 0.75
    average = PriorAverage(live, decay)
    assert average.updates == 0
    expected = None
    for value in (4.0, -2.0, 8.0):
        with torch.no_grad():
            for p in live.parameters():
                p.fill_(value)
        average.update(live)
        expected = value if expected is None else decay * expected + (1 - decay) * value   # the first update copies
    assert average.updates == 3
    for p in average.average.module.parameters():
        assert torch.allclose(p, torch.full_like(p, expected))
    assert all(torch.equal(p, torch.full_like(p, 8.0)) for p in live.parameters())    # the live weights untouched


def test_swap_exchanges_the_values_and_twice_restores_them():
    live = linear(1.0)
    average = PriorAverage(live, 0.5)
    average.update(live)
    with torch.no_grad():
        for p in live.parameters():
            p.fill_(3.0)
    average.swap(live)
    assert average.swapped and all(torch.equal(p, torch.ones_like(p)) for p in live.parameters())
    average.swap(live)
    assert not average.swapped and all(torch.equal(p, torch.full_like(p, 3.0)) for p in live.parameters())


@pytest.mark.parametrize('mid_validation', [False, True])
def test_a_checkpoint_holds_the_average_where_readers_look_and_resume_gets_the_live_weights(mid_validation):
    live = linear(1.0)
    average = PriorAverage(live, 0.5)
    average.update(live)                                   # average 1
    with torch.no_grad():
        for p in live.parameters():
            p.fill_(3.0)
    average.update(live)                                   # average 2, live 3
    if mid_validation:
        average.swap(live)                                 # the prior holds the average while validating
    checkpoint = {'state_dict': {PREFIX + k: v for k, v in live.state_dict().items()}}
    average.pack(checkpoint, PREFIX)
    assert all(torch.equal(v, torch.full_like(v, 2.0)) for v in checkpoint['state_dict'].values())
    assert checkpoint[TRAINED_KEY]['updates'] == 2
    assert all(torch.equal(v, torch.full_like(v, 3.0)) for v in checkpoint[TRAINED_KEY]['state_dict'].values())

    resumed_live = linear(0.0)
    resumed = PriorAverage(resumed_live, 0.5)
    PriorAverage.unpack(checkpoint, PREFIX, resumed, resumed_live)
    assert TRAINED_KEY not in checkpoint and resumed.updates == 2
    assert all(torch.equal(v, torch.full_like(v, 3.0)) for v in checkpoint['state_dict'].values())
    assert all(torch.equal(p, torch.full_like(p, 2.0)) for p in resumed.average.module.parameters())


def test_nothing_is_packed_before_the_first_update():
    live = linear(1.0)
    checkpoint = {'state_dict': {PREFIX + k: v.clone() for k, v in live.state_dict().items()}}
    PriorAverage(live, 0.5).pack(checkpoint, PREFIX)
    assert TRAINED_KEY not in checkpoint


class RecordValidatedPrior(StopAt):
    """Keeps the prior's weights as validation sees them, and may stop the run at a step."""

    def __init__(self, step=None):
        super().__init__(step)
        self.validated = None

    def on_validation_batch_start(self, trainer, pl_module, *args):
        self.validated = [p.detach().clone() for p in pl_module.model.prior.parameters()]


def test_validation_checkpoints_and_predictions_use_the_average_and_resume_continues_it(tmp_path):
    config = resolve_config(vars(create_parser().parse_args(argv(tmp_path, '--cfg-options', 'prior_ema_decay=0.5'))))
    config['no_display_method_info'] = True
    prior_steps = 16 // 4          # one prior epoch of the tiny config (train_size 16, batch 4)

    straight = Experiment(dict(config, ex_name='straight'))
    recorder = RecordValidatedPrior()
    straight.trainer.callbacks.append(recorder)
    straight.train()
    method, average = straight.method, straight.method.prior_average
    assert average.updates == prior_steps and average.swapped        # the fitted model holds the average
    averaged = [p.detach().clone() for p in method.model.prior.parameters()]
    assert all(torch.equal(a, v) for a, v in zip(averaged, recorder.validated))     # validation scored the average
    ckpt = tmp_path / 'work_dirs' / 'straight' / 'checkpoints' / 'last.ckpt'
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert state[TRAINED_KEY]['updates'] == prior_steps
    trained = state[TRAINED_KEY]['state_dict']
    assert any(not torch.equal(trained[name], p) for name, p in zip(trained, averaged))
    predictor = load_predictor(str(ckpt), 'cpu')
    assert all(torch.equal(a, p) for a, p in zip(averaged, predictor.method.model.prior.parameters()))
    loaded = SHRVQVAE.load_from_checkpoint(str(ckpt), map_location='cpu')         # Lightning's own reader
    assert all(torch.equal(a, p) for a, p in zip(averaged, loaded.model.prior.parameters()))
    plain = SHRVQVAE(**dict(state['hyper_parameters'], prior_ema_decay=0.0))   # a config without the average
    plain.load_state_dict(state['state_dict'])
    assert all(torch.equal(a, p) for a, p in zip(averaged, plain.model.prior.parameters()))

    interrupted = Experiment(dict(config, ex_name='killed'))
    interrupted.trainer.callbacks.append(StopAt(prior_steps + 2))      # two steps into stage "prior"
    with pytest.raises(RuntimeError, match='simulated'):
        interrupted.train()
    resumed = Experiment(dict(config, ex_name='killed', resume=True))
    resumed.train()
    # the average continued from the checkpoint's two updates instead of restarting with the resumed steps
    assert resumed.method.prior_average.updates == prior_steps
    final = torch.load(tmp_path / 'work_dirs' / 'killed' / 'checkpoints' / 'last.ckpt', map_location='cpu',
                       weights_only=False)
    assert final[TRAINED_KEY]['updates'] == prior_steps
