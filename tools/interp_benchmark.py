"""Train (or load) methods on the transformed-digit task and write the study's tables and figures.

    python tools/interp_benchmark.py                      # S-HR-VQVAE (+ SimVPv2 when OpenSTL imports), n6 and n6-all
    python tools/interp_benchmark.py --methods shrvqvae --train_sets n6 --epoch 4 --train_size 50
    python tools/interp_benchmark.py --load               # evaluate the checkpoints of an earlier run

Each (method, training set) trains through the plugin's runner from ``configs/tdigits/<method>_<set>.py``
(experiment ``<res_dir>/tdigits_<method>_<set>``; the runner keeps the checkpoint with the best validation
loss on n6-val windows, training 6s under their own transforms), then its best checkpoint is scored on every
protocol row. Output under ``--out_dir``:
``tables.md`` / ``tables.csv`` / ``results.json``, ``runs.json`` (budget, time per run), ``figures/*.png`` and
``predictions/<method>_<set>/<row>.npz``.
"""
from __future__ import annotations

import argparse
import logging
import os.path as osp
import time

import torch
from mmengine.config import DictAction

from openstl_hrvq import openstl_bridge
from openstl_hrvq.api import Experiment, resolve_config
from openstl_hrvq.files import save_json
from openstl_hrvq.interpolation import ROWS, copy_nearest_input, evaluate, first_frame_predictor, write_tables
from openstl_hrvq.interpolation.figures import example_figure
from openstl_hrvq.method_registry import registered_methods

log = logging.getLogger('interp_benchmark')

#: method name -> (label in the tables, config file prefix): every registered method, then OpenSTL's SimVPv2
METHODS = {**{spec.name: (spec.display_name, spec.config_stem) for spec in registered_methods()},
           'simvp': ('SimVPv2', 'simvp')}
TRAIN_SETS = {'n6': 'n6', 'n6-all': 'n6_all'}
#: the untrained reference every table carries (see ``copy_nearest_input``)
REFERENCE_LABEL = 'copy input'


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--methods', nargs='+', choices=list(METHODS), default=list(METHODS),
                        help='methods to run (simvp is skipped when OpenSTL is not importable)')
    parser.add_argument('--train_sets', nargs='+', choices=list(TRAIN_SETS), default=list(TRAIN_SETS))
    parser.add_argument('--config_dir', default='configs/tdigits')
    parser.add_argument('--epoch', type=int, help='training epochs (default: the configs\' 500)')
    parser.add_argument('--train_size', type=int, help='cap on training sequences (400; 4 windows each, x5 for n6-all)')
    parser.add_argument('--test_size', type=int,
                        help='cap on n6-test sequences of the runner\'s test, and so on the n6-val sequences '
                             'that select the checkpoint')
    parser.add_argument('--eval_size', type=int, help='cap on sequences per protocol test set (n6 400, n3 100)')
    parser.add_argument('--batch_size', type=int, help='default: the configs\' 16')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'cuda'")
    parser.add_argument('--num_workers', type=int, default=0)
    parser.add_argument('--seed', type=int, default=42)
    parser.add_argument('--threads', type=int,
                        help='torch CPU threads (on a shared machine 1 is often fastest; default: torch\'s choice)')
    parser.add_argument('--res_dir', default='work_dirs', help='where the runner keeps each experiment')
    parser.add_argument('--out_dir', default='work_dirs/interp_benchmark', help='tables, figures, predictions')
    parser.add_argument('--load', action='store_true', help='skip training: score each experiment\'s best.ckpt')
    parser.add_argument('--figure_rows', nargs='*', choices=ROWS, default=['n6', 'n3'],
                        help='protocol rows to draw good / poor examples of')
    for method in METHODS:
        parser.add_argument(f'--{method}-options', nargs='+', action=DictAction, default={},
                            dest=f'{method}_options', help=f'config overrides for {method}: key=value ...')
    return parser


def available_methods(names: list[str]) -> list[str]:
    """``names`` without the OpenSTL baselines when OpenSTL is not importable (logged, not an error)."""
    if 'simvp' in names and not openstl_bridge.openstl_available():
        log.warning('OpenSTL is not importable: SimVPv2 is skipped (install OpenSTL from git to compare).')
        names = [name for name in names if name != 'simvp']
    if not names:
        raise ValueError('No method left to run: pass --methods shrvqvae, or install OpenSTL for simvp.')
    return names


def build_experiment(method: str, train_set: str, args) -> Experiment:
    """The runner's experiment for one (method, training set), from its config file plus the budget flags."""
    suffix = TRAIN_SETS[train_set]
    config_file = osp.join(args.config_dir, f'{METHODS[method][1]}_{suffix}.py')
    cli = {'config_file': config_file, 'res_dir': args.res_dir, 'ex_name': f'tdigits_{method}_{suffix}',
           'epoch': args.epoch, 'train_size': args.train_size, 'test_size': args.test_size,
           'batch_size': args.batch_size, 'val_batch_size': args.batch_size, 'device': args.device,
           'num_workers': args.num_workers, 'seed': args.seed, 'test': args.load,
           'cfg_options': getattr(args, f'{method}_options') or None}
    return Experiment(resolve_config(cli))


def run_one(method: str, train_set: str, args) -> tuple[dict, dict, dict]:
    """Train (unless ``--load``) and score one method; returns (protocol scores, row outputs, run record)."""
    with build_experiment(method, train_set, args) as experiment:      # releases the folder's lock however it ends
        started = time.perf_counter()
        if not args.load:
            experiment.train()
        train_seconds = time.perf_counter() - started
        window_scores = experiment.test()
        name = f'{method}_{TRAIN_SETS[train_set]}'
        # Lightning leaves the model on the CPU after testing; the protocol runs on the chosen device.
        predictor = first_frame_predictor(experiment.method.to(experiment.device))
        scores, outputs = evaluate(predictor, eval_size=args.eval_size,
                                   save_dir=osp.join(args.out_dir, 'predictions', name))
    config, train_data = experiment.config, experiment.train_loader.dataset
    record = {'method': method, 'train_set': train_set, 'experiment': experiment.save_dir,
              'epochs': config['epoch'], 'train_sequences': len(train_data.sequences),
              'training_windows': len(train_data), 'batch_size': config['batch_size'],
              'train_seconds': round(train_seconds, 1),
              'params': sum(p.numel() for p in experiment.method.parameters()),
              'validation_windows': dict(window_scores)}
    return scores, outputs, record


def budget_note(runs: list[dict], args) -> str:
    """One paragraph stating the budget the tables were made with."""
    parts = [f"{METHODS[run['method']][0]} on {run['train_set']}: {run['epochs']} epochs over "
             f"{run['training_windows']} windows ({run['train_sequences']} sequences), {run['params'] / 1e6:.2f} M "
             f"parameters, {run['train_seconds']:.0f} s training" for run in runs]
    eval_note = f'first {args.eval_size} sequences of each test set' if args.eval_size else 'full test sets'
    return (f'Budget: {"; ".join(parts)}. Scored on the {eval_note}. "{REFERENCE_LABEL}" repeats the input '
            f'frame next to the target (frame 5 for frame 4, frame 15 for frame 16).')


def main(argv=None) -> dict:
    args = create_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(message)s')
    if args.threads:
        torch.set_num_threads(args.threads)
    methods = available_methods(args.methods)
    results, runs = {}, []
    reference, _ = evaluate(copy_nearest_input, eval_size=args.eval_size)
    for train_set in args.train_sets:
        results[train_set] = {}
        for method in methods:
            scores, outputs, record = run_one(method, train_set, args)
            label = METHODS[method][0]
            results[train_set][label] = scores
            runs.append(record)
            for row in args.figure_rows:
                path = osp.join(args.out_dir, 'figures', f'{method}_{TRAIN_SETS[train_set]}_{row}.png')
                example_figure(outputs[row], f'{label} trained on {train_set}, test set {row}', path)
        results[train_set][REFERENCE_LABEL] = reference
    paths = write_tables(results, args.out_dir, budget_note(runs, args))
    save_json(osp.join(args.out_dir, 'runs.json'), runs)
    log.info('Tables written to %s', paths['md'])
    return results


if __name__ == '__main__':
    main()
