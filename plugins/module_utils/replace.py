# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Turn the original inode into its own .gz, from a verified journal copy.

The inode is kept: owner, group, mode, ACLs, xattrs and SELinux label stay
as they were, nothing is ever more permissive than the original, and no new
inode is needed.  ``inplace`` overwrites from offset 0 and truncates after:
on filesystems that overwrite blocks in place this needs no free block at
all.  ``truncate_first`` frees the old blocks before writing, for
copy-on-write filesystems and sparse files, where an overwrite would need
new blocks.  Both are safe only because the journal holds a verified copy
until the end.
"""

from __future__ import absolute_import, division, print_function

import errno
import os
import zlib

from .safe_fs import rename_noreplace, fsync_dir, syncfs

INPLACE = 'inplace'
TRUNCATE_FIRST = 'truncate_first'
_CHUNK = 4 * 1024 * 1024
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class ReplaceIncomplete(Exception):
    """The inode could not be rewritten; the journal still has the copy."""


class NotStarted(Exception):
    """The replacement failed before its first change to the file."""

    def __init__(self, error):
        super(NotStarted, self).__init__(str(error))
        self.error = error


def choose_strategy(fstype, st):
    from .sysinfo import COPY_ON_WRITE_FSTYPES
    if fstype in COPY_ON_WRITE_FSTYPES:
        return TRUNCATE_FIRST
    # A sparse file has holes: writing into them would need new blocks.
    if st.st_blocks * 512 < st.st_size:
        return TRUNCATE_FIRST
    return INPLACE


def _pwrite_all(fd, data, offset):
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _copy_into(fd, entry):
    source = entry.open_data()
    try:
        offset = 0
        while True:
            chunk = os.read(source, _CHUNK)
            if not chunk:
                break
            _pwrite_all(fd, chunk, offset)
            offset += len(chunk)
    finally:
        os.close(source)
    os.ftruncate(fd, offset)
    return offset


def _written_crc(fd, size):
    crc = 0
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        offset += len(chunk)
    return crc, offset


def rewrite_inode(fd, entry, strategy):
    """Write the journal's copy into ``fd``; return the strategy that worked.

    Raises ReplaceIncomplete, leaving the journal in place, when the
    filesystem cannot take the data; a later run finishes the job.
    """
    manifest = entry.manifest
    try:
        if strategy == TRUNCATE_FIRST:
            _truncate_and_commit(fd)
        try:
            _copy_into(fd, entry)
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                raise
            # In place needed blocks after all (reflinked or preallocated
            # extents, a copy-on-write filesystem we did not recognise).
            # The old blocks are the only space we can count on: free them.
            _truncate_and_commit(fd)
            strategy = TRUNCATE_FIRST
            _copy_into(fd, entry)
        os.utime(fd, ns=(manifest['atime_ns'], manifest['mtime_ns']))
        os.fsync(fd)
    except OSError as exc:
        raise ReplaceIncomplete('rewriting the file failed: %s; the verified copy stays at %s'
                                % (exc, entry.data_path))
    crc, size = _written_crc(fd, manifest['compressed_size'])
    if (crc, size) != (manifest['compressed_crc32'], manifest['compressed_size']):
        raise ReplaceIncomplete('the file does not read back as written; the verified copy stays at %s'
                                % entry.data_path)
    return strategy


def _truncate_and_commit(fd):
    os.ftruncate(fd, 0)
    os.fsync(fd)
    try:
        syncfs(fd)
    except OSError:
        pass


def replace(dir_fd, name, dest, fd, entry, strategy):
    """Rename ``name`` to ``dest`` (never replacing), then rewrite the inode.

    The rename comes first so that an existing ``dest`` stops us before any
    byte changes (NotStarted).  Returns the strategy that worked.
    """
    try:
        rename_noreplace(dir_fd, name, dir_fd, dest)
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise NotStarted(exc)
        # The directory needs a block for the new name and the filesystem
        # has none (btrfs keeps names in metadata, which fills up too).
        # The file's own blocks are the space we can free: compress under
        # the old name first.  Recovery tells this state from an untouched
        # original by size and mtime.
        strategy = rewrite_inode(fd, entry, strategy)
        try:
            rename_noreplace(dir_fd, name, dir_fd, dest)
        except OSError as again:
            raise ReplaceIncomplete('%s holds the compressed data but could not be renamed to %s: %s; '
                                    'a rerun renames it, the verified copy stays at %s'
                                    % (name, dest, again.strerror, entry.data_path))
        fsync_dir(dir_fd)
        return strategy
    fsync_dir(dir_fd)
    strategy = rewrite_inode(fd, entry, strategy)
    fsync_dir(dir_fd)
    return strategy
