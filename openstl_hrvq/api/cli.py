"""Entry points behind ``tools/train.py`` and ``tools/test.py``."""
from __future__ import annotations

import contextlib
import logging
import os.path as osp
import sys
import threading

from openstl_hrvq.api.config import default_config_path, load_config_file, method_defaults, resolve_config
from openstl_hrvq.api.experiment import Experiment, get_method_class
from openstl_hrvq.api.parser import DEFAULTS, create_parser
from openstl_hrvq.api.signals import as_interrupted, exit_on_signals, exit_status
from openstl_hrvq.api.validation import describe_keys
from openstl_hrvq.errors import StorageError, UserError
from openstl_hrvq.files import USER_FIXABLE, storage_error

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
    log.info('Test metrics: %s', ', '.join(f'{key}={value:.4f}' for key, value in results.items()))
    return results


def _train_and_test(config: dict) -> dict:
    experiment = Experiment(config)
    try:
        if not config['test']:
            try:
                experiment.train()
            except BaseException as error:
                interrupted = as_interrupted(error)
                if interrupted is None:
                    raise
                raise interrupted.resumable_from(experiment.ckpt_dir) from error
        return experiment.test()
    finally:
        experiment.close()


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
    """:func:`run` for the command line: a mistake of the user's (:class:`UserError`) is printed as one line
    and exits with status 2 (``--debug`` raises it with its traceback instead); SIGTERM and SIGINT end it with
    one line and status 143 and 130 (:mod:`.signals`)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        with exit_on_signals(), _one_line_on_full_disk():
            run(argv, test_only)
    except UserError as error:
        if '--debug' in argv:
            raise
        sys.stderr.write(f'error: {error} (add --debug for the traceback)\n')
        return 2
    except BaseException as error:
        return exit_status(error)
    return 0
