"""Small shared builders for the tests: a tiny S-HR-VQVAE config, tiny loaders, the tools as modules."""
import importlib.util
import os.path as osp

import torch
from torch.utils.data import DataLoader, Dataset

#: A model small enough to train for a few steps in seconds on 2 CPU cores.
TINY_MODEL = dict(
    in_shape=(4, 1, 16, 16), pre_seq_length=4, aft_seq_length=4,
    vq_layers=2, vq_codebook_size=4, vq_latent_dim=4, vq_hidden=8, vq_res_hidden=4, vq_res_blocks=1,
    prior_hidden=8, prior_blocks=1, prior_heads=2, decode_order='parallel',
)


class MovingSquares(Dataset):
    """(T_in + T_out) frames of a bright square moving one pixel per frame: a trivially predictable video."""

    mean, std, data_name = 0.0, 1.0, 'squares'

    def __init__(self, size=16, frames=8, length=16, seed=0):
        generator = torch.Generator().manual_seed(seed)
        self.videos = torch.zeros(length, frames, 1, size, size)
        for n in range(length):
            y, x = torch.randint(0, size - 4, (2,), generator=generator).tolist()
            for t in range(frames):
                left = (x + t) % (size - 4)
                self.videos[n, t, 0, y:y + 4, left:left + 4] = 1.0

    def __len__(self):
        return len(self.videos)

    def __getitem__(self, index):
        video = self.videos[index]
        return video[:4], video[4:]


def square_loaders(batch_size=4, length=16):
    train = DataLoader(MovingSquares(length=length, seed=0), batch_size=batch_size, shuffle=False)
    test = DataLoader(MovingSquares(length=8, seed=1), batch_size=batch_size)
    return train, test, test


REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_tool(name):
    """``tools/<name>.py`` imported as a module."""
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
