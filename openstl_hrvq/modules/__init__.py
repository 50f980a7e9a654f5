"""Building blocks of S-HR-VQVAE: the tree quantizer, the frame encoder / decoder, and the parts of the prior
(path embedding, causal context trunk, intra-frame heads)."""
from .context_trunk import CausalContextTrunk, TrunkState
from .conv_blocks import DOWNSAMPLE_FACTOR, Decoder, Encoder, ResidualBlock
from .hierarchical_quantizer import HierarchicalResidualQuantizer, QuantizerOutput
from .path_embedding import MAX_PATH_ROWS, PathEmbedding
from .prior_heads import LayerDecoder, ParallelHead, RasterHead

__all__ = ['CausalContextTrunk', 'DOWNSAMPLE_FACTOR', 'Decoder', 'Encoder', 'HierarchicalResidualQuantizer',
           'LayerDecoder', 'MAX_PATH_ROWS', 'ParallelHead', 'PathEmbedding', 'QuantizerOutput', 'RasterHead',
           'ResidualBlock', 'TrunkState']
