"""Method registration: a second method registered here is found by config resolution, the runner, the bridge
and the leaderboard without an edit anywhere else; config keys come from constructors and dataclass fields."""
from dataclasses import fields, make_dataclass

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from openstl_hrvq import openstl_bridge
from openstl_hrvq.api import Experiment, resolve_config
from openstl_hrvq.api.config import default_config_path
from openstl_hrvq.methods.shrvqvae_keys import TABLE as SHRVQVAE_KEY_TABLE
from openstl_hrvq.api.distributed import resolve_strategy
from openstl_hrvq.benchmark import config_entry
from openstl_hrvq.benchmark.leaderboard import takes_decodings
from openstl_hrvq.errors import ConfigError, UnknownKeyError
from openstl_hrvq.method_registry import constructor_keys, find_method, register_method, unregister_method
from openstl_hrvq.methods import SHRVQVAE, SHRVQVAE_METHOD, LeaderboardTestMixin, StageSchedule, TrainingConfig
from openstl_hrvq.references import REFERENCE_NAMES
from tests.helpers import square_loaders


class ScaledLastFrame(nn.Module):
    """Every future frame is the last input frame times a learnt scale: (B, T_in, C, H, W) -> (B, S, C, H, W)."""

    def __init__(self, aft_seq_length: int = 4, scale_init: float = 1.0, **unused_config):
        super().__init__()
        self.aft_seq_length = aft_seq_length
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))

    def forward(self, batch_x):
        return (self.scale * batch_x[:, -1:]).repeat(1, self.aft_seq_length, 1, 1, 1)


class ScaledLastFrameWithBias(nn.Module):
    """:class:`ScaledLastFrame` with one more constructor argument, ``bias_init``."""

    def __init__(self, aft_seq_length: int = 4, scale_init: float = 1.0, bias_init: float = 0.0, **unused_config):
        super().__init__()
        self.aft_seq_length = aft_seq_length
        self.scale = nn.Parameter(torch.tensor(float(scale_init)))
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))

    def forward(self, batch_x):
        return (self.scale * batch_x[:, -1:] + self.bias).repeat(1, self.aft_seq_length, 1, 1, 1)


class ScaledLastFrameMethod(LeaderboardTestMixin, pl.LightningModule):
    """A second plugin method, built as OpenSTL builds methods."""

    def __init__(self, steps_per_epoch=1, test_mean=None, test_std=None, save_dir='.', **config):
        super().__init__()
        self.save_hyperparameters()
        self.model = ScaledLastFrame(**config)

    def forward(self, batch_x, batch_y=None):
        return self.model(batch_x)

    def training_step(self, batch, batch_idx):
        batch_x, batch_y = batch
        return F.mse_loss(self(batch_x), batch_y)

    def validation_step(self, batch, batch_idx):
        batch_x, batch_y = batch
        self.log('val_loss', F.mse_loss(self(batch_x), batch_y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def register_scaled_last_frame(*key_sources):
    return register_method('scaledlastframe', ScaledLastFrameMethod, display_name='Scaled last frame',
                           config_stem='scaled_last', frame_input=True, key_sources=key_sources)


@pytest.fixture
def scaled_last_frame():
    spec = register_scaled_last_frame(ScaledLastFrame)
    yield spec
    unregister_method(spec.name)


def write_config(tmp_path, **keys):
    keys = dict(method='ScaledLastFrame', dataname='mmnist', in_shape=[4, 1, 16, 16], pre_seq_length=4,
                aft_seq_length=4, **keys)
    path = tmp_path / 'scaled_last.py'
    path.write_text(''.join(f'{key} = {value!r}\n' for key, value in keys.items()))
    return str(path)


def test_config_keys_are_constructor_arguments_and_dataclass_fields():
    assert constructor_keys(ScaledLastFrame) == {'aft_seq_length', 'scale_init'}     # **unused_config left out
    assert constructor_keys(TrainingConfig) == {field.name for field in fields(TrainingConfig)}
    assert constructor_keys(StageSchedule) == {'vq_epochs', 'prior_epochs', 'joint_epochs'}
    keys = SHRVQVAE_METHOD.config_keys
    assert constructor_keys(TrainingConfig) | constructor_keys(StageSchedule) <= keys
    assert 'decay_epoch' not in keys            # a runner key (OpenSTL's) that S-HR-VQVAE never reads
    # the key table (accepted values, meaning, --resume) has exactly the keys the method and its model read
    assert set(SHRVQVAE_KEY_TABLE) == keys


def test_registered_method_is_found_by_config_resolution_runner_and_leaderboard(scaled_last_frame, tmp_path):
    assert find_method('SCALEDLASTFRAME') is scaled_last_frame
    config = resolve_config({'config_file': write_config(tmp_path, scale_init=0.5, lr=0.1, epoch=1),
                             'res_dir': str(tmp_path), 'ex_name': 'scaled', 'device': 'cpu'})
    assert config['scale_init'] == 0.5
    assert default_config_path('ScaledLastFrame', 'kth') == 'configs/kth/scaled_last.py'
    entry = config_entry(config['config_file'])
    assert (entry.display, entry.source, entry.skip_reason) == ('Scaled last frame', 'openstl_hrvq', None)
    assert not takes_decodings('ScaledLastFrame') and takes_decodings('SHRVQVAE')
    multi_gpu = dict(strategy='auto', num_nodes=1)
    assert resolve_strategy(dict(multi_gpu, method='scaledlastframe'), [0, 1]) == 'ddp'
    assert resolve_strategy(dict(multi_gpu, method='shrvqvae'), [0, 1]) == 'ddp_find_unused_parameters_true'

    experiment = Experiment(config, dataloaders=square_loaders())
    assert isinstance(experiment.method, ScaledLastFrameMethod)
    experiment.train()
    results = experiment.test()
    assert experiment.model_info['flops'] is not None     # frame_input: FLOPs counted on the input frames
    assert {'mse'} | {f'{name}_mse' for name in REFERENCE_NAMES} <= set(results)


def test_unregistered_method_is_unknown(tmp_path):
    path = write_config(tmp_path)
    spec = register_scaled_last_frame(ScaledLastFrame)
    try:
        assert resolve_config({'config_file': path})['method'] == 'ScaledLastFrame'
    finally:
        unregister_method(spec.name)
    assert find_method('scaledlastframe') is None
    with pytest.raises(ConfigError, match="Unknown method 'ScaledLastFrame'"):
        resolve_config({'config_file': path})


def test_unknown_key_is_rejected_and_a_new_argument_or_field_is_accepted(tmp_path):
    path = write_config(tmp_path, bias_init=0.1)
    spec = register_scaled_last_frame(ScaledLastFrame)
    try:
        with pytest.raises(UnknownKeyError, match=r"Unknown config key 'bias_init' in .*\. Did you mean 'scale_init'"):
            resolve_config({'config_file': path})
    finally:
        unregister_method(spec.name)
    # the same method with a model that takes bias_init: its config is accepted, nothing else edited
    spec = register_scaled_last_frame(ScaledLastFrameWithBias)
    try:
        assert resolve_config({'config_file': path})['bias_init'] == 0.1
    finally:
        unregister_method(spec.name)
    # or with a training-config dataclass that has the field
    spec = register_scaled_last_frame(ScaledLastFrame, make_dataclass('ScaledTraining', [('bias_init', float)]))
    try:
        assert resolve_config({'config_file': path})['bias_init'] == 0.1
    finally:
        unregister_method(spec.name)


def test_a_name_is_registered_once():
    with pytest.raises(ValueError, match="'shrvqvae' is registered already"):
        register_method('SHRVQVAE', SHRVQVAE, display_name='again', config_stem='again')


def test_bridge_reads_the_registry(scaled_last_frame):
    assert openstl_bridge.method_choices() == ['shrvqvae', 'SHRVQVAE', 'scaledlastframe', 'ScaledLastFrameMethod']
    assert openstl_bridge.model_takes_frames('ScaledLastFrame') and openstl_bridge.model_takes_frames('simvp')
    assert not openstl_bridge.model_takes_frames('predrnn')


def test_bridge_gives_a_registered_method_to_openstl(openstl, scaled_last_frame):
    from openstl.methods import method_maps
    from openstl.utils import create_parser
    try:
        assert openstl_bridge.register() is True
        assert method_maps['scaledlastframe'] is ScaledLastFrameMethod
        assert create_parser().parse_args(['-m', 'ScaledLastFrameMethod']).method == 'ScaledLastFrameMethod'
    finally:
        method_maps.pop('scaledlastframe', None)
