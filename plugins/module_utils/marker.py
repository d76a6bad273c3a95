# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A mark on the file itself while its only complete copy is in RAM.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

A journal in /dev/shm does not survive a reboot.  If the host reboots while
a rewrite is unfinished (an I/O error, a full filesystem, a power cut), the
file is left incomplete and the copy is gone: later runs must not stay
silent.  Before its first destructive step on a file whose copy is only in
RAM, the run sets the extended attribute ``user.cmemgzip`` on the inode
(a few dozen bytes: it fits inside the inode on ext4 and xfs, so it needs
no free block); it removes it once the file is complete.  A later run that
meets a marked file (under the names it looks at: NAME and NAME.gz of every
candidate) whose journal entry is gone reports it as ``journal_lost``.
Best effort: a filesystem without user xattrs (tmpfs before Linux 6.6, or a
full btrfs metadata space) gets no marker, which docs/how-it-works.md says.
"""

from __future__ import absolute_import, division, print_function

import errno
import os
import time

from . import codes
from .identity import crc_range
from .results import FileResult
from .rewrite import MARKER_XATTR

GZ = '.gz'
_VERSION = 'v1'


def set_marker(fd, entry):
    """Mark ``fd`` as holding an unfinished rewrite of ``entry``; False when the filesystem refused."""
    manifest = entry.manifest
    value = '%s %s %d %d %d' % (_VERSION, entry.key, manifest['compressed_size'], manifest['compressed_crc32'],
                                int(time.time()))
    try:
        os.setxattr(fd, MARKER_XATTR, value.encode('ascii'))
    except OSError:
        return False
    return True


def clear_marker(fd):
    try:
        os.removexattr(fd, MARKER_XATTR)
    except OSError as exc:
        if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
    return True


def read_marker(path):
    """The marker of ``path`` as a dict, or None."""
    try:
        raw = os.getxattr(path, MARKER_XATTR, follow_symlinks=False)
    except OSError:
        return None
    fields = raw.decode('ascii', 'replace').split()
    if len(fields) != 5 or fields[0] != _VERSION:
        return {'key': None, 'raw': raw}
    try:
        return {'key': fields[1], 'compressed_size': int(fields[2]), 'compressed_crc32': int(fields[3]),
                'time': int(fields[4])}
    except ValueError:
        return {'key': None, 'raw': raw}


def _complete(path, marker):
    """Whether the marked file holds exactly the compressed copy (finished, the mark left behind)."""
    if marker.get('key') is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        size = marker['compressed_size']
        return os.fstat(fd).st_size == size and crc_range(fd, 0, size) == (marker['compressed_crc32'], size)
    finally:
        os.close(fd)


def lost_rewrites(paths, pending_keys, check_mode):
    """FileResults for marked files whose journal entry is gone; the marked paths.

    ``paths``: the names a run looks at.  A marked file whose key is still in
    a journal is recovery's; a complete one only lost its mark (removed).
    """
    found = []
    marked = set()
    for path in paths:
        marker = read_marker(path)
        if marker is None or marker.get('key') in pending_keys:
            continue
        if _complete(path, marker):
            if not check_mode:
                try:
                    os.removexattr(path, MARKER_XATTR, follow_symlinks=False)
                except OSError:
                    pass
            continue
        marked.add(path)
        since = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(marker['time'])) if marker.get('time') else '?'
        found.append(FileResult(path, None, action=codes.FAILED, reason=codes.JOURNAL_LOST, seconds=0.0,
                                detail='a run that rewrote this file (since %s) did not finish, and its journal copy '
                                       '(key %s) is gone, most likely with a reboot that emptied a RAM journal: the '
                                       'file may be incomplete. Check it with gzip -t; if that fails restore it from '
                                       'a backup. Then remove the mark: setfattr -x %s %s'
                                       % (since, marker.get('key'), MARKER_XATTR, path)))
    return found, marked


def names_to_check(candidates):
    """NAME and NAME.gz of every candidate, once each."""
    seen = []
    known = set()
    for candidate in candidates:
        for path in (candidate.path, candidate.path + GZ if not candidate.path.endswith(GZ) else None):
            if path and path not in known:
                known.add(path)
                seen.append(path)
    return seen
