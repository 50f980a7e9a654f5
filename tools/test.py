"""Test a trained method: ``checkpoints/best.ckpt`` of the experiment, or ``--ckpt_path``.

    python tools/test.py -c configs/mmnist/shvqvae.py --ex_name mmnist_shvqvae
"""
from openstl_hrvq.api.cli import run

if __name__ == '__main__':
    run(test_only=True)
