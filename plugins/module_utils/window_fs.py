# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Can this file be compressed into itself without a free block?

The window overwrites blocks the file already owns.  That needs no new
block only where the filesystem overwrites in place and every block the
output lands on is allocated to this file alone.  Copy-on-write filesystems
(btrfs, zfs, ...) allocate on every overwrite and free the old extent only
once no part of it is referenced, so a full one cannot take the first
write; holes (sparse files) need new blocks when written; extents shared
with another file (reflinks, xfs ``cp --reflink``) are copied on write.
Each of those is refused before the commit, while the file is untouched.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import absolute_import, division, print_function

import errno
import fcntl
import os
import struct

from .mounts import COPY_ON_WRITE_FSTYPES

_FS_IOC_FIEMAP = 0xC020660B
_FIEMAP_HEADER = struct.Struct('=QQIIII')
_FIEMAP_EXTENT = struct.Struct('=QQQQQIIII')
_FIEMAP_EXTENT_LAST = 0x1
_FIEMAP_EXTENT_SHARED = 0x2000
_FIEMAP_FLAG_SYNC = 0x1
_EXTENTS_PER_CALL = 256


def unsuitable(fd, st, fstype, mounts=None):
    """Why the window cannot be used for this open file, or None."""
    real_fstype = _upper_fstype(fstype, mounts)
    if real_fstype in COPY_ON_WRITE_FSTYPES:
        return ('%s is copy-on-write: every overwrite needs a new block, and the old extents are freed only '
                'when wholly unused, so a full filesystem cannot take the first write' % real_fstype)
    hole = first_hole(fd, st.st_size)
    if hole is not None and hole < st.st_size:
        return 'the file is sparse (a hole at offset %d): writing into a hole needs a new block' % hole
    if has_shared_extents(fd, st.st_size):
        return 'the file shares blocks with another file (reflink or snapshot): overwriting them needs new blocks'
    return None


def _upper_fstype(fstype, mounts):
    """For overlay, the type of the filesystem under its upper directory."""
    if fstype != 'overlay' or mounts is None:
        return fstype
    for entry in getattr(mounts, 'entries', ()):
        if entry.fstype != 'overlay':
            continue
        for option in entry.super_options:
            if option.startswith('upperdir='):
                upper = mounts.find(option[len('upperdir='):])
                if upper is not None and upper.fstype in COPY_ON_WRITE_FSTYPES:
                    return upper.fstype
    return fstype


def first_hole(fd, size):
    """Offset of the first hole (``size`` when there is none), or None if unknown."""
    try:
        return os.lseek(fd, 0, os.SEEK_HOLE)
    except (AttributeError, OSError):
        return None
    finally:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            pass


def has_shared_extents(fd, size):
    """Whether FIEMAP reports an extent shared with another file (False where unsupported)."""
    start = 0
    while start < size:
        request = bytearray(_FIEMAP_HEADER.size + _EXTENTS_PER_CALL * _FIEMAP_EXTENT.size)
        _FIEMAP_HEADER.pack_into(request, 0, start, size - start, _FIEMAP_FLAG_SYNC, 0, _EXTENTS_PER_CALL, 0)
        try:
            fcntl.ioctl(fd, _FS_IOC_FIEMAP, request, True)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EINVAL, errno.ENOSYS):
                return False
            raise
        mapped = _FIEMAP_HEADER.unpack_from(request, 0)[3]
        if not mapped:
            return False
        for index in range(mapped):
            fields = _FIEMAP_EXTENT.unpack_from(request, _FIEMAP_HEADER.size + index * _FIEMAP_EXTENT.size)
            logical, length, flags = fields[0], fields[2], fields[5]
            if flags & _FIEMAP_EXTENT_SHARED:
                return True
            if flags & _FIEMAP_EXTENT_LAST:
                return False
            start = logical + length
    return False
