"""One live run per experiment folder.

Two runs writing one ``<res_dir>/<ex_name>`` would replace each other's checkpoints, records and test arrays,
and both would end "successfully". :func:`lock_experiment` takes an exclusive ``flock`` on ``<folder>/.lock``
while an experiment holds it (:meth:`FolderLock.release`, or the end of the process); a second process is
refused in one line naming the holder (``--force`` does not
override it: it deletes checkpoints, it does not stop a running process). The kernel releases the lock when its
process dies, however it dies, so a lock left by a killed run is stale by construction: the next run takes it
over and says whose it was. Only global rank 0 of a multi-process run locks (the other ranks are part of the
same run, and on a shared file system a second node's process would find the lock taken); the rank is the global
one (:func:`~openstl_hrvq.distributed_utils.launcher_rank`), not ``LOCAL_RANK``, which is 0 on every node.
"""
from __future__ import annotations

import logging
import os
import os.path as osp
import socket
import time

from openstl_hrvq.distributed_utils import launcher_rank
from openstl_hrvq.errors import BusyError

try:
    import fcntl
except ImportError:  # Windows: no flock; runs there are not locked
    fcntl = None

log = logging.getLogger(__name__)

LOCK_FILE = '.lock'
_held: dict[str, list] = {}      # real path of a locked folder -> [descriptor of its lock file, holders]


def _holder(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode(errors='replace').strip()


class FolderLock:
    """This process's hold on a folder's lock; :meth:`release` lets go (the last holder in the process unlocks)."""

    def __init__(self, key: str | None):
        self.key = key

    def release(self) -> None:
        if self.key is None or self.key not in _held:
            return
        entry = _held[self.key]
        entry[1] -= 1
        if entry[1] == 0:
            os.close(entry[0])         # closing the descriptor releases the flock
            del _held[self.key]
        self.key = None


def lock_experiment(folder: str, rank: int | None = None) -> FolderLock:
    """Lock ``folder`` for this process until the returned lock is released (or the process ends); a folder this
    process holds already is shared. A process of global ``rank`` > 0 (default: from the launcher's environment)
    gets a lock that holds nothing.

    Raises:
        BusyError: another live process holds it.
    """
    key = osp.realpath(folder)
    if fcntl is None or (launcher_rank() if rank is None else rank) != 0:
        return FolderLock(None)
    if key in _held:
        _held[key][1] += 1
        return FolderLock(key)
    path = osp.join(folder, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd) or 'a process that has not written its PID yet'
        os.close(fd)
        raise BusyError(f'{folder} is in use by a running process ({holder}): wait for it to finish or stop it, '
                        f'or use another --ex_name (--force does not stop a running process).') from None
    previous = _holder(fd)
    if previous and not previous.startswith(f'PID {os.getpid()} '):
        log.info('Took over the lock of %s from a run that is no longer running (%s).', folder, previous)
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f'PID {os.getpid()} on {socket.gethostname()}, since {time.strftime("%Y-%m-%d %H:%M:%S")}'.encode())
    _held[key] = [fd, 1]
    return FolderLock(key)
