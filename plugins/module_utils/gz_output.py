# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A new .gz file written from a verified journal copy, as logrotate writes one.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

The live and deleted-file protocols save what they free as a new file beside
(or instead of) the original: ``NAME-20261201T101500Z.gz``.  It is created
``O_CREAT|O_EXCL|O_NOFOLLOW`` at 0600 (never over an existing name, never
through a symlink), then given the original's owner, group and extended
attributes (ACLs and SELinux label among them), then its mode; the data is
copied from the journal, read back and compared (CRC-32 and size), and the
file and its directory are fsynced.
"""

from __future__ import annotations

import base64
import errno
import os
import time
from typing import TYPE_CHECKING, Any

from .identity import crc_range
from .rewrite import copy_over
from .safe_fs import fsync_dir

if TYPE_CHECKING:
    from .journal import JournalEntry

_CREATE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 4 * 1024 * 1024
NAME_MAX = 255


class OutputIncomplete(Exception):
    """The .gz could not be written completely; the journal keeps the copy."""


def rotation_name(name: str, when: float | None = None, tag: str = '') -> str:
    """``NAME-20261201T101500Z.gz`` (``NAME-TAG-...`` with a tag), for the UTC time ``when``."""
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(time.time() if when is None else when))
    return '%s-%s%s.gz' % (name, tag + '-' if tag else '', stamp)


def free_name(dir_fd: int, wanted: str) -> str:
    """``wanted``, or ``wanted`` with ``-2``, ``-3``... before ``.gz``: the first name not taken."""
    base = wanted[:-3]
    candidate = wanted
    number = 1
    while _exists(dir_fd, candidate):
        number += 1
        candidate = '%s-%d.gz' % (base, number)
    if len(os.fsencode(candidate)) > NAME_MAX:
        raise OSError(errno.ENAMETOOLONG, 'the name of the .gz would be longer than %d bytes' % NAME_MAX, candidate)
    return candidate


def _exists(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def create(dir_fd: int, name: str) -> int:
    """Create ``name`` exclusively at 0600; its descriptor (read-write)."""
    return os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dir_fd)


def open_ours(dir_fd: int, name: str) -> int:
    """Open an existing output again (recovery), without following a symlink."""
    return os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)


def apply_metadata(fd: int, metadata: dict[str, Any]) -> None:
    """Owner and group, extended attributes, then mode: never more open than the original."""
    os.fchown(fd, metadata['uid'], metadata['gid'])
    for attr, value in sorted(metadata.get('xattrs', {}).items()):
        try:
            os.setxattr(fd, attr, base64.b64decode(value))
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
                raise
    os.fchmod(fd, metadata['mode'])


def write_copy(fd: int, entry: JournalEntry, size: int, crc: int) -> None:
    """Copy the journal entry's data into ``fd``, read it back, fsync; raises OutputIncomplete."""
    try:
        os.ftruncate(fd, copy_over(fd, entry))
        os.fsync(fd)
    except OSError as exc:
        raise OutputIncomplete('writing the .gz failed: %s; the verified copy stays at %s' % (exc, entry.data_path))
    if read_back(fd, size) != (crc, size):
        raise OutputIncomplete('the .gz does not read back as written; the verified copy stays at %s'
                               % entry.data_path)


def read_back(fd: int, size: int) -> tuple[int, int]:
    """(CRC-32, size) of the first ``size`` bytes of ``fd``, and nothing beyond."""
    crc, offset = crc_range(fd, 0, size)
    if os.fstat(fd).st_size != offset:
        return crc, -1
    return crc, offset


def holds_prefix_of(fd: int, entry: JournalEntry) -> bool:
    """Whether ``fd`` holds the first bytes (or all) of the entry's copy: an output cut short."""
    size = os.fstat(fd).st_size
    if size > entry.manifest['compressed_size']:
        return False
    source = entry.open_data()
    try:
        offset = 0
        while offset < size:
            length = min(_CHUNK, size - offset)
            if os.pread(fd, length, offset) != os.pread(source, length, offset):
                return False
            offset += length
    finally:
        os.close(source)
    return True


def finish(dir_fd: int) -> None:
    fsync_dir(dir_fd)
