"""Files only their owner may read: the data directory (0700) and what it holds, the SQLite
database with its WAL and SHM files, the server secret and the admin token (0600).

Modes are set when a file is created, not after, so there is no moment in which another
user could open it; files and directories that already exist with looser modes (an older
version, a copy, a restored backup) are tightened, with a warning in the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger("pwreset")

PRIVATE_DIRECTORY_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# SQLite creates these next to the database, with the database file's mode.
SQLITE_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")


def private_directory(path: Path) -> None:
    """Create `path` (and any missing parents) with mode 0700, or tighten it to 0700 when it
    exists and its group or others have any access. Raises OSError when it cannot be created."""
    try:
        path.mkdir(mode=PRIVATE_DIRECTORY_MODE, parents=True)
    except FileExistsError:
        pass
    else:
        os.chmod(path, PRIVATE_DIRECTORY_MODE)  # mkdir's mode passes through the umask
        return
    tighten(path, PRIVATE_DIRECTORY_MODE)


def tighten(path: Path, mode: int) -> None:
    """Remove every permission `path` has beyond `mode`, logging a warning when it changes;
    nothing happens when it does not exist. A file another user owns is left as it is, with
    a warning, rather than stopping the start."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not current & ~mode:
        return
    try:
        os.chmod(path, current & mode)
    except PermissionError:
        logger.warning("%s has mode %04o and cannot be tightened to %04o: fix its owner", path, current, mode)
        return
    logger.warning("tightened the mode of %s from %04o to %04o", path, current, current & mode)


def create_private_file(path: Path, content: bytes) -> bool:
    """Write `content` to a new file with mode 0600, in a private directory; False (and
    nothing written) when the file exists, for instance created by a concurrent process."""
    private_directory(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
    return True


def prepare_sqlite_file(path: Path) -> None:
    """Make the SQLite database at `path` private before SQLite opens it: its directory is
    created 0700 when missing; the database is created empty with mode 0600 (SQLite reads an
    empty file as a new database, and gives its WAL and SHM files the database's mode);
    an existing database and its companion files are tightened to 0600."""
    if not path.parent.exists():
        private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE))
    for file in (path, *(path.with_name(path.name + suffix) for suffix in SQLITE_COMPANION_SUFFIXES)):
        tighten(file, PRIVATE_FILE_MODE)
