# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Remove the AnsiballZ payload directories that killed runs of this collection left.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

Ansible's AnsiballZ wrapper unpacks each module into
``tempfile.mkdtemp(prefix='ansible_<module>_payload_')`` and removes that
directory when the module returns.  A run killed by SIGKILL (OOM killer,
timeout, a human) leaves it behind, about 160 KB, and our action plugin
points ``TMPDIR`` at ``/dev/shm``: RAM, where they pile up.

Only directories that are certainly ours and certainly dead are removed:

* the name is ``ansible_sre.cmemgzip.<module>_payload_<random>``;
* a real directory (never through a symlink) owned by this user;
* nothing in it changed for STALE_SECONDS;
* no process holds its lock.  Every module of this collection takes a
  shared ``flock`` on its own payload directory as it starts (``hold_own``)
  and keeps it until the process ends, however it ends: the kernel drops the
  lock with the last descriptor.  The cleaner takes an exclusive,
  non-blocking ``flock`` on the directory it opened and removes the
  directory's content through that very descriptor while it holds the lock.

Why this is race-free: a live run either holds its shared lock (then the
exclusive one fails and the directory is left alone), or it is in the
instant between the wrapper's ``mkdtemp`` and the module's first line
(writing a zip and importing: well under a second), which the age limit
covers by far; a run of an older version that takes no lock is protected by
the age limit only.  The name cannot be swapped under us: ``/dev/shm`` is
sticky, so only the owner (this user) or root may rename or remove an entry
there, and before the final ``rmdir`` the name is checked to still be the
locked directory.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from typing import Any, Iterable

PREFIX = 'ansible_sre.cmemgzip.'
MARKER = '_payload_'
# Directories whose content did not change for this long, and that no
# process has locked, are left over by killed runs.
STALE_SECONDS = 3600
# Where sre.cmemgzip's action plugin points TMPDIR (full_disk_action.RAM_TMPDIR).
DEFAULT_BASES = ('/dev/shm',)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# The descriptor that holds this process's own payload directory locked;
# kept open until the process ends.
_held: list[int] = []


def own_payload_dir(module_file: str = __file__) -> str | None:
    """The AnsiballZ payload directory this code runs from, or None (not run by AnsiballZ)."""
    parts = module_file.split(os.sep)
    for index in range(len(parts) - 1):
        if parts[index].startswith(PREFIX) and MARKER in parts[index] and parts[index + 1].endswith('_payload.zip'):
            return os.sep.join(parts[:index + 1])
    return None


def hold(path: str) -> bool:
    """Take a shared lock on ``path`` for the rest of this process's life."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held.append(fd)
    return True


def hold_own() -> str | None:
    """Lock this run's own payload directory (if it has one); return its path."""
    path = own_payload_dir()
    if path is not None:
        hold(path)
    return path


def _is_ours(name: str) -> bool:
    return name.startswith(PREFIX) and MARKER in name


def _newest_change(dir_fd: int) -> float:
    newest = os.fstat(dir_fd).st_mtime
    for name in os.listdir(dir_fd):
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        newest = max(newest, st.st_mtime)
    return newest


def _empty(dir_fd: int) -> int:
    """Remove what a payload directory holds (files, and directories below it); return bytes freed."""
    freed = 0
    for name in os.listdir(dir_fd):
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            child = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            try:
                freed += _empty(child)
            finally:
                os.close(child)
            os.rmdir(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
            freed += st.st_blocks * 512
    return freed


class Cleanup(object):
    """One sweep over the directories where payloads land; ``report()`` for the result."""

    def __init__(self, check_mode: bool = False, now: float | None = None, stale_seconds: float = STALE_SECONDS,
                 own: str | None = None) -> None:
        self.check_mode = check_mode
        self.now = time.time() if now is None else now
        self.stale_seconds = stale_seconds
        self.own = own
        self.removed: list[str] = []
        self.bytes_freed = 0
        self.errors: list[str] = []

    def sweep(self, base: str) -> None:
        try:
            base_fd = os.open(base, _DIR_FLAGS)
        except OSError:
            return
        try:
            for name in sorted(os.listdir(base_fd)):
                if _is_ours(name) and os.path.join(base, name) != self.own:
                    self._consider(base, base_fd, name)
        finally:
            os.close(base_fd)

    def _consider(self, base: str, base_fd: int, name: str) -> None:
        path = os.path.join(base, name)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=base_fd)
        except OSError:
            return  # gone, a symlink, not a directory, or not ours to open
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or self.now - _newest_change(fd) < self.stale_seconds:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    return  # a living run holds it
                raise
            if self.check_mode:
                self.removed.append(path)
                return
            freed = _empty(fd)
            there = os.stat(name, dir_fd=base_fd, follow_symlinks=False)
            if (there.st_dev, there.st_ino) == (st.st_dev, st.st_ino):
                os.rmdir(name, dir_fd=base_fd)
            self.removed.append(path)
            self.bytes_freed += freed
        except OSError as exc:
            self.errors.append('%s: %s' % (path, exc.strerror))
        finally:
            os.close(fd)

    def report(self) -> dict[str, Any]:
        key = 'would_remove' if self.check_mode else 'removed'
        return {key: self.removed, 'bytes_freed': self.bytes_freed, 'errors': self.errors}


def clean_stale_payloads(bases: Iterable[str] = DEFAULT_BASES, check_mode: bool = False,
                         now: float | None = None) -> dict[str, Any]:
    """Sweep ``bases`` and the directory of this run's own payload for dead payload directories.

    Returns the report for the result (``removed`` or ``would_remove``,
    ``bytes_freed``, ``errors``).
    """
    own = own_payload_dir()
    cleanup = Cleanup(check_mode=check_mode, now=now, own=own)
    seen = set()
    for base in list(bases) + ([os.path.dirname(own)] if own else []):
        real = os.path.realpath(base)
        if real not in seen:
            seen.add(real)
            cleanup.sweep(real)
    return cleanup.report()
