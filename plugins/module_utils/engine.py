# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compress files in RAM and put the .gz where the original was.

``run(Options(...))`` recovers what an interrupted run left, finds the
candidates, and for each one: streams it through the parallel deflater into
the journal, verifies, and only then replaces the original inode by its own
compressed copy (file_job.py).  It returns a plain dict: the module's RETURN.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from . import codes, open_files
from .discovery import Candidate, Discovery
from .estimate import SAMPLE
from .file_job import FileCompressor
from .gzip_member import threads_within
from .journal_set import JournalSet
from .live import LiveCompressor
from .marker import lost_rewrites, paths_to_check
from .mounts import MountTable
from .recovery import recover_journals
from .result_cap import DEFAULT_MAX_FILE_RESULTS, cap_results
from .results import FileResult, printable
from .sysinfo import DEFAULT_MEMORY_FRACTION, memory_available, memory_budget, peak_rss, usable_cpus
from .usage import statvfs_usage as filesystem_usage

OPEN_FILES_LIVE = 'live'
# Skips of discovery that do not concern a held file in live mode.
_LIVE_ONLY_SKIPS = (codes.TOO_YOUNG, codes.DEST_EXISTS)


class Options(object):
    """Everything ``run`` needs, in plain units (bytes, seconds)."""

    def __init__(self, paths: Iterable[str], recurse: bool = False, one_file_system: bool = True,
                 patterns: Iterable[str] = (), excludes: Iterable[str] = (), min_size: int = 1024 * 1024,
                 min_age: float = 0, level: int = 9, threads: int = 0, memory_limit: int | None = None,
                 largest_first: bool = True, target_free_bytes: int | None = None,
                 target_free_percent: float | None = None, follow: bool = False, open_files: str = 'skip',
                 journal_dir: str = '/dev/shm', spill_dir: str | None = None, check_mode: bool = False,
                 live_method: str = 'auto', memory_fraction: float = DEFAULT_MEMORY_FRACTION,
                 estimate: str = SAMPLE, min_age_patterns: Iterable[str] = (),
                 max_file_results: int | None = DEFAULT_MAX_FILE_RESULTS, strategy: str = 'auto') -> None:
        self.paths = list(paths)
        self.recurse = recurse
        self.one_file_system = one_file_system
        self.patterns = list(patterns or ())
        self.excludes = list(excludes or ())
        self.min_size = min_size
        self.min_age = min_age
        self.min_age_patterns = list(min_age_patterns or ())
        self.level = level
        self.threads = threads
        self.memory_limit = memory_limit
        self.memory_fraction = memory_fraction
        self.largest_first = largest_first
        self.target_free_bytes = target_free_bytes
        self.target_free_percent = target_free_percent
        self.follow = follow
        self.open_files = open_files
        self.live_method = live_method
        self.journal_dir = journal_dir
        self.spill_dir = spill_dir
        self.check_mode = check_mode
        # Check mode only: SAMPLE extrapolates from samples of each file, EXACT compresses it whole.
        self.estimate = estimate
        self.max_file_results = max_file_results
        self.strategy = strategy


class Run(object):
    """One invocation: its journals, filesystems and results."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.mounts = MountTable()
        self.available_memory = memory_available(self.mounts.entries)
        self.memory_limit = memory_budget(self.available_memory, options.memory_limit, options.memory_fraction)
        # Blocks in flight cost memory: no more threads than the budget holds.
        self.threads = threads_within(self.memory_limit, options.threads or usable_cpus(self.mounts.entries))
        self.files: list[FileResult] = []
        self.filesystems: dict[str, dict[str, Any]] = {}
        self.journals = JournalSet((options.journal_dir, options.spill_dir), self.mounts, self.memory_limit,
                                   options.check_mode)
        self.compressor = FileCompressor(options, self.threads, self.memory_limit, self.journals)
        self.scan = open_files.ProcScan(self.mounts)
        self.live = LiveCompressor(options, self.threads, self.journals, self.mounts)

    def _recover(self) -> None:
        results, pending = recover_journals(self.journals.opened(), self.options.check_mode, self.mounts,
                                            self.journals.notes)
        self.files.extend(results)
        self.compressor.pending_keys = pending
        self.live.saver.pending_keys = pending

    # -- filesystems ----------------------------------------------------

    def _filesystem(self, candidate: Candidate) -> dict[str, Any]:
        mount = self.mounts.find(candidate.dir_path, candidate.st.st_dev)
        key = mount.mount_point if mount else candidate.dir_path
        if key not in self.filesystems:
            self.filesystems[key] = {
                'mount': key,
                'device': mount.source if mount else None,
                'fstype': mount.fstype if mount else None,
                'before': filesystem_usage(key),
            }
        return self.filesystems[key]

    def _mount_device(self, candidate: Candidate) -> int:
        mount = self.mounts.find(candidate.dir_path, candidate.st.st_dev)
        return os.makedev(mount.major, mount.minor) if mount else candidate.st.st_dev

    def _target_reached(self, filesystem: dict[str, Any]) -> bool:
        options = self.options
        if options.target_free_bytes is None and options.target_free_percent is None:
            return False
        usage = filesystem_usage(filesystem['mount'])
        target = options.target_free_bytes
        if options.target_free_percent is not None:
            target = usage['size'] * options.target_free_percent / 100.0
        # Check mode frees nothing: count what it would have freed, so that
        # a survey stops where the real run would.
        return usage['avail'] + filesystem.get('would_free', 0) >= target

    # -- the whole run --------------------------------------------------

    def execute(self) -> dict[str, Any]:
        self.journals.open()
        try:
            self.journals.lock()
            self._recover()
            self._compress_all()
        finally:
            self.compressor.close()
            self.journals.close()
        for filesystem in self.filesystems.values():
            filesystem['after'] = filesystem_usage(filesystem['mount'])
        return self.summary()

    def _compress_all(self) -> None:
        candidates = Discovery(self.options).candidates()
        # Files an interrupted rewrite left incomplete, whose RAM copy a reboot took.
        check_mode = self.options.check_mode
        suspects = paths_to_check(candidates, self.options.paths, self.mounts, check_mode)
        lost, marked = lost_rewrites(suspects, self.compressor.pending_keys, check_mode, self.mounts)
        self.files.extend(lost)
        candidates = [c for c in candidates if c.path not in marked]
        live = self.options.open_files == OPEN_FILES_LIVE
        # The live method is for files still written: min_age (meant to spare
        # them) and an existing NAME.gz (it writes NAME-TIME.gz) do not apply
        # to a file a process holds.
        held_if_live = [c for c in candidates if live and c.reason in _LIVE_ONLY_SKIPS]
        ready = [c for c in candidates if not c.reason]
        busy = self.scan.holders(((c.st.st_dev, c.st.st_ino), self._mount_device(c)) for c in ready + held_if_live)
        for candidate in held_if_live:
            if busy.get((candidate.st.st_dev, candidate.st.st_ino)):
                candidate.skip(None)
                ready.append(candidate)
        if self.options.largest_first:
            ready.sort(key=lambda c: c.st.st_blocks, reverse=True)
        for candidate in candidates:
            if candidate.reason:
                self.files.append(_skip_result(candidate))
        for candidate in ready:
            holders = busy.get((candidate.st.st_dev, candidate.st.st_ino))
            filesystem = self._filesystem(candidate)
            if holders and self.options.open_files == OPEN_FILES_LIVE \
                    and not self._target_reached(filesystem):
                self._record(filesystem, self.live.process(candidate, filesystem, holders, self.scan))
            elif holders:
                candidate.skip(codes.OPEN, 'open in %s' % ', '.join(sorted(set('%s[%d]' % (h.comm, h.pid)
                                                                               for h in holders))))
                candidate.pids = [h.as_dict() for h in holders]
                self.files.append(_skip_result(candidate))
            elif self._target_reached(filesystem):
                self.files.append(_skip_result(candidate.skip(codes.TARGET_FREE_REACHED,
                                                              'the filesystem already has target_free')))
            else:
                self._record(filesystem, self.compressor.process(candidate, filesystem))

    def _record(self, filesystem: dict[str, Any], result: FileResult) -> None:
        if result.action in (codes.WOULD_COMPRESS, codes.WOULD_LIVE_COMPRESS):
            filesystem['would_free'] = filesystem.get('would_free', 0) + result.bytes_saved
        self.files.append(result)

    def summary(self) -> dict[str, Any]:
        totals = dict.fromkeys(codes.ACTIONS, 0)
        totals.update(candidates=len(self.files), original_size=0, compressed_size=0, bytes_saved=0)
        for item in self.files:
            totals[item.action] += 1
            if item.action in codes.FREEING_ACTIONS:
                totals['original_size'] += item.original_size or 0
                totals['compressed_size'] += item.compressed_size or 0
                totals['bytes_saved'] += item.bytes_saved or 0
        # In check mode, Ansible's convention: report the change that would be made.
        changed = any(totals[action] for action in codes.CHANGING_ACTIONS)
        verb = 'would free' if self.options.check_mode else 'freed'
        msg = '%s %d bytes: %d compressed, %d recovered, %d would compress, %d skipped, %d failed' % (
            verb, totals['bytes_saved'], totals[codes.COMPRESSED], totals[codes.RECOVERED],
            totals[codes.WOULD_COMPRESS], totals[codes.SKIPPED], totals[codes.FAILED])
        live = totals[codes.LIVE_COMPRESSED] + totals[codes.WOULD_LIVE_COMPRESS]
        if live:
            msg += '; %d live file%s %s' % (live, '' if live == 1 else 's',
                                            'would be cut' if self.options.check_mode else 'cut')
        alerts = [item.extra['alert'] for item in self.files if item.extra.get('alert')]
        if alerts:
            msg += '. ATTENTION: ' + ' | '.join(alerts)
        listed, omitted = cap_results(self.files, self.options.max_file_results)
        return {
            'changed': changed,
            'failed': bool(totals[codes.FAILED]),
            'msg': msg,
            'files': [item.as_dict() for item in listed],
            'files_omitted': omitted,
            'totals': totals,
            'filesystems': [_printable_filesystem(f)
                            for f in sorted(self.filesystems.values(), key=lambda f: f['mount'])],
            'memory': {'limit': self.memory_limit, 'available': self.available_memory,
                       'peak_rss': peak_rss(),
                       'peak_journal': max(self.compressor.peak_journal, self.live.peak_journal),
                       'threads': self.threads, 'threads_requested': self.options.threads},
            'journal': {'dir': self.options.journal_dir, 'spill_dir': self.options.spill_dir,
                        'ram_backed': self.journals.ram_backed,
                        'usable': [printable(path) for path in self.journals.paths],
                        'notes': [printable(note) for note in self.journals.notes]},
            'open_files_scan': self.scan.report(),
        }


def _printable_filesystem(filesystem: dict[str, Any]) -> dict[str, Any]:
    """Mount points and devices come from mountinfo: any bytes, escaped for JSON."""
    return dict(filesystem, mount=printable(filesystem['mount']), device=printable(filesystem['device']))


def _skip_result(candidate: Candidate) -> FileResult:
    return FileResult(candidate.path, candidate.dest, action=codes.SKIPPED, reason=candidate.reason,
                      detail=candidate.detail, original_size=candidate.st.st_size if candidate.st else None,
                      seconds=0.0, pids=candidate.pids)


def run(options: Options) -> dict[str, Any]:
    """Recover, then compress what ``options`` selects; return the result dict."""
    return Run(options).execute()
