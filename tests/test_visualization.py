"""Pictures of data outside [0, 1] (z-scored WeatherBench, TaxiBJ's flows): shown over the data's own range."""
import numpy as np
from PIL import Image

from openstl_hrvq.api.prediction import save_prediction
from openstl_hrvq.visualization import display_scale, save_prediction_pictures

WIDTH = 16


def ramp_frames(count, low=-2.0, high=3.0):
    """``(count, 1, 4, WIDTH)`` frames whose columns run linearly from ``low`` to ``high``."""
    row = np.linspace(low, high, WIDTH, dtype=np.float32)
    return np.broadcast_to(row, (count, 1, 4, WIDTH)).copy()


def shows_ramp(path, scale):
    """Whether some pixel row of the picture at ``path`` holds the whole ramp mapped onto 0-255: column i of 16
    is ``255 i / 15 = 17 i``, each repeated ``scale`` times. Clipping at [0, 1] gives 0 for 6 columns instead."""
    with Image.open(path) as image:
        pixels = np.asarray(image.convert('L'))
    wanted = np.repeat(17 * np.arange(WIDTH, dtype=np.uint8), scale).tobytes()
    return any(wanted in line.tobytes() for line in pixels)


def test_grid_and_animation_of_data_in_minus_2_to_3_use_the_datas_range(tmp_path):
    inputs, trues = ramp_frames(2)[None], ramp_frames(2)[None]
    preds = trues + 10.0                         # beyond the data's range: clipped, it does not rescale the data
    paths = save_prediction_pictures(inputs, trues, preds, str(tmp_path))
    scale = display_scale(4, WIDTH)
    assert shows_ramp(paths['grid'], scale)
    assert shows_ramp(paths['animation'], 2 * scale)          # the first frame of the GIF is an input frame


def test_predict_pictures_of_data_in_minus_2_to_3_use_the_inputs_range(tmp_path):
    inputs, preds = ramp_frames(4), ramp_frames(3)
    paths = save_prediction(str(tmp_path), inputs, preds)
    assert shows_ramp(paths['grid'], display_scale(4, WIDTH))
    assert shows_ramp(paths['gif'], 2 * display_scale(4, WIDTH))
    np.testing.assert_array_equal(np.load(paths['preds']), preds)     # the array keeps the data's values
