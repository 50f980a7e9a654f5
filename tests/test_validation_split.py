"""The validation split is never the test set: checked on the sequences themselves, on both data routes."""
import numpy as np
import pytest
import torch

from openstl_hrvq.api.data import all_dataset_parameters, build_dataloaders
from openstl_hrvq.api.parser import DEFAULTS
from openstl_hrvq.datasets import dataset_parameters, load_data
from openstl_hrvq.datasets.digit_files import write_idx_images
from openstl_hrvq.datasets.loaders import SeededDraws, carve_validation
from openstl_hrvq.errors import ConfigError
from tests.test_datasets import _write_kth_tree


def sequences(loader) -> list[bytes]:
    """Every item of ``loader`` as the bytes of its whole clip (inputs then targets), in loader order."""
    return [clip.numpy().tobytes() for inputs, targets in loader for clip in torch.cat([inputs, targets], dim=1)]


def assert_disjoint(val, test, train=None):
    val_items = sequences(val)
    assert len(val_items) > 0 and len(set(val_items)) == len(val_items)
    assert not set(val_items) & set(sequences(test)), 'a validation sequence is a test sequence'
    if train is not None:
        assert not set(val_items) & set(sequences(train)), 'a validation sequence is a training sequence'
    return val_items


def runner_config(dataname, data_root, **extra):
    """What the runner hands to :func:`build_dataloaders` for ``dataname`` (defaults, then the dataset's own)."""
    return {**DEFAULTS, **all_dataset_parameters()[dataname], 'dataname': dataname, 'data_root': str(data_root),
            'num_workers': 0, 'batch_size': 4, 'val_batch_size': 4, **extra}


def test_generated_mmnist_validates_on_its_own_stream(tmp_path):
    options = {**dataset_parameters['mmnist'], 'train_size': 16, 'test_size': 16}
    torch.manual_seed(1)
    train, val, test = load_data('mmnist', 4, 4, 0, tmp_path, **options)
    first = assert_disjoint(val, test, train)
    assert len(first) == 16                                  # default: as many as the test set
    torch.manual_seed(2)                                     # another run seed: the same validation split
    _, again, _ = load_data('mmnist', 4, 4, 0, tmp_path, **options, seed=7)
    assert sequences(again) == first
    _, same_as_openstl, test = load_data('mmnist', 4, 4, 0, tmp_path, **options, val_from='test')
    assert sequences(same_as_openstl) == sequences(test)


def test_mmnist_files_validate_on_training_digits(tmp_path):
    rng = np.random.default_rng(0)
    write_idx_images(tmp_path / 'moving_mnist' / 'train-images-idx3-ubyte.gz',
                     rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
    np.save(tmp_path / 'moving_mnist' / 'mnist_test_seq.npy', rng.integers(0, 256, (20, 6, 64, 64), dtype=np.uint8))
    train, val, test = load_data('mmnist', 2, 2, 0, tmp_path, **dataset_parameters['mmnist'], train_size=4,
                                 val_size=5)
    assert len(assert_disjoint(val, test, train)) == 5


@pytest.mark.parametrize('dataname', ['tdigits', 'tdigits_all'])
def test_transformed_digits_validate_on_training_digits(dataname):
    options = {**dataset_parameters[dataname], 'train_size': 4, 'test_size': 3}
    train, val, test = load_data(dataname, 8, 8, 0, None, **options)
    assert len(assert_disjoint(val, test, train)) == 3 * 4   # 3 sequences, 4 windows each


def test_kth_holds_whole_training_videos_out(tmp_path):
    _write_kth_tree(tmp_path)
    options = {**dataset_parameters['kth'], 'in_shape': [10, 1, 32, 32]}
    train, val, test = load_data('kth', 2, 2, 0, tmp_path, **options, val_size=3)
    assert len(assert_disjoint(val, test, train)) == 3
    assert train.dataset.frames is val.dataset.frames      # one frame array: window starts are comparable
    window = options['pre_seq_length'] + options['aft_seq_length']
    frames_of = lambda starts: {int(s) + t for s in starts for t in range(window)}  # noqa: E731
    assert not frames_of(train.dataset.starts) & frames_of(val.dataset.starts)   # no frame on both sides
    full_train, _, _ = load_data('kth', 2, 2, 0, tmp_path, **options, val_from='test')
    assert len(train.dataset) + len(val.dataset) <= len(full_train.dataset)


def test_carving_is_seeded_by_the_split_not_the_run_and_keeps_groups_whole():
    items = torch.arange(200.0)[:, None]
    dataset = torch.utils.data.TensorDataset(items)
    groups = np.arange(200) // 10
    train_a, val_a = carve_validation(dataset, 25, groups)
    torch.manual_seed(123)
    np.random.seed(5)
    train_b, val_b = carve_validation(dataset, 25, groups)
    assert list(val_a.indices) == list(val_b.indices) and len(val_a) == 25
    assert not set(train_a.indices) & set(val_a.indices)
    val_groups = set(groups[val_a.indices])
    assert not val_groups & set(groups[train_a.indices])      # no group on both sides
    with pytest.raises(ConfigError, match='leaves no training data'):
        carve_validation(dataset, 200, groups)


def test_seeded_draws_fix_a_random_dataset_and_leave_the_global_state_alone():
    class RandomClips(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, index):
            return torch.from_numpy(np.random.random(3)), torch.rand(2)

    draws = SeededDraws(RandomClips(), 4)
    torch.manual_seed(0)
    np.random.seed(0)
    expected_next = np.random.random(), torch.rand(1)
    np.random.seed(0)
    torch.manual_seed(0)
    first = [draws[i] for i in range(4)]
    assert (np.random.random(), torch.rand(1)) == expected_next
    again = [draws[i] for i in range(4)]
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
    assert not torch.equal(first[0][0], first[1][0])


def _taxibj_files(root, rng):
    folder = root / 'taxibj'
    folder.mkdir(parents=True)
    arrays = {name: rng.uniform(-1, 1, (count, 4, 2, 32, 32)).astype(np.float32)
              for name, count in (('X_train', 40), ('Y_train', 40), ('X_test', 6), ('Y_test', 6))}
    np.savez(folder / 'dataset.npz', **arrays)


def test_openstl_route_holds_validation_out_of_training(tmp_path, openstl):
    _taxibj_files(tmp_path, np.random.default_rng(0))
    train, val, test, source = build_dataloaders(runner_config('taxibj', tmp_path, val_size=8))
    assert source == 'openstl' and len(val.dataset) == 8 and len(train.dataset) == 32
    assert_disjoint(val, test, train)
    _, again, _, _ = build_dataloaders(runner_config('taxibj', tmp_path, val_size=8, seed=3))
    assert sequences(again) == sequences(val)
    _, as_openstl, test, _ = build_dataloaders(runner_config('taxibj', tmp_path, val_from='test'))
    assert sequences(as_openstl) == sequences(test)


def test_openstl_moving_mnist_validates_on_fixed_draws_of_training_digits(tmp_path, openstl):
    pytest.importorskip('cv2')
    rng = np.random.default_rng(0)
    write_idx_images(tmp_path / 'moving_mnist' / 'train-images-idx3-ubyte.gz',
                     rng.integers(0, 256, (30, 28, 28), dtype=np.uint8))
    np.save(tmp_path / 'moving_mnist' / 'mnist_test_seq.npy', rng.integers(0, 256, (20, 6, 64, 64), dtype=np.uint8))
    _, val, test, source = build_dataloaders(runner_config('mmnist', tmp_path, train_size=4))
    assert source == 'openstl' and len(val.dataset) == 6
    first = assert_disjoint(val, test)
    assert sequences(val) == first                       # fixed, though OpenSTL draws training items at random
