# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The crash journal: a verified compressed copy kept outside the process.

From the first destructive write until the .gz is durable, the compressed
stream lives in ``<dir>/sre.cmemgzip/<key>.gz`` next to ``<key>.json``, its
manifest.  The manifest is written last and atomically: a manifest on disk
means its data file holds a complete, verified copy.  A data file without a
manifest is an interrupted compression that never touched the original.
"""

from __future__ import absolute_import, division, print_function

import errno
import fcntl
import json
import os
import stat
import zlib

from . import codes
from .errors import AnotherRunActive, CmemgzipError
from .mounts import RAM_FSTYPES
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
# Left free on the journal's filesystem: /dev/shm is shared with the host's
# applications, which must not meet ENOSPC because of us.
JOURNAL_HEADROOM = 8 * 1024 * 1024


class JournalUnsafe(CmemgzipError):
    """The journal directory exists but someone else could tamper with it."""


class Journal(object):
    """One journal directory (``<base>/sre.cmemgzip``), opened safely."""

    def __init__(self, base_dir):
        self.base_dir = base_dir
        self.path = os.path.join(base_dir, SUBDIR)
        self._dir_fd = None

    def open(self, create):
        """Open the directory; create it 0700 when asked.  False if absent."""
        if self._dir_fd is not None:
            return True
        base_fd = open_dir_nofollow(os.path.realpath(self.base_dir))
        try:
            if create:
                try:
                    os.mkdir(SUBDIR, 0o700, dir_fd=base_fd)
                except OSError as exc:
                    if exc.errno != errno.EEXIST:
                        raise
            try:
                fd = os.open(SUBDIR, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=base_fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    if exc.errno != errno.ENOENT:
                        raise JournalUnsafe('%s is not a directory' % self.path)
                    return False
                raise
        finally:
            os.close(base_fd)
        st = os.fstat(fd)
        # /dev/shm is world-writable: a directory planted there by another
        # user must never receive our copies of root-only files.
        if st.st_uid != os.geteuid() or stat.S_IMODE(st.st_mode) & 0o077:
            os.close(fd)
            raise JournalUnsafe('%s is not private to uid %d (owner %d, mode %o)'
                                % (self.path, os.geteuid(), st.st_uid, stat.S_IMODE(st.st_mode)))
        self._dir_fd = fd
        return True

    def close(self):
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None

    def available_bytes(self):
        stats = os.statvfs(self.base_dir)
        return stats.f_bavail * stats.f_frsize

    def create(self, key):
        fd = os.open(key + '.gz', _CREATE_FLAGS, 0o600, dir_fd=self._dir_fd)
        return JournalEntry(self, key, fd)

    def entries(self):
        """(committed entries, keys of data files without a manifest)."""
        names = os.listdir(self._dir_fd)
        manifests = sorted(name[:-5] for name in names if name.endswith('.json'))
        orphans = [name[:-3] for name in names if name.endswith('.gz') and name[:-3] not in manifests]
        return [JournalEntry.load(self, key) for key in manifests], orphans

    def remove(self, key):
        for name in (key + '.json', key + '.gz', key + '.json.tmp'):
            try:
                os.unlink(name, dir_fd=self._dir_fd)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        fsync_dir(self._dir_fd)

    def holds(self, key):
        """Whether a committed entry (a manifest) exists under ``key``."""
        try:
            os.stat(key + '.json', dir_fd=self._dir_fd, follow_symlinks=False)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return False
            raise
        return True

    def data_path(self, key):
        return os.path.join(self.path, key + '.gz')


class JournalEntry(object):
    """One compressed copy and, once committed, its manifest."""

    def __init__(self, journal, key, fd=None, manifest=None):
        self.journal = journal
        self.key = key
        self._fd = fd
        self.manifest = manifest

    @classmethod
    def load(cls, journal, key):
        try:
            fd = os.open(key + '.json', os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=journal._dir_fd)
            with os.fdopen(fd) as handle:
                manifest = json.load(handle)
        except (OSError, IOError, ValueError) as exc:
            manifest = {'error': 'unreadable manifest: %s' % exc}
        return cls(journal, key, manifest=manifest)

    @property
    def data_path(self):
        return self.journal.data_path(self.key)

    def write(self, chunk):
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def stored_crc(self):
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

    def open_data(self):
        return os.open(self.key + '.gz', os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.journal._dir_fd)

    def commit(self, manifest):
        """Make the data durable, then publish the manifest atomically."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self._publish(manifest)

    def update(self, **changes):
        """Replace the manifest atomically with these fields changed."""
        manifest = dict(self.manifest)
        manifest.update(changes)
        self._publish(manifest)

    def _publish(self, manifest):
        tmp = self.key + '.json.tmp'
        try:
            os.unlink(tmp, dir_fd=self.journal._dir_fd)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
        fd = os.open(tmp, _CREATE_FLAGS, 0o600, dir_fd=self.journal._dir_fd)
        with os.fdopen(fd, 'w') as handle:
            json.dump(manifest, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, self.key + '.json', src_dir_fd=self.journal._dir_fd, dst_dir_fd=self.journal._dir_fd)
        fsync_dir(self.journal._dir_fd)
        self.manifest = manifest

    def discard(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self.journal.remove(self.key)


class JournalChoice(object):
    """Where one file's copy goes, and the cap on its size with the reason for the cap."""

    __slots__ = ('journal', 'cap', 'cap_reason')

    def __init__(self, journal, cap, cap_reason):
        self.journal = journal
        self.cap = cap
        self.cap_reason = cap_reason


class JournalSet(object):
    """The journal directories of one run: opened, locked, and chosen per file."""

    def __init__(self, bases, mounts, memory_limit, check_mode):
        self.bases = [base for base in bases if base]
        self.mounts = mounts
        self.memory_limit = memory_limit
        self.check_mode = check_mode
        self.journals = []
        self.notes = []

    def open(self):
        for base in self.bases:
            journal = Journal(base)
            try:
                if not os.path.isdir(base):
                    self.notes.append('%s does not exist' % base)
                    continue
                journal.open(create=not self.check_mode)
            except JournalUnsafe as exc:
                self.notes.append(str(exc))
                continue
            except OSError as exc:
                self.notes.append('%s: %s' % (base, exc.strerror))
                continue
            mount = self.mounts.find(base)
            journal.ram_backed = bool(mount and mount.fstype in RAM_FSTYPES)
            journal.device = os.stat(base).st_dev
            self.journals.append(journal)

    def lock(self):
        """One run per host at a time: recovery must not take a live run's journal."""
        for journal in self.opened():
            try:
                fcntl.flock(journal._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise AnotherRunActive('another sre.cmemgzip run holds %s; try again when it ends' % journal.path)
                raise

    def opened(self):
        """The journals whose directory exists (in check mode none is created)."""
        return [journal for journal in self.journals if journal._dir_fd is not None]

    def close(self):
        for journal in self.journals:
            journal.close()

    @property
    def ram_backed(self):
        return any(journal.ram_backed for journal in self.journals)

    @property
    def paths(self):
        return [journal.path for journal in self.journals]

    def choose(self, st):
        """Where this file's copy goes, and how big it may grow (a JournalChoice), or None."""
        not_smaller = st.st_size - 1
        usable = []
        for journal in self.journals:
            if journal.device == st.st_dev:
                continue  # a copy on the full filesystem itself would protect nothing
            room = journal.available_bytes() - JOURNAL_HEADROOM
            if room > 0:
                usable.append((journal, room))
        if not usable:
            return None
        need = min(st.st_size, self.memory_limit)
        fitting = [(j, room) for j, room in usable if room >= (need if j.ram_backed else st.st_size)]
        journal, room = fitting[0] if fitting else max(usable, key=lambda pair: pair[1])
        caps = [(not_smaller, codes.NOT_SMALLER), (room, codes.NO_JOURNAL_SPACE)]
        if journal.ram_backed:
            caps.append((self.memory_limit, codes.MEMORY_BUDGET))
        cap, reason = min(caps, key=lambda pair: pair[0])
        return JournalChoice(journal, cap, reason)

    def no_space_detail(self):
        if self.journals:
            return ('no journal directory off this filesystem has free space (%s); set spill_dir to '
                    'another filesystem' % ', '.join(self.paths))
        return 'no usable journal directory (%s); set spill_dir to another filesystem' % '; '.join(self.notes)
