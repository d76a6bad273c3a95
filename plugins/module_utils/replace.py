# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Turn the original inode into its own .gz, from a verified journal copy.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

The steps: rename NAME to NAME.gz (never replacing), rewrite the inode
(rewrite.py), and, if the rename had to wait, rename after.  The inode is
kept: owner, group, mode, ACLs, xattrs and SELinux label stay as they were,
nothing is ever more permissive than the original, and no new inode is
needed.  Before and after each step the name is checked to still be our
inode with one link (races.py); a step someone raced is undone.  While the
only complete copy is in a RAM journal the caller marks the inode
(marker.py) so that a reboot in that window is not silent.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING

from .errors import CmemgzipError
from .identity import holds_original
from .races import Guard, Raced, relabel, undo_rename
from .rewrite import NoSpace, ReplaceIncomplete, recreate, restore_original, rewrite_inode
from .safe_fs import fsync_dir, rename_noreplace, stat_nofollow

if TYPE_CHECKING:
    from .journal import JournalEntry
    from .safe_fs import OpenFile

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class NotStarted(CmemgzipError):
    """The replacement failed before its first change to the file."""

    def __init__(self, error: OSError) -> None:
        super(NotStarted, self).__init__(str(error))
        self.error = error


class Relabelled(Raced):
    """The file was compressed, but someone renamed or linked it during the last step: its names got .gz."""


class Incomplete(ReplaceIncomplete):
    """ReplaceIncomplete that knows where the file is now and what it holds.

    ``state``: 'untouched' (renamed only), 'partial' (the original is gone,
    the copy only partly written) or 'complete' (written and verified, but a
    name or a sync is missing).
    """

    def __init__(self, what: str, error: OSError | None, current: str, state: str) -> None:
        super(Incomplete, self).__init__(what, error, original_gone=state != 'untouched')
        self.current = current
        self.state = state


def replace(dir_fd: int, name: str, dest: str, original: OpenFile, entry: JournalEntry, strategy: str) -> str:
    """Rename ``name`` to ``dest`` (never replacing), then rewrite the inode.

    ``original`` is the file's OpenFile.  Returns the strategy that worked.
    Raises NotStarted (nothing changed), Raced (someone moved the file: our
    step was undone), Relabelled (compressed; the names now end in .gz) or
    Incomplete (the journal keeps the copy).
    """
    fd = original.fd
    guard = Guard(dir_fd, fd)
    guard.check(name)
    current = _rename(dir_fd, name, dest, entry, guard)
    try:
        fsync_dir(dir_fd)
    except OSError as exc:
        raise Incomplete('the file was renamed to %s but syncing its directory failed' % current, exc, current,
                         'untouched')

    def before_shrink(overwritten: bool) -> None:
        problem = guard.problem(current)
        if problem is not None:
            raise _undo(dir_fd, name, dest, current, fd, entry, problem, overwritten)

    try:
        strategy = rewrite_inode(fd, entry, strategy, before_shrink)
    except NoSpace:
        _still_ours(guard, current)
        # An unlinked inode keeps its blocks while a descriptor is open.
        original.close()
        return recreate(dir_fd, current, dest, entry)
    except ReplaceIncomplete as exc:
        raise Incomplete(exc.what, exc.error, current, 'partial')
    _relabel_if_raced(guard, current)
    finish_rename(dir_fd, current, dest, guard)
    return strategy


def _rename(dir_fd: int, name: str, dest: str, entry: JournalEntry, guard: Guard) -> str:
    """The first destructive step; returns the name the inode has afterwards."""
    try:
        rename_noreplace(dir_fd, name, dir_fd, dest)
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise NotStarted(exc)
        # The directory needs a block for the new name and the filesystem
        # has none (btrfs keeps names in metadata, which fills up too).
        # Compress under the old name first, rename after; the manifest
        # says so, for recovery: gzip data under the plain name is ours.
        entry.update(rename_refused=True)
        return name
    problem = guard.problem(dest)
    if problem is not None:
        # We renamed whatever was at NAME: put it back.
        raise Raced(problem.reason, '%s; %s, nothing was written' % (problem.detail, undo_rename(dir_fd, name, dest)))
    return dest


def _undo(dir_fd: int, name: str, dest: str, current: str, fd: int, entry: JournalEntry, problem: Raced,
          overwritten: bool) -> Incomplete | Raced:
    """Someone moved or linked the file before the truncate: put the original back."""
    done = []
    if overwritten:
        try:
            restore_original(fd, entry)
        except OSError as exc:
            return Incomplete('%s; putting the original\'s bytes back failed' % problem.detail, exc, current,
                              'partial')
        if holds_original(fd, entry.manifest) is None:
            return Incomplete('%s; the original\'s bytes put back do not match its CRC-32' % problem.detail, None,
                              current, 'partial')
        done.append('its original content was put back')
    if current == dest and _names_inode(dir_fd, dest, fd):
        done.append(undo_rename(dir_fd, name, dest))
    return Raced(problem.reason, '%s; %s' % (problem.detail, ', '.join(done) or 'nothing was written'))


def _names_inode(dir_fd: int, name: str, fd: int) -> bool:
    st = stat_nofollow(dir_fd, name)
    mine = os.fstat(fd)
    return st is not None and (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _still_ours(guard: Guard, current: str) -> None:
    problem = guard.problem(current)
    if problem is not None:
        raise Incomplete('%s; it was not unlinked to be recreated' % problem.detail, None, current, 'partial')


def finish_rename(dir_fd: int, current: str, dest: str, guard: Guard | None = None) -> None:
    """The rename that had to wait (rename refused), then the directory's fsync."""
    if current != dest:
        _relabel_if_raced(guard, current)
        try:
            rename_noreplace(dir_fd, current, dir_fd, dest)
        except OSError as exc:
            raise Incomplete('%s holds the compressed data but could not be renamed to %s' % (current, dest), exc,
                             current, 'complete')
        _relabel_if_raced(guard, dest)
    try:
        fsync_dir(dir_fd)
    except OSError as exc:
        raise Incomplete('%s is complete but syncing its directory failed' % dest, exc, dest, 'complete')


def _relabel_if_raced(guard: Guard | None, name: str) -> None:
    problem = guard.problem(name) if guard is not None else None
    if problem is not None:
        raise Relabelled(problem.reason, '%s; the file was already compressed: %s' % (problem.detail, relabel(guard)))
