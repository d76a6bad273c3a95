# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Free the first bytes of a file that a process keeps appending to.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

``fallocate(2)`` frees a range of a file without touching what follows and
without stopping an ``O_APPEND`` writer: the kernel takes the inode lock for
the call, the writer's next ``write()`` waits for it (that wait is the
writer's stall) and then lands at the new end.

* ``FALLOC_FL_COLLAPSE_RANGE`` (ext4 with extents, xfs, f2fs) removes the
  range: the file then starts with the byte that followed it and is shorter
  by its length.  The range must be block-aligned and end before the end of
  the file.
* ``FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`` (tmpfs, btrfs, ext4, xfs,
  and overlayfs over any of them) frees the blocks of the range; size and
  offsets stay, the range reads as zeros.
"""

from __future__ import annotations

import ctypes
import errno
import os
import time

COLLAPSE = 'collapse'
PUNCH_HOLE = 'punch_hole'
TRUNCATE = 'truncate'
METHODS = (COLLAPSE, PUNCH_HOLE)

_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_FALLOC_FL_COLLAPSE_RANGE = 0x08
# Filesystems whose collapse is known; elsewhere it is tried and, when the
# kernel refuses it, the hole is punched instead.
_COLLAPSE_FSTYPES = frozenset(('ext4', 'xfs', 'f2fs'))
_PUNCH_ONLY_FSTYPES = frozenset(('tmpfs', 'btrfs', 'ramfs', 'shmem'))
# One punch frees at most this much: tmpfs needs about 0.5 s for 1 GiB, and
# the writer waits that long for the inode lock.  Holes are idempotent, so a
# punch cut into pieces is no harder to finish after a crash.
PUNCH_PIECE = 64 * 1024 * 1024
_UNSUPPORTED = (errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS)

_libc: ctypes.CDLL | None = None


def _fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.fallocate.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    if _libc.fallocate(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def unsupported(exc: OSError) -> bool:
    """Whether an OSError from collapse/punch means: this filesystem cannot."""
    return exc.errno in _UNSUPPORTED


def methods_to_try(fstype: str | None, requested: str) -> list[str]:
    """The freeing methods for a file on ``fstype``, in order.

    ``requested``: ``auto`` (collapse where the filesystem has it, else punch),
    ``collapse`` or ``punch_hole`` (stable offsets, for log shippers).
    """
    if requested == PUNCH_HOLE:
        return [PUNCH_HOLE]
    if requested == COLLAPSE:
        return [COLLAPSE]
    if fstype in _PUNCH_ONLY_FSTYPES:
        return [PUNCH_HOLE]
    if fstype in _COLLAPSE_FSTYPES:
        return [COLLAPSE, PUNCH_HOLE]
    return [COLLAPSE, PUNCH_HOLE]  # overlayfs and others: what the layer below has


def alignment(fd: int) -> int:
    """The unit a collapse or punch range must be a multiple of (a power of two)."""
    st = os.fstat(fd)
    unit = max(os.fstatvfs(fd).f_bsize, st.st_blksize or 0, 4096)
    return unit if unit & (unit - 1) == 0 else 4096


def collapse(fd: int, offset: int, length: int) -> float:
    """Remove [offset, offset + length); return the seconds the inode was locked."""
    started = time.monotonic()
    _fallocate(fd, _FALLOC_FL_COLLAPSE_RANGE, offset, length)
    return time.monotonic() - started


def punch_hole(fd: int, offset: int, length: int, piece: int = PUNCH_PIECE) -> float:
    """Free [offset, offset + length) piece by piece; return the longest lock in seconds."""
    worst = 0.0
    end = offset + length
    while offset < end:
        size = min(piece, end - offset)
        started = time.monotonic()
        _fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, size)
        worst = max(worst, time.monotonic() - started)
        offset += size
    return worst


def reserve(fd: int, length: int) -> None:
    """Allocate ``length`` bytes for a new file before anyone takes the space.

    The size stays 0 (KEEP_SIZE): a run killed while it writes leaves a
    file that is exactly what was written so far, which recovery recognises
    as ours (a prefix of the journal copy), never a file padded with zeros.
    """
    _fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, length)


def first_data(fd: int, size: int) -> int:
    """Offset of the first byte that is not in a hole (``size`` when there is none)."""
    try:
        return os.lseek(fd, 0, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return size
        if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
            return 0  # no SEEK_DATA: holes read as zeros, and are compressed as such
        raise


def data_bytes(fd: int, start: int, end: int) -> int:
    """Bytes of [start, end) that are not in holes (what freeing it gives back)."""
    total = 0
    offset = start
    try:
        while offset < end:
            try:
                data = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:
                    break
                raise
            if data >= end:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
            total += hole - data
            offset = hole
    except OSError:
        return end - start
    return total


def free_prefix(fd: int, method: str, start: int, end: int) -> float:
    """Free [start, end) with ``method``; return the longest time the inode was locked."""
    if method == COLLAPSE:
        return collapse(fd, start, end - start)
    if method == PUNCH_HOLE:
        return punch_hole(fd, start, end - start)
    if method == TRUNCATE:
        started = time.monotonic()
        os.ftruncate(fd, 0)
        return time.monotonic() - started
    raise ValueError('unknown method %r' % method)
