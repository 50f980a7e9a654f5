"""Writing files so that a crash, a kill or a full disk never leaves a damaged one behind.

Every checkpoint, saved array, table and record of the plugin is written by :func:`atomic_write`: into a
temporary file in the target's own folder, flushed and ``fsync``-ed, then renamed over the target with
``os.replace`` (atomic on POSIX within one file system). A reader therefore sees the old complete file or the
new complete file, never a part. A temporary file in another folder (the system's temp folder, as Lightning's
and fsspec's "atomic" saves use) would have to be *copied* over the target, which is not atomic.

A write that fails for a reason the user can fix (disk full, read-only folder, a path that is a file, a name
too long) is raised as one :class:`~openstl_hrvq.errors.StorageError` naming the folder and its file system.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import IO, Iterator

import numpy as np

from openstl_hrvq.errors import StorageError

#: errno values whose cause lies in the file system the user chose, not in the code: (reason, fix).
USER_FIXABLE = {errno.ENOSPC: ('no space left on the device', 'free space there'),
                errno.EDQUOT: ('the disk quota is exceeded', 'free space there'),
                errno.EROFS: ('the file system is read-only', 'make it writable'),
                errno.EACCES: ('permission denied', 'make it writable'),
                errno.EPERM: ('permission denied', 'make it writable'),
                errno.ENOTDIR: ('a part of the path is a file, not a folder', 'move that file away'),
                errno.EEXIST: ('a file is in the way of a folder', 'move that file away'),
                errno.ENAMETOOLONG: ('a name in the path is too long', 'use a shorter name')}


def _file_mode() -> int:
    """The mode ``open()`` would give a new file under the current umask (``mkstemp`` makes it 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _file_mode()


def mount_point(path: str) -> str:
    """The mount point of the file system that holds ``path`` (or would hold it: the nearest existing parent)."""
    path = osp.abspath(path)
    while not osp.exists(path):
        path = osp.dirname(path)
    while not osp.ismount(path):
        path = osp.dirname(path)
    return path


def storage_error(error: OSError, path: str, what: str = 'writing') -> StorageError | OSError:
    """A one-line :class:`StorageError` for a user-fixable ``error`` while ``what``-ing ``path``; other
    errors are returned unchanged (they are bugs or hardware faults, and keep their traceback)."""
    code = error.errno
    if code is None and _nearly_full(path):
        code = errno.ENOSPC       # numpy's tofile reports a short write without an errno
    if code not in USER_FIXABLE:
        return error
    reason, fix = USER_FIXABLE[code]
    folder = osp.dirname(osp.abspath(path)) or '.'
    disk = mount_point(folder)
    free = ''
    with contextlib.suppress(OSError):
        free = f', {shutil.disk_usage(disk).free / 2 ** 20:.1f} MiB free'
    return StorageError(f'Cannot write {path}: {reason} (folder {folder}, file system mounted at {disk}{free}); '
                        f'{fix}, or write elsewhere (--res_dir, --out, --data-root); files written before are '
                        f'intact.')


def _nearly_full(path: str) -> bool:
    try:
        return shutil.disk_usage(mount_point(osp.dirname(osp.abspath(path)))).free < 2 ** 16
    except OSError:
        return False


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb') -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success it replaces ``path`` atomically.

    On any error the temporary file is removed and ``path`` is left as it was; a user-fixable ``OSError``
    becomes a :class:`StorageError`.
    """
    with atomic_path(path, suffix='.tmp') as tmp:
        with open(tmp, mode, **({} if 'b' in mode else {'encoding': 'utf-8', 'newline': ''})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (the folder's entry), where the platform allows it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def save_text(path: str, text: str) -> str:
    with atomic_write(path, 'w') as handle:
        handle.write(text)
    return path


def save_json(path: str, data, **kwargs) -> str:
    return save_text(path, json.dumps(data, indent=1, **kwargs))


def save_array(path: str, array: np.ndarray) -> str:
    """``np.save`` to exactly ``path`` (no ``.npy`` appended), atomically."""
    with atomic_write(path) as handle:
        np.save(handle, array)
    return path


@contextlib.contextmanager
def atomic_set(paths: dict[str, str]) -> Iterator[dict[str, IO]]:
    """Binary handles (name -> handle) of temporary files beside ``paths`` (name -> path), written as one set:
    they replace their targets only when the block ends without an error, so a failure (a full disk, a writer
    that raises) leaves the previous set whole, never a mix of new and old files."""
    with contextlib.ExitStack() as stack:
        yield {name: stack.enter_context(atomic_write(path)) for name, path in paths.items()}


def save_arrays(folder: str, arrays: dict[str, np.ndarray]) -> dict[str, str]:
    """``<folder>/<name>.npy`` for every array, as one set (:func:`atomic_set`). Returns name -> path."""
    paths = {name: osp.join(folder, f'{name}.npy') for name in arrays}
    with atomic_set(paths) as handles:
        for name, array in arrays.items():
            try:
                np.save(handles[name], array)
            except OSError as error:
                raise storage_error(error, paths[name]) from error
    return paths


def save_with(path: str, writer, binary: bool = True) -> str:
    """Write ``path`` atomically with ``writer(handle)`` (e.g. ``torch.save``, ``image.save`` with a format)."""
    with atomic_write(path, 'wb' if binary else 'w') as handle:
        writer(handle)
    return path


def save_figure(fig, path: str, **kwargs) -> str:
    """``fig.savefig`` to ``path`` atomically (format by extension; ``kwargs`` such as ``dpi`` go to savefig)."""
    kind = osp.splitext(path)[1].lstrip('.').lower() or None
    return save_with(path, lambda handle: fig.savefig(handle, format=kind, **kwargs))


@contextlib.contextmanager
def atomic_path(path: str, suffix: str | None = None) -> Iterator[str]:
    """The name of a temporary file beside ``path`` (ending in ``suffix``, default ``.tmp`` and ``path``'s
    extension, for writers that need a name rather than a handle, such as a video encoder); on success the file
    replaces ``path`` atomically. On any error it is removed and ``path`` is left as it was; a user-fixable
    ``OSError`` becomes a :class:`StorageError`."""
    path = os.fspath(path)
    folder = osp.dirname(osp.abspath(path))
    name = osp.basename(path)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        handle_fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix=suffix or f'.tmp{osp.splitext(name)[1]}',
                                          dir=folder)
        os.close(handle_fd)
        os.chmod(tmp, FILE_MODE)
        yield tmp
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(folder)
    except StorageError:
        raise
    except OSError as error:
        raise storage_error(error, path) from error
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def ensure_writable_folder(folder: str, role: str) -> None:
    """Create ``folder`` if needed and prove a file can be written in it, before any work starts.

    Raises:
        StorageError: naming ``role`` (e.g. ``'--res_dir/--ex_name'``), the folder and the reason.
    """
    try:
        if osp.exists(folder) and not osp.isdir(folder):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), folder)
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        wrapped = storage_error(error, osp.join(folder, '.probe'))
        if isinstance(wrapped, StorageError):
            reason, fix = USER_FIXABLE[error.errno]
            raise StorageError(f'{role} {folder} cannot hold files: {reason} (file system mounted at '
                               f'{mount_point(folder)}); {fix}, or choose another folder.') from error
        raise

