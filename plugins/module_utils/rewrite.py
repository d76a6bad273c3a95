# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write a verified journal copy back: over the original inode, or into a new one.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

``inplace`` overwrites from offset 0 and truncates after: on filesystems
that overwrite blocks in place this needs no free block at all.
``truncate_first`` frees the old blocks before writing, for copy-on-write
filesystems and sparse files, where an overwrite would need new blocks: it
reserves the freed blocks again at once (fallocate), so that another writer
cannot take them while the journal holds the only copy.  ``recreate`` is the
last resort, for a filesystem that cannot change a file at all but can
still unlink one (btrfs whose metadata space is exhausted): NAME.gz is
created like logrotate creates its output (O_EXCL|O_NOFOLLOW at 0600,
owner, xattrs - ACLs and SELinux label among them - then mode, data, fsync,
times).
"""

from __future__ import annotations

import array
import base64
import errno
import fcntl
import os
import stat
import zlib
from typing import TYPE_CHECKING, Any, Callable

from .errors import CmemgzipError
from .identity import crc_range, inode_generation
from .mounts import COPY_ON_WRITE_FSTYPES
from .safe_fs import fsync_dir, pwrite_all, syncfs
from .space import ReservationFailed, reserve

if TYPE_CHECKING:
    from .journal import JournalEntry

INPLACE = 'inplace'
TRUNCATE_FIRST = 'truncate_first'
RECREATE = 'recreate'
PHASE_RECREATING = 'recreating'
# Our marker of an unfinished rewrite (marker.py): never copied to a new file.
MARKER_XATTR = 'user.cmemgzip'
_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC  # read back after writing
_CHUNK = 4 * 1024 * 1024
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
_FS_IOC_GETFLAGS = 0x80086601 if array.array('l').itemsize == 8 else 0x80046601
_FS_NOCOW_FL = 0x00800000


class ReplaceIncomplete(CmemgzipError):
    """The copy could not be written back; the journal still has it.

    ``error`` is the OSError behind it (or None), ``original_gone`` whether
    the file had already lost its original content.
    """

    def __init__(self, what: str, error: OSError | None = None, original_gone: bool = True) -> None:
        reason = error.strerror if error is not None and error.strerror else error
        super(ReplaceIncomplete, self).__init__('%s: %s' % (what, reason) if error else what)
        self.what = what
        self.error = error
        self.original_gone = original_gone

    @property
    def no_space(self) -> bool:
        return self.error is not None and getattr(self.error, 'errno', None) in _NO_SPACE


class NoSpace(ReplaceIncomplete):
    """The filesystem refused even to shrink the file."""


def choose_strategy(fstype: str | None, st: os.stat_result, fd: int | None = None, size: int | None = None) -> str:
    """INPLACE where overwriting the first ``size`` bytes needs no new block, else TRUNCATE_FIRST.

    ``truncate_first`` opens a window in which the journal holds the only
    copy and freed blocks must be reserved again (space.reserve): it is
    chosen only where an overwrite would allocate.  Without ``fd`` and
    ``size`` (check mode's estimate) the answer is the cautious one.
    """
    if fstype in COPY_ON_WRITE_FSTYPES:
        # A NOCOW file (chattr +C) is overwritten in place even there.
        return INPLACE if fd is not None and _no_copy_on_write(fd) else TRUNCATE_FIRST
    # A sparse file has holes: writing into them would need new blocks,
    # unless they all lie beyond the bytes we write.
    if st.st_blocks * 512 < st.st_size:
        if fd is None or size is None or _first_hole(fd) < size:
            return TRUNCATE_FIRST
    return INPLACE


def _first_hole(fd: int) -> int:
    try:
        return os.lseek(fd, 0, os.SEEK_HOLE)
    except (OSError, AttributeError):
        return 0


def _no_copy_on_write(fd: int) -> bool:
    flags = array.array('l', [0])
    try:
        fcntl.ioctl(fd, _FS_IOC_GETFLAGS, flags, True)
    except (OSError, IOError):
        return False
    return bool(flags[0] & _FS_NOCOW_FL)


def copy_over(fd: int, entry: JournalEntry) -> int:
    """Write the journal copy over ``fd`` from offset 0; return its size (nothing truncated)."""
    source = entry.open_data()
    try:
        offset = 0
        while True:
            chunk = os.read(source, _CHUNK)
            if not chunk:
                return offset
            pwrite_all(fd, chunk, offset)
            offset += len(chunk)
    finally:
        os.close(source)


def check_written(fd: int, entry: JournalEntry) -> None:
    manifest = entry.manifest
    crc, size = crc_range(fd, 0, manifest['compressed_size'])
    if (crc, size) != (manifest['compressed_crc32'], manifest['compressed_size']) \
            or os.fstat(fd).st_size != size:
        raise ReplaceIncomplete('the file does not read back as written')


def free_and_reserve(fd: int, size: int) -> None:
    """Release every block of ``fd``, then take ``size`` bytes back before anyone else can."""
    os.ftruncate(fd, 0)
    reserve(fd, size)


def rewrite_inode(fd: int, entry: JournalEntry, strategy: str,
                  before_shrink: Callable[[bool], None] | None = None) -> str:
    """Write the journal's copy into ``fd``; return the strategy that worked.

    ``before_shrink(overwritten)`` runs just before the first step that
    gives blocks away (the truncate): until then an in-place overwrite can
    still be undone (restore_original); ``overwritten`` says whether bytes
    were written already.  Raises NoSpace when the filesystem cannot
    take the data, ReplaceIncomplete on other errors; the journal stays.
    """
    manifest = entry.manifest
    size = manifest['compressed_size']
    try:
        if strategy == TRUNCATE_FIRST:
            if before_shrink is not None:
                before_shrink(False)
            free_and_reserve(fd, size)
            copy_over(fd, entry)
        else:
            try:
                copy_over(fd, entry)
            except OSError as exc:
                if exc.errno not in _NO_SPACE:
                    raise
                # In place needed blocks after all (reflinked or preallocated
                # extents, a copy-on-write filesystem we did not recognise).
                # The old blocks are the only space we can count on.
                if before_shrink is not None:
                    before_shrink(True)
                strategy = TRUNCATE_FIRST
                free_and_reserve(fd, size)
                copy_over(fd, entry)
            else:
                if before_shrink is not None:
                    before_shrink(True)
        os.ftruncate(fd, size)
        os.utime(fd, ns=(manifest['atime_ns'], manifest['mtime_ns']))
        os.fsync(fd)
    except ReservationFailed as exc:
        raise NoSpace('the blocks the file had freed were taken by another writer', exc)
    except OSError as exc:
        raise (NoSpace if exc.errno in _NO_SPACE else ReplaceIncomplete)('rewriting the file failed', exc)
    check_written(fd, entry)
    return strategy


def restore_original(fd: int, entry: JournalEntry) -> int:
    """Undo an overwrite that was not yet truncated: the original's first bytes, from the journal."""
    manifest = entry.manifest
    length = manifest['compressed_size']
    source = entry.open_data()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    offset = 0
    try:
        while offset < length:
            data = inflater.unconsumed_tail or os.read(source, _CHUNK)
            if not data:
                break
            piece = inflater.decompress(data, _CHUNK)[:length - offset]
            pwrite_all(fd, piece, offset)
            offset += len(piece)
    finally:
        os.close(source)
    os.utime(fd, ns=(manifest['atime_ns'], manifest['mtime_ns']))
    os.fsync(fd)
    return offset


def file_metadata(fd: int) -> dict[str, Any]:
    """Owner, mode and extended attributes (ACLs, SELinux label) to recreate a file."""
    st = os.fstat(fd)
    xattrs = {}
    try:
        names = os.listxattr(fd)
    except OSError:
        names = []
    for attr in names:
        if attr == MARKER_XATTR:
            continue
        try:
            xattrs[attr] = base64.b64encode(os.getxattr(fd, attr)).decode('ascii')
        except OSError:
            continue
    return {'uid': st.st_uid, 'gid': st.st_gid, 'mode': stat.S_IMODE(st.st_mode), 'xattrs': xattrs}


def recreate(dir_fd: int, current: str | None, dest: str, entry: JournalEntry) -> str:
    """Unlink ``current`` (original or partial .gz) and write ``dest`` anew."""
    entry.update(phase=PHASE_RECREATING)
    if current is not None:
        os.unlink(current, dir_fd=dir_fd)
        fsync_dir(dir_fd)
    try:
        syncfs(dir_fd)
        fd = os.open(dest, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise ReplaceIncomplete('could not create %s' % dest, exc)
    try:
        # Recovery writes into this inode only: a file someone else creates
        # under NAME.gz later is never ours.
        entry.update(created_ino=os.fstat(fd).st_ino, created_generation=inode_generation(fd))
        _write_new_file(fd, entry)
    finally:
        os.close(fd)
    fsync_dir(dir_fd)
    return RECREATE


def _write_new_file(fd: int, entry: JournalEntry) -> None:
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
        reserve(fd, manifest['compressed_size'])
        os.ftruncate(fd, copy_over(fd, entry))
        # Read back before the times are set: the read would move the atime.
        check_written(fd, entry)
        os.utime(fd, ns=(manifest['atime_ns'], manifest['mtime_ns']))
        os.fsync(fd)
    except ReservationFailed as exc:
        raise NoSpace('the blocks freed by the unlink were taken by another writer', exc)
    except OSError as exc:
        raise ReplaceIncomplete('writing the new file failed', exc)


def explain(exc: ReplaceIncomplete, entry: JournalEntry, path_now: str, mount_point: str, need: int) -> str:
    """What a user must know when a write-back stopped: where the data is, what to do."""
    copy = entry.data_path
    in_ram = getattr(entry.journal, 'ram_backed', False)
    state = getattr(exc, 'state', 'partial' if exc.original_gone else 'untouched')
    where = '%s%s' % (copy, ' (in RAM)' if in_ram else '')
    if state == 'untouched':
        return ('%s; the file is now %s, its content not rewritten yet; the verified copy is at %s; a rerun '
                'finishes the job' % (exc, path_now, where))
    if state == 'complete':
        return ('%s; %s holds the complete, verified compressed data; the copy stays at %s until a rerun has '
                'confirmed it' % (exc, path_now, where))
    text = ('the original is gone: %s holds an incomplete compressed copy (%s); the only complete copy is at %s'
            % (path_now, exc, copy))
    if in_ram:
        text += ' in RAM: do not reboot'
    if exc.no_space:
        text += '; free %d bytes on %s and rerun: the next run finishes the file from that copy' % (need, mount_point)
    else:
        text += '; fix the cause and rerun: the next run finishes the file from that copy'
    return text
