# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Blocks of a file: reserve them (fallocate) and find the shared ones (FIEMAP).

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import struct

from .safe_fs import syncfs

FALLOC_FL_KEEP_SIZE = 0x01
_FS_IOC_FIEMAP = 0xC020660B
_FIEMAP_FLAG_SYNC = 0x1
_FIEMAP_EXTENT_LAST = 0x1
_FIEMAP_EXTENT_SHARED = 0x2000
_FIEMAP_HEADER = struct.Struct('=QQIIII')
_FIEMAP_EXTENT = struct.Struct('=QQQQQIIII')
_EXTENTS_PER_CALL = 128
# How often a reservation is retried after a commit: copy-on-write and
# journaling filesystems hand freed blocks back only when a transaction
# commits (the first commit may belong to another writer).
RESERVE_ATTEMPTS = 4


class ReservationFailed(OSError):
    """The blocks just freed could not be reserved again: another writer took them."""


def fallocate(fd: int, mode: int, offset: int, length: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    function = getattr(libc, 'fallocate64', None) or libc.fallocate
    function.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    if function(fd, mode, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def reserve(fd: int, length: int) -> bool:
    """Allocate ``length`` bytes from offset 0 for ``fd`` without changing its size.

    Called straight after the file released its blocks, so that the blocks
    come back to this file and not to another writer.  Returns False where
    the filesystem cannot preallocate (the write then allocates as it goes);
    raises ReservationFailed when the space is gone.
    """
    if length <= 0:
        return True
    for attempt in range(RESERVE_ATTEMPTS):
        try:
            fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, length)
            return True
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return False
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
        os.fsync(fd)
        try:
            syncfs(fd)
        except OSError:
            pass
    raise ReservationFailed(errno.ENOSPC, 'another writer took the %d bytes this file had just freed' % length)


def extents(fd: int) -> list[tuple[int, int]] | None:
    """(logical length, flags) of every extent of ``fd``; None where FIEMAP is unsupported."""
    found = []
    start = 0
    while True:
        header = _FIEMAP_HEADER.pack(start, 0xFFFFFFFFFFFFFFFF - start, _FIEMAP_FLAG_SYNC, 0, _EXTENTS_PER_CALL, 0)
        buf = bytearray(header + b'\0' * (_FIEMAP_EXTENT.size * _EXTENTS_PER_CALL))
        try:
            fcntl.ioctl(fd, _FS_IOC_FIEMAP, buf, True)
        except (OSError, IOError) as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
                return None
            raise
        mapped = _FIEMAP_HEADER.unpack_from(buf, 0)[3]
        if not mapped:
            return found
        for index in range(mapped):
            logical, _physical, length, _r1, _r2, flags, _f1, _f2, _f3 = _FIEMAP_EXTENT.unpack_from(
                buf, _FIEMAP_HEADER.size + index * _FIEMAP_EXTENT.size)
            found.append((length, flags))
            start = logical + length
            if flags & _FIEMAP_EXTENT_LAST:
                return found


def shared_bytes(fd: int) -> int:
    """Bytes of ``fd`` in extents shared with a snapshot or a reflink (0 if unknown)."""
    found = extents(fd)
    if not found:
        return 0
    return sum(length for length, flags in found if flags & _FIEMAP_EXTENT_SHARED)
