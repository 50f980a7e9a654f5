"""Entry points behind ``tools/train.py`` and ``tools/test.py``."""
from __future__ import annotations

import sys

from openstl_hrvq.api.config import resolve_config
from openstl_hrvq.api.experiment import Experiment
from openstl_hrvq.api.parser import create_parser
from openstl_hrvq.errors import UserError


def run(argv=None, test_only: bool = False) -> dict:
    """Parse OpenSTL's command line, train unless ``--test`` (or ``test_only``), then test; return the metrics."""
    config = resolve_config(vars(create_parser().parse_args(argv)))
    config['test'] = bool(config['test'] or test_only)
    experiment = Experiment(config)
    if not config['test']:
        experiment.train()
    return experiment.test()


def main(argv=None, test_only: bool = False) -> int:
    """:func:`run` for the command line: a mistake of the user's (:class:`UserError`) is printed as one line
    and exits with status 2; ``--debug`` raises it with its traceback instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        run(argv, test_only)
    except UserError as error:
        if '--debug' in argv:
            raise
        sys.stderr.write(f'error: {error} (add --debug for the traceback)\n')
        return 2
    return 0
