# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Marks on the filesystem itself while a file's only complete copy is in RAM.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

A journal in /dev/shm does not survive a reboot.  If the host reboots while
a rewrite is unfinished (an I/O error, a full filesystem, a power cut), the
file is left incomplete and the copy is gone: later runs must not stay
silent.  Before its first destructive step on a file whose copy is only in
RAM, a run sets two extended attributes, both a few dozen bytes (they fit
inside the inode on ext4 and xfs, so they need no free block):

* ``user.cmemgzip`` on the file: a hash of the journal key, the compressed
  size and CRC-32 (they prove a file complete), the time;
* ``user.cmemgzip.<inode>`` on the directory the filesystem is mounted at:
  the file's handle (name_to_handle_at), so that a later run finds the file
  whatever its name and whatever paths it was given on that filesystem.

Both go once the file is complete.  A later run looks at the mount
directories of its paths and at NAME and NAME.gz of its candidates; a marked
file whose journal entry is gone is reported ``journal_lost``.  Best effort:
a filesystem without user xattrs (tmpfs before Linux 6.6) or without room
for them gets no mark, and a non-root run cannot follow handles.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import struct
import time
import zlib
from typing import TYPE_CHECKING, Any, Callable, Iterable

from . import codes
from .identity import crc_range
from .results import FileResult
from .rewrite import MARKER_XATTR

if TYPE_CHECKING:
    from .discovery import Candidate
    from .journal import JournalEntry
    from .mounts import MountTable

GZ = '.gz'
ROOT_PREFIX = MARKER_XATTR + '.'
_VERSION = 'v2'
_AT_EMPTY_PATH = 0x1000
_MAX_HANDLE = 128
_HANDLE_HEADER = struct.Struct('=Ii')


class Marker(object):
    """The marks of one file being rewritten from a RAM copy."""

    def __init__(self, fd: int, entry: JournalEntry, mount_point: str | None) -> None:
        self.fd = fd
        self.ino = os.fstat(fd).st_ino
        self.entry = entry
        self.mount_point = mount_point
        self.placed = False

    def place(self) -> bool:
        manifest = self.entry.manifest
        # Short (about 40 bytes): with its header it must fit in the room an
        # ext4 inode of 256 bytes has for extended attributes (92 bytes).
        value = '%s %08x %x %08x %x' % (_VERSION, key_hash(self.entry.key), manifest['compressed_size'],
                                        manifest['compressed_crc32'], int(time.time()))
        try:
            os.setxattr(self.fd, MARKER_XATTR, value.encode('ascii'))
        except OSError:
            return False
        self.placed = True
        handle = _handle_of(self.fd)
        if handle is not None and self.mount_point:
            _on_dir(self.mount_point, lambda fd: os.setxattr(fd, ROOT_PREFIX + str(self.ino), handle))
        return True

    def remove(self, file_gone: bool = False) -> None:
        """Remove the marks; ``file_gone``: the file was unlinked (recreate), only the pointer is left."""
        if self.placed:
            remove_marks(None if file_gone else self.fd, self.mount_point, self.ino)
            self.placed = False


def remove_marks(fd: int | None, mount_point: str | None, ino: int | None = None) -> None:
    """Remove the file's mark and its filesystem's pointer to it (absent ones are fine)."""
    if fd is not None:
        ino = os.fstat(fd).st_ino
        try:
            os.removexattr(fd, MARKER_XATTR)
        except OSError:
            pass
    if mount_point and ino is not None:
        _on_dir(mount_point, lambda dir_fd: os.removexattr(dir_fd, ROOT_PREFIX + str(ino)))


def _on_dir(path: str, action: Callable[[int], None]) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        action(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _handle_of(fd: int) -> bytes | None:
    buf = ctypes.create_string_buffer(_HANDLE_HEADER.size + _MAX_HANDLE)
    _HANDLE_HEADER.pack_into(buf, 0, _MAX_HANDLE, 0)
    mount_id = ctypes.c_int()
    function = getattr(_libc(), 'name_to_handle_at', None)
    if function is None or function(fd, b'', buf, ctypes.byref(mount_id), _AT_EMPTY_PATH) != 0:
        return None
    size = _HANDLE_HEADER.unpack_from(buf, 0)[0]
    return buf.raw[:_HANDLE_HEADER.size + size]


def _open_handle(mount_fd: int, handle: bytes) -> str | int | None:
    """A path of the file ``handle`` names on the filesystem of ``mount_fd``; None, or ESTALE when it is gone."""
    libc = _libc()
    function = getattr(libc, 'open_by_handle_at', None)
    if function is None:
        return None
    buf = ctypes.create_string_buffer(handle, len(handle))
    fd = function(mount_fd, buf, os.O_PATH | os.O_CLOEXEC)
    if fd < 0:
        return errno.ESTALE if ctypes.get_errno() in (errno.ESTALE, errno.ENOENT) else None
    try:
        return os.readlink('/proc/self/fd/%d' % fd)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_marker(path: str) -> dict[str, Any] | None:
    """The mark of ``path`` as a dict, or None."""
    try:
        raw = os.getxattr(path, MARKER_XATTR, follow_symlinks=False)
    except OSError:
        return None
    fields = raw.decode('ascii', 'replace').split()
    try:
        if len(fields) == 5 and fields[0] == _VERSION:
            return {'key': int(fields[1], 16), 'compressed_size': int(fields[2], 16),
                    'compressed_crc32': int(fields[3], 16), 'time': int(fields[4], 16)}
    except ValueError:
        pass
    return {'key': None}


def key_hash(key: str) -> int:
    """The short form of a journal key a mark carries."""
    return zlib.crc32(key.encode('utf-8', 'surrogateescape'))


def _complete(path: str, marker: dict[str, Any]) -> bool:
    """Whether the marked file holds exactly the compressed copy (finished; only the mark was left)."""
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


def marked_by_filesystem(mount_points: Iterable[str], check_mode: bool) -> list[str]:
    """Paths the mount directories point at (the files of unfinished RAM rewrites).

    A pointer to a file deleted since (a human removed it) is removed.
    """
    found = []
    for mount_point in mount_points:
        try:
            fd = os.open(mount_point, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            for name in os.listxattr(fd):
                if not name.startswith(ROOT_PREFIX):
                    continue
                path = _open_handle(fd, os.getxattr(fd, name))
                if path == errno.ESTALE and not check_mode:
                    os.removexattr(fd, name)
                elif path is not None and path != errno.ESTALE:
                    found.append(path)
        except OSError:
            pass
        finally:
            os.close(fd)
    return found


def lost_rewrites(paths: Iterable[str], pending_keys: Iterable[str], check_mode: bool,
                  mounts: MountTable) -> tuple[list[FileResult], set[str]]:
    """FileResults for marked files whose journal entry is gone; the set of marked paths.

    A marked file whose key is still in a journal is recovery's; a complete
    one only lost its marks (they are removed).
    """
    found = []
    marked = set()
    pending = set(key_hash(key) for key in pending_keys)
    for path in paths:
        marker = read_marker(path)
        if marker is None or path in marked or marker.get('key') in pending:
            continue
        mount = mounts.find(path)
        if _complete(path, marker):
            if not check_mode:
                _on_file(path, lambda fd: remove_marks(fd, mount.mount_point if mount else None))
            continue
        marked.add(path)
        since = time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(marker['time'])) if marker.get('time') else '?'
        found.append(FileResult(path, None, action=codes.FAILED, reason=codes.JOURNAL_LOST, seconds=0.0,
                                detail='a run that rewrote this file (since %s) did not finish, and its journal copy '
                                       '(key hash %08x) is gone, most likely with a reboot that emptied a RAM journal: the '
                                       'file may be incomplete. Check it with gzip -t; if that fails restore it from '
                                       'a backup. Then remove the marks: setfattr -x %s %s; setfattr -x %s%d %s'
                                       % (since, marker.get('key') or 0, MARKER_XATTR, path, ROOT_PREFIX,
                                          os.lstat(path).st_ino, mount.mount_point if mount else '/')))
    return found, marked


def _on_file(path: str, action: Callable[[int], None]) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    try:
        action(fd)
    finally:
        os.close(fd)


def paths_to_check(candidates: Iterable[Candidate], given: Iterable[str], mounts: MountTable,
                   check_mode: bool) -> list[str]:
    """Every marked-file suspect of a run: what its filesystems point at, NAME and NAME.gz of its candidates."""
    mount_points = []
    for path in given:
        while glob.has_magic(path):
            path = os.path.dirname(path)
        mount = mounts.find(os.path.abspath(path) or '/')
        if mount is not None and mount.mount_point not in mount_points:
            mount_points.append(mount.mount_point)
    seen = []
    known = set()
    names = []
    for candidate in candidates:
        names.append(candidate.path)
        if not candidate.path.endswith(GZ):
            names.append(candidate.path + GZ)
    for path in marked_by_filesystem(mount_points, check_mode) + names:
        if path not in known:
            known.add(path)
            seen.append(path)
    return seen
