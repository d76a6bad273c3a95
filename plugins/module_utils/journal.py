# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The crash journal: a verified compressed copy kept outside the process.

From the first destructive write until the .gz is durable, the compressed
stream lives in ``<dir>/<name>/<key>.gz`` next to ``<key>.json``, its
manifest (``<name>`` is this user's: ``journal_dir_name``).  The manifest is
written last and atomically: a manifest on disk means its data file holds a
complete, verified copy.  A data file without a
manifest is an interrupted compression that never touched the original.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import stat
import zlib
from typing import Any

from .errors import CmemgzipError
from .safe_fs import fsync_dir, open_dir_nofollow

SUBDIR = 'sre.cmemgzip'
# Version 2: identity evidence (identity.capture) and ``kind``; recovery
# still reads version 1 manifests (device number, whole-file CRC-32).
MANIFEST_VERSION = 2
# The kind of the original-into-its-own-.gz protocol (replace.py); other
# protocols name theirs, see recovery.py.
KIND_REPLACE = 'replace'
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_CHUNK = 4 * 1024 * 1024


class JournalUnsafe(CmemgzipError):
    """The journal directory exists but someone else could tamper with it."""


def journal_dir_name(uid: int | None = None) -> str:
    """The journal directory's name for ``uid``: each user has its own.

    Root's is ``sre.cmemgzip``, any other user's ``sre.cmemgzip-<uid>``, so a
    run never opens, recovers or is blocked by another user's journal.
    """
    uid = os.geteuid() if uid is None else uid
    return SUBDIR if uid == 0 else '%s-%d' % (SUBDIR, uid)


def _owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class Journal(object):
    """One journal directory (``<base>/<name>``, by default this user's), opened safely."""

    # Set by JournalSet once opened (declared only: no class attribute, getattr defaults still apply).
    ram_backed: bool
    device: int

    def __init__(self, base_dir: str, name: str | None = None) -> None:
        self.base_dir = base_dir
        self.name = name or journal_dir_name()
        self.path = os.path.join(base_dir, self.name)
        self._dir_fd: int | None = None

    def open(self, create: bool) -> bool:
        """Open the directory; create it 0700 when asked.  False if absent."""
        if self._dir_fd is not None:
            return True
        base_fd = open_dir_nofollow(os.path.realpath(self.base_dir))
        try:
            if create:
                try:
                    os.mkdir(self.name, 0o700, dir_fd=base_fd)
                except OSError as exc:
                    if exc.errno != errno.EEXIST:
                        raise
            try:
                fd = os.open(self.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=base_fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    if exc.errno != errno.ENOENT:
                        raise JournalUnsafe('%s is not a directory (a symbolic link or a file is in its place)'
                                            % self.path)
                    return False
                raise
        finally:
            os.close(base_fd)
        st = os.fstat(fd)
        # /dev/shm is world-writable: a directory planted there by another
        # user must never receive our copies of root-only files.
        if st.st_uid != os.geteuid():
            os.close(fd)
            raise JournalUnsafe('%s belongs to %s (uid %d), not to this user (uid %d): another user may have '
                                'planted it; remove it, or set journal_dir or spill_dir elsewhere'
                                % (self.path, _owner_name(st.st_uid), st.st_uid, os.geteuid()))
        if stat.S_IMODE(st.st_mode) & 0o077:
            os.close(fd)
            raise JournalUnsafe('%s is not private (mode %o): others could change the copies in it'
                                % (self.path, stat.S_IMODE(st.st_mode)))
        self._dir_fd = fd
        return True

    @property
    def opened(self) -> bool:
        return self._dir_fd is not None

    def close(self) -> None:
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def available_bytes(self) -> int:
        stats = os.statvfs(self.base_dir)
        return stats.f_bavail * stats.f_frsize

    def create(self, key: str) -> JournalEntry:
        fd = os.open(key + '.gz', _CREATE_FLAGS, 0o600, dir_fd=self._dir_fd)
        return JournalEntry(self, key, fd)

    def entries(self) -> tuple[list[JournalEntry], list[str]]:
        """(committed entries, keys of data files without a manifest)."""
        names = os.listdir(self._dir_fd)
        manifests = sorted(name[:-5] for name in names if name.endswith('.json'))
        orphans = [name[:-3] for name in names if name.endswith('.gz') and name[:-3] not in manifests]
        return [JournalEntry.load(self, key) for key in manifests], orphans

    def remove(self, key: str) -> None:
        for name in (key + '.json', key + '.gz', key + '.json.tmp'):
            try:
                os.unlink(name, dir_fd=self._dir_fd)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        fsync_dir(self._dir_fd)

    def adopt(self, entry: JournalEntry) -> JournalEntry:
        """Move a committed entry of another journal here (data, check, manifest); return the new entry."""
        manifest = entry.manifest
        moved = self.create(entry.key)
        try:
            source = entry.open_data()
            try:
                while True:
                    chunk = os.read(source, _COPY_CHUNK)
                    if not chunk:
                        break
                    moved.write(chunk)
            finally:
                os.close(source)
            os.fsync(moved._fd)
            if moved.stored_crc() != (manifest['compressed_crc32'], manifest['compressed_size']):
                raise OSError(errno.EIO, 'the copy moved to %s does not read back as written' % moved.data_path)
            moved.commit(dict(manifest))
        except BaseException:
            moved.discard()
            raise
        entry.discard()
        return moved

    def holds(self, key: str) -> bool:
        """Whether a committed entry (a manifest) exists under ``key``."""
        try:
            os.stat(key + '.json', dir_fd=self._dir_fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def data_path(self, key: str) -> str:
        return os.path.join(self.path, key + '.gz')


class JournalEntry(object):
    """One compressed copy and, once committed, its manifest."""

    def __init__(self, journal: Journal, key: str, fd: int | None = None,
                 manifest: dict[str, Any] | None = None) -> None:
        self.journal = journal
        self.key = key
        self._fd = fd
        self.manifest = manifest

    @classmethod
    def load(cls, journal: Journal, key: str) -> JournalEntry:
        try:
            fd = os.open(key + '.json', os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=journal._dir_fd)
            with os.fdopen(fd) as handle:
                manifest = json.load(handle)
        except (OSError, IOError, ValueError) as exc:
            manifest = {'error': 'unreadable manifest: %s' % exc}
        return cls(journal, key, manifest=manifest)

    @property
    def data_path(self) -> str:
        return self.journal.data_path(self.key)

    def write(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def stored_crc(self) -> tuple[int, int]:
        """CRC-32 and size of the data file as stored."""
        fd = self.open_data()
        try:
            crc = 0
            size = 0
            while True:
                chunk = os.read(fd, _COPY_CHUNK)
                if not chunk:
                    return crc, size
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
        finally:
            os.close(fd)

    def open_data(self) -> int:
        return os.open(self.key + '.gz', os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.journal._dir_fd)

    def commit(self, manifest: dict[str, Any]) -> None:
        """Make the data durable, then publish the manifest atomically."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self._publish(manifest)

    def update(self, **changes: Any) -> None:
        """Replace the manifest atomically with these fields changed."""
        manifest = dict(self.manifest)
        manifest.update(changes)
        self._publish(manifest)

    def _publish(self, manifest: dict[str, Any]) -> None:
        tmp = self.key + '.json.tmp'
        try:
            os.unlink(tmp, dir_fd=self.journal._dir_fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        fd = os.open(tmp, _CREATE_FLAGS, 0o600, dir_fd=self.journal._dir_fd)
        with os.fdopen(fd, 'w') as handle:
            handle.write(json.dumps(manifest, sort_keys=True))  # one write, by the C encoder
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, self.key + '.json', src_dir_fd=self.journal._dir_fd, dst_dir_fd=self.journal._dir_fd)
        fsync_dir(self.journal._dir_fd)
        self.manifest = manifest

    def discard(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.journal.remove(self.key)
