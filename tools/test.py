"""Test a trained method: ``checkpoints/best.ckpt`` of the experiment, or ``--ckpt_path``.

    python tools/test.py -c configs/mmnist/shvqvae.py --ex_name mmnist_shvqvae
"""
import sys

from openstl_hrvq.api.cli import main

if __name__ == '__main__':
    sys.exit(main(test_only=True))
