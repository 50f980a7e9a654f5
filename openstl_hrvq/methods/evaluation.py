"""Test-time bookkeeping shared by every method the plugin runs (its own and OpenSTL's baselines).

OpenSTL's methods collect inputs, predictions and targets in ``test_step`` and score them in
``on_test_epoch_end``, writing ``saved/{metrics,inputs,trues,preds}.npy`` under ``save_dir``.
:class:`LeaderboardTestMixin` does the same with the plugin's metrics (which, unlike OpenSTL's, run on
current scikit-image and score LPIPS offline), so every row of a comparison is scored by one code path.
It also scores the trivial references of :mod:`openstl_hrvq.references` on the same test sequences, because a
video predictor that does not beat them has learnt nothing about motion.
"""
from __future__ import annotations

import logging
import os.path as osp

import numpy as np

from openstl_hrvq.files import save_arrays
from openstl_hrvq.methods.gather import gather_in_rank_order, share_from_rank_zero
from openstl_hrvq.metrics import metric
from openstl_hrvq.references import reference_predictions

log = logging.getLogger(__name__)


class LeaderboardTestMixin:
    """``test_step`` / ``on_test_epoch_end`` with OpenSTL's contract and the plugin's metrics.

    Requires ``self.hparams`` to hold ``save_dir``, ``test_mean``, ``test_std`` and ``metrics`` (as
    OpenSTL's methods do), and ``self(batch_x, batch_y)`` to return predictions ``(B, S, C, H, W)``.
    """

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
        scores, text = metric(results['preds'], results['trues'], mean, std, metrics=metrics, per_frame=True)
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
            log.info('Test metrics (%d sequences): %s', len(results['preds']), text)
            log.info('Test MSE: method %.3f | %s', scores['mse'],
                     ' | '.join(f"{name} {ref['mse']:.3f}" for name, ref in references.items()))
            width = max(map(len, frame_mse)) + 1
            for name, values in frame_mse.items():
                log.info('Test MSE per predicted frame, %s %s', f'{name}:'.ljust(width),
                         ' '.join(f'{value:.1f}' for value in values))
            results['metrics'] = np.array([scores['mae'], scores['mse']])
            save_arrays(osp.join(self.hparams.save_dir, 'saved'),
                        {name: results[name] for name in ('metrics', 'inputs', 'trues', 'preds')})
        return results
