"""Parity of openstl_hrvq.metrics with independent references, scikit-image and OpenSTL 1.0.0."""
import logging
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from openstl_hrvq import metrics as M


def _videos(shape=(3, 4, 2, 16, 20), noise=0.2, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    true = rng.random(shape)
    pred = true + rng.normal(0, noise, shape)  # leaves [0, 1] on purpose: clipping must matter
    return pred.astype(dtype), true.astype(dtype)


def _numpy_reference(pred, true, mean, std):
    """Straight loops over frames, written from the leaderboard's definitions."""
    pred, true = pred.astype(np.float64) * std + mean, true.astype(np.float64) * std + mean
    b, t = pred.shape[:2]
    sq = [((pred[i, j] - true[i, j]) ** 2).sum() for i in range(b) for j in range(t)]
    ab = [np.abs(pred[i, j] - true[i, j]).sum() for i in range(b) for j in range(t)]
    clipped = np.clip(pred, 0, 1)
    psnr = [-10 * math.log10(((clipped[i, j] - true[i, j]) ** 2).mean()) for i in range(b) for j in range(t)]
    snr = [10 * math.log10((true[i, j] ** 2).mean() / ((true[i, j] - clipped[i, j]) ** 2).mean())
           for i in range(b) for j in range(t)]
    return {'mse': np.mean(sq), 'mae': np.mean(ab), 'rmse': math.sqrt(np.mean(sq)), 'psnr': np.mean(psnr),
            'snr': np.mean(snr)}


def test_error_metrics_match_numpy_reference():
    pred, true = _videos(dtype=np.float64)
    mean, std = 0.1, 0.9
    res, log = M.metric(pred, true, mean, std, metrics=['mse', 'mae', 'rmse', 'psnr', 'snr'])
    ref = _numpy_reference(pred, true, mean, std)
    for name, value in ref.items():
        assert res[name] == pytest.approx(value, rel=1e-6), name
    assert log.startswith('mse:') and 'psnr:' in log
    norm, _ = M.metric(pred, true, mean, std, metrics=['mse', 'mae'], spatial_norm=True)
    assert norm['mse'] == pytest.approx(ref['mse'] / np.prod(pred.shape[2:]), rel=1e-9)


def test_per_frame_values_average_to_metric_and_accept_tensors():
    pred, true = _videos()
    names = ['mse', 'mae', 'ssim', 'psnr']
    res, _ = M.metric(torch.from_numpy(pred), torch.from_numpy(true), metrics=names, per_frame=True)
    frames = M.per_frame_metrics(pred, true, metrics=names)
    for name in names:
        assert frames[name].shape == pred.shape[:2]
        assert frames[name].mean() == pytest.approx(res[name], rel=1e-12)
        np.testing.assert_array_equal(res['per_frame'][name], frames[name])
    exact, _ = M.metric(true, true, metrics=['psnr'])
    assert exact['psnr'] == math.inf  # the leaderboard code's value for a perfect prediction


@pytest.mark.parametrize('data_range', [M.SSIM_DATA_RANGE_PUBLISHED, M.SSIM_DATA_RANGE_PIXEL])
def test_ssim_matches_skimage_per_frame(data_range):
    pred, true = _videos(shape=(2, 5, 3, 33, 40), noise=0.3, dtype=np.float64)
    clipped = np.clip(pred, 0, 1)
    expected = np.array([[structural_similarity(clipped[b, t].swapaxes(0, 2), true[b, t].swapaxes(0, 2),
                                                channel_axis=-1, data_range=data_range)
                          for t in range(pred.shape[1])] for b in range(pred.shape[0])])
    frames = M.per_frame_metrics(pred, true, metrics=['ssim'], ssim_data_range=data_range)['ssim']
    np.testing.assert_allclose(frames, expected, rtol=0, atol=1e-6)
    res, _ = M.metric(pred, true, metrics=['ssim'], ssim_data_range=data_range, frames_per_chunk=3)
    assert res['ssim'] == pytest.approx(expected.mean(), abs=1e-6)


def test_ssim_pixel_range_is_stricter_than_published():
    pred, true = _videos(shape=(1, 3, 1, 32, 32))
    published, _ = M.metric(pred, true, metrics=['ssim'])
    pixel, _ = M.metric(pred, true, metrics=['ssim'], ssim_data_range=1.0)
    assert pixel['ssim'] < published['ssim']


def test_metric_rejects_unknown_names_and_bad_shapes():
    pred, true = _videos()
    with pytest.raises(ValueError, match='Unknown metrics'):
        M.metric(pred, true, metrics=['mse', 'fid'])
    with pytest.raises(ValueError, match=r'\(B, T, C, H, W\)'):
        M.metric(pred[0], true[0])
    with pytest.raises(ValueError, match='channel_names'):
        M.metric(pred, true, channel_names=['a', 'b', 'c'])


def test_matches_openstl_functions(openstl):
    pytest.importorskip('cv2')
    from openstl.core import metrics as reference

    pred, true = _videos()
    res, _ = M.metric(pred, true, metrics=['mse', 'mae', 'rmse', 'psnr', 'snr'])
    assert res['mse'] == pytest.approx(reference.MSE(pred, true), rel=1e-5)
    assert res['mae'] == pytest.approx(reference.MAE(pred, true), rel=1e-5)
    assert res['rmse'] == pytest.approx(reference.RMSE(pred, true), rel=1e-5)
    clipped = np.clip(pred, 0, 1)
    frames = [(clipped[b, t], true[b, t]) for b in range(pred.shape[0]) for t in range(pred.shape[1])]
    assert res['psnr'] == pytest.approx(np.mean([reference.PSNR(p, y) for p, y in frames]), rel=1e-5)
    assert res['snr'] == pytest.approx(np.mean([reference.SNR(p, y) for p, y in frames]), rel=1e-5)
    for spatial_norm in (False, True):
        kwargs = dict(metrics=['mse', 'mae', 'rmse'], channel_names=['u', 'v'], spatial_norm=spatial_norm)
        ours, ours_log = M.metric(pred, true, **kwargs)
        theirs, theirs_log = reference.metric(pred, true, **kwargs)
        assert list(ours) == list(theirs)
        for name in theirs:
            assert ours[name] == pytest.approx(float(theirs[name]), rel=1e-5), name


def test_lpips_without_weights_is_nan_with_one_clear_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.delenv(M.ALEXNET_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    empty = tmp_path / 'empty'
    empty.mkdir()
    pred, true = _videos(shape=(1, 2, 1, 32, 32))
    with caplog.at_level(logging.WARNING, logger='openstl_hrvq.metrics'):
        res, log = M.metric(pred, true, metrics=['mse', 'lpips'], lpips_weights=empty)
    assert math.isnan(res['lpips']) and res['mse'] > 0 and 'lpips:nan' in log
    lines = [r.getMessage() for r in caplog.records if 'LPIPS' in r.getMessage()]
    assert len(lines) == 1
    assert M.ALEXNET_WEIGHTS_FILE in lines[0] and str(tmp_path / 'torch_home') in lines[0]


def _openstl_style_lpips(network, pred, true):
    """The leaderboard's per-frame loop: frames (H, W, C) * 255 through lpips.im2tensor."""
    import lpips

    clipped = np.clip(pred, 0, 1).transpose(0, 1, 3, 4, 2)
    target = true.transpose(0, 1, 3, 4, 2)
    with torch.no_grad():
        return np.mean([network(lpips.im2tensor(clipped[b, t] * 255), lpips.im2tensor(target[b, t] * 255)).item()
                        for b in range(pred.shape[0]) for t in range(pred.shape[1])])


def test_lpips_batched_matches_per_frame_loop_for_given_trunk(tmp_path):
    """Checks the weight loading and batching with a stand-in trunk (the real weights are not here)."""
    lpips = pytest.importorskip('lpips')
    reference = lpips.LPIPS(net='alex', pnet_rand=True, verbose=False).eval()
    # lpips keeps AlexNet's layer indices as names inside its slices: write them back as `features.<i>`.
    trunk = {f'features.{name}.{param}': value
             for block in reference.net.children() for name, layer in block.named_children()
             for param, value in layer.state_dict().items()}
    torch.save(trunk, tmp_path / M.ALEXNET_WEIGHTS_FILE)
    pred, true = _videos(shape=(2, 3, 1, 64, 64))
    res, _ = M.metric(pred, true, metrics=['lpips'], lpips_weights=tmp_path)
    assert res['lpips'] == pytest.approx(_openstl_style_lpips(reference, pred, true), rel=1e-5)
    same, _ = M.metric(true, true, metrics=['lpips'], lpips_weights=tmp_path / M.ALEXNET_WEIGHTS_FILE)
    assert same['lpips'] == pytest.approx(0.0, abs=1e-7)


def test_lpips_with_real_weights_matches_stock_lpips():
    lpips = pytest.importorskip('lpips')
    if M.find_alexnet_weights() is None:
        pytest.skip(f'{M.ALEXNET_WEIGHTS_FILE} is not in the torch hub cache')
    pred, true = _videos(shape=(1, 3, 1, 64, 64))
    res, _ = M.metric(pred, true, metrics=['lpips'])
    stock = lpips.LPIPS(net='alex', verbose=False).eval()  # loads the cached torchvision weights itself
    assert res['lpips'] == pytest.approx(_openstl_style_lpips(stock, pred, true), rel=1e-5)
    assert 0 < res['lpips'] < 1


def test_frame_sum_mse_is_the_leaderboards_mse_on_tensors():
    """val_loss's function equals metric()'s mse on the same de-normalised frames, per-channel std included."""
    generator = torch.Generator().manual_seed(3)
    pred, true = torch.rand(3, 4, 2, 8, 8, generator=generator), torch.rand(3, 4, 2, 8, 8, generator=generator)
    std, mean = np.array([0.5, 2.0]).reshape(2, 1, 1), np.array([0.1, -1.0]).reshape(2, 1, 1)
    expected = M.metric(pred.numpy(), true.numpy(), mean, std, metrics=['mse'], return_log=False)[0]['mse']
    assert M.frame_sum_mse(pred, true, std).item() == pytest.approx(expected, rel=1e-5)
    assert M.frame_sum_mse(pred, true).item() == pytest.approx(((pred - true) ** 2).sum(dim=(2, 3, 4)).mean().item())
