"""Atomic file writing: every output of the project goes through here.

A file is written under a temporary name in the same folder, flushed to disk, then renamed over
its final name, so a killed run leaves either the old complete file or the new complete file,
never a half-written one that a rerun would trust. Temporary names start with `.` and
hold `.tmp`, and listings skip names that start with `.`.
"""

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import time
from pathlib import Path

from common.errors import UserFacingError

TEMP_SUFFIX = ".tmp"
TEMP_PID = re.compile(rf"^\..*\.(\d+){re.escape(TEMP_SUFFIX)}")  # .<base>.<pid>.tmp.<suffixes>
UNWRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOENT, errno.EEXIST,
                     errno.ENOTDIR, errno.EISDIR)


class FolderLockedError(UserFacingError):
    """Another run holds the folder's lock."""


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it is renamed to `path`, on error removed.

    For libraries that write to a path themselves (Keras `save`, matplotlib `savefig`), the
    temporary name `.<base>.<pid>.tmp.<suffixes>` keeps every suffix, which they look at
    (Keras wants `x.weights.h5` to end in `.weights.h5`).
    """
    path = Path(path)
    base, dot, suffixes = path.name.partition(".")
    temporary = path.with_name(f".{base}.{os.getpid()}{TEMP_SUFFIX}{dot}{suffixes}")
    try:
        with unwritable_as_user_error(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            yield temporary
            with open(temporary, "rb") as written:
                os.fsync(written.fileno())
            os.replace(temporary, path)
    finally:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def unwritable_as_user_error(path):
    """Turn the errors of a place that cannot be written (no permission, a read-only or full disk, a file
    where a folder should be) into one-line UserFacingErrors naming `path`."""
    try:
        yield
    except (PermissionError, FileExistsError, NotADirectoryError) as error:
        raise UserFacingError(f"{path}: cannot write here ({error.strerror}); make the folder writable or choose "
                              "another results_dir") from None
    except OSError as error:
        if error.errno not in UNWRITABLE_ERRNOS:
            raise
        raise UserFacingError(f"{path}: cannot write here ({error.strerror}); free space, make the folder "
                              "writable or choose another results_dir") from None


def write_bytes_atomic(path, data):
    """Write `data` (bytes) to `path` atomically; returns the path."""
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text_atomic(path, text):
    return write_bytes_atomic(path, text.encode())


def write_json_atomic(path, value):
    return write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def file_sha256(path):
    """Hex SHA-256 of a file's bytes: which model an output was made with."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_stale_temporaries(folder):
    """Delete temporary files a killed run left in `folder` and below: those whose process (the pid in
    their name) is gone; returns how many. Hold `folder_lock` first. A live process's file is kept, even
    in a subfolder another stage is writing (train.py's controller/ under vae_train.py's vae/)."""
    stale = [p for p in Path(folder).rglob(f".*{TEMP_SUFFIX}*") if p.is_file() and not _writer_alive(p)]
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def _writer_alive(path):
    """Whether the process that named this temporary file still runs (False for a name without a pid)."""
    match = TEMP_PID.match(path.name)
    if match is None:
        return False
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True  # another user's process: not ours to judge
    return True


@contextlib.contextmanager
def folder_lock(folder, purpose):
    """Hold an exclusive lock on `folder` so two runs never write the same outputs at once.

    The lock is released by the kernel if the process dies, even by kill -9.
    """
    folder = Path(folder)
    with unwritable_as_user_error(folder):
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / ".lock", "w")  # noqa: SIM115  (closed below, after the lock's whole life)
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderLockedError(f"another {purpose} is writing to {folder}; wait for it or stop it") from None
        yield


def set_aside(paths, folder, reason, report=print):
    """Move the existing `paths` (files or folders under `folder`) into folder/stale/<UTC time>/, keeping
    their relative paths: renames on one file system, so nothing is copied and nothing is lost. Reports
    what moved, and why, in one line; returns the destination (None if nothing existed)."""
    present = [Path(path) for path in paths if Path(path).exists()]
    if not present:
        return None
    destination = Path(folder) / "stale" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for path in present:
        target = destination / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
    report(f"{reason}: moved {', '.join(str(path.relative_to(folder)) for path in present)} to {destination}")
    return destination
