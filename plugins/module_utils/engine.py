# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compress files in RAM and put the .gz where the original was.

``run(Options(...))`` recovers what an interrupted run left, finds the
candidates, and for each one: streams it through the parallel deflater into
the journal, verifies, and only then replaces the original inode by its own
compressed copy.  It returns a plain dict; see docs/CONTRACT.md.
"""

from __future__ import absolute_import, division, print_function

import errno
import fcntl
import os
import time

from . import codes, open_files
from .discovery import Discovery
from .formats import LONGEST_MAGIC, compressed_format
from .gzip_member import Cancelled, OutputLimitExceeded, VerificationError, compress_stream
from .journal import Journal, JournalUnsafe
from .recovery import recover_entry
from .results import FileResult
from .replace import RECREATE, NotStarted, ReplaceIncomplete, choose_strategy, file_metadata, replace
from .safe_fs import FileBusy, OpenFile, WriteLease, open_dir_nofollow, open_regular, stat_nofollow
from .mounts import RAM_FSTYPES, MountTable
from .sysinfo import memory_available, peak_rss, usable_cpus
from .usage import statvfs_usage as filesystem_usage

DEFAULT_MEMORY_FRACTION = 0.5
# Left free on the journal's filesystem: /dev/shm is shared with the host's
# applications, which must not meet ENOSPC because of us.
JOURNAL_HEADROOM = 8 * 1024 * 1024


class Options(object):
    """Everything ``run`` needs, in plain units (bytes, seconds)."""

    def __init__(self, paths, recurse=False, one_file_system=True, patterns=(), excludes=(),
                 min_size=1024 * 1024, min_age=0, level=9, threads=0, memory_limit=None,
                 largest_first=True, target_free_bytes=None, target_free_percent=None,
                 follow=False, open_files='skip', journal_dir='/dev/shm', spill_dir=None,
                 check_mode=False):
        self.paths = list(paths)
        self.recurse = recurse
        self.one_file_system = one_file_system
        self.patterns = list(patterns or ())
        self.excludes = list(excludes or ())
        self.min_size = min_size
        self.min_age = min_age
        self.level = level
        self.threads = threads
        self.memory_limit = memory_limit
        self.largest_first = largest_first
        self.target_free_bytes = target_free_bytes
        self.target_free_percent = target_free_percent
        self.follow = follow
        self.open_files = open_files
        self.journal_dir = journal_dir
        self.spill_dir = spill_dir
        self.check_mode = check_mode


class Skip(Exception):
    """Leave this file as it is, for this reason."""

    def __init__(self, reason, detail, **extra):
        super(Skip, self).__init__(detail)
        self.reason = reason
        self.detail = detail
        self.extra = extra


class _CountingSink(object):
    """Check mode: measure the stream, store nothing."""

    def __init__(self):
        self.size = 0

    def write(self, chunk):
        self.size += len(chunk)


class _JournalChoice(object):
    __slots__ = ('journal', 'cap', 'cap_reason')

    def __init__(self, journal, cap, cap_reason):
        self.journal = journal
        self.cap = cap
        self.cap_reason = cap_reason


class Run(object):
    """One invocation: its journals, filesystems and results."""

    def __init__(self, options):
        self.options = options
        self.mounts = MountTable()
        self.available_memory = memory_available(self.mounts.entries)
        self.memory_limit = options.memory_limit
        if self.memory_limit is None:
            self.memory_limit = int(self.available_memory * DEFAULT_MEMORY_FRACTION)
        self.threads = options.threads or usable_cpus(self.mounts.entries)
        self.files = []
        self.filesystems = {}
        self.peak_journal = 0
        self.journal_notes = []
        self.journals = []

    # -- journals -------------------------------------------------------

    def _open_journals(self):
        for base in (self.options.journal_dir, self.options.spill_dir):
            if not base:
                continue
            journal = Journal(base)
            try:
                if not os.path.isdir(base):
                    self.journal_notes.append('%s does not exist' % base)
                    continue
                journal.open(create=not self.options.check_mode)
            except JournalUnsafe as exc:
                self.journal_notes.append(str(exc))
                continue
            except OSError as exc:
                self.journal_notes.append('%s: %s' % (base, exc.strerror))
                continue
            mount = self.mounts.find(base)
            journal.ram_backed = bool(mount and mount.fstype in RAM_FSTYPES)
            journal.device = os.stat(base).st_dev
            self.journals.append(journal)

    def _lock(self):
        """One run per host at a time: recovery must not take a live run's journal."""
        for journal in self.journals:
            if journal._dir_fd is None:
                continue
            try:
                fcntl.flock(journal._dir_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    raise RuntimeError('another sre.cmemgzip run holds %s; try again when it ends' % journal.path)
                raise

    def _recover(self):
        for journal in self.journals:
            if journal._dir_fd is None:
                continue
            entries, orphans = journal.entries()
            for entry in entries:
                self.files.append(recover_entry(entry, self.options.check_mode, self.mounts))
            if orphans and not self.options.check_mode:
                for key in orphans:
                    journal.remove(key)
                self.journal_notes.append('removed %d incomplete copies of interrupted runs that had not '
                                          'changed any file' % len(orphans))

    def _choose_journal(self, st):
        """Where this file's copy goes, and how big it may grow."""
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
        return _JournalChoice(journal, cap, reason)

    # -- filesystems ----------------------------------------------------

    def _filesystem(self, candidate):
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

    def _target_reached(self, filesystem):
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

    # -- one file -------------------------------------------------------

    def process(self, candidate, filesystem):
        started = time.monotonic()
        result = FileResult(candidate.path, candidate.dest, original_size=candidate.st.st_size)
        try:
            result.update(**self._compress(candidate, filesystem))
        except Skip as skip:
            result.update(action=codes.SKIPPED, reason=skip.reason, detail=skip.detail, **skip.extra)
        except (OSError, ReplaceIncomplete, VerificationError) as exc:
            result.update(action=codes.FAILED, reason=codes.ERROR, detail=str(exc))
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _compress(self, candidate, filesystem):
        check_mode = self.options.check_mode
        dir_fd = open_dir_nofollow(os.path.realpath(candidate.dir_path))
        try:
            try:
                original = OpenFile(open_regular(dir_fd, candidate.name, writable=not check_mode))
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise Skip(codes.SYMLINK, 'became a symbolic link')
                if exc.errno == errno.ENOENT:
                    raise Skip(codes.NOT_FOUND, 'vanished')
                raise
            try:
                return self._compress_open(candidate, filesystem, dir_fd, original)
            finally:
                original.close()
        finally:
            os.close(dir_fd)

    def _compress_open(self, candidate, filesystem, dir_fd, original):
        options = self.options
        fd = original.fd
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (candidate.st.st_dev, candidate.st.st_ino):
            raise Skip(codes.CHANGED_WHILE_READING, 'replaced by another file since it was found')
        if st.st_nlink > 1:
            raise Skip(codes.HARDLINKED, '%d hard links' % st.st_nlink)
        found = compressed_format(os.pread(fd, LONGEST_MAGIC, 0))
        if found:
            raise Skip(codes.ALREADY_COMPRESSED, 'already %s data' % found)
        choice = self._choose_journal(st)
        if choice is None:
            raise Skip(codes.NO_JOURNAL_SPACE, self._no_journal_detail())
        lease = None if options.check_mode else self._lease(original)
        try:
            if options.check_mode:
                return self._measure(candidate, filesystem, st, fd, choice)
            return self._compress_to_journal(candidate, filesystem, st, dir_fd, original, choice, lease)
        finally:
            if lease is not None:
                lease.release()

    def _no_journal_detail(self):
        if self.journals:
            return ('no journal directory off this filesystem has free space (%s); set spill_dir to '
                    'another filesystem' % ', '.join(j.path for j in self.journals))
        return 'no usable journal directory (%s); set spill_dir to another filesystem' % '; '.join(self.journal_notes)

    def _lease(self, original):
        try:
            return WriteLease(original)
        except FileBusy:
            raise Skip(codes.OPEN, 'opened by another process (the kernel refused a write lease)')

    def _deflate(self, candidate, st, fd, write, cap, lease=None):
        # A broken lease means another process waits in open() for us: stop
        # at once rather than after the whole file.
        cancelled = (lambda: lease.broken) if lease is not None and lease.held else None
        try:
            return compress_stream(fd, write, level=self.options.level, threads=self.threads, max_output=cap,
                                   name=os.fsencode(candidate.name), mtime=int(st.st_mtime), cancelled=cancelled)
        except Cancelled:
            raise Skip(codes.OPEN, 'another process opened the file while it was compressed')

    def _measure(self, candidate, filesystem, st, fd, choice):
        sink = _CountingSink()
        try:
            stats = self._deflate(candidate, st, fd, sink.write, choice.cap)
        except OutputLimitExceeded:
            raise self._cap_skip(choice)
        saved = self._allocated(st) - _rounded_to_blocks(stats.output_size, st)
        if saved <= 0:
            raise Skip(codes.NOT_SMALLER, 'the compressed copy would free no block', compressed_size=stats.output_size)
        return {'action': codes.WOULD_COMPRESS, 'compressed_size': stats.output_size, 'bytes_saved': saved,
                'strategy': choose_strategy(filesystem['fstype'], st),
                'detail': 'real compressed size; bytes_saved estimated from the block size'}

    def _compress_to_journal(self, candidate, filesystem, st, dir_fd, original, choice, lease):
        fd = original.fd
        key = '%x-%d' % (st.st_dev, st.st_ino)
        entry = choice.journal.create(key)
        committed = False
        try:
            try:
                stats = self._deflate(candidate, st, fd, entry.write, choice.cap, lease)
            except OutputLimitExceeded:
                raise self._cap_skip(choice)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    raise Skip(codes.NO_JOURNAL_SPACE, 'the journal at %s ran out of space' % choice.journal.path)
                raise
            if choice.journal.ram_backed:
                self.peak_journal = max(self.peak_journal, stats.output_size)
            after_read = os.fstat(fd)
            if (after_read.st_size, after_read.st_mtime_ns, after_read.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino) \
                    or stats.input_size != st.st_size:
                raise Skip(codes.CHANGED_WHILE_READING, 'the file changed while it was read')
            if _rounded_to_blocks(stats.output_size, st) >= self._allocated(st):
                raise Skip(codes.NOT_SMALLER, 'the compressed copy would free no block', compressed_size=stats.output_size)
            if entry.stored_crc() != (stats.output_crc32, stats.output_size):
                raise VerificationError('the journal copy at %s does not read back as written' % entry.data_path)
            if lease is not None and lease.broken:
                raise Skip(codes.OPEN, 'another process opened the file while it was compressed')
            if stat_nofollow(dir_fd, candidate.dest_name) is not None:
                raise Skip(codes.DEST_EXISTS, '%s appeared while compressing' % candidate.dest)
            strategy = choose_strategy(filesystem['fstype'], st)
            entry.commit({
                'version': 1, 'dir': os.path.realpath(candidate.dir_path), 'name': candidate.name,
                'dest': candidate.dest_name, 'dev': st.st_dev, 'ino': st.st_ino, 'size': st.st_size,
                'allocated': self._allocated(st), 'mtime_ns': st.st_mtime_ns, 'atime_ns': st.st_atime_ns,
                'crc32': stats.crc32, 'compressed_size': stats.output_size,
                'compressed_crc32': stats.output_crc32, 'strategy': strategy,
                'created': time.time(), 'pid': os.getpid(), 'metadata': file_metadata(fd),
            })
            committed = True
            try:
                strategy = replace(dir_fd, candidate.name, candidate.dest_name, original, entry, strategy)
            except NotStarted as exc:
                entry.discard()
                if exc.error.errno == errno.EEXIST:
                    raise Skip(codes.DEST_EXISTS, '%s appeared just before the rename' % candidate.dest)
                raise exc.error
            after = stat_nofollow(dir_fd, candidate.dest_name) if strategy == RECREATE else os.fstat(original.fd)
            entry.discard()
        except BaseException:
            # Before the commit nothing was touched: drop the copy.  After
            # it, the copy is what a rerun finishes from: keep it.
            if not committed:
                entry.discard()
            raise
        result = {'action': codes.COMPRESSED, 'compressed_size': stats.output_size,
                  'bytes_saved': self._allocated(st) - after.st_blocks * 512, 'strategy': strategy}
        if lease is not None and not lease.held and lease.unavailable_reason:
            result['detail'] = 'no write lease (%s): other openers were found by the /proc scan only' \
                % lease.unavailable_reason
        return result

    def _cap_skip(self, choice):
        details = {
            codes.NOT_SMALLER: 'the compressed copy is not smaller',
            codes.MEMORY_BUDGET: 'the compressed copy would exceed the memory budget of %d bytes' % self.memory_limit,
            codes.NO_JOURNAL_SPACE: 'the compressed copy would not fit in %s' % choice.journal.path,
        }
        return Skip(choice.cap_reason, details[choice.cap_reason])

    @staticmethod
    def _allocated(st):
        return st.st_blocks * 512

    # -- the whole run --------------------------------------------------

    def execute(self):
        self._open_journals()
        try:
            self._lock()
            self._recover()
            self._compress_all()
        finally:
            for journal in self.journals:
                journal.close()
        for filesystem in self.filesystems.values():
            filesystem['after'] = filesystem_usage(filesystem['mount'])
        return self.summary()

    def _compress_all(self):
        candidates = Discovery(self.options).candidates()
        ready = [c for c in candidates if not c.reason]
        if self.options.largest_first:
            ready.sort(key=lambda c: c.st.st_blocks, reverse=True)
        busy = open_files.holders((c.st.st_dev, c.st.st_ino) for c in ready)
        for candidate in candidates:
            if candidate.reason:
                self.files.append(_skip_result(candidate))
        for candidate in ready:
            holders = busy.get((candidate.st.st_dev, candidate.st.st_ino))
            filesystem = self._filesystem(candidate)
            if holders:
                candidate.skip(codes.OPEN, 'open in %s' % ', '.join('%s[%d]' % (h['comm'], h['pid']) for h in holders))
                candidate.pids = holders
                self.files.append(_skip_result(candidate))
            elif self._target_reached(filesystem):
                self.files.append(_skip_result(candidate.skip(codes.TARGET_FREE_REACHED,
                                                              'the filesystem already has target_free')))
            else:
                result = self.process(candidate, filesystem)
                if result.action == codes.WOULD_COMPRESS:
                    filesystem['would_free'] = filesystem.get('would_free', 0) + result.bytes_saved
                self.files.append(result)

    def summary(self):
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
        return {
            'changed': changed,
            'failed': bool(totals[codes.FAILED]),
            'msg': msg,
            'files': [item.as_dict() for item in self.files],
            'totals': totals,
            'filesystems': sorted(self.filesystems.values(), key=lambda f: f['mount']),
            'memory': {'limit': self.memory_limit, 'available': self.available_memory,
                       'peak_rss': peak_rss(), 'peak_journal': self.peak_journal, 'threads': self.threads},
            'journal': {'dir': self.options.journal_dir, 'spill_dir': self.options.spill_dir,
                        'ram_backed': any(j.ram_backed for j in self.journals),
                        'usable': [j.path for j in self.journals], 'notes': self.journal_notes},
        }


def _skip_result(candidate):
    return FileResult(candidate.path, candidate.dest, action=codes.SKIPPED, reason=candidate.reason,
                      detail=candidate.detail, original_size=candidate.st.st_size if candidate.st else None,
                      seconds=0.0, pids=candidate.pids)


def _rounded_to_blocks(size, st):
    block = st.st_blksize or 4096
    return -(-size // block) * block


def run(options):
    """Recover, then compress what ``options`` selects; return the result dict."""
    return Run(options).execute()
