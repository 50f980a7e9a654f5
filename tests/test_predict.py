"""tools/predict.py and openstl_hrvq.api.predict: every input kind, horizons beyond training, one-line errors."""
import json
import os
import os.path as osp
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from PIL import Image

from openstl_hrvq.api import load_predictor, predict, read_clip
from openstl_hrvq.api.cli import predict_main
from openstl_hrvq.api import prediction
from openstl_hrvq.api.prediction import Predictor, predict_frames, prepare_inputs
from openstl_hrvq.errors import UserError
from openstl_hrvq.methods import SHRVQVAE
from openstl_hrvq.models import SHRVQVAE_Model
from tests.helpers import TINY_MODEL

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRE, AFT, SIZE = TINY_MODEL['pre_seq_length'], TINY_MODEL['aft_seq_length'], TINY_MODEL['in_shape'][-1]


def save_checkpoint(folder, hyper_parameters=True, **overrides):
    """A runner-style checkpoint of a tiny (untrained) S-HR-VQVAE: ``<folder>/checkpoints/best.ckpt``."""
    config = dict(TINY_MODEL, method='SHRVQVAE', vq_epochs=1, prior_epochs=1, epoch=2, **overrides)
    method = SHRVQVAE(steps_per_epoch=4, test_mean=0.0, test_std=1.0, save_dir=str(folder), **config)
    path = folder / 'checkpoints' / 'best.ckpt'
    path.parent.mkdir(parents=True)
    state = {'state_dict': method.state_dict()}
    if hyper_parameters:
        state['hyper_parameters'] = dict(method.hparams)
    else:
        (folder / 'model_param.json').write_text(json.dumps(config))
    torch.save(state, path)
    return str(path)


@pytest.fixture
def ckpt(tmp_path):
    return save_checkpoint(tmp_path / 'run')


@pytest.fixture
def clip():
    """Six uint8 frames of a square moving right: the last four are the model's input."""
    frames = np.zeros((6, SIZE, SIZE), np.uint8)
    for t in range(6):
        frames[t, 4:9, 2 + t:7 + t] = 200 + 10 * t
    return frames


def test_every_input_kind_gives_the_same_input_frames(tmp_path, ckpt, clip):
    predictor = load_predictor(ckpt, 'cpu')
    expected = clip[-PRE:, None].astype(np.float32) / 255
    np.save(tmp_path / 'grey.npy', clip)
    np.save(tmp_path / 'channels.npy', clip[:, None].astype(np.float64) / 255)
    imageio.mimsave(tmp_path / 'clip.gif', list(clip), duration=100, loop=0)
    (tmp_path / 'pngs').mkdir()
    for t, frame in enumerate(clip):      # names that sort wrongly as text: frame_10 must come after frame_9
        Image.fromarray(np.stack([frame] * 3, axis=-1)).save(tmp_path / 'pngs' / f'frame_{t + 5}.png')
    for source in ('grey.npy', 'channels.npy', 'clip.gif', 'pngs'):
        inputs = prepare_inputs(predictor, str(tmp_path / source))
        np.testing.assert_allclose(inputs, expected, atol=1e-6, err_msg=source)
    np.testing.assert_allclose(prepare_inputs(predictor, clip), expected, atol=1e-6)


def test_a_video_is_read_when_imageio_has_a_video_plugin(tmp_path, clip, monkeypatch):
    path = str(tmp_path / 'clip.mp4')
    rgb = [np.stack([frame] * 3, axis=-1) for frame in clip]
    try:
        import imageio_ffmpeg  # noqa: F401
        imageio.mimsave(path, rgb, fps=5, macro_block_size=1)
        frames = read_clip(path, channels=1)
        assert frames.shape == (6, 1, SIZE, SIZE) and frames.dtype == np.uint8
        assert np.abs(frames.astype(int) - clip[:, None].astype(int)).mean() < 20      # a lossy codec
    except ImportError:
        with open(path, 'wb') as handle:                          # the start of an MP4 file
            handle.write(b'\x00\x00\x00\x18ftypmp42' + bytes(64))
        with pytest.raises(UserError, match='needs a video plugin for imageio: pip install imageio-ffmpeg'):
            read_clip(path)
    # whatever plugin decodes the video, its RGB frames become the model's channels
    monkeypatch.setattr(prediction.iio, 'imiter', lambda uri: iter(rgb))
    np.testing.assert_array_equal(read_clip(path, channels=1), clip[:, None])
    assert read_clip(path, channels=3).shape == (6, 3, SIZE, SIZE)


def test_longer_horizon_continues_the_normal_prediction(ckpt, clip):
    predictor = load_predictor(ckpt, 'cpu')
    inputs = prepare_inputs(predictor, clip)
    batch_x = torch.from_numpy(inputs[None])
    with torch.no_grad():
        normal = predictor.method(batch_x)[0].numpy()
    long = predict_frames(predictor, inputs, frames=2 * AFT + 1)
    assert long.shape == (2 * AFT + 1, 1, SIZE, SIZE)
    np.testing.assert_allclose(long[:AFT], normal, atol=1e-5)
    # sampled decodings too: the first window of a seeded mean of 2 is the seeded normal prediction
    predictor.method.model.set_decoding(1.0, 2)
    torch.manual_seed(5)
    with torch.no_grad():
        normal = predictor.method(batch_x)[0].numpy()
    predictor.method.model.set_decoding(0.0, 1)
    sampled = predict_frames(predictor, inputs, frames=3 * AFT, decoding='mean2', seed=5)
    np.testing.assert_allclose(sampled[:AFT], normal, atol=1e-5)
    assert predictor.method.model.decoding == 'argmax'           # the run's own decoding is restored


def test_rollout_windows_see_the_last_pre_seq_length_frames(ckpt, clip, monkeypatch):
    predictor = load_predictor(ckpt, 'cpu')
    prior = predictor.method.model.prior
    calls = []
    original = prior.predict
    monkeypatch.setattr(prior, 'predict', lambda context, n, **kw: calls.append((context.shape[1], n)) or
                        original(context, n, **kw))
    predict_frames(predictor, prepare_inputs(predictor, clip), frames=2 * AFT + 1)
    assert calls == [(PRE, AFT), (PRE, AFT), (PRE, 1)]


def test_cli_writes_preds_gif_and_grid(tmp_path, ckpt, clip):
    np.save(tmp_path / 'clip.npy', clip)
    out = tmp_path / 'out'
    assert predict_main(['--ckpt', ckpt, '--input', str(tmp_path / 'clip.npy'), '--frames', '7',
                         '--decoding', 'mean2', '--out', str(out)]) == 0
    preds = np.load(out / 'preds.npy')
    assert preds.shape == (7, 1, SIZE, SIZE) and preds.dtype == np.float32
    assert preds.min() >= 0 and preds.max() <= 1
    assert len(imageio.mimread(out / 'preds.gif')) == PRE + 7
    assert Image.open(out / 'grid.png').size[0] > SIZE * PRE
    # the default folder is the experiment's
    assert predict_main(['--ckpt', ckpt, '--input', str(tmp_path / 'clip.npy')]) == 0
    assert np.load(tmp_path / 'run' / 'predict' / 'clip' / 'preds.npy').shape == (AFT, 1, SIZE, SIZE)


def test_config_is_read_from_the_experiment_record_when_the_checkpoint_has_none(tmp_path, clip):
    ckpt = save_checkpoint(tmp_path / 'old', hyper_parameters=False)
    assert predict(ckpt, clip, frames=2, device='cpu').shape == (2, 1, SIZE, SIZE)


@pytest.mark.parametrize('clip_factory, message', [
    (lambda clip: np.zeros((6, 20, 20), np.uint8), 'frames of 20x20 pixels; the model was trained on 16x16'),
    (lambda clip: clip[:PRE - 1], f'has {PRE - 1} frame\\(s\\); the model predicts from {PRE} input frames'),
    (lambda clip: np.zeros((6, 3, SIZE, SIZE), np.uint8), 'has 3 channel\\(s\\) per frame; the model takes 1'),
    (lambda clip: np.zeros((2, 6, 1, SIZE, SIZE), np.uint8), r'shape \(2, 6, 1, 16, 16\); expected \(T, H, W\)'),
    (lambda clip: clip.astype(np.float32), r'floats in \[0, 2\d\d\]; the model takes \[0, 1\]: divide 0-255'),
    (lambda clip: clip.astype(np.int64), 'dtype int64: give uint8 pixels 0-255 or float frames'),
    (lambda clip: np.full((6, SIZE, SIZE), np.nan, np.float32), 'NaN or infinite values'),
])
def test_wrong_clips_are_one_clear_error(ckpt, clip, clip_factory, message):
    with pytest.raises(UserError, match=message):
        predict(ckpt, clip_factory(clip), device='cpu')


def test_wrong_requests_are_one_clear_error(tmp_path, ckpt, clip):
    with pytest.raises(UserError, match='No clip at'):
        predict(ckpt, str(tmp_path / 'missing.npy'), device='cpu')
    with pytest.raises(UserError, match='No checkpoint at'):
        predict(str(tmp_path / 'missing.ckpt'), clip, device='cpu')
    (tmp_path / 'empty').mkdir()
    with pytest.raises(UserError, match='holds no image files'):
        predict(ckpt, str(tmp_path / 'empty'), device='cpu')
    with pytest.raises(UserError, match="Unknown decoding 'median'"):
        predict(ckpt, clip, decoding='median', device='cpu')

    class Regressor(torch.nn.Module):          # a method that predicts exactly AFT frames, like SimVP
        model = torch.nn.Identity()

        def forward(self, batch_x, batch_y):
            return batch_x[:, -AFT:]

    regressor = Predictor(Regressor(), {'method': 'SimVP', 'in_shape': [PRE, 1, SIZE, SIZE],
                                        'pre_seq_length': PRE, 'aft_seq_length': AFT}, 'simvp.ckpt', 'cpu')
    assert predict(regressor, clip, frames=2).shape == (2, 1, SIZE, SIZE)
    with pytest.raises(UserError, match=f'SimVP predicts exactly {AFT} frames per pass and cannot roll out'):
        predict(regressor, clip, frames=AFT + 1)
    with pytest.raises(UserError, match='SimVP regresses its frames and has no --decoding'):
        predict(regressor, clip, decoding='argmax')


def test_cli_errors_are_one_line_with_status_2(tmp_path, ckpt):
    done = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'predict.py'), '--ckpt', ckpt, '--input',
                           str(tmp_path / 'nothing.gif')], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f'error: No clip at {tmp_path / "nothing.gif"}: pass a .npy, a .gif, a folder of PNGs or a video file. '
        f'(add --debug for the traceback)']


@pytest.mark.parametrize('order', ['parallel', 'raster'])
def test_both_decode_orders_roll_out_beyond_the_trained_horizon(order):
    model = SHRVQVAE_Model(**dict(TINY_MODEL, decode_order=order)).eval()
    batch_x = torch.rand(2, PRE, 1, SIZE, SIZE)
    with torch.no_grad():
        normal, long = model(batch_x), model.rollout(batch_x, 2 * AFT + 2)
    assert long.shape == (2, 2 * AFT + 2, 1, SIZE, SIZE)
    torch.testing.assert_close(long[:, :AFT], normal)


def _broken_writer(*args, **kwargs):
    """A writer that dies half-way: a few bytes reach its file (a name or a handle), then it fails."""
    target = args[1] if isinstance(args[0], Image.Image) else args[0]      # Image.save(self, fp, ...)
    handle = open(target, 'wb') if isinstance(target, (str, os.PathLike)) else target
    handle.write(b'partial')
    handle.flush()
    raise RuntimeError('the writer died')


@pytest.mark.parametrize('writer', ['numpy.save', 'PIL.Image.Image.save', 'imageio.v3.imwrite'])
def test_a_failing_write_leaves_the_previous_prediction_files_whole(tmp_path, monkeypatch, writer):
    """preds.npy, grid.png and preds.gif are each written beside their target and renamed: a writer that fails
    half-way leaves the previous prediction's files as they were, and no temporary file behind."""
    rng = np.random.default_rng(0)
    inputs = rng.random((PRE, 1, SIZE, SIZE), dtype=np.float32)
    first = prediction.save_prediction(str(tmp_path), inputs, rng.random((AFT, 1, SIZE, SIZE), dtype=np.float32))
    before = {name: open(path, 'rb').read() for name, path in first.items()}
    monkeypatch.setattr(writer, _broken_writer)
    with pytest.raises(RuntimeError, match='the writer died'):
        prediction.save_prediction(str(tmp_path), inputs, rng.random((AFT, 1, SIZE, SIZE), dtype=np.float32))
    assert {name: open(path, 'rb').read() for name, path in first.items()} == before
    assert sorted(os.listdir(tmp_path)) == sorted(osp.basename(path) for path in first.values())


@pytest.mark.parametrize('hyper_parameters', [True, False])
def test_a_model_without_a_value_range_takes_and_returns_frames_of_any_range(tmp_path, hyper_parameters):
    """vq_value_range=None (z-scored WeatherBench): float frames in [-2, 3] pass through unchanged and the
    predictions are not clipped; uint8 pixels are still divided by 255. The record written by the runner
    (model_param.json) holds no test_mean / test_std: the frames are then used as they are."""
    ckpt = save_checkpoint(tmp_path / 'run', hyper_parameters=hyper_parameters, vq_value_range=None)
    predictor = load_predictor(ckpt, 'cpu')
    assert predictor.value_range is None
    assert ('test_mean' in predictor.config) == hyper_parameters
    clip = np.linspace(-2, 3, 6 * SIZE * SIZE, dtype=np.float32).reshape(6, 1, SIZE, SIZE)
    np.testing.assert_array_equal(prepare_inputs(predictor, clip), clip[-PRE:])
    pixels = np.arange(6 * SIZE * SIZE).reshape(6, SIZE, SIZE).astype(np.uint8)
    np.testing.assert_allclose(prepare_inputs(predictor, pixels), pixels[-PRE:, None] / 255.0, rtol=1e-6)
    wide = torch.linspace(-5, 5, AFT * SIZE * SIZE).reshape(1, AFT, 1, SIZE, SIZE)
    predictor.method.model.rollout = lambda batch_x, frames: wide[:, :frames]
    np.testing.assert_allclose(predict_frames(predictor, clip[-PRE:]), wide[0].numpy(), rtol=1e-6)
    assert predict(predictor, clip).shape == (AFT, 1, SIZE, SIZE)


def test_a_model_of_image_data_clips_its_predictions_to_0_1(ckpt, clip):
    predictor = load_predictor(ckpt, 'cpu')
    assert predictor.value_range == (0.0, 1.0)
    wide = torch.linspace(-5, 5, AFT * SIZE * SIZE).reshape(1, AFT, 1, SIZE, SIZE)
    predictor.method.model.rollout = lambda batch_x, frames: wide[:, :frames]
    np.testing.assert_allclose(predict_frames(predictor, prepare_inputs(predictor, clip)),
                               wide[0].clamp(0, 1).numpy(), rtol=1e-6)
