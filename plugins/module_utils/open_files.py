# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which processes hold which files, read from /proc without touching other mounts.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

A ``stat()`` of ``/proc/PID/fd/N`` follows the link into the file's own
filesystem: one stopped NFS or FUSE server anywhere on the host would block a
scan that stats every descriptor, whatever it looks for.  This scan never
does that.  For each descriptor it reads the link text (``readlink`` builds
it from the kernel's dentries, no filesystem call) and ``/proc/PID/fdinfo/N``
(``flags``, ``mnt_id``, ``ino``).  The mount id, looked up in the mountinfo
of the process's mount namespace, gives the superblock's device number, so
the descriptors of other filesystems are dropped unseen.  Only a descriptor
whose device and inode match a target is confirmed with a ``stat()``, and
that one lands on the target's own filesystem.  Each process is inspected
under a time limit (bounded.py): a process that cannot be read in time
(its ``maps`` wait for a memory lock held by a page fault on a dead mount)
is reported in ``skipped`` and counted as unknown, never waited for.
"""

from __future__ import annotations

import os
import stat
import time
from typing import Any, Callable, Iterable, Iterator

from .bounded import BoundedCaller, TimedOut
from .mounts import MountEntry, MountTable, read_mountinfo

PROC = '/proc'
# Seconds one process may take to be inspected before it is skipped.
PROCESS_TIMEOUT = 2.0
DELETED_SUFFIX = ' (deleted)'
_ACCESS = {os.O_RDONLY: 'read', os.O_WRONLY: 'write', os.O_RDWR: 'read_write'}


class Holder(object):
    """One way a process holds a file: an open descriptor or a memory map."""

    __slots__ = ('pid', 'comm', 'fd', 'flags', 'map_perms')

    def __init__(self, pid: int, comm: str | None, fd: int | None = None, flags: int | None = None,
                 map_perms: str | None = None) -> None:
        self.pid = pid
        self.comm = comm
        self.fd = fd
        self.flags = flags
        self.map_perms = map_perms

    @property
    def access(self) -> str:
        if self.fd is None:
            return 'map'
        return _ACCESS.get(self.flags & os.O_ACCMODE, 'unknown')

    @property
    def writes(self) -> bool:
        return self.access in ('write', 'read_write')

    @property
    def append(self) -> bool:
        return self.fd is not None and bool(self.flags & os.O_APPEND)

    @property
    def shared_writable_map(self) -> bool:
        return self.map_perms is not None and self.map_perms[1] == 'w' and self.map_perms[3] == 's'

    def as_dict(self) -> dict[str, Any]:
        result = {'pid': self.pid, 'comm': self.comm, 'fd': self.fd, 'access': self.access}
        if self.fd is None:
            result['map'] = self.map_perms
        else:
            result['flags'] = '0%o' % self.flags
            result['append'] = self.append
        return result

    def __repr__(self) -> str:
        return 'Holder(%d, %r, fd=%r, %s)' % (self.pid, self.comm, self.fd, self.access)


class DeletedFile(object):
    """A regular file with no name left, kept alive by open descriptors."""

    def __init__(self, st: os.stat_result, former_path: str, mount: MountEntry) -> None:
        self.st = st
        self.former_path = former_path
        self.mount = mount
        self.holders: list[Holder] = []

    @property
    def identity(self) -> tuple[int, int]:
        return self.st.st_dev, self.st.st_ino


class _Descriptor(object):
    __slots__ = ('fd', 'link', 'flags', 'mount_id', 'ino')

    def __init__(self, fd: int, link: str, flags: int, mount_id: int, ino: int | None) -> None:
        self.fd = fd
        self.link = link
        self.flags = flags
        self.mount_id = mount_id
        self.ino = ino


def _read_fdinfo(path: str) -> tuple[int, int, int | None]:
    fields = {}
    with open(path, 'rb') as handle:
        for line in handle.read().split(b'\n'):
            key, _sep, value = line.partition(b':')
            if key in (b'flags', b'mnt_id', b'ino'):
                fields[key] = value.strip()
    return (int(fields[b'flags'], 8), int(fields[b'mnt_id']),
            int(fields[b'ino']) if b'ino' in fields else None)


def _read_descriptors(proc: str, pid: int) -> list[_Descriptor]:
    """The descriptors of ``pid`` that name a path (no socket, pipe or anon inode)."""
    fd_dir = '%s/%d/fd' % (proc, pid)
    found = []
    for name in os.listdir(fd_dir):
        try:
            link = os.readlink('%s/%s' % (fd_dir, name))
            if not link.startswith('/'):
                continue
            flags, mount_id, ino = _read_fdinfo('%s/%d/fdinfo/%s' % (proc, pid, name))
        except (OSError, IOError, KeyError, ValueError):
            continue  # closed meanwhile
        found.append(_Descriptor(int(name), link, flags, mount_id, ino))
    return found


def _read_maps(proc: str, pid: int, devices: set[int]) -> list[tuple[int, int, str]]:
    """(device, inode, perms) of the file mappings of ``pid`` on ``devices``."""
    found = []
    with open('%s/%d/maps' % (proc, pid), 'rb') as handle:
        for line in handle:
            fields = line.split(None, 5)
            if len(fields) < 5 or fields[4] == b'0':
                continue
            major, _sep, minor = fields[3].partition(b':')
            device = os.makedev(int(major, 16), int(minor, 16))
            if device in devices:
                found.append((device, int(fields[4]), fields[1].decode('ascii')))
    return found


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def command_name(pid: int, proc: str = PROC) -> str | None:
    try:
        with open('%s/%d/comm' % (proc, pid), 'rb') as handle:
            return handle.read().strip().decode('utf-8', 'backslashreplace')
    except (IOError, OSError):
        return None


class ProcScan(object):
    """One pass over /proc; ``skipped`` lists the processes it could not read in time."""

    def __init__(self, mounts: MountTable, timeout: float = PROCESS_TIMEOUT, proc: str = PROC) -> None:
        self.proc = proc
        self.caller = BoundedCaller(timeout)
        self.skipped: list[dict[str, Any]] = []
        self.unknown: set[int] = set()
        self.processes = 0
        self.seconds = 0.0
        self._own_pid = os.getpid()
        self._namespaces = {self._namespace(self._own_pid): dict((m.mount_id, m) for m in mounts.entries)}

    # -- the public questions ---------------------------------------------

    def holders(self, targets: Iterable[tuple[tuple[int, int], int]]) -> dict[tuple[int, int], list[Holder]]:
        """``{identity: [Holder, ...]}`` for ``targets``: (identity, mount device) pairs.

        ``identity`` is the (st_dev, st_ino) of a file, ``mount device`` the
        device number of its mount in mountinfo (they differ on btrfs
        subvolumes).  A file nobody holds is absent from the answer.
        """
        wanted = {}
        for identity, device in targets:
            for dev in set((device, identity[0])):
                wanted.setdefault(dev, {})[identity[1]] = identity
        found = {}
        if not wanted:
            return found
        started = time.monotonic()
        for pid in self._pids():
            descriptors = self._descriptors(pid)
            if descriptors is None:
                continue
            hits = []
            for item, mount in descriptors:
                if mount is None:
                    continue
                device = os.makedev(mount.major, mount.minor)
                inodes = wanted.get(device)
                if inodes is None or (item.ino is not None and item.ino not in inodes):
                    continue
                st = self._bounded(pid, _stat, '%s/%d/fd/%d' % (self.proc, pid, item.fd))
                identity = (st.st_dev, st.st_ino) if st is not None else None
                if identity in inodes.values():
                    hits.append((identity, Holder(pid, None, fd=item.fd, flags=item.flags)))
            for device, ino, perms in self._bounded(pid, _read_maps, self.proc, pid, set(wanted)) or ():
                identity = wanted[device].get(ino)
                if identity is not None:
                    hits.append((identity, Holder(pid, None, map_perms=perms)))
            if hits:
                comm = command_name(pid, self.proc)
                for identity, holder in hits:
                    holder.comm = comm
                    found.setdefault(identity, []).append(holder)
        self.seconds += time.monotonic() - started
        return found

    def deleted(self, accept_mount: Callable[[MountEntry], bool]) -> list[DeletedFile]:
        """Regular files without a name that processes still hold, as DeletedFile.

        ``accept_mount(mount_entry)`` says which mounts to look at; the
        descriptors of any other mount are never stat()ed.
        """
        found = {}
        started = time.monotonic()
        for pid in self._pids():
            descriptors = self._descriptors(pid)
            for item, mount in descriptors or ():
                if not item.link.endswith(DELETED_SUFFIX) or mount is None or not accept_mount(mount):
                    continue
                st = self._bounded(pid, _stat, '%s/%d/fd/%d' % (self.proc, pid, item.fd))
                if st is None or not stat.S_ISREG(st.st_mode) or st.st_nlink != 0:
                    continue
                key = (st.st_dev, st.st_ino)
                if key not in found:
                    found[key] = DeletedFile(st, item.link[:-len(DELETED_SUFFIX)], mount)
                found[key].holders.append(Holder(pid, command_name(pid, self.proc), fd=item.fd,
                                                 flags=item.flags))
        self.seconds += time.monotonic() - started
        return list(found.values())

    def report(self) -> dict[str, Any]:
        return {'processes': self.processes, 'seconds': round(self.seconds, 3),
                'skipped': list(self.skipped)}

    # -- one process --------------------------------------------------------

    def _pids(self) -> Iterator[int]:
        try:
            names = os.listdir(self.proc)
        except OSError:
            return
        for name in names:
            if name.isdigit() and int(name) != self._own_pid:
                self.processes += 1
                yield int(name)

    def _descriptors(self, pid: int) -> list[tuple[_Descriptor, MountEntry | None]] | None:
        """[(descriptor, MountEntry or None)] of ``pid``; None when it cannot be read."""
        try:
            descriptors = self.caller.call(_read_descriptors, self.proc, pid)
        except TimedOut as exc:
            self._skip(pid, 'its descriptors could not be read: %s' % exc)
            return None
        except OSError:
            return None  # gone, or not ours to read
        if not descriptors:
            return descriptors
        table = self._mount_table(pid)
        if table is None:
            return None
        # A mount id missing from the table is an internal mount (memfd, a
        # detached tree): never a target.
        return [(item, table.get(item.mount_id)) for item in descriptors]

    def _mount_table(self, pid: int) -> dict[int, MountEntry] | None:
        """{mount id: MountEntry} of ``pid``'s mount namespace, read once per namespace."""
        namespace = self._namespace(pid)
        if namespace is None:
            return None
        if namespace not in self._namespaces:
            try:
                entries = self.caller.call(read_mountinfo, '%s/%d/mountinfo' % (self.proc, pid))
            except TimedOut:
                self._namespaces[namespace] = None
            except (OSError, IOError, ValueError):
                return None  # gone: the next process of that namespace reads it
            else:
                self._namespaces[namespace] = dict((m.mount_id, m) for m in entries)
        table = self._namespaces[namespace]
        if table is None:
            self._skip(pid, 'the mount table of its namespace could not be read in time')
        return table

    def _namespace(self, pid: int) -> str | None:
        try:
            return os.readlink('%s/%d/ns/mnt' % (self.proc, pid))
        except OSError:
            return None

    def _bounded(self, pid: int, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` within the time limit; None when it failed or timed out."""
        try:
            return self.caller.call(function, *args)
        except TimedOut as exc:
            self._skip(pid, '%s: %s' % (function.__name__.strip('_').replace('_', ' '), exc))
        except (OSError, IOError, ValueError):
            pass
        return None

    def _skip(self, pid: int, why: str) -> None:
        if pid not in self.unknown:
            self.unknown.add(pid)
            self.skipped.append({'pid': pid, 'comm': command_name(pid, self.proc), 'reason': why})


def read_locks(identities: Iterable[tuple[int, int]], devices: dict[int, int] | None = None,
               path: str = PROC + '/locks') -> dict[tuple[int, int], list[tuple[str, str, int, str, str]]]:
    """``{identity: [(kind, mode, pid, start, end)]}``: the locks /proc/locks lists on ``identities``.

    ``devices`` maps a mount device number to the identities' st_dev where
    they differ (btrfs).  Waiters (``->`` lines) are left out.
    """
    wanted = set(identities)
    devices = devices or {}
    found = {}
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except (IOError, OSError):
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[1] == '->':
            continue
        try:
            major, minor, ino = fields[5].split(':')
            device = os.makedev(int(major, 16), int(minor, 16))
            identity = (devices.get(device, device), int(ino))
            pid = int(fields[4])
        except ValueError:
            continue
        if identity in wanted:
            found.setdefault(identity, []).append((fields[1], fields[3], pid, fields[6], fields[7]))
    return found


def holders(identities: Iterable[tuple[int, int]],
            mounts: MountTable | None = None) -> dict[tuple[int, int], list[dict[str, Any]]]:
    """``{(st_dev, st_ino): [holder dict, ...]}`` for files given by identity alone.

    One ProcScan; the mount device of each file is looked up in mountinfo by
    its st_dev (callers that know the path should use ProcScan.holders with
    the path's mount, which also covers btrfs subvolumes).
    """
    scan = ProcScan(mounts or MountTable())
    found = scan.holders((identity, identity[0]) for identity in identities)
    return dict((identity, [h.as_dict() for h in items]) for identity, items in found.items())
