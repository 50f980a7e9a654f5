"""Experiment runner: config resolution, dataloader choice, trainer set-up, train/test (CPU, GPU, DDP), and
prediction of a user's own clip with a trained checkpoint (:func:`predict`)."""
from openstl_hrvq.api.config import resolve_config
from openstl_hrvq.api.experiment import Experiment, get_method_class
from openstl_hrvq.api.parser import DEFAULTS, create_parser
from openstl_hrvq.api.prediction import Predictor, load_predictor, predict, read_clip

__all__ = ['Experiment', 'create_parser', 'resolve_config', 'get_method_class', 'DEFAULTS', 'predict',
           'load_predictor', 'Predictor', 'read_clip']
