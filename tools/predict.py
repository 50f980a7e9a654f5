"""Predict the frames that follow a clip of your own with a trained checkpoint.

    python tools/predict.py --ckpt work_dirs/smoke/checkpoints/best.ckpt --input clip.npy
    python tools/predict.py --ckpt work_dirs/quick/checkpoints/best.ckpt --input frames/ --frames 30 --out pred

Writes preds.npy (N, C, H, W) in the data's values ([0, 1] for image data), preds.gif and grid.png; from Python:
``openstl_hrvq.api.predict``.
"""
import sys

from openstl_hrvq.api.cli import predict_main

if __name__ == '__main__':
    sys.exit(predict_main())
