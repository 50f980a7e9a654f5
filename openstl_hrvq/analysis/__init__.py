"""The paper's analyses of a trained S-HR-VQVAE: per-layer maps (Fig. 4/5), codebook usage, robustness
(Fig. 6), compression ratio (Table 1) and the configuration sweep (Table 3)."""
from openstl_hrvq.analysis.checkpoint import TrainedModel, find_checkpoint, load_trained_model, test_sequences
from openstl_hrvq.analysis.codebook import codebook_usage, encode_frames, global_indices, perplexity
from openstl_hrvq.analysis.compression import compression_ratio, compression_table
from openstl_hrvq.analysis.layers import layer_contributions, layer_errors, layer_reconstructions
from openstl_hrvq.analysis.robustness import (DEFAULT_CONDITIONS, add_noise, corrupt, evaluate_robustness,
                                              fragment_blur, gaussian_blur)
from openstl_hrvq.analysis.sweep import sweep_markdown, sweep_rows

__all__ = ['TrainedModel', 'find_checkpoint', 'load_trained_model', 'test_sequences', 'codebook_usage',
           'encode_frames', 'global_indices', 'perplexity', 'compression_ratio', 'compression_table',
           'layer_contributions', 'layer_errors', 'layer_reconstructions', 'DEFAULT_CONDITIONS', 'add_noise',
           'corrupt', 'evaluate_robustness', 'fragment_blur', 'gaussian_blur', 'sweep_markdown', 'sweep_rows']
