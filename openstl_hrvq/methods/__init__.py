"""OpenSTL methods: LightningModules that train and test a model under OpenSTL's method contract."""
from openstl_hrvq.methods.evaluation import LeaderboardTestMixin
from openstl_hrvq.methods.shrvqvae import METHOD_KEYS, SHRVQVAE
from openstl_hrvq.methods.stage_schedule import STAGES, StageSchedule

method_maps = {'shrvqvae': SHRVQVAE}

__all__ = ['SHRVQVAE', 'METHOD_KEYS', 'STAGES', 'StageSchedule', 'LeaderboardTestMixin', 'method_maps']
