"""Entry points behind ``tools/train.py``, ``tools/test.py`` and ``tools/predict.py``."""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import sys

from openstl_hrvq.api.config import resolve_config
from openstl_hrvq.api.console import quiet_console
from openstl_hrvq.api.experiment import Experiment
from openstl_hrvq.api.parser import create_parser
from openstl_hrvq.api.prediction import load_predictor, predict_frames, prepare_inputs, save_prediction
from openstl_hrvq.errors import UserError
from openstl_hrvq.method_registry import find_method

log = logging.getLogger(__name__)


def run(argv=None, test_only: bool = False) -> dict:
    """Parse OpenSTL's command line, train unless ``--test`` (or ``test_only``), then test; return the metrics."""
    config = resolve_config(vars(create_parser().parse_args(argv)))
    config['test'] = bool(config['test'] or test_only)
    experiment = Experiment(config)
    if not config['test']:
        experiment.train()
    return experiment.test()


def main(argv=None, test_only: bool = False) -> int:
    """:func:`run` for the command line (see :func:`guarded`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return guarded(lambda: run(argv, test_only), argv)


def guarded(call, argv) -> int:
    """Run ``call()`` for the command line: a mistake of the user's (:class:`UserError`) is printed as one line
    and exits with status 2; ``--debug`` in ``argv`` raises it with its traceback instead."""
    try:
        call()
    except UserError as error:
        if '--debug' in argv:
            raise
        sys.stderr.write(f'error: {error} (add --debug for the traceback)\n')
        return 2
    return 0


PREDICT_EXAMPLES = """examples:
  python tools/predict.py --ckpt work_dirs/smoke/checkpoints/best.ckpt --input clip.npy
      the trained horizon, written to work_dirs/smoke/predict/clip/
  python tools/predict.py --ckpt work_dirs/quick/checkpoints/best.ckpt --input frames/ \\
      --frames 30 --decoding argmax --out my_prediction
      30 frames (three times the trained 10) from a folder of PNGs, decoded with argmax
"""


def create_predict_parser() -> argparse.ArgumentParser:
    """The command line of ``tools/predict.py``."""
    parser = argparse.ArgumentParser(
        description='Predict the frames that follow a clip of your own with a trained checkpoint; writes preds.npy '
                    '(N, C, H, W) in [0, 1], preds.gif and grid.png.',
        epilog=PREDICT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ckpt', required=True, help="a checkpoint of tools/train.py; the run's config is read "
                                                      "from it (or from model_param.json of its experiment)")
    parser.add_argument('--input', required=True,
                        help='the clip: a .npy of (T, H, W) or (T, C, H, W), uint8 or float in [0, 1]; a .gif; a '
                             'folder of PNGs; a video file (needs imageio-ffmpeg); its last pre_seq_length '
                             'frames are the input')
    parser.add_argument('--frames', type=int, help='frames to predict (default: the trained aft_seq_length); '
                                                   'S-HR-VQVAE rolls out any number')
    parser.add_argument('--decoding', help="'argmax' or 'meanN', e.g. mean8 (default: the run's own)")
    parser.add_argument('--out', help='output folder (default: <experiment>/predict/<clip name>)')
    parser.add_argument('--device', default='auto', help="'auto' (CUDA when available), 'cpu' or 'cuda'")
    parser.add_argument('--seed', type=int, default=0, help='seed of the sampled decodings (default: 0)')
    parser.add_argument('--debug', action='store_true', help='show the traceback of an error')
    return parser


def predict_command(args: argparse.Namespace) -> dict[str, str]:
    """``tools/predict.py``: read the clip, predict, write the outputs; returns their paths."""
    predictor = load_predictor(args.ckpt, args.device)
    inputs = prepare_inputs(predictor, args.input)
    preds = predict_frames(predictor, inputs, args.frames, args.decoding, args.seed)
    clip_name = osp.splitext(osp.basename(osp.normpath(args.input)))[0]
    out = args.out or osp.join(osp.dirname(osp.dirname(osp.abspath(args.ckpt))), 'predict', clip_name)
    registered = find_method(predictor.config['method'])
    paths = save_prediction(out, inputs, preds, registered.display_name if registered else predictor.config['method'])
    decoding = args.decoding or getattr(predictor.method.model, 'decoding', 'direct')
    log.info('Predicted %d frames after the %d input frames of %s (%s): %s %s, %s, %s', len(preds), len(inputs),
             args.input, decoding, paths['preds'], preds.shape, paths['gif'], paths['grid'])
    return paths


def predict_main(argv=None) -> int:
    """``tools/predict.py``'s entry point."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = create_predict_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s')
    quiet_console()
    return guarded(lambda: predict_command(args), argv)
