"""Entry points behind ``tools/train.py``, ``tools/test.py`` and ``tools/predict.py``."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os.path as osp
import sys
import threading

from openstl_hrvq.api.config import default_config_path, load_config_file, method_defaults, resolve_config
from openstl_hrvq.api.console import quiet_console
from openstl_hrvq.api.experiment import Experiment, get_method_class
from openstl_hrvq.api.parser import DEFAULTS, create_parser
from openstl_hrvq.api.prediction import load_predictor, predict_frames, prepare_inputs, save_prediction
from openstl_hrvq.api.signals import as_interrupted, exit_on_signals, exit_status
from openstl_hrvq.api.validation import describe_keys
from openstl_hrvq.errors import StorageError, UserError
from openstl_hrvq.files import USER_FIXABLE, storage_error
from openstl_hrvq.method_registry import find_method

log = logging.getLogger(__name__)


def list_keys(cli: dict) -> str:
    """The ``--list-keys`` table for the method of ``-m``, else of the config file (``-c`` or the default one)."""
    method = cli.get('method')
    path = cli.get('config_file') or (None if method else default_config_path(DEFAULTS['method'],
                                                                               cli.get('dataname') or 'mmnist'))
    from_file = load_config_file(path) if path else {}
    method = method or from_file.get('method') or DEFAULTS['method']
    get_method_class(method)
    return describe_keys(method, method_defaults(method), from_file, path)


def run(argv=None, test_only: bool = False) -> dict:
    """Parse OpenSTL's command line, train unless ``--test`` (or ``test_only``), then test; return the metrics."""
    cli = vars(create_parser().parse_args(argv))
    if cli.pop('list_keys', None):
        sys.stdout.write(list_keys(cli))
        return {}
    config = resolve_config(cli)
    config['test'] = bool(config['test'] or test_only)
    try:
        results = _train_and_test(config)
    except StorageError:
        raise
    except OSError as error:    # a log, a TensorBoard event file, a CSV of metrics on a full disk
        wrapped = storage_error(error, error.filename or osp.join(config['res_dir'], config['ex_name'], 'logs'))
        if wrapped is error:
            raise
        raise wrapped from error
    return results


def _train_and_test(config: dict) -> dict:
    with Experiment(config) as experiment:
        if not config['test']:
            try:
                experiment.train()
            except BaseException as error:
                interrupted = as_interrupted(error)
                if interrupted is None:
                    raise
                raise interrupted.resumable_from(experiment.ckpt_dir) from error
        return experiment.test()


def _quiet_disk_errors_in_threads(args) -> None:
    """A background writer (TensorBoard's) that hits a full disk: the main thread meets and reports the same
    error in one line, so the thread's traceback is left out."""
    if not (isinstance(args.exc_value, OSError) and args.exc_value.errno in USER_FIXABLE):
        threading.__excepthook__(args)


@contextlib.contextmanager
def _one_line_on_full_disk():
    """A full disk makes every log handler and writer thread fail: keep their tracebacks off the console."""
    raise_exceptions, excepthook = logging.raiseExceptions, threading.excepthook
    logging.raiseExceptions, threading.excepthook = False, _quiet_disk_errors_in_threads
    try:
        yield
    finally:
        logging.raiseExceptions, threading.excepthook = raise_exceptions, excepthook


def main(argv=None, test_only: bool = False) -> int:
    """:func:`run` for the command line (see :func:`guarded`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return guarded(lambda: run(argv, test_only), argv)


def guarded(call, argv) -> int:
    """Run ``call()`` for the command line: a mistake of the user's (:class:`UserError`) is printed as one line
    and exits with status 2 (``--debug`` in ``argv`` raises it with its traceback instead); SIGTERM and SIGINT end
    it with one line and status 143 and 130 (:mod:`.signals`)."""
    try:
        with exit_on_signals(), _one_line_on_full_disk():
            call()
    except UserError as error:
        if '--debug' in argv:
            raise
        sys.stderr.write(f'error: {error} (add --debug for the traceback)\n')
        return 2
    except BaseException as error:
        return exit_status(error)
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
                    "(N, C, H, W) in the data's values ([0, 1] for image data), preds.gif and grid.png.",
        epilog=PREDICT_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--ckpt', required=True, help="a checkpoint of tools/train.py; the run's config is read "
                                                      "from it (or from model_param.json of its experiment)")
    parser.add_argument('--input', required=True,
                        help='the clip: a .npy of (T, H, W) or (T, C, H, W), uint8 (divided by 255) or float in [0, 1] '
                             '(any range, unchanged, for a model with vq_value_range=None); a .gif; a '
                             'folder of PNGs; a video file (needs imageio-ffmpeg); its last pre_seq_length '
                             'frames are the input')
    parser.add_argument('--frames', type=int, help='frames to predict (default: the trained aft_seq_length); '
                                                   'S-HR-VQVAE rolls out any number')
    parser.add_argument('--decoding', help="'argmax', 'meanN' or 'meanN-expected', e.g. mean8 (default: the run's own)")
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
