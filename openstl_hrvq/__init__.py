"""openstl_hrvq: S-HR-VQVAE video prediction as a plugin for the OpenSTL benchmark suite.

Importing the package registers its methods (:mod:`openstl_hrvq.methods`, in
:mod:`openstl_hrvq.method_registry`) and, when OpenSTL is importable, makes OpenSTL know them and the plugin's
extra datasets; without OpenSTL the plugin runs on its own.
"""
from openstl_hrvq.version import __version__
from openstl_hrvq import methods, openstl_bridge

openstl_bridge.register()

__all__ = ['__version__', 'methods', 'openstl_bridge']
