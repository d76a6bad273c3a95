# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where each verified copy goes: the journal directories of one run.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

The candidates, in order of preference:

1. ``journal_dir`` (normally RAM), then ``spill_dir`` (normally a disk): each
   a private directory of this user (journal.journal_dir_name).
2. The file's own filesystem, when it has room to spare: like gzip, the copy
   then sits beside the data it protects, in ``<mount point>/.<name>``.  It
   is made only when no other journal can hold the copy, never on a
   filesystem with less than OWN_FS_RESERVE of its size available, and it
   is removed again when it is empty.  Every run looks for such directories
   at the root of each local filesystem, so an interrupted run's copy there
   is recovered like any other.

A journal covers a file when its cap (room, and for RAM the memory budget)
is at least the file's size less one byte: beyond that, the copy would save
nothing anyway.  The first journal that covers the file takes it; when none
does, the one with the largest cap.  So a file larger than ``memory_limit``
goes to ``spill_dir`` even while ``/dev/shm`` has room.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import TYPE_CHECKING, Iterable

from . import codes
from .errors import AnotherRunActive
from .journal import Journal, JournalUnsafe, journal_dir_name
from .mounts import RAM_FSTYPES, classify
from .safe_fs import open_dir_nofollow

if TYPE_CHECKING:
    from .mounts import MountTable

# Left free on a journal's filesystem: /dev/shm is shared with the host's
# applications, which must not meet ENOSPC because of us.
JOURNAL_HEADROOM = 8 * 1024 * 1024
# A journal on the file's own filesystem leaves at least this fraction of
# the filesystem available: a filesystem near full never holds one.
OWN_FS_RESERVE = 0.10
# Where a journal on the file's own filesystem may be made and is looked for:
# filesystems of this host's own disks and RAM.  Never a network or FUSE
# mount (a stopped server blocks even a lookup there) nor a kernel one.
OWN_FS_TYPES = frozenset((
    'ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'zfs', 'bcachefs', 'f2fs', 'jfs', 'reiserfs', 'nilfs2',
    'vfat', 'exfat', 'ntfs3', 'hfsplus', 'overlay', 'tmpfs',
))


_HELD = 'held'
_GONE = 'gone'


class JournalChoice(object):
    """Where one file's copy goes, and the cap on its size with the reason for the cap."""

    __slots__ = ('journal', 'cap', 'cap_reason')

    def __init__(self, journal: Journal | None, cap: int, cap_reason: str) -> None:
        self.journal = journal
        self.cap = cap
        self.cap_reason = cap_reason


def own_fs_journal_name(uid: int | None = None) -> str:
    return '.' + journal_dir_name(uid)


class JournalSet(object):
    """The journal directories of one run: opened, locked, and chosen per file."""

    def __init__(self, bases: Iterable[str | None], mounts: MountTable, memory_limit: int | None,
                 check_mode: bool) -> None:
        self.bases = [base for base in bases if base]
        self.mounts = mounts
        self.memory_limit = memory_limit
        self.check_mode = check_mode
        self.journals: list[Journal] = []  # journal_dir, spill_dir: in the user's order
        # st_dev -> Journal on that filesystem, or None when it cannot have one
        self.own_fs: dict[int, Journal | None] = {}
        self.unsafe: list[str] = []  # why a journal directory was refused (planted, shared)
        self.notes: list[str] = []
        self._locked = False

    # -- opening ----------------------------------------------------------

    def open(self) -> None:
        for base in self.bases:
            if not os.path.isdir(base):
                self.notes.append('%s does not exist' % base)
                continue
            journal = self._open(Journal(base), create=not self.check_mode)
            if journal is not None:
                self.journals.append(journal)
        self._find_own_fs_journals()

    def _open(self, journal: Journal, create: bool, unsafe_blocks: bool = True) -> Journal | None:
        """The journal opened (or, absent in check mode, described), or None with a note.

        ``unsafe_blocks``: a planted directory there is a reason files cannot be
        journaled (``journal_unsafe``), not just a note.
        """
        try:
            journal.open(create=create)
        except JournalUnsafe as exc:
            if unsafe_blocks:
                self.unsafe.append(str(exc))
            self.notes.append(str(exc))
            return None
        except OSError as exc:
            self.notes.append('%s: %s' % (journal.path, exc.strerror))
            return None
        mount = self.mounts.find(journal.base_dir)
        journal.ram_backed = bool(mount and mount.fstype in RAM_FSTYPES)
        journal.device = os.stat(journal.base_dir).st_dev
        return journal

    def _find_own_fs_journals(self) -> None:
        """Journals that runs left on the files' own filesystems, for recovery.

        Only the roots of OWN_FS_TYPES filesystems are looked at (never a
        network or FUSE mount, whose server may be dead): one lstat each.
        """
        name = own_fs_journal_name()
        seen = set()
        groups, _excluded = classify(self.mounts.entries)
        for members in groups:
            for mount in members:
                if mount.fstype not in OWN_FS_TYPES:
                    continue
                path = os.path.join(mount.mount_point, name)
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue  # the same directory through a bind mount
                seen.add((st.st_dev, st.st_ino))
                journal = self._open(Journal(mount.mount_point, name), create=False, unsafe_blocks=False)
                if journal is not None and journal.opened:
                    self.own_fs[journal.device] = journal

    def lock(self) -> None:
        """One run per user and host at a time: recovery must not take a live run's journal.

        journal_dir and spill_dir are this run's own: another run holding one
        stops this run.  A journal found on some filesystem's root may belong
        to a run working elsewhere: held, it is left alone for this run.
        """
        for journal in self.journals:
            if journal.opened:
                self._lock(journal)
        for device, journal in list(self.own_fs.items()):
            if journal is not None and self._claim(journal) is not True:
                self.own_fs[device] = None
        self._locked = True

    def _claim(self, journal: Journal) -> bool | str:
        """Lock an own-filesystem journal: True, or (closed) HELD by a living run (noted) or GONE (removed empty)."""
        try:
            self._lock(journal)
        except AnotherRunActive:
            self.notes.append('%s is in use by another run: left alone' % journal.path)
            journal.close()
            return _HELD
        if os.fstat(journal._dir_fd).st_nlink == 0:
            journal.close()  # its run removed it, empty, while we opened it
            return _GONE
        return True

    @staticmethod
    def _lock(journal: Journal) -> None:
        try:
            fcntl.flock(journal._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise AnotherRunActive('another sre.cmemgzip run holds %s; try again when it ends' % journal.path)
            raise

    def opened(self) -> list[Journal]:
        """The journals whose directory exists (in check mode none is created)."""
        everything = self.journals + [journal for journal in self.own_fs.values() if journal is not None]
        return [journal for journal in everything if journal.opened]

    def close(self) -> None:
        for journal in self.own_fs.values():
            if journal is not None and journal.opened:
                _remove_if_empty(journal)
        for journal in self.journals + [journal for journal in self.own_fs.values() if journal is not None]:
            journal.close()

    # -- what the result reports ------------------------------------------

    @property
    def ram_backed(self) -> bool:
        return any(journal.ram_backed for journal in self.journals)

    @property
    def paths(self) -> list[str]:
        own = [journal.path for journal in self.own_fs.values() if journal is not None]
        return [journal.path for journal in self.journals] + own

    # -- placement ----------------------------------------------------------

    def choose(self, st: os.stat_result, dir_path: str | None = None) -> JournalChoice | None:
        """Where this file's copy goes, and how big it may grow (a JournalChoice), or None.

        ``dir_path`` (the file's directory) lets the file's own filesystem hold
        the copy when nothing else can; without it, only journal_dir and
        spill_dir are considered.
        """
        worst = st.st_size - 1
        choices = [choice for choice in (self._choice(journal, st) for journal in self.journals) if choice]
        if dir_path is not None and not any(choice.cap >= worst for choice in choices):
            own = self._own_fs_journal(st, dir_path)
            choice = self._choice(own, st) if own is not None else None
            if choice is not None:
                choices.append(choice)
        if not choices:
            return None
        covering = [choice for choice in choices if choice.cap >= worst]
        return covering[0] if covering else max(choices, key=lambda choice: choice.cap)

    def _choice(self, journal: Journal, st: os.stat_result) -> JournalChoice | None:
        room = self._room(journal, same_fs=journal.device == st.st_dev)
        if room <= 0:
            return None
        caps = [(st.st_size - 1, codes.NOT_SMALLER), (room, codes.NO_JOURNAL_SPACE)]
        if journal.ram_backed:
            caps.append((self.memory_limit, codes.MEMORY_BUDGET))
        cap, reason = min(caps, key=lambda pair: pair[0])
        return JournalChoice(journal, cap, reason)

    @staticmethod
    def _room(journal: Journal, same_fs: bool) -> int:
        stats = os.statvfs(journal.base_dir)
        reserve = JOURNAL_HEADROOM
        if same_fs:
            # The copy would sit on the filesystem it is meant to relieve.
            reserve = max(reserve, int(stats.f_blocks * stats.f_frsize * OWN_FS_RESERVE))
        return stats.f_bavail * stats.f_frsize - reserve

    def _own_fs_journal(self, st: os.stat_result, dir_path: str) -> Journal | None:
        """The journal at the root of the file's own filesystem, made on first need."""
        if st.st_dev in self.own_fs:
            return self.own_fs[st.st_dev]
        mount = self.mounts.find(dir_path, st.st_dev)
        if mount is None or mount.fstype not in OWN_FS_TYPES:
            return None
        try:
            if self._room(Journal(mount.mount_point, own_fs_journal_name()), same_fs=True) <= 0:
                return None  # not remembered: the room may grow as files are compressed
        except OSError:
            return None
        # Twice at most: another run may remove the directory, empty, between
        # our mkdir and our lock; it is then made anew.
        for _attempt in range(2):
            journal = self._open(Journal(mount.mount_point, own_fs_journal_name()), create=not self.check_mode)
            if journal is not None and journal.device != st.st_dev:
                self.notes.append('%s is not on the filesystem of %s' % (journal.path, dir_path))
                journal.close()
                journal = None
            if journal is None or not journal.opened:
                break
            claimed = self._claim(journal)
            if claimed is not _GONE:
                journal = journal if claimed is True else None
                break
            journal = None
        self.own_fs[st.st_dev] = journal
        return journal

    def no_space_detail(self) -> str:
        return self.no_choice()[1]

    def no_choice(self) -> tuple[str, str]:
        """(reason, detail) for a file no journal can take."""
        if self.unsafe:
            return codes.JOURNAL_UNSAFE, '; '.join(self.unsafe + ['no other journal directory has room; '
                                                                  'set spill_dir to another filesystem'])
        if self.journals:
            return codes.NO_JOURNAL_SPACE, (
                'no journal directory has room (%s), and the file\'s own filesystem has less than %d %% '
                'available; set spill_dir to another filesystem' % (', '.join(self.paths), OWN_FS_RESERVE * 100))
        return codes.NO_JOURNAL_SPACE, ('no usable journal directory (%s); set spill_dir to another filesystem'
                                        % '; '.join(self.notes))


def _remove_if_empty(journal: Journal) -> None:
    """Take an own-filesystem journal away again once nothing is left in it."""
    try:
        if os.listdir(journal._dir_fd):
            return
        mine = os.fstat(journal._dir_fd)
        base_fd = open_dir_nofollow(os.path.realpath(journal.base_dir))
        try:
            there = os.stat(journal.name, dir_fd=base_fd, follow_symlinks=False)
            if (there.st_dev, there.st_ino) == (mine.st_dev, mine.st_ino):
                os.rmdir(journal.name, dir_fd=base_fd)
        finally:
            os.close(base_fd)
    except OSError:
        pass  # kept: the next run looks there anyway
