"""OpenSTL-format datasets: embedded digits, fallbacks, real-file layouts, KTH windows, registry, errors."""
import gzip
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DistributedSampler

from openstl_hrvq.datasets import (DATASETS, EpochStreamSampler, dataset_parameters, embedded_digit_split,
                                   load_data, load_embedded_digits, register_dataset)
from openstl_hrvq.datasets import embedded_digits, kth, loaders, moving_mnist
from openstl_hrvq.datasets.digit_files import write_idx_images
from tests.helpers import load_tool

REPO = Path(__file__).resolve().parents[1]


def _all(loader):
    """Concatenate a loader's (inputs, targets) into (N, T_in + T_out, C, H, W)."""
    return torch.cat([torch.cat(batch, dim=1) for batch in loader])


def _mmnist(data_root, num_workers=0, **kwargs):
    options = {**dataset_parameters['mmnist'], 'train_size': 8, 'test_size': 8, **kwargs}
    return load_data('mmnist', 4, 4, num_workers, data_root, **options)


# ---- embedded digits ---------------------------------------------------------------------------------

def test_embedded_digits_are_mnist_framed_and_split_disjointly():
    images, labels = load_embedded_digits()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [500] * 10
    assert images[:, :4].max() == 0 and images[:, :, -4:].max() == 0 and images.max() == 255
    train_idx, test_idx = embedded_digit_split()
    assert len(train_idx) == 4000 and len(test_idx) == 1000 and not set(train_idx) & set(test_idx)
    assert np.bincount(labels[test_idx]).tolist() == [100] * 10
    assert (test_idx % 500 >= 400).all()  # per class the last 100 of the sheet
    assert embedded_digits.EMBEDDED_DIGITS_PATH.stat().st_size < 1_000_000


def test_embedded_digits_rebuild_from_the_sheet_is_identical(tmp_path):
    sheet = REPO.parent / 'shared' / 'data' / 'digits.png'
    if not sheet.is_file():
        pytest.skip(f'{sheet} (OpenCV digits sheet) is not on this machine')
    load_tool('prepare_data').main(['embed-digits', '--sheet', str(sheet), '--output', str(tmp_path / 'digits.npz')])
    with np.load(tmp_path / 'digits.npz') as rebuilt, np.load(embedded_digits.EMBEDDED_DIGITS_PATH) as shipped:
        for key in ('digits', 'labels', 'source_sha256'):
            np.testing.assert_array_equal(rebuilt[key], shipped[key])


# ---- Moving MNIST: fallback, real files, prepare_data ---------------------------------------------------

def test_mmnist_falls_back_to_embedded_digits_with_one_clear_line(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger='openstl_hrvq.datasets'):
        train, val, test = _mmnist(tmp_path)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and 'embedded' in lines[0] and 'NOT the published benchmark' in lines[0]
    inputs, targets = next(iter(train))
    assert inputs.shape == (4, 10, 1, 64, 64) and targets.shape == (4, 10, 1, 64, 64)
    assert inputs.dtype == torch.float32 and 0 <= inputs.min() and inputs.max() <= 1 and inputs.max() > 0.9
    assert len(test.dataset) == 8 and len(val.dataset) == 8 and val.dataset is not test.dataset
    assert (train.dataset.mean, train.dataset.std, train.dataset.data_name) == (0.0, 1.0, 'mnist')

    train_rows = {digit.tobytes() for digit in train.dataset.digits}
    assert not train_rows & {digit.tobytes() for digit in test.dataset.digits}
    images, _ = load_embedded_digits()
    assert len(train_rows) == len(train.dataset.digits) == 4000
    assert {d.tobytes() for d in images[embedded_digit_split()[1]]} == {d.tobytes() for d in test.dataset.digits}


def test_generated_test_set_is_fixed_and_training_stream_is_seeded(tmp_path):
    torch.manual_seed(1)
    train_a, _, test_a = _mmnist(tmp_path)
    torch.manual_seed(2)
    train_b, _, test_b = _mmnist(tmp_path)
    assert torch.equal(_all(test_a), _all(test_b))
    epoch0, epoch1 = _all(train_a), _all(train_a)
    assert not torch.equal(epoch0, epoch1) and not torch.equal(epoch0, _all(train_b))
    train_c, _, _ = _mmnist(tmp_path, seed=train_a.dataset.seed, num_workers=2)
    assert torch.equal(_all(train_c), epoch0)  # the same sequences whatever the number of workers


def test_epoch_stream_sampler_gives_disjoint_ids_across_epochs_and_ranks(monkeypatch):
    sampler = EpochStreamSampler(range(10), num_sequences=10)
    first, second = list(sampler), list(sampler)
    assert first == list(range(10)) and second == list(range(10, 20))
    sampler.set_epoch(0)
    assert list(sampler) == first
    ranks = []
    for rank in range(3):
        monkeypatch.setattr(loaders, '_world', lambda rank=rank: (3, rank))
        sampler.set_epoch(5)
        ranks.append(list(sampler))
        assert len(sampler) == 4
    assert all(len(ids) == 4 for ids in ranks) and len(set(sum(ranks, []))) == 12


def test_mmnist_reads_openstl_files(tmp_path, caplog):
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    sequences = rng.integers(0, 256, (20, 6, 64, 64), dtype=np.uint8)
    write_idx_images(tmp_path / 'moving_mnist' / 'train-images-idx3-ubyte.gz', digits)
    np.save(tmp_path / 'moving_mnist' / 'mnist_test_seq.npy', sequences)
    with caplog.at_level(logging.INFO, logger='openstl_hrvq.datasets'):
        train, _, test = _mmnist(tmp_path, test_size=None)
    assert 'published benchmark files' in caplog.records[0].getMessage()
    np.testing.assert_array_equal(train.dataset.digits, digits)
    expected = torch.from_numpy(sequences.transpose(1, 0, 2, 3)[:, :, None] / 255.0).float()
    assert torch.equal(_all(test), expected)


def test_prepare_data_writes_the_fallback_data_for_openstl(tmp_path, request):
    load_tool('prepare_data').main(['mmnist', '--data-root', str(tmp_path), '--num-test', '8'])
    assert (tmp_path / 'moving_mnist' / 'train-images-idx3-ubyte.gz').is_file()
    _, _, from_files = _mmnist(tmp_path)
    _, _, fallback = _mmnist(tmp_path / 'absent')
    assert torch.equal(_all(from_files), _all(fallback))
    with pytest.raises(SystemExit):  # refuses to overwrite without --force
        load_tool('prepare_data').main(['mmnist', '--data-root', str(tmp_path)])

    request.getfixturevalue('openstl')
    pytest.importorskip('cv2')
    from openstl.datasets.dataloader_moving_mnist import MovingMNIST

    reference = MovingMNIST(str(tmp_path), is_train=False, data_name='mnist')
    theirs = torch.stack([torch.cat(reference[i], dim=0) for i in range(len(reference))])
    assert torch.equal(theirs, _all(from_files))
    assert MovingMNIST(str(tmp_path), is_train=True, data_name='mnist').mnist.shape == (4000, 28, 28)


def test_mfmnist_uses_debian_fashion_mnist(tmp_path):
    if not (moving_mnist.DEBIAN_FASHION_MNIST / moving_mnist.TRAIN_IMAGES_FILE).is_file():
        pytest.skip('Debian package dataset-fashion-mnist is not installed')
    options = {**dataset_parameters['mfmnist'], 'train_size': 4, 'test_size': 4}
    train, _, test = load_data('mfmnist', 2, 2, 0, tmp_path, **options)
    assert len(train.dataset.digits) == 60000 and len(test.dataset.digits) == 10000
    assert train.dataset.data_name == 'fmnist' and _all(test).shape == (4, 20, 1, 64, 64)
    _, _, again = load_data('mfmnist', 2, 2, 0, tmp_path, **options)
    assert torch.equal(_all(test), _all(again))


def test_distributed_loaders_use_distributed_samplers(tmp_path):
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path / "pg"}', rank=0, world_size=1)
    try:
        train, _, test = _mmnist(tmp_path, dist=True)
        assert isinstance(train.sampler, EpochStreamSampler) and isinstance(test.sampler, DistributedSampler)
        assert _all(test).shape[0] == 8
    finally:
        torch.distributed.destroy_process_group()


# ---- errors ----------------------------------------------------------------------------------------

def test_missing_file_names_path_and_remedy(tmp_path):
    write_idx_images(tmp_path / 'moving_mnist' / 'train-images-idx3-ubyte.gz', np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(FileNotFoundError, match=r'mnist_test_seq\.npy.*prepare_data'):
        _mmnist(tmp_path)
    with pytest.raises(FileNotFoundError, match='dataset-fashion-mnist'):
        load_data('mfmnist', 2, 2, 0, tmp_path, **dataset_parameters['mfmnist'], fashion_root=tmp_path / 'none')
    with pytest.raises(ValueError, match='embedded'):
        load_data('mfmnist', 2, 2, 0, tmp_path, **dataset_parameters['mfmnist'], source='embedded')
    with pytest.raises(FileNotFoundError, match=r'kth.*personXX_<action>_dY_uncomp'):
        load_data('kth', 2, 2, 0, tmp_path, **dataset_parameters['kth'])


def test_frames_smaller_than_a_digit_are_a_clear_error(tmp_path):
    params = dict(dataset_parameters['mmnist'], in_shape=[10, 1, 16, 16])
    with pytest.raises(ValueError, match='smaller than the 28x28 digits'):
        load_data('mmnist', 2, 2, 0, tmp_path, **params)


def test_wrong_shapes_and_corrupt_files_are_named(tmp_path):
    folder = tmp_path / 'moving_mnist'
    write_idx_images(folder / 'train-images-idx3-ubyte.gz', np.zeros((3, 28, 28), np.uint8))
    np.save(folder / 'mnist_test_seq.npy', np.zeros((20, 2, 32, 32), np.uint8))
    with pytest.raises(ValueError, match=r'mnist_test_seq\.npy holds uint8 \(20, 2, 32, 32\).*64, 64'):
        _mmnist(tmp_path)
    with gzip.open(folder / 'train-images-idx3-ubyte.gz', 'wb') as handle:
        handle.write(b'not an idx file at all')
    with pytest.raises(ValueError, match='not an idx3 image file'):
        _mmnist(tmp_path)
    write_idx_images(folder / 'train-images-idx3-ubyte.gz', np.zeros((3, 20, 20), np.uint8))
    with pytest.raises(ValueError, match=r'expected \(N, 28, 28\)'):
        _mmnist(tmp_path)


# ---- KTH ---------------------------------------------------------------------------------------------

SEQ_LEN = 30
VIDEO_FRAMES = {1: 64, 2: 47, 17: 75}  # person -> frames per video (plus 5 per action index)
GAP_VIDEO = ('boxing', 2, 40)  # this video lacks frame 40, splitting it into two runs


def _write_kth_tree(root: Path) -> dict:
    """Tiny RGB frames (40x30, R=G=B) in OpenSTL's layout; returns the frame numbers of every video."""
    rng = np.random.default_rng(0)
    videos = {}
    for a, action in enumerate(kth.ACTIONS):
        for person, length in VIDEO_FRAMES.items():
            numbers = [n for n in range(1, length + 5 * a + 1) if (action, person, n) != GAP_VIDEO]
            folder = root / 'kth' / action / f'person{person:02d}_{action}_d1_uncomp'
            folder.mkdir(parents=True)
            for n in numbers:
                grey = rng.integers(0, 256, (30, 40, 1), dtype=np.uint8)
                Image.fromarray(np.repeat(grey, 3, axis=2)).save(folder / f'image_{n:04d}.png')
            videos[(action, person)] = numbers
    return videos


def _expected_windows(action: str, numbers: list) -> int:
    """OpenSTL's rule restated per run of consecutive frames, each run's windows aligned to its end."""
    runs = np.split(np.asarray(numbers), np.flatnonzero(np.diff(numbers) != 1) + 1)
    if action in kth.DISJOINT_ACTIONS:
        return sum(len(run) // SEQ_LEN for run in runs)
    return sum((len(run) - SEQ_LEN) // 3 + 1 for run in runs if len(run) >= SEQ_LEN)


@pytest.fixture(scope='module')
def kth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('kth_data')
    return root, _write_kth_tree(root)


def test_kth_windows_follow_openstl_rule(kth_root):
    root, videos = kth_root
    options = {**dataset_parameters['kth'], 'in_shape': [10, 1, 32, 32]}
    train, val, test = load_data('kth', 2, 2, 0, root, **options, val_from='test')
    for loader, persons in ((train, kth.TRAIN_PERSONS), (test, kth.TEST_PERSONS)):
        expected = sum(_expected_windows(action, numbers) for (action, person), numbers in videos.items()
                       if person in persons)
        assert len(loader.dataset) == expected
    assert val is test and test.dataset.data_name == 'kth'
    inputs, targets = next(iter(test))
    assert inputs.shape == (2, 10, 1, 32, 32) and targets.shape == (2, 20, 1, 32, 32)
    assert 0 <= inputs.min() and inputs.max() <= 1
    capped, _, _ = load_data('kth', 2, 2, 0, root, **options, train_size=5)
    assert len(capped.dataset) == 5


def test_kth_matches_openstl_loader(kth_root, openstl):
    pytest.importorskip('cv2')
    from openstl.datasets.dataloader_kth import DataProcess

    root, _ = kth_root
    options = {**dataset_parameters['kth'], 'in_shape': [10, 1, 32, 32]}
    _, _, test = load_data('kth', 2, 2, 0, root, **options)
    process = DataProcess({'paths': str(root / 'kth'), 'image_width': 32, 'minibatch_size': 2,
                           'seq_length': SEQ_LEN, 'input_data_type': 'float32', 'name': 'kth'})
    frames, starts = process.load_data(str(root / 'kth'), mode='test')
    theirs = torch.from_numpy(np.stack([frames[s:s + SEQ_LEN] for s in starts])).float().permute(0, 1, 4, 2, 3)
    ours = _all(test)
    assert ours.shape == theirs.shape
    # Same windows, possibly in another order (OpenSTL lists videos in directory order).
    distance = torch.cdist(ours.flatten(1).double(), theirs.flatten(1).double())
    assert distance.min(dim=1).values.max() < 1e-4


# ---- registry -----------------------------------------------------------------------------------------

def test_registry_dispatches_and_filters_options(monkeypatch):
    assert {'mmnist', 'mfmnist', 'kth', 'kth20', 'kth40'} <= set(DATASETS)
    assert dataset_parameters['kth40']['aft_seq_length'] == 40
    assert dataset_parameters['mmnist']['metrics'] == ['mse', 'mae', 'ssim', 'psnr']
    calls = []

    def tiny_loader(batch_size, val_batch_size, data_root, num_workers, pre_seq_length, distributed=False):
        calls.append((batch_size, pre_seq_length, distributed))
        return 'train', 'val', 'test'

    monkeypatch.setattr('openstl_hrvq.datasets.registry.DATASETS', dict(DATASETS))
    monkeypatch.setattr('openstl_hrvq.datasets.registry.dataset_parameters', dict(dataset_parameters))
    register_dataset('tiny', tiny_loader, {'in_shape': [2, 1, 8, 8], 'pre_seq_length': 2, 'aft_seq_length': 2,
                                           'metrics': ['mse', 'mae']})
    assert load_data('tiny', 3, 3, 0, '.', method='SHRVQVAE', lr=1e-3) == ('train', 'val', 'test')
    assert calls == [(3, 2, False)]
    with pytest.raises(ValueError, match="Unknown dataset 'nope'"):
        load_data('nope', 1, 1, 0, '.')
    with pytest.raises(ValueError, match='lack'):
        register_dataset('bad', tiny_loader, {'in_shape': [2, 1, 8, 8]})
