"""The command line of ``tools/train.py`` and ``tools/test.py``: OpenSTL's flags, names and defaults.

Every flag defaults to ``None`` in the parser so that the precedence is explicit and the same for every key:
:data:`DEFAULTS` < config file < flags given on the command line < ``--cfg-options``.
"""
from __future__ import annotations

import argparse

from mmengine.config import DictAction

#: OpenSTL 1.0.0's defaults, so its baselines run here as they run there, except ``device`` ('auto': CUDA
#: when present, else CPU) and ``method`` (this plugin's). The S-HR-VQVAE configs set the paper's optimiser.
DEFAULTS = {
    'device': 'auto', 'dist': False, 'res_dir': 'work_dirs', 'ex_name': 'Debug', 'fp16': False,
    'torchscript': False, 'seed': 42, 'fps': False, 'test': False, 'deterministic': False,
    'batch_size': 16, 'val_batch_size': 16, 'num_workers': 4, 'data_root': './data', 'dataname': 'mmnist',
    'pre_seq_length': 10, 'aft_seq_length': 10, 'total_length': 20, 'use_augment': False,
    'use_prefetcher': False, 'drop_last': False, 'method': 'SHRVQVAE', 'config_file': None,
    'model_type': None, 'drop': 0.0, 'drop_path': 0.0, 'overwrite': False, 'epoch': 200, 'log_step': 1,
    'opt': 'adam', 'opt_eps': None, 'opt_betas': None, 'momentum': 0.9, 'weight_decay': 0.0, 'clip_grad': None,
    'clip_mode': 'norm', 'no_display_method_info': False, 'sched': 'onecycle', 'lr': 1e-3, 'lr_k_decay': 1.0,
    'warmup_lr': 1e-5, 'min_lr': 1e-6, 'final_div_factor': 1e4, 'warmup_epoch': 0, 'decay_epoch': 100,
    'decay_rate': 0.1, 'filter_bias_and_bn': False, 'gpus': [0], 'metric_for_bestckpt': 'val_loss',
    'ckpt_path': None,
    # the plugin's own runner keys
    'resume': False, 'strategy': 'auto', 'num_nodes': 1, 'limit_val_batches': 1.0,
    'ckpt_every_n_steps': 200, 'train_size': None, 'test_size': None, 'force': False,
    'val_from': 'train', 'val_size': None, 'devices': None,
    'debug': False,
}


EXAMPLES = """examples:
  python tools/train.py -c configs/mmnist/shvqvae_smoke.py --ex_name smoke
      a check that everything runs (a few minutes): trains, tests, writes
      work_dirs/smoke/saved/grid.png
  python tools/train.py -c configs/mmnist/shvqvae_quick.py --ex_name quick
      the quick config (CPU budget), then its test
  python tools/train.py -c configs/mmnist/shvqvae.py --ex_name mmnist_shvqvae
      the paper's model with SimVPv2's budget; add --resume to continue it
  python tools/test.py -c configs/mmnist/shvqvae.py --ex_name mmnist_shvqvae
      re-test work_dirs/mmnist_shvqvae/checkpoints/best.ckpt
  python tools/train.py -c configs/mmnist/shvqvae_quick.py --ex_name quick_argmax \\
      --cfg-options sample_temperature=0.0 decoding_samples=1
      any config key from the command line
"""


def _flag(parser, *names, kind=None, help=None, **kwargs):
    if kind is bool:
        parser.add_argument(*names, action='store_true', default=None, help=help)
    else:
        parser.add_argument(*names, type=kind, default=None, help=help, **kwargs)


def create_parser() -> argparse.ArgumentParser:
    """OpenSTL's ``create_parser`` flags plus ``--resume``, ``--force``, ``--cfg-options``, ``--strategy``, ``--num_nodes``."""
    parser = argparse.ArgumentParser(
        description="Train, then test, a video prediction method with OpenSTL's command line (openstl_hrvq);\n"
                    "tools/test.py, or --test, only tests. Every key is set by, in increasing precedence:\n"
                    "the defaults, the config file (-c), the flags, --cfg-options.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_argument_group('set-up')
    _flag(group, '--device', kind=str, help="'auto' (default: CUDA when available, else CPU), 'cpu' or 'cuda'")
    _flag(group, '--dist', kind=bool, help='distributed training (DDP); refused unless several processes run')
    _flag(group, '--devices', kind=int, help='processes on the chosen accelerator (--device cpu --devices 2: two CPU '
                                             'processes over gloo; on CUDA the first N GPUs)')
    _flag(group, '--res_dir', kind=str, help='root folder of experiments (default: work_dirs)')
    _flag(group, '--ex_name', '-ex', kind=str, help='experiment name: results go to <res_dir>/<ex_name>')
    _flag(group, '--fp16', kind=bool, help='mixed precision: float16 on CUDA, bfloat16 on a CPU')
    _flag(group, '--torchscript', kind=bool, help='accepted for OpenSTL compatibility; unused')
    _flag(group, '--seed', kind=int, help='random seed of weights, data order and sampling (default: 42)')
    _flag(group, '--fps', kind=bool, help='measure inference throughput before training')
    _flag(group, '--test', kind=bool, help='only test (the best checkpoint, or --ckpt_path)')
    _flag(group, '--deterministic', kind=bool, help='deterministic algorithms (reproducible, slower)')
    _flag(group, '--debug', kind=bool, help='show the traceback of an error instead of its one-line message')
    _flag(group, '--list-keys', '--list_keys', kind=bool, help='list every config key of the method of -c/-m with '
                                                                'its default, accepted values and meaning, and exit')
    group = parser.add_argument_group('data')
    _flag(group, '--batch_size', '-b', kind=int, help='training batch size (per device)')
    _flag(group, '--val_batch_size', '-vb', kind=int, help='validation and test batch size')
    _flag(group, '--num_workers', kind=int, help='dataloader worker processes (0: load in the main process)')
    _flag(group, '--data_root', kind=str, help="folder with the datasets in OpenSTL's layout (default: ./data)")
    _flag(group, '--dataname', '-d', kind=str, help='dataset name (default: from the config, else mmnist)')
    _flag(group, '--pre_seq_length', kind=int, help='input frames per clip (default: the dataset\'s)')
    _flag(group, '--aft_seq_length', kind=int, help='frames to predict per clip (default: the dataset\'s)')
    _flag(group, '--total_length', kind=int, help='pre_seq_length + aft_seq_length')
    _flag(group, '--use_augment', kind=bool, help='training-time augmentation where the dataset has one')
    _flag(group, '--use_prefetcher', kind=bool, help="OpenSTL's CUDA prefetcher for its loaders")
    _flag(group, '--drop_last', kind=bool, help='drop the last incomplete training batch')
    group = parser.add_argument_group('method')
    _flag(group, '--method', '-m', kind=str, help='method name (default: from the config, else SHRVQVAE)')
    _flag(group, '--config_file', '-c', kind=str, help='flat Python config (default: configs/<dataname>/<method>.py)')
    _flag(group, '--model_type', kind=str, help="OpenSTL baselines' model variant (e.g. SimVP's 'gSTA')")
    _flag(group, '--drop', kind=float, help="OpenSTL baselines' dropout rate")
    _flag(group, '--drop_path', kind=float, help="OpenSTL baselines' stochastic-depth rate")
    _flag(group, '--overwrite', kind=bool, help='accepted for OpenSTL compatibility: flags always win here')
    group = parser.add_argument_group('optimiser and schedule')
    _flag(group, '--epoch', '-e', kind=int, help='total epochs; SHRVQVAE scales its stages to it')
    _flag(group, '--log_step', kind=int, help='validate every N epochs (default: 1)')
    _flag(group, '--opt', kind=str, help="optimiser, by OpenSTL's names (adam, adamw, sgd, ...)")
    _flag(group, '--opt_eps', kind=float, help="the optimiser's epsilon")
    _flag(group, '--opt_betas', kind=float, nargs='+', help="the optimiser's betas, e.g. 0.9 0.999")
    _flag(group, '--momentum', kind=float, help="the SGD optimiser's momentum")
    _flag(group, '--weight_decay', kind=float, help='weight decay (default: 0)')
    _flag(group, '--clip_grad', kind=float, help='clip the gradient norm to this value (default: no clipping)')
    _flag(group, '--clip_mode', kind=str, help="what --clip_grad clips: 'norm' or 'value'")
    _flag(group, '--no_display_method_info', kind=bool, help='skip the parameter and FLOPs table before training')
    _flag(group, '--sched', kind=str, help="learning-rate schedule, e.g. 'constant', 'cosine', 'onecycle'")
    _flag(group, '--lr', kind=float,
          help='learning rate (S-HR-VQVAE: of each stage without its own vq_lr, prior_lr, joint_lr)')
    _flag(group, '--lr_k_decay', kind=float, help="the cosine schedule's decay exponent (OpenSTL's)")
    _flag(group, '--warmup_lr', kind=float, help='learning rate at the start of the warm-up')
    _flag(group, '--min_lr', kind=float, help='final learning rate of the cosine schedule')
    _flag(group, '--final_div_factor', kind=float, help="one-cycle schedule: the final lr is the initial lr / this")
    _flag(group, '--warmup_epoch', kind=int, help='epochs of the learning-rate warm-up')
    _flag(group, '--decay_epoch', kind=float, help='step schedule: epochs between decays')
    _flag(group, '--decay_rate', '--dr', kind=float, help='step schedule: factor of each decay')
    _flag(group, '--filter_bias_and_bn', kind=bool, help='no weight decay on biases and normalisation layers')
    group = parser.add_argument_group('lightning')
    _flag(group, '--gpus', kind=int, nargs='+', help='CUDA device ids (default: [0])')
    _flag(group, '--metric_for_bestckpt', kind=str,
          help='logged metric whose minimum selects best.ckpt (default: val_loss)')
    _flag(group, '--ckpt_path', kind=str, help='checkpoint to test, or to resume training from with --resume')
    _flag(group, '--resume', kind=bool, help='resume training from the checkpoint of <res_dir>/<ex_name> with the '
                                             'most steps (or --ckpt_path)')
    _flag(group, '--force', kind=bool, help='train <res_dir>/<ex_name> from scratch, deleting its checkpoints')
    _flag(group, '--strategy', kind=str, help="Lightning strategy, e.g. 'ddp', 'fsdp' (default: chosen)")
    _flag(group, '--num_nodes', kind=int, help='number of nodes for multi-node DDP')
    parser.add_argument('--cfg-options', '--cfg_options', nargs='+', action=DictAction, default=None,
                        dest='cfg_options', help='override any config key: key=value [key=value ...]')
    return parser
