# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Recovery of the ``replace`` protocol (replace.py): the decision table.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

The inode is looked for at NAME and NAME.gz by filesystem identity, inode
number and generation; then its content decides (identity.classify):

=====================  ==========================  ==============================
where                  content                     action
=====================  ==========================  ==============================
NAME                   the original (or grown)     roll back: drop the copy
NAME.gz                the original                finish (only renamed)
NAME.gz                ours (copy / rewrite)       finish
NAME, rename refused   ours (copy / rewrite)       finish, then rename
neither (recreating)   NAME.gz absent or ours      write NAME.gz anew
anything else          -                           keep for a human (not_ours)
=====================  ==========================  ==============================

Finishing needs what a fresh run needs: nobody has the file open (lease
and /proc scan), a writable filesystem, a journal copy that matches its
manifest.
"""

from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Any

from . import codes
from .identity import COMPLETE, GROWN, ORIGINAL, OURS, UNTOUCHED, classify, inode_generation, same_inode
from .recovery_common import Busy, claim, drop, keep_for_human, locate, recovered, result
from .marker import remove_marks
from .races import Guard, relabel
from .replace import Relabelled, finish_rename
from .rewrite import (
    INPLACE, PHASE_RECREATING, NoSpace, ReplaceIncomplete, choose_strategy, explain, recreate, rewrite_inode,
)
from .safe_fs import OpenFile, open_regular, stat_nofollow

if TYPE_CHECKING:
    from .journal import JournalEntry
    from .mounts import MountEntry
    from .recovery_common import RecoveryContext
    from .results import FileResult

_DESCRIBED = {
    ORIGINAL: 'the untouched original',
    GROWN: 'the original with data appended after it',
    COMPLETE: 'the complete compressed copy',
}


def recover(entry: JournalEntry, context: RecoveryContext) -> FileResult | None:
    located = locate(entry, context)
    if located.dir_fd is None:
        return located.outcome
    try:
        return _recover_in(entry, context, located.dir_fd)
    except OSError as exc:
        return keep_for_human(entry, codes.ERROR, str(exc))
    finally:
        located.close()


def _names_of_inode(dir_fd: int, manifest: dict[str, Any]) -> list[str]:
    names = []
    for name in (manifest['name'], manifest['dest']):
        st = stat_nofollow(dir_fd, name)
        if st is not None and st.st_ino == manifest['ino'] and (st.st_mode & 0o170000) == 0o100000:
            names.append(name)
    return names


def _open(dir_fd: int, name: str, check_mode: bool) -> tuple[OpenFile, bool]:
    """(OpenFile, read_only): writable unless check mode or a read-only filesystem."""
    if not check_mode:
        try:
            return OpenFile(open_regular(dir_fd, name, writable=True)), False
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
    return OpenFile(open_regular(dir_fd, name, writable=False)), not check_mode


def _recover_in(entry: JournalEntry, context: RecoveryContext, dir_fd: int) -> FileResult:
    manifest = entry.manifest
    names = _names_of_inode(dir_fd, manifest)
    if not names:
        if manifest.get('phase') == PHASE_RECREATING:
            return _recreated(entry, context, dir_fd)
        return keep_for_human(entry, codes.JOURNAL_ORPHANED, 'the file is neither at %s nor at %s'
                              % (manifest['name'], manifest['dest']))
    original, read_only = _open(dir_fd, names[0], context.check_mode)
    try:
        if not same_inode(original.fd, manifest):
            return keep_for_human(entry, codes.NOT_OURS, '%s has the recorded inode number but is another file '
                                  '(a new inode that reused the number, or another filesystem)' % names[0])
        lease, busy = None, None
        if not context.check_mode and not read_only:
            try:
                lease = claim(original, context.mounts)
            except Busy as exc:
                busy = exc
        try:
            state = classify(original.fd, manifest, entry.open_data, zeros_allowed=manifest.get('strategy') != INPLACE)
            return _decide(entry, context, dir_fd, original, names, state, busy, read_only)
        finally:
            if lease is not None:
                lease.release()
    finally:
        original.close()


def _decide(entry: JournalEntry, context: RecoveryContext, dir_fd: int, original: OpenFile, names: list[str],
            state: str, busy: Busy | None, read_only: bool) -> FileResult:
    manifest = entry.manifest
    name, dest = manifest['name'], manifest['dest']
    current = names[0]
    if len(names) == 2 or os.fstat(original.fd).st_nlink > 1:
        return _linked(entry, context, dir_fd, names, state, busy, os.fstat(original.fd).st_nlink)
    if current == name and state in UNTOUCHED:
        if not context.check_mode and not read_only:
            remove_marks(original.fd, _mount_point(context, manifest))
        drop(entry, context)
        grown = os.fstat(original.fd).st_size - manifest['size']
        why = 'an interrupted run had not changed the file'
        if state == GROWN:
            why += ' (it grew by %d bytes since: appended data is kept)' % grown
        return recovered(context, entry, codes.ROLLED_BACK, why + '; dropped its journal copy')
    finishable = (current == dest and state in (ORIGINAL, ) + tuple(OURS)) or \
        (current == name and state in OURS and manifest.get('rename_refused'))
    if not finishable:
        return keep_for_human(entry, codes.NOT_OURS, '%s holds %s, neither the original nor an interrupted rewrite '
                              'of ours' % (os.path.join(manifest['dir'], current),
                                           _DESCRIBED.get(state, 'data that is not ours')))
    if busy is not None:
        return keep_for_human(entry, codes.OPEN, '%s holds an interrupted rewrite but is %s; close it and rerun'
                              % (os.path.join(manifest['dir'], current), busy.detail))
    if entry.stored_crc() != (manifest['compressed_crc32'], manifest['compressed_size']):
        return keep_for_human(entry, codes.JOURNAL_CORRUPT, 'the journal copy does not match its manifest; %s is '
                              'left as it is' % os.path.join(manifest['dir'], current))
    if read_only:
        return keep_for_human(entry, codes.READ_ONLY, 'the filesystem is read-only: %s holds an interrupted '
                              'rewrite and cannot be finished now; remount it read-write and rerun'
                              % os.path.join(manifest['dir'], current))
    if context.check_mode:
        return recovered(context, entry, codes.FINISHED, 'an interrupted run would be finished from the journal')
    return _finish(entry, context, dir_fd, original, current)


def _linked(entry: JournalEntry, context: RecoveryContext, dir_fd: int, names: list[str], state: str,
            busy: Busy | None, nlink: int) -> FileResult:
    """Two names for the inode: our link+unlink rename cut short, or someone's hard link."""
    manifest = entry.manifest
    if len(names) == 2 and nlink == 2 and state == ORIGINAL and busy is None:
        if not context.check_mode:
            os.unlink(manifest['dest'], dir_fd=dir_fd)
        drop(entry, context)
        return recovered(context, entry, codes.ROLLED_BACK, 'an interrupted rename had left a second name %s; '
                         'removed it, the original is untouched' % manifest['dest'])
    return keep_for_human(entry, codes.NOT_OURS, 'the file has more than one name now (a hard link was made)')


def _finish(entry: JournalEntry, context: RecoveryContext, dir_fd: int, original: OpenFile,
            current: str) -> FileResult:
    manifest = entry.manifest
    st = os.fstat(original.fd)
    mount = context.mounts.find(manifest['dir'], st.st_dev)
    guard = Guard(dir_fd, original.fd)
    note = ''
    try:
        chosen = choose_strategy(mount.fstype if mount else None, st, original.fd, manifest['compressed_size'])
        strategy = rewrite_inode(original.fd, entry, chosen)
        after = os.fstat(original.fd)
        problem = guard.problem(current)
        if problem is not None:
            note = '; %s, the file was compressed: %s' % (problem.detail, relabel(guard))
        else:
            finish_rename(dir_fd, current, manifest['dest'], guard)
    except NoSpace:
        original.close()
        return _recreated(entry, context, dir_fd, current)
    except Relabelled as exc:
        note = '; ' + exc.detail
    except ReplaceIncomplete as exc:
        return _incomplete(entry, exc, os.path.join(manifest['dir'], getattr(exc, 'current', current)), mount, st)
    remove_marks(original.fd, mount.mount_point if mount else None)
    drop(entry, context)
    return recovered(context, entry, codes.FINISHED, 'finished the compression an interrupted run had started' + note,
                     bytes_saved=_saved(manifest, after), strategy=strategy)


def _incomplete(entry: JournalEntry, exc: ReplaceIncomplete, path_now: str, mount: MountEntry | None,
                st: os.stat_result) -> FileResult:
    need = -(-entry.manifest['compressed_size'] // (st.st_blksize or 4096)) * (st.st_blksize or 4096)
    text = explain(exc, entry, path_now, mount.mount_point if mount else entry.manifest['dir'], need)
    found = result(entry, codes.FAILED, codes.REWRITE_INCOMPLETE, text)
    found.update(alert='%s: %s' % (found.path, text))
    return found


def _recreated(entry: JournalEntry, context: RecoveryContext, dir_fd: int,
               current_name: str | None = None) -> FileResult:
    """The original inode is gone or unusable: NAME.gz is written anew from the journal."""
    manifest = entry.manifest
    dest = manifest['dest']
    if current_name is None:
        found = _created_file_state(entry, dir_fd)
        if found == 'foreign':
            return keep_for_human(entry, codes.NOT_OURS, '%s exists and is not the file being recreated' % dest)
        if found == COMPLETE:
            drop(entry, context)
            return recovered(context, entry, codes.FINISHED, 'an interrupted run had finished writing %s; dropped '
                             'its journal copy' % dest, bytes_saved=_saved(manifest, stat_nofollow(dir_fd, dest)))
        current_name = None if found == 'absent' else dest
    if context.check_mode:
        return recovered(context, entry, codes.FINISHED, 'an interrupted run would be finished from the journal')
    try:
        strategy = recreate(dir_fd, current_name, dest, entry)
    except ReplaceIncomplete as exc:
        return _incomplete(entry, exc, os.path.join(manifest['dir'], dest), None, os.fstat(dir_fd))
    except OSError as exc:
        return keep_for_human(entry, codes.REWRITE_INCOMPLETE, str(exc))
    drop(entry, context)
    return recovered(context, entry, codes.FINISHED, 'finished the compression an interrupted run had started',
                     bytes_saved=_saved(manifest, stat_nofollow(dir_fd, dest)), strategy=strategy)


def _created_file_state(entry: JournalEntry, dir_fd: int) -> str:
    """'absent', COMPLETE, 'partial' or 'foreign' for NAME.gz of a recreate."""
    manifest = entry.manifest
    try:
        fd = open_regular(dir_fd, manifest['dest'], writable=False)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return 'absent'
        raise
    try:
        st = os.fstat(fd)
        created = manifest.get('created_ino')
        if created is None:
            # Killed between the create and its record: only an empty file can be ours.
            return 'partial' if st.st_size == 0 else 'foreign'
        if st.st_ino != created or inode_generation(fd) not in (None, manifest.get('created_generation')):
            return 'foreign'
        state = classify(fd, manifest, entry.open_data, zeros_allowed=True)
        return state if state == COMPLETE else ('partial' if state in OURS else 'foreign')
    finally:
        os.close(fd)


def _mount_point(context: RecoveryContext, manifest: dict[str, Any]) -> str | None:
    mount = context.mounts.find(manifest['dir'])
    return mount.mount_point if mount else None


def _saved(manifest: dict[str, Any], st_after: os.stat_result | None) -> int:
    return max(0, manifest.get('allocated', 0) - st_after.st_blocks * 512) if st_after else 0
