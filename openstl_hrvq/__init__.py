"""openstl_hrvq: S-HR-VQVAE video prediction as a plugin for the OpenSTL benchmark suite.

Importing the package registers the method ``shrvqvae`` (and the plugin's extra datasets) with OpenSTL when
OpenSTL is importable, and does nothing otherwise.
"""
from openstl_hrvq.version import __version__
from openstl_hrvq import openstl_bridge

openstl_bridge.register()

__all__ = ['__version__', 'openstl_bridge']
