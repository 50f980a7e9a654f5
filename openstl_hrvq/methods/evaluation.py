"""Test-time bookkeeping shared by every method the plugin runs (its own and OpenSTL's baselines).

OpenSTL's methods collect inputs, predictions and targets in ``test_step`` and score them in
``on_test_epoch_end``, writing ``saved/{metrics,inputs,trues,preds}.npy`` under ``save_dir``.
:class:`LeaderboardTestMixin` does the same with the plugin's metrics (which, unlike OpenSTL's, run on
current scikit-image and score LPIPS offline), so every row of a comparison is scored by one code path.
After scoring it draws ``saved/grid.png`` and ``saved/animation.gif`` of the first test sequences. It also
scores the trivial references of :mod:`openstl_hrvq.references` on the same test sequences, because a
video predictor that does not beat them has learnt nothing about motion.
"""
from __future__ import annotations

import logging
import os.path as osp

import numpy as np

from openstl_hrvq.files import save_arrays
from openstl_hrvq.methods.gather import gather_in_rank_order, share_from_rank_zero
from openstl_hrvq.method_registry import find_method
from openstl_hrvq.metrics import frame_sum_mse, metric
from openstl_hrvq.references import reference_predictions
from openstl_hrvq.visualization import save_prediction_pictures

#: The leading test sequences that ``saved/grid.png`` and ``saved/animation.gif`` show.
PICTURE_SEQUENCES = 4

log = logging.getLogger(__name__)


class LeaderboardTestMixin:
    """``test_step`` / ``on_test_epoch_end`` with OpenSTL's contract and the plugin's metrics, and a
    ``validation_step`` whose ``val_loss`` is in the units of the test's MSE.

    Requires ``self.hparams`` to hold ``save_dir``, ``test_mean``, ``test_std`` and ``metrics`` (as
    OpenSTL's methods do), and ``self(batch_x, batch_y)`` to return predictions ``(B, S, C, H, W)``.
    """

    def validation_step(self, batch, batch_idx):
        """``val_loss``: the test's MSE (per-frame sum over C x H x W, de-normalised) on the validation batch."""
        batch_x, batch_y = batch
        loss = frame_sum_mse(self(batch_x, batch_y), batch_y, self.hparams.get('test_std'))
        self.log('val_loss', loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        return loss

    def on_test_epoch_start(self):
        self.test_outputs = []

    def test_step(self, batch, batch_idx):
        batch_x, batch_y = batch
        pred_y = self(batch_x, batch_y)
        outputs = {'inputs': batch_x.cpu().numpy(), 'preds': pred_y.float().cpu().numpy(),
                   'trues': batch_y.cpu().numpy()}
        self.test_outputs.append(outputs)
        return outputs

    def on_test_epoch_end(self):
        local = {key: np.concatenate([batch[key] for batch in self.test_outputs], axis=0)
                 for key in ('inputs', 'preds', 'trues')} if self.test_outputs else None
        self.test_outputs = []
        # Several processes: rank 0 scores the whole test set once, in order; the others receive its scores.
        results = gather_in_rank_order(local)
        if results is None:
            self.test_results, self.test_per_frame, self.test_references = share_from_rank_zero(None)
            return None
        metrics = list(self.hparams.get('metrics') or ['mse', 'mae'])
        for required in ('mse', 'mae'):
            if required not in metrics:
                metrics.append(required)
        mean, std = self.hparams.get('test_mean'), self.hparams.get('test_std')
        scores, _ = metric(results['preds'], results['trues'], mean, std, metrics=metrics, return_log=False,
                           per_frame=True)
        # Per predicted frame (averaged over sequences): how far ahead a method beats the references.
        per_frame = {name: values.mean(axis=0) for name, values in scores.pop('per_frame').items()}
        frame_mse = {'method': per_frame['mse']}
        self.test_results = {key: float(value) for key, value in scores.items()}
        self.test_per_frame = {name: [float(value) for value in values] for name, values in per_frame.items()}
        references = {}
        for name, prediction in reference_predictions(results['inputs'], results['trues'].shape[1]).items():
            ref_scores, _ = metric(prediction, results['trues'], mean, std, metrics=['mse', 'mae'],
                                   return_log=False, per_frame=True)
            frame_mse[name] = ref_scores.pop('per_frame')['mse'].mean(axis=0)
            references[name] = {key: float(value) for key, value in ref_scores.items()}
        self.test_references = references
        share_from_rank_zero((self.test_results, self.test_per_frame, self.test_references))
        if self.trainer.is_global_zero:
            log.info('Test metrics (%d sequences): %s', len(results['preds']),
                     ', '.join(f'{name}={value:.4f}' for name, value in self.test_results.items()))
            log.info('Test MSE: method %.3f | %s', scores['mse'],
                     ' | '.join(f"{name} {ref['mse']:.3f}" for name, ref in references.items()))
            width = max(map(len, frame_mse)) + 1
            for name, values in frame_mse.items():
                log.info('Test MSE per predicted frame, %s %s', f'{name}:'.ljust(width),
                         ' '.join(f'{value:.1f}' for value in values))
            results['metrics'] = np.array([scores['mae'], scores['mse']])
            folder = osp.join(self.hparams.save_dir, 'saved')
            save_arrays(folder, {name: results[name] for name in ('metrics', 'inputs', 'trues', 'preds')})
            self._save_pictures(results, folder)
        return results

    def _save_pictures(self, results: dict, folder: str) -> None:
        """``saved/grid.png`` and ``saved/animation.gif``: inputs, truth and prediction of the first test sequences,
        de-normalised as they are scored."""
        mean, std = self.hparams.get('test_mean'), self.hparams.get('test_std')
        shown = {name: results[name][:PICTURE_SEQUENCES] for name in ('inputs', 'trues', 'preds')}
        if mean is not None and std is not None:
            shown = {name: frames * np.asarray(std) + np.asarray(mean) for name, frames in shown.items()}
        registered = find_method(self.hparams.get('method'))
        name = registered.display_name if registered else self.hparams.get('method') or 'prediction'
        paths = save_prediction_pictures(shown['inputs'], shown['trues'], shown['preds'], folder, name=name)
        log.info('Pictures of the first test sequences: %s (inputs, truth, prediction) and %s', paths['grid'],
                 paths['animation'])
