"""Leaderboard runs: several methods on one dataset, one budget and seed; tables, grid picture, animations."""
from openstl_hrvq.benchmark.entries import OPENSTL_BASELINES, Entry, baseline_entry, build_entries, config_entry
from openstl_hrvq.benchmark.leaderboard import (LeaderboardOptions, TestSet, merge_leaderboards, reference_test_set,
                                                run_leaderboard)
from openstl_hrvq.benchmark.runner import Budget, CostProtocol
from openstl_hrvq.benchmark.scoring import LEADERBOARD_METRICS, score_predictions
from openstl_hrvq.benchmark.table import COLUMNS, read_rows, write_tables

__all__ = ['Entry', 'OPENSTL_BASELINES', 'baseline_entry', 'build_entries', 'config_entry', 'LeaderboardOptions',
           'TestSet', 'merge_leaderboards', 'reference_test_set', 'run_leaderboard', 'Budget', 'CostProtocol',
           'LEADERBOARD_METRICS', 'score_predictions', 'COLUMNS', 'read_rows', 'write_tables']
