"""OpenSTL-format datasets for openstl_hrvq."""
from .embedded_digits import embedded_digit_split, load_embedded_digits

__all__ = ['embedded_digit_split', 'load_embedded_digits']
