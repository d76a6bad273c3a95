# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every recovery handler shares: the context, the results, the
exclusive claim on a file and the search for an entry's directory.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  The interface for handlers is described in recovery.py.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING, Any

from . import codes, open_files
from .identity import filesystem_id, same_filesystem
from .results import FileResult
from .safe_fs import FileBusy, WriteLease, open_dir_nofollow

if TYPE_CHECKING:
    from .journal import JournalEntry
    from .mounts import MountTable
    from .safe_fs import OpenFile


class RecoveryContext(object):
    """What a handler may use besides its entry.

    ``check_mode``: report only, write nothing (not even the journal).
    ``mounts``: the run's MountTable.  ``notes``: list of strings that end in
    the result's ``journal.notes``.
    """

    def __init__(self, check_mode: bool, mounts: MountTable, notes: list[str]) -> None:
        self.check_mode = check_mode
        self.mounts = mounts
        self.notes = notes


class Busy(Exception):
    """Another process has the file open; ``detail`` says who."""

    def __init__(self, detail: str, pids: list[dict[str, Any]] | None = None) -> None:
        super(Busy, self).__init__(detail)
        self.detail = detail
        self.pids = pids


def claim(open_file: OpenFile, mounts: MountTable | None = None) -> WriteLease:
    """The exclusive claim a fresh run takes: no holder in /proc, then a write lease.

    Returns the WriteLease (release it when done; ``held`` is False where
    leases are unavailable); raises Busy.
    """
    st = os.fstat(open_file.fd)
    holders = open_files.holders([(st.st_dev, st.st_ino)], mounts).get((st.st_dev, st.st_ino))
    if holders:
        raise Busy('open in %s' % ', '.join('%s[%d]' % (h['comm'], h['pid']) for h in holders), holders)
    try:
        return WriteLease(open_file)
    except FileBusy:
        raise Busy('opened by another process (the kernel refused a write lease)')


def paths_of(manifest: dict[str, Any]) -> tuple[str, str]:
    directory = manifest.get('dir', '?')
    return os.path.join(directory, manifest.get('name', '?')), os.path.join(directory, manifest.get('dest', '?'))


def result(entry: JournalEntry, action: str, reason: str | None, detail: str | None, **extra: Any) -> FileResult:
    """A FileResult for the entry's file."""
    manifest = entry.manifest
    path, dest = paths_of(manifest)
    return FileResult(path, dest, action=action, reason=reason, detail=detail,
                      original_size=manifest.get('size'), compressed_size=manifest.get('compressed_size'),
                      seconds=0.0).update(**extra)


def keep_for_human(entry: JournalEntry, reason: str, why: str, action: str = codes.FAILED) -> FileResult:
    """Touch nothing, keep the entry, and say where the copy is."""
    return result(entry, action, reason, '%s; nothing was written, the verified compressed copy is kept at %s '
                  '(its manifest, %s, records the original\'s directory, name, size and times)'
                  % (why, entry.data_path, entry.data_path[:-3] + '.json'))


def drop(entry: JournalEntry, context: RecoveryContext) -> None:
    """Discard the entry (not in check mode)."""
    if not context.check_mode:
        entry.discard()


def recovered(context: RecoveryContext, entry: JournalEntry, reason: str | None, detail: str | None,
              **extra: Any) -> FileResult:
    action = codes.WOULD_RECOVER if context.check_mode else codes.RECOVERED
    return result(entry, action, reason, detail, **extra)


class Located(object):
    """The entry's directory, opened, or the result that says why it cannot be."""

    def __init__(self, dir_fd: int | None = None, outcome: FileResult | None = None) -> None:
        self.dir_fd = dir_fd
        self.outcome = outcome

    def close(self) -> None:
        if self.dir_fd is not None:
            os.close(self.dir_fd)
            self.dir_fd = None


def locate(entry: JournalEntry, context: RecoveryContext) -> Located:
    """Open the manifest's directory on the manifest's filesystem.

    A directory that is absent, or present on another filesystem, means
    either that the filesystem is no longer mounted there
    (``filesystem_gone``: reported once as a skip, then as a note; it never
    fails a run) or, when the filesystem is still mounted there, that someone
    removed the directory (``journal_orphaned``).
    """
    manifest = entry.manifest
    directory = manifest['dir']
    try:
        dir_fd = open_dir_nofollow(directory)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            return Located(outcome=keep_for_human(entry, codes.ERROR, 'cannot open %s: %s' % (directory, exc.strerror)))
        if _on_recorded_filesystem(_deepest_existing(directory), manifest):
            return Located(outcome=keep_for_human(entry, codes.JOURNAL_ORPHANED, '%s was removed' % directory))
        return Located(outcome=_gone(entry, context))
    if not _fd_on_recorded_filesystem(dir_fd, manifest):
        found = filesystem_id(dir_fd)
        os.close(dir_fd)
        return Located(outcome=_gone(entry, context, found))
    return Located(dir_fd=dir_fd)


def _deepest_existing(path: str) -> str:
    while path not in ('/', '') and not os.path.isdir(path):
        path = os.path.dirname(path)
    return path or '/'


def _on_recorded_filesystem(path: str, manifest: dict[str, Any]) -> bool:
    try:
        fd = open_dir_nofollow(path)
    except (OSError, ValueError):
        return False
    try:
        return _fd_on_recorded_filesystem(fd, manifest)
    finally:
        os.close(fd)


def _fd_on_recorded_filesystem(fd: int, manifest: dict[str, Any]) -> bool:
    if 'fs_id' in manifest:
        return same_filesystem(fd, manifest['fs_id'])
    return os.fstat(fd).st_dev == manifest.get('dev')  # a version 1 manifest


def _gone(entry: JournalEntry, context: RecoveryContext, found: str | None = None) -> FileResult | None:
    path = paths_of(entry.manifest)[0]
    where = '%s (manifest %s)' % (entry.data_path, entry.data_path[:-3] + '.json')
    if entry.manifest.get('reported_gone'):
        context.notes.append('%s: its filesystem (%s) is still not mounted; its copy is kept at %s'
                             % (path, entry.manifest.get('fs_id', 'device %s' % entry.manifest.get('dev')), where))
        return None
    if not context.check_mode:
        entry.update(reported_gone=time.time())
    now = ' (%s is on %s now)' % (entry.manifest['dir'], found) if found else ''
    return result(entry, codes.SKIPPED, codes.FILESYSTEM_GONE,
                  'the filesystem %s that held this file is not mounted at %s any more%s; the verified compressed '
                  'copy is kept at %s for a human (later runs only list it in journal.notes)'
                  % (entry.manifest.get('fs_id', '?'), entry.manifest['dir'], now, where))
