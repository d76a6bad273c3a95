# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Finish or roll back what an interrupted run left in the journal.

The manifest says which inode the copy belongs to.  Where that inode is now
tells how far the run got: still under its original name means the rename,
the first destructive step, never happened; under NAME.gz means the rewrite
may be partial, and the verified copy finishes it.
"""

from __future__ import absolute_import, division, print_function

import errno
import os

from .replace import (
    PHASE_RECREATING, NoSpace, ReplaceIncomplete, choose_strategy, finish_rename, holds_prefix_of, recreate,
    rewrite_inode,
)
from . import codes
from .results import FileResult
from .safe_fs import open_dir_nofollow, open_regular, stat_nofollow
from .mounts import MountTable


def _result(manifest, action, reason, detail, **extra):
    path = os.path.join(manifest.get('dir', '?'), manifest.get('name', '?'))
    return FileResult(path, path + '.gz', action=action, reason=reason, detail=detail,
                      original_size=manifest.get('size'), compressed_size=manifest.get('compressed_size'),
                      seconds=0.0).update(**extra)


def _same_inode(st, manifest):
    return st is not None and st.st_dev == manifest['dev'] and st.st_ino == manifest['ino']


def recover_entry(entry, check_mode, mounts=None):
    """Handle one committed journal entry; return a file result."""
    manifest = entry.manifest
    if 'error' in manifest:
        return _result(manifest, codes.FAILED, codes.JOURNAL_UNREADABLE,
                       '%s; the copy is at %s' % (manifest['error'], entry.data_path))
    try:
        dir_fd = open_dir_nofollow(manifest['dir'])
    except OSError as exc:
        return _orphaned(entry, 'its directory cannot be opened: %s' % exc.strerror)
    try:
        at_name = stat_nofollow(dir_fd, manifest['name'])
        if _same_inode(at_name, manifest) and _untouched(at_name, manifest):
            if not check_mode:
                entry.discard()
            return _result(manifest, codes.WOULD_RECOVER if check_mode else codes.RECOVERED, codes.ROLLED_BACK,
                           'an interrupted run had not changed the file; dropped its journal copy')
        if _same_inode(at_name, manifest):
            # Rewritten under its old name (no room for the rename), not yet renamed.
            return _finish(entry, dir_fd, manifest['name'], check_mode, mounts or MountTable())
        if _same_inode(stat_nofollow(dir_fd, manifest['dest']), manifest):
            return _finish(entry, dir_fd, manifest['dest'], check_mode, mounts or MountTable())
        if manifest.get('phase') == PHASE_RECREATING:
            return _recreate(entry, dir_fd, check_mode)
        return _orphaned(entry, 'the file is neither at its name nor at its .gz name')
    finally:
        os.close(dir_fd)


def _untouched(st, manifest):
    # Every write changes the mtime and the rewrite ends by restoring it after
    # a truncate to the compressed size: size and mtime both as recorded
    # means no byte was written.
    return st.st_size == manifest['size'] and st.st_mtime_ns == manifest['mtime_ns']


def _orphaned(entry, why):
    return _result(entry.manifest, codes.FAILED, codes.JOURNAL_ORPHANED,
                   '%s; the verified compressed copy is kept at %s' % (why, entry.data_path))


def _finish(entry, dir_fd, current_name, check_mode, mounts):
    manifest = entry.manifest
    stored = entry.stored_crc()
    if stored != (manifest['compressed_crc32'], manifest['compressed_size']):
        return _result(manifest, codes.FAILED, codes.JOURNAL_CORRUPT,
                       'the journal copy at %s does not match its manifest; the file %s is left as it is'
                       % (entry.data_path, manifest['dest']))
    if check_mode:
        return _result(manifest, codes.WOULD_RECOVER, codes.FINISHED, 'an interrupted run would be finished from the journal')
    try:
        fd = open_regular(dir_fd, current_name, writable=True)
    except OSError as exc:
        return _result(manifest, codes.FAILED, codes.ERROR, 'cannot open %s: %s' % (current_name, exc.strerror))
    try:
        st = os.fstat(fd)
        if not _same_inode(st, manifest):
            return _orphaned(entry, '%s changed hands while we looked' % current_name)
        mount = mounts.find(manifest['dir'], st.st_dev)
        try:
            strategy = rewrite_inode(fd, entry, choose_strategy(mount.fstype if mount else None, st))
        except NoSpace:
            os.close(fd)
            fd = None
            return _recreate(entry, dir_fd, check_mode, current_name)
        after = os.fstat(fd)
        finish_rename(dir_fd, current_name, manifest['dest'], entry)
    except ReplaceIncomplete as exc:
        return _result(manifest, codes.FAILED, codes.ERROR, str(exc))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return _orphaned(entry, str(exc))
        return _result(manifest, codes.FAILED, codes.ERROR, '%s; the verified copy stays at %s' % (exc, entry.data_path))
    finally:
        if fd is not None:
            os.close(fd)
    entry.discard()
    return _result(manifest, codes.RECOVERED, codes.FINISHED,
                   'finished the compression an interrupted run had started',
                   bytes_saved=_saved(manifest, after), strategy=strategy)


def _recreate(entry, dir_fd, check_mode, current_name=None):
    """Write NAME.gz anew from the journal (the original inode is gone or unusable)."""
    manifest = entry.manifest
    dest = manifest['dest']
    if current_name is None:
        # The original was unlinked; NAME.gz is absent, complete or cut short.
        try:
            fd = open_regular(dir_fd, dest, writable=False)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                return _result(manifest, codes.FAILED, codes.ERROR, 'cannot open %s: %s' % (dest, exc.strerror))
        else:
            try:
                ours = holds_prefix_of(fd, entry)
                complete = ours and os.fstat(fd).st_size == manifest['compressed_size']
            finally:
                os.close(fd)
            if not ours:
                return _orphaned(entry, '%s exists and is not the copy being written' % dest)
            current_name = None if complete else dest
            if complete:
                if not check_mode:
                    entry.discard()
                return _result(manifest, codes.WOULD_RECOVER if check_mode else codes.RECOVERED, codes.FINISHED,
                               'an interrupted run had finished writing %s; dropped its journal copy' % dest,
                               bytes_saved=_saved(manifest, stat_nofollow(dir_fd, dest)))
    if check_mode:
        return _result(manifest, codes.WOULD_RECOVER, codes.FINISHED, 'an interrupted run would be finished from the journal')
    try:
        strategy = recreate(dir_fd, current_name, dest, entry)
    except (ReplaceIncomplete, OSError) as exc:
        return _result(manifest, codes.FAILED, codes.ERROR, str(exc))
    entry.discard()
    return _result(manifest, codes.RECOVERED, codes.FINISHED, 'finished the compression an interrupted run had started',
                   bytes_saved=_saved(manifest, stat_nofollow(dir_fd, dest)), strategy=strategy)


def _saved(manifest, st_after):
    return max(0, manifest.get('allocated', 0) - st_after.st_blocks * 512) if st_after else 0
