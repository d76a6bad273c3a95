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
write (NOCOW files excepted); holes (sparse files) need new blocks when written.  Each of those is
refused before the commit, while the file is untouched.  (Extents shared
with another file, reflinks or snapshots, are copied on write too: the run
skips such files for every strategy before this, as ``shared_extents``.)

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .mounts import COPY_ON_WRITE_FSTYPES
from .rewrite import INPLACE, choose_strategy

if TYPE_CHECKING:
    from .mounts import MountTable


def unsuitable(fd: int, st: os.stat_result, filesystem: dict[str, Any], mounts: MountTable | None = None) -> str | None:
    """Why the window cannot be used for this open file, or None.

    The rule of the copy strategies (rewrite.choose_strategy): where an
    overwrite of the file's bytes needs no new block (not copy-on-write, or a
    NOCOW file; no hole), the window works too.
    """
    real_fstype = _upper_fstype(filesystem, mounts)
    if choose_strategy(real_fstype, st, fd, st.st_size) == INPLACE:
        return None
    if real_fstype in COPY_ON_WRITE_FSTYPES:
        return ('%s is copy-on-write: every overwrite needs a new block, and the old extents are freed only '
                'when wholly unused, so a full filesystem cannot take the first write' % real_fstype)
    return 'the file is sparse (a hole at offset %s): writing into a hole needs a new block' % first_hole(fd)


def _upper_fstype(filesystem: dict[str, Any], mounts: MountTable | None) -> str | None:
    """The filesystem's type; for overlay, the type of the filesystem under its upper directory."""
    fstype = filesystem.get('fstype')
    if fstype != 'overlay' or mounts is None:
        return fstype
    for entry in getattr(mounts, 'entries', ()):
        if entry.fstype == 'overlay' and entry.mount_point == filesystem.get('mount'):
            for option in entry.super_options:
                if option.startswith('upperdir='):
                    upper = mounts.find(option[len('upperdir='):])
                    return upper.fstype if upper is not None else fstype
    return fstype


def first_hole(fd: int) -> int | None:
    """Offset of the first hole (the size when there is none), or None if unknown."""
    try:
        return os.lseek(fd, 0, os.SEEK_HOLE)
    except (AttributeError, OSError):
        return None
    finally:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
        except OSError:
            pass
