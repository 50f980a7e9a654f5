"""openstl_hrvq: S-HR-VQVAE video prediction as a plugin for the OpenSTL benchmark suite."""
from openstl_hrvq.version import __version__

__all__ = ['__version__']
