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

``recreate`` is the last resort, for a filesystem that cannot change a file
at all but can still unlink one (btrfs whose metadata space is exhausted):
the original goes, and NAME.gz is created like logrotate creates its output
(O_EXCL|O_NOFOLLOW at 0600, owner, xattrs - ACLs and SELinux label among
them - then mode, data, fsync, times).  The manifest says so before the
unlink, so that recovery knows the new file is ours to write.
"""

from __future__ import absolute_import, division, print_function

import base64
import errno
import os
import stat
import zlib

from .errors import CmemgzipError
from .identity import inode_generation
from .safe_fs import rename_noreplace, fsync_dir, syncfs
from .mounts import COPY_ON_WRITE_FSTYPES

INPLACE = 'inplace'
TRUNCATE_FIRST = 'truncate_first'
RECREATE = 'recreate'
PHASE_RECREATING = 'recreating'
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC  # read back after writing
_CHUNK = 4 * 1024 * 1024
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class ReplaceIncomplete(CmemgzipError):
    """The inode could not be rewritten; the journal still has the copy."""


class NoSpace(ReplaceIncomplete):
    """The filesystem refused even to shrink the file."""


class NotStarted(CmemgzipError):
    """The replacement failed before its first change to the file."""

    def __init__(self, error):
        super(NotStarted, self).__init__(str(error))
        self.error = error


def choose_strategy(fstype, st):
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
        error = NoSpace if exc.errno in _NO_SPACE else ReplaceIncomplete
        raise error('rewriting the file failed: %s; the verified copy stays at %s' % (exc, entry.data_path))
    _check_written(fd, entry)
    return strategy


def _check_written(fd, entry):
    manifest = entry.manifest
    crc, size = _written_crc(fd, manifest['compressed_size'])
    if (crc, size) != (manifest['compressed_crc32'], manifest['compressed_size']) \
            or os.fstat(fd).st_size != size:
        raise ReplaceIncomplete('the file does not read back as written; the verified copy stays at %s'
                                % entry.data_path)


def _truncate_and_commit(fd):
    os.ftruncate(fd, 0)
    os.fsync(fd)
    try:
        syncfs(fd)
    except OSError:
        pass


def replace(dir_fd, name, dest, original, entry, strategy):
    """Rename ``name`` to ``dest`` (never replacing), then rewrite the inode.

    ``original`` is the file's OpenFile.  The rename comes first so that an
    existing ``dest`` stops us before any byte changes (NotStarted).
    Returns the strategy that worked.
    """
    fd = original.fd
    try:
        rename_noreplace(dir_fd, name, dir_fd, dest)
        current = dest
    except OSError as exc:
        if exc.errno not in _NO_SPACE:
            raise NotStarted(exc)
        # The directory needs a block for the new name and the filesystem
        # has none (btrfs keeps names in metadata, which fills up too).
        # Compress under the old name first, rename after; the manifest
        # says so, for recovery: gzip data under the plain name is ours.
        current = name
        entry.update(rename_refused=True)
    fsync_dir(dir_fd)
    try:
        strategy = rewrite_inode(fd, entry, strategy)
    except NoSpace:
        # An unlinked inode keeps its blocks while a descriptor is open.
        original.close()
        return recreate(dir_fd, current, dest, entry)
    finish_rename(dir_fd, current, dest, entry)
    return strategy


def finish_rename(dir_fd, current, dest, entry):
    if current != dest:
        try:
            rename_noreplace(dir_fd, current, dir_fd, dest)
        except OSError as exc:
            raise ReplaceIncomplete('%s holds the compressed data but could not be renamed to %s: %s; '
                                    'a rerun renames it, the verified copy stays at %s'
                                    % (current, dest, exc.strerror, entry.data_path))
    fsync_dir(dir_fd)


def file_metadata(fd):
    """Owner, mode and extended attributes (ACLs, SELinux label) to recreate a file."""
    st = os.fstat(fd)
    xattrs = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        names = []
    for attr in names:
        try:
            xattrs[attr] = base64.b64encode(os.getxattr(fd, attr)).decode('ascii')
        except OSError:
            continue
    return {'uid': st.st_uid, 'gid': st.st_gid, 'mode': stat.S_IMODE(st.st_mode), 'xattrs': xattrs}


def recreate(dir_fd, current, dest, entry):
    """Unlink ``current`` (original or partial .gz) and write ``dest`` anew."""
    entry.update(phase=PHASE_RECREATING)
    if current is not None:
        os.unlink(current, dir_fd=dir_fd)
        fsync_dir(dir_fd)
    try:
        syncfs(dir_fd)
        fd = os.open(dest, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise ReplaceIncomplete('could not create %s: %s; the verified copy stays at %s'
                                % (dest, exc.strerror, entry.data_path))
    try:
        # Recovery writes into this inode only: a file someone else creates
        # under NAME.gz later is never ours.
        entry.update(created_ino=os.fstat(fd).st_ino, created_generation=inode_generation(fd))
    except BaseException:
        os.close(fd)
        raise
    try:
        _write_new_file(fd, entry)
    finally:
        os.close(fd)
    fsync_dir(dir_fd)
    return RECREATE


def _write_new_file(fd, entry):
    manifest = entry.manifest
    metadata = manifest['metadata']
    try:
        os.fchown(fd, metadata['uid'], metadata['gid'])
        for attr, value in sorted(metadata['xattrs'].items()):
            try:
                os.setxattr(fd, attr, base64.b64decode(value))
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
                    raise
        os.fchmod(fd, metadata['mode'])
        _copy_into(fd, entry)
        # Read back before the times are set: the read would move the atime.
        _check_written(fd, entry)
        os.utime(fd, ns=(manifest['atime_ns'], manifest['mtime_ns']))
        os.fsync(fd)
    except OSError as exc:
        raise ReplaceIncomplete('writing the new file failed: %s; the verified copy stays at %s'
                                % (exc, entry.data_path))
