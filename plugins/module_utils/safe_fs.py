# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""File system primitives that stay safe for root in directories others write.

Every operation works on directory file descriptors opened component by
component with O_NOFOLLOW, so no symlink swapped in by another user can
redirect a read, a write or a rename to another file.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import os
import signal
import threading
from typing import Any

from .errors import CmemgzipError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_NOREPLACE = 1
# renameat2 syscall numbers, for a libc older than glibc 2.28.
_SYS_RENAMEAT2 = {'x86_64': 316, 'aarch64': 276, 'ppc64le': 357, 's390x': 347, 'i686': 353, 'armv7l': 382}
_F_SETLEASE = getattr(fcntl, 'F_SETLEASE', 1024)
_F_WRLCK = fcntl.F_WRLCK
_F_UNLCK = fcntl.F_UNLCK
O_NOATIME = getattr(os, 'O_NOATIME', 0)


def open_dir_nofollow(path: str) -> int:
    """Open an absolute directory path without following any symlink in it."""
    if not os.path.isabs(path):
        raise ValueError('not an absolute path: %s' % path)
    fd = os.open('/', _DIR_FLAGS)
    try:
        for part in path.split('/'):
            if part in ('', '.'):
                continue
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(dir_fd: int, name: str, writable: bool) -> int:
    """Open a file without following a symlink and without blocking on a FIFO.

    Tries O_NOATIME first so reading does not change the access time; the
    kernel refuses it to callers that do not own the file.
    """
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags | O_NOATIME, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno != errno.EPERM or not O_NOATIME:
            raise
        fd = os.open(name, flags, dir_fd=dir_fd)
    # O_NONBLOCK only guarded the open; reads of a regular file ignore it,
    # but clear it so nothing later depends on it.
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    return fd


class OpenFile(object):
    """A descriptor that can be closed early, and only once."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)


def stat_nofollow(dir_fd: int, name: str) -> os.stat_result | None:
    """lstat relative to a directory fd, or None when the name is absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


@functools.lru_cache(maxsize=None)
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _renameat2(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str, flags: int) -> None:
    libc = _libc()
    src_b, dst_b = os.fsencode(src), os.fsencode(dst)
    function = getattr(libc, 'renameat2', None)
    if function is not None:
        result = function(src_dir_fd, src_b, dst_dir_fd, dst_b, flags)
    else:
        number = _SYS_RENAMEAT2.get(os.uname().machine)
        if number is None:
            raise OSError(errno.ENOSYS, 'renameat2 is not available')
        result = libc.syscall(number, src_dir_fd, src_b, dst_dir_fd, dst_b, flags)
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dst)


def rename_noreplace(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """Rename, failing with EEXIST instead of ever replacing ``dst``.

    Falls back to link + unlink where renameat2 cannot say RENAME_NOREPLACE
    (old kernels, some filesystems); link() fails with EEXIST just as
    atomically.  The fallback briefly makes two links to the inode.
    """
    try:
        _renameat2(src_dir_fd, src, dst_dir_fd, dst, _RENAME_NOREPLACE)
        return
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
    os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)
    os.unlink(src, dir_fd=src_dir_fd)


def fsync_dir(dir_fd: int) -> None:
    try:
        os.fsync(dir_fd)
    except OSError as exc:
        # Some filesystems (tmpfs on old kernels) refuse fsync on directories.
        if exc.errno not in (errno.EINVAL, errno.EROFS):
            raise


class WriteLease(object):
    """An exclusive file lease: the kernel's proof nobody else has the file open.

    F_SETLEASE F_WRLCK succeeds only while no other open file description of
    the inode exists, and from then on any other open() or truncate() of it
    waits until we release the lease (at most /proc/sys/fs/lease-break-time
    seconds) while the kernel tells us with SIGIO.  ``broken`` says whether
    that happened.  Leases need the main thread (signal handler) and a local
    filesystem; where they are unavailable ``held`` is False and the caller
    relies on its /proc scan alone.
    """

    _broken_fds: set[str] = set()
    _handler_installed = False

    def __init__(self, open_file: OpenFile) -> None:
        self.file = open_file
        self.held = False
        self.unavailable_reason: str | None = None
        self._take()

    @classmethod
    def _on_sigio(cls, signum: int, frame: Any) -> None:
        # A lease break names no fd without F_SETSIG; mark every held lease.
        cls._broken_fds.add('any')

    def _take(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.unavailable_reason = 'not in the main thread'
            return
        if not WriteLease._handler_installed:
            signal.signal(signal.SIGIO, WriteLease._on_sigio)
            WriteLease._handler_installed = True
        WriteLease._broken_fds.discard('any')
        try:
            fcntl.fcntl(self.file.fd, _F_SETLEASE, _F_WRLCK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EBUSY):
                raise FileBusy()
            self.unavailable_reason = os.strerror(exc.errno)
            return
        self.held = True

    @property
    def broken(self) -> bool:
        return self.held and 'any' in WriteLease._broken_fds

    def release(self) -> None:
        # Closing the descriptor already ended the lease.
        if self.held and self.file.fd is not None:
            try:
                fcntl.fcntl(self.file.fd, _F_SETLEASE, _F_UNLCK)
            except OSError:
                pass
            self.held = False


class FileBusy(CmemgzipError):
    """Another process has the file open."""


def syncfs(fd: int) -> None:
    """Commit the whole filesystem of ``fd``.

    Copy-on-write filesystems hand freed extents back only when a
    transaction commits; before that, the blocks a truncate released cannot
    take the new data.
    """
    libc = _libc()
    if libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (os.pwrite may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
