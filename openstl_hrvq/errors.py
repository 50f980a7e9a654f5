"""Errors a user causes and can fix: a config value, a data file, a checkpoint, a diverging run.

Their message is one sentence naming the problem and the fix, so the command line prints it as one line
instead of a traceback (``--debug`` shows the traceback). Each also derives from the built-in exception that
code catching the old error expects (``ValueError``, ``KeyError``, ``FileNotFoundError``, ...).
"""
from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave (config, data, checkpoint, hyperparameters), not a bug."""

    def __str__(self) -> str:
        # KeyError would quote its message; the message is meant to be read as it is.
        return str(self.args[0]) if self.args else type(self).__name__


class ConfigError(UserError, ValueError):
    """A config value outside the range its key accepts, or an unknown method, dataset or device."""


class UnknownKeyError(ConfigError, KeyError):
    """A config key that nothing reads (most likely a typo)."""


class MissingFileError(UserError, FileNotFoundError):
    """A file the run needs (config, data, checkpoint) is not there."""


class DataFileError(UserError, ValueError):
    """A data file is there but malformed (wrong shape, dtype, value range, truncated or corrupt)."""


class CheckpointError(UserError, RuntimeError):
    """A checkpoint is unreadable, belongs to another config, or would be silently overwritten."""


class DivergedError(UserError, FloatingPointError):
    """Training produced a non-finite loss or non-finite weights."""


class StorageError(UserError, OSError):
    """A file cannot be written: the disk is full, the folder is read-only or is not a folder, a name is too long."""


class BusyError(UserError, RuntimeError):
    """Another live process is running an experiment in the same folder."""
