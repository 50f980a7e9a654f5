"""Experiment runner: config resolution, dataloader choice, trainer set-up, train/test (CPU, GPU, DDP)."""
from openstl_hrvq.api.config import resolve_config
from openstl_hrvq.api.experiment import Experiment, get_method_class
from openstl_hrvq.api.parser import DEFAULTS, create_parser

__all__ = ['Experiment', 'create_parser', 'resolve_config', 'get_method_class', 'DEFAULTS']
