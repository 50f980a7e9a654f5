"""OpenSTL-format datasets: Moving (Fashion-)MNIST, KTH, the embedded MNIST digits and a registry.

``load_data(dataname, batch_size, val_batch_size, num_workers, data_root, **dataset_parameters[dataname])``
mirrors ``openstl.datasets.load_data``; :func:`register_dataset` adds a dataset to it.
"""
from .embedded_digits import embedded_digit_split, load_embedded_digits
from .kth import KTHClips
from .loaders import EpochStreamSampler, build_loaders
from .moving_digits import FixedMovingDigits, GeneratedMovingDigits, generate_sequences
from .registry import DATASETS, dataset_parameters, load_data, register_dataset

__all__ = ['DATASETS', 'EpochStreamSampler', 'FixedMovingDigits', 'GeneratedMovingDigits', 'KTHClips',
           'build_loaders', 'dataset_parameters', 'embedded_digit_split', 'generate_sequences',
           'load_data', 'load_embedded_digits', 'register_dataset']
