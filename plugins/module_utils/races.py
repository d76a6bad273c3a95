# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The world moves during a run: is NAME still our inode, with one link?

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

No system call renames or rewrites "only if this name is still that inode",
and a write lease does not stop rename() or link().  So the protocol checks
before and after each destructive step (``Guard.check``) and, when someone
renamed or linked the file meanwhile (logrotate does exactly that), undoes
its step: the rename goes back, an overwrite not yet truncated is replaced
by the original's bytes (``rewrite.restore_original``).  Only after the
truncate, when the original's blocks are gone, is the data kept compressed:
then every name of the inode in the directory gets the .gz suffix
(``relabel``), so that no name holds the wrong kind of data.
"""

from __future__ import annotations

import errno
import os

from . import codes
from .errors import CmemgzipError
from .safe_fs import rename_noreplace, stat_nofollow

GZ = '.gz'


class Raced(CmemgzipError):
    """Someone renamed, replaced or linked the file during a step; ``reason`` is a code."""

    def __init__(self, reason: str, detail: str) -> None:
        super(Raced, self).__init__(detail)
        self.reason = reason
        self.detail = detail


class Guard(object):
    """Checks that a name in ``dir_fd`` still leads to the inode open as ``fd``, with one link."""

    def __init__(self, dir_fd: int, fd: int) -> None:
        self.dir_fd = dir_fd
        self.fd = fd
        st = os.fstat(fd)
        self.identity = (st.st_dev, st.st_ino)

    def problem(self, name: str) -> Raced | None:
        """None when ``name`` is our inode with one link, else a Raced to raise."""
        st = stat_nofollow(self.dir_fd, name)
        if st is None or (st.st_dev, st.st_ino) != self.identity:
            return Raced(codes.RENAMED, '%s was renamed or replaced by someone else during the run' % name)
        links = os.fstat(self.fd).st_nlink
        if links != 1:
            return Raced(codes.HARDLINKED, 'someone made a hard link to %s during the run (%d links)' % (name, links))
        return None

    def check(self, name: str) -> None:
        found = self.problem(name)
        if found is not None:
            raise found

    def names_in_dir(self) -> list[str]:
        """Every name of our inode in the directory (a scan: only after something went wrong)."""
        names = []
        # A descriptor of its own: a scan through dir_fd would share (and
        # depend on) that descriptor's read position.
        fd = os.open('.', os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=self.dir_fd)
        try:
            with os.scandir(fd) as scan:
                for item in scan:
                    if item.inode() == self.identity[1]:
                        st = stat_nofollow(self.dir_fd, item.name)
                        if st is not None and (st.st_dev, st.st_ino) == self.identity:
                            names.append(item.name)
        finally:
            os.close(fd)
        return sorted(names)


def undo_rename(dir_fd: int, name: str, dest: str) -> str:
    """Rename ``dest`` back to ``name`` (whatever we moved there); a text for the detail."""
    try:
        rename_noreplace(dir_fd, dest, dir_fd, name)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return '%s had moved on again' % dest
        return 'could not rename %s back to %s: %s' % (dest, name, exc.strerror)
    return 'renamed %s back to %s' % (dest, name)


def relabel(guard: Guard) -> str:
    """Give every name of our (now compressed) inode the .gz suffix; a text for the detail."""
    done = []
    for name in guard.names_in_dir():
        if name.endswith(GZ):
            done.append('%s keeps its name' % name)
            continue
        try:
            rename_noreplace(guard.dir_fd, name, guard.dir_fd, name + GZ)
            done.append('%s renamed to %s' % (name, name + GZ))
        except OSError as exc:
            done.append('%s holds gzip data but could not be renamed to %s: %s' % (name, name + GZ, exc.strerror))
    outside = os.fstat(guard.fd).st_nlink - len(guard.names_in_dir())
    if outside > 0:
        done.append('%d name(s) in other directories hold gzip data (inode %d)' % (outside, guard.identity[1]))
    return '; '.join(done) or 'the file left its directory (inode %d holds gzip data)' % guard.identity[1]
