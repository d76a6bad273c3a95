# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Get back the space of files that are deleted but still open (reclaim_deleted).

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

``df`` says 100 %, ``du`` finds nothing: a big log was deleted while its
process still holds it.  ``ReclaimRun`` finds every such file (open_files:
descriptors of regular files with no link left, on local filesystems only,
one entry per inode whatever the number of pids and fds), saves its content
through ``/proc/PID/fd/N`` with the prefix protocol (prefix.py) - the same
collapse or punch as live mode when a holder still appends, a truncate when
none writes - and writes ``NAME-deleted-pidPID-TIME.gz`` into ``save_dir``
(default: the directory the file was in, when it still exists).
"""

from __future__ import annotations

import fnmatch
import os
import time
from typing import TYPE_CHECKING, Any, Iterable

from . import codes, falloc, gz_output
from .file_job import Skip
from .journal_set import JournalSet
from .live import refusals
from .mounts import MountTable, exclusion_reason, is_under
from .open_files import ProcScan, read_locks
from .prefix import PrefixSaver, Target, record_outcome
from .recovery import recover_journals
from .results import FileResult
from .safe_fs import open_dir_nofollow
from .sysinfo import memory_available, peak_rss, usable_cpus
from .usage import statvfs_usage

if TYPE_CHECKING:
    from .mounts import MountEntry
    from .open_files import DeletedFile, Holder

KIND_DELETED = 'deleted'
DEFAULT_MEMORY_FRACTION = 0.5


class ReclaimOptions(object):
    """Everything ``ReclaimRun`` needs, in plain units."""

    def __init__(self, paths: Iterable[str] = (), min_size: int = 1024 * 1024, pids: Iterable[int] = (),
                 process_names: Iterable[str] = (), save: bool = True, save_dir: str | None = None, level: int = 6,
                 threads: int = 0, memory_limit: int | None = None, journal_dir: str = '/dev/shm',
                 spill_dir: str | None = None, check_mode: bool = False) -> None:
        self.paths = list(paths or ())
        self.min_size = min_size
        self.pids = set(pids or ())
        self.process_names = list(process_names or ())
        self.save = save
        self.save_dir = save_dir
        self.level = level
        self.threads = threads
        self.memory_limit = memory_limit
        self.journal_dir = journal_dir
        self.spill_dir = spill_dir
        self.check_mode = check_mode


class ReclaimRun(object):
    """One invocation of reclaim_deleted."""

    def __init__(self, options: ReclaimOptions) -> None:
        self.options = options
        self.mounts = MountTable()
        self.available_memory = memory_available(self.mounts.entries)
        self.memory_limit = options.memory_limit or int(self.available_memory * DEFAULT_MEMORY_FRACTION)
        self.threads = options.threads or usable_cpus(self.mounts.entries)
        self.journals = JournalSet((options.journal_dir, options.spill_dir), self.mounts, self.memory_limit,
                                   options.check_mode)
        self.saver = PrefixSaver(self.journals, options.level, self.threads)
        self.scan = ProcScan(self.mounts)
        self.files: list[FileResult] = []
        self.filesystems: dict[str, dict[str, Any]] = {}
        self._own_view = _view(os.getpid())

    def execute(self) -> dict[str, Any]:
        self.journals.open()
        try:
            self.journals.lock()
            results, self.saver.pending_keys = recover_journals(
                self.journals.opened(), self.options.check_mode, self.mounts, self.journals.notes)
            self.files.extend(results)
            for found in self.find():
                self.files.append(self.reclaim(found))
        finally:
            self.journals.close()
        for filesystem in self.filesystems.values():
            filesystem['after'] = _usage(filesystem['mount'])
        return self.summary()

    # -- what to look at ------------------------------------------------------

    def find(self) -> list[DeletedFile]:
        """The deleted-but-open files the options select, the biggest first."""
        limits = self._path_limits()
        found = self.scan.deleted(lambda mount: self._accept_mount(mount, limits))
        selected = [f for f in found if self._selected(f, limits)]
        return sorted(selected, key=lambda f: f.st.st_blocks, reverse=True)

    def _path_limits(self) -> list[tuple[int, str | None]]:
        """[(device, directory or None)] from ``paths``: a mount point, or a directory on it."""
        limits = []
        for path in self.options.paths:
            real = os.path.realpath(path)
            mount = self.mounts.find(real)
            if mount is not None:
                limits.append((os.makedev(mount.major, mount.minor), None if real == mount.mount_point else real))
        return limits

    def _accept_mount(self, mount: MountEntry, limits: list[tuple[int, str | None]]) -> bool:
        if exclusion_reason(mount) is not None:
            return False  # pseudo, network, read-only images: never looked at
        if not self.options.paths:
            return True
        return os.makedev(mount.major, mount.minor) in set(device for device, _dir in limits)

    def _selected(self, found: DeletedFile, limits: list[tuple[int, str | None]]) -> bool:
        options = self.options
        if found.st.st_size < options.min_size or found.st.st_blocks == 0:
            return False  # too small, or nothing to get back (already reclaimed)
        if limits:
            device = os.makedev(found.mount.major, found.mount.minor)
            if not any(device == d and (directory is None or is_under(found.former_path, directory))
                       for d, directory in limits):
                return False
        if options.pids and not any(h.pid in options.pids for h in found.holders):
            return False
        if options.process_names and not any(
                fnmatch.fnmatchcase(h.comm or '', name) for h in found.holders for name in options.process_names):
            return False
        return True

    # -- one file -----------------------------------------------------------

    def reclaim(self, found: DeletedFile) -> FileResult:
        started = time.monotonic()
        result = FileResult(found.former_path, None, original_size=found.st.st_size,
                            pids=[h.as_dict() for h in found.holders])
        result.update(allocated=found.st.st_blocks * 512, deleted=True)
        record_outcome(result, lambda: self._reclaim(found))
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _reclaim(self, found: DeletedFile) -> dict[str, Any]:
        filesystem = self._filesystem(found)
        self._check_holders(found)
        # The name says which process kept it: the writer, when one writes.
        holder = sorted(found.holders, key=lambda h: (not h.writes, h.pid))[0]
        fd = self._open(found, holder)
        try:
            if not self.options.save:
                return self._free_only(fd, found)
            out_dir = self._save_dir(found, holder)
            out_dir_fd = open_dir_nofollow(out_dir)
            try:
                appenders = [h for h in found.holders if h.writes]
                methods = (falloc.methods_to_try(filesystem['fstype'], 'auto') if appenders
                           else [falloc.TRUNCATE])
                name = os.path.basename(found.former_path)
                target = Target(fd, out_dir_fd, out_dir, gz_output.rotation_name(name, tag='deleted-pid%d' % holder.pid),
                                name, methods,
                                {'kind': KIND_DELETED, 'former_path': found.former_path, 'dir': out_dir,
                                 'name': name, 'holders': [{'pid': h.pid, 'fd': h.fd} for h in found.holders]},
                                recheck=lambda: self._check_holders(found, rescan=True))
                if self.options.check_mode:
                    fields = self.saver.measure(target)
                    fields.update(action=codes.WOULD_RECLAIM, dest=os.path.join(out_dir, target.out_name))
                    return fields
                fields = self.saver.run(target)
                fields['action'] = codes.RECLAIMED
                return fields
            finally:
                os.close(out_dir_fd)
        finally:
            os.close(fd)

    def _check_holders(self, found: DeletedFile, rescan: bool = False) -> None:
        """Refuse what a collapse, punch or truncate would hurt (live.refusals); the maps count too."""
        device = os.makedev(found.mount.major, found.mount.minor)
        scan = ProcScan(self.mounts)
        holders = scan.holders([(found.identity, device)]).get(found.identity, [])
        if rescan and not holders:
            raise Skip(codes.NOT_FOUND, 'no process holds it any more: its space was given back when the last one '
                       'closed it')
        locks = read_locks([found.identity], {device: found.st.st_dev}).get(found.identity, [])
        why = refusals(holders, locks, [(s['pid'], s['comm']) for s in scan.skipped])
        if why:
            raise Skip(codes.HOLDER_REFUSED, '; '.join(why), pids=[h.as_dict() for h in holders])

    def _open(self, found: DeletedFile, holder: Holder) -> int:
        mode = os.O_RDONLY if self.options.check_mode else os.O_RDWR
        try:
            fd = os.open('/proc/%d/fd/%d' % (holder.pid, holder.fd), mode | os.O_CLOEXEC)
        except OSError:
            raise Skip(codes.NOT_FOUND, 'pid %d closed it meanwhile' % holder.pid)
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != found.identity or st.st_nlink != 0:
            os.close(fd)
            raise Skip(codes.CHANGED_WHILE_READING, 'pid %d holds another file at fd %d now' % (holder.pid, holder.fd))
        return fd

    def _save_dir(self, found: DeletedFile, holder: Holder) -> str:
        if self.options.save_dir:
            return os.path.realpath(self.options.save_dir)
        former_dir = os.path.dirname(found.former_path)
        # The link text is the path as the holder sees it: in another mount
        # namespace or root (a container) it names another directory here.
        if _view(holder.pid) == self._own_view and os.path.isdir(former_dir):
            return os.path.realpath(former_dir)
        raise Skip(codes.NO_SAVE_DIR, 'the directory it was in (%s) does not exist here%s; set save_dir'
                   % (former_dir, '' if _view(holder.pid) == self._own_view else
                      ' (the holder runs in another mount namespace or root)'))

    def _free_only(self, fd: int, found: DeletedFile) -> dict[str, Any]:
        """save: false - truncate (an O_APPEND writer goes on at the new end)."""
        if self.options.check_mode:
            return {'action': codes.WOULD_RECLAIM, 'bytes_saved': found.st.st_blocks * 512,
                    'strategy': falloc.TRUNCATE}
        stall = falloc.free_prefix(fd, falloc.TRUNCATE, 0, found.st.st_size)
        after = os.fstat(fd).st_blocks * 512
        return {'action': codes.RECLAIMED, 'bytes_saved': max(0, found.st.st_blocks * 512 - after),
                'strategy': falloc.TRUNCATE, 'writer_stall': round(stall, 6),
                'detail': 'freed without saving (save: false)'}

    # -- filesystems and the result --------------------------------------------

    def _filesystem(self, found: DeletedFile) -> dict[str, Any]:
        mount = found.mount
        key = '%d:%d' % (mount.major, mount.minor)
        if key not in self.filesystems:
            ours = [m for m in self.mounts.entries if (m.major, m.minor) == (mount.major, mount.minor)]
            point = ours[0].mount_point if ours else None
            self.filesystems[key] = {'mount': point, 'device': mount.source, 'fstype': mount.fstype,
                                     'before': _usage(point)}
        return self.filesystems[key]

    def summary(self) -> dict[str, Any]:
        totals = dict.fromkeys(codes.ACTIONS, 0)
        totals.update(candidates=len(self.files), original_size=0, compressed_size=0, bytes_saved=0,
                      allocated=0)
        for item in self.files:
            totals[item.action] += 1
            totals['allocated'] += item.extra.get('allocated', 0)
            if item.action in codes.FREEING_ACTIONS:
                totals['original_size'] += item.original_size or 0
                totals['compressed_size'] += item.compressed_size or 0
                totals['bytes_saved'] += item.bytes_saved or 0
        changed = any(totals[action] for action in codes.CHANGING_ACTIONS)
        verb = 'would free' if self.options.check_mode else 'freed'
        msg = '%s %d bytes of deleted but open files: %d reclaimed, %d would reclaim, %d recovered, %d skipped, ' \
              '%d failed' % (verb, totals['bytes_saved'], totals[codes.RECLAIMED], totals[codes.WOULD_RECLAIM],
                             totals[codes.RECOVERED], totals[codes.SKIPPED], totals[codes.FAILED])
        return {
            'changed': changed,
            'failed': bool(totals[codes.FAILED]),
            'msg': msg,
            'files': [item.as_dict() for item in self.files],
            'totals': totals,
            'filesystems': sorted(self.filesystems.values(), key=lambda f: f['mount'] or ''),
            'memory': {'limit': self.memory_limit, 'available': self.available_memory, 'peak_rss': peak_rss(),
                       'peak_journal': self.saver.peak_journal, 'threads': self.threads},
            'journal': {'dir': self.options.journal_dir, 'spill_dir': self.options.spill_dir,
                        'ram_backed': self.journals.ram_backed, 'usable': self.journals.paths,
                        'notes': self.journals.notes},
            'open_files_scan': self.scan.report(),
        }


def _view(pid: int) -> tuple[str, str] | None:
    """(mount namespace, root) of a process: where its paths mean what ours mean."""
    try:
        return os.readlink('/proc/%d/ns/mnt' % pid), os.readlink('/proc/%d/root' % pid)
    except OSError:
        return None


def _usage(mount_point: str | None) -> dict[str, Any] | None:
    if mount_point is None:
        return None
    try:
        return statvfs_usage(mount_point)
    except OSError:
        return None


def reclaim(options: ReclaimOptions) -> dict[str, Any]:
    """Find, save and free what ``options`` selects; the module's result dict."""
    return ReclaimRun(options).execute()
