"""OpenSTL methods: LightningModules that train and test a model under OpenSTL's method contract.

Each is registered here with the facts the rest of the package reads about it
(:func:`openstl_hrvq.method_registry.register_method`).
"""
from openstl_hrvq.method_registry import register_method
from openstl_hrvq.methods.evaluation import LeaderboardTestMixin
from openstl_hrvq.methods.shrvqvae import SHRVQVAE
from openstl_hrvq.methods.shrvqvae_keys import SHRVQVAE_KEYS
from openstl_hrvq.methods.stage_schedule import STAGES, StageSchedule
from openstl_hrvq.methods.training_config import TrainingConfig
from openstl_hrvq.models import SHRVQVAE_Model

# Its config keys are the model's constructor arguments and the two dataclasses' fields: adding an argument
# or a field is the only edit a new key needs.
SHRVQVAE_METHOD = register_method(
    'shrvqvae', SHRVQVAE, display_name='S-HR-VQVAE', config_stem='shvqvae', frame_input=True,
    # Each stage freezes a sub-model, which plain DDP reports as unused parameters.
    ddp_strategy='ddp_find_unused_parameters_true', key_sources=(SHRVQVAE_Model, StageSchedule, TrainingConfig),
    keys=SHRVQVAE_KEYS)

__all__ = ['SHRVQVAE', 'SHRVQVAE_METHOD', 'STAGES', 'StageSchedule', 'TrainingConfig', 'LeaderboardTestMixin']
