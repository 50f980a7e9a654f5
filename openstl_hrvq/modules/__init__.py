"""Building blocks of S-HR-VQVAE: the tree quantizer and the frame encoder / decoder."""
from .conv_blocks import DOWNSAMPLE_FACTOR, Decoder, Encoder, ResidualBlock
from .hierarchical_quantizer import HierarchicalResidualQuantizer, QuantizerOutput

__all__ = ['DOWNSAMPLE_FACTOR', 'Decoder', 'Encoder', 'HierarchicalResidualQuantizer', 'QuantizerOutput',
           'ResidualBlock']
