"""Train, then test, a video prediction method with OpenSTL's command line.

    python tools/train.py -c configs/mmnist/shvqvae.py
    python tools/train.py -c configs/mmnist/shvqvae.py --ex_name mmnist_shvqvae --resume
"""
import sys

from openstl_hrvq.api.cli import main

if __name__ == '__main__':
    sys.exit(main())
