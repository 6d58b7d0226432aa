"""Data files readable by their owner only (0600).

The database holds customers' names and phones, sealed tokens and the audit log; an
export holds the registry. Created under the usual umask (022) they were readable by
every local user. SQLite gives its -wal and -shm files the database file's permissions,
so creating the database file 0600 before SQLite opens it covers all three.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TextIO

PRIVATE = 0o600


def make_private(path: Path) -> None:
    """Create `path` empty with mode 0600, or take group and other access away from the
    existing file (and from its SQLite -wal/-shm files if they are there)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    except FileExistsError:
        for each in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                mode = stat.S_IMODE(each.stat().st_mode)
            except FileNotFoundError:
                continue
            if mode & 0o077:
                each.chmod(mode & 0o700)
    else:
        os.close(fd)


def open_private(path: Path) -> TextIO:
    """`path` opened for writing text (truncated), created 0600; an existing file loses
    group and other access first."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    try:
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) & 0o700)
        return os.fdopen(fd, "w", encoding="utf-8", newline="")
    except BaseException:
        os.close(fd)
        raise
