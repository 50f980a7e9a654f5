"""S-HR-VQVAE models: the HR-VQVAE tokenizer, the ST-PixelCNN prior and the full video predictor."""
from .hrvqvae import HRVQVAE, HRVQVAEOutput
from .shrvqvae_model import SHRVQVAE_Model
from .st_pixelcnn import STPixelCNN

__all__ = ['HRVQVAE', 'HRVQVAEOutput', 'SHRVQVAE_Model', 'STPixelCNN']
