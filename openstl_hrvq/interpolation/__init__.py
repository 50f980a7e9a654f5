"""The transformed-digit interpolation / extrapolation benchmark (from a SimVPv2 study).

``protocol`` -- which frames go in and which frame is scored, and the test-time input corruptions;
``evaluation`` -- predicting and scoring every protocol row; ``tables`` and ``figures`` -- the study's report.
The data and training windows live in :mod:`openstl_hrvq.datasets.transformed_digits`.
"""
from openstl_hrvq.interpolation.evaluation import (FRAME_GROUPS, METRICS, RowOutputs, copy_nearest_input,
                                                   evaluate, first_frame_predictor, row_inputs, score_outputs)
from openstl_hrvq.interpolation.protocol import ROWS, TASKS, TEST_SETS, VARIANTS, Task, parse_row, task_inputs
from openstl_hrvq.interpolation.tables import results_markdown, table_rows, write_tables

__all__ = ['FRAME_GROUPS', 'METRICS', 'ROWS', 'TASKS', 'TEST_SETS', 'VARIANTS', 'RowOutputs', 'Task',
           'copy_nearest_input', 'evaluate', 'first_frame_predictor', 'parse_row', 'row_inputs',
           'results_markdown', 'score_outputs', 'table_rows', 'task_inputs', 'write_tables']
