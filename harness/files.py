"""Writing files that other processes read: atomically, and under a lock.

One way to replace a file (:func:`atomic_write_bytes` and its text and JSON-lines forms), one way to
replace a folder (:func:`atomic_folder`), one lock (:func:`file_lock`). A reader sees the old
content or the new, never half of it; a crash or an error leaves no temporary file behind; what is
written gets ordinary permissions (``0644``, folders ``0755``), as if made by ``open``.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     path = atomic_write_text(Path(folder) / "a" / "b.md", "hi\\n")
...     path.read_text(), oct(path.stat().st_mode & 0o777), sorted(p.name for p in path.parent.iterdir())
('hi\\n', '0o644', ['b.md'])
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike[str], content: bytes) -> Path:
    """Replace ``path`` with ``content`` all at once; the parent folders are made as needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder as the target, so os.replace is a rename within one file system (atomic).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o644)  # mkstemp makes 0600; records are meant to be shared
            file.write(content)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)  # and the rename itself survives a crash
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> Path:
    """:func:`atomic_write_bytes` for one JSON object per line (non-ASCII kept as is)."""
    return atomic_write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def atomic_folder(target: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Make the folder ``target`` by calling ``write(staging)`` on an empty folder beside it, then
    swap it in: a crash or an error never leaves half a folder (a checkpoint, a saved model) at
    ``target``, and a failed ``write`` leaves the old ``target`` as it was."""
    target = Path(target)
    staging = target.with_name(f".tmp-{target.name}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        write(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return replace_folder(target, staging)


def replace_folder(target: str | os.PathLike[str], ready: str | os.PathLike[str]) -> Path:
    """Put the finished folder ``ready`` (on the same file system, e.g. beside ``target``) at
    ``target``, replacing what was there; the one swap that :func:`atomic_folder` and the builders
    of the embedded models share."""
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    Path(ready).rename(target)
    _fsync_folder(target.parent)
    return target


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (made, with its folders, if missing). Yields True once
    held; with ``wait=False`` yields False at once when another process holds it. The kernel drops
    the lock when its process dies, so a killed run leaves nothing stale behind (the empty lock
    file stays; it means nothing by itself).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     lock = Path(folder) / "x.lock"
    ...     with file_lock(lock) as first, file_lock(lock, wait=False) as second:
    ...         print(first, second, is_locked(lock))
    True False True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def is_locked(path: str | os.PathLike[str]) -> bool:
    """Whether a process holds :func:`file_lock` on ``path`` now (creates nothing)."""
    path = Path(path)
    if not path.exists():
        return False
    with open(path) as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None when it is missing or unreadable (a half-written file)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
