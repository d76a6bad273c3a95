# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compress one file: open it safely, check it, compress it into the journal,
verify, and replace the original by its own .gz.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from . import codes, window_job
from .estimate import SAMPLE, estimate_gzip_size
from .errors import CmemgzipError
from .formats import LONGEST_MAGIC, compressed_format
from .identity import capture, entry_key, filesystem_id
from .gzip_member import Cancelled, OutputLimitExceeded, VerificationError, compress_stream
from .marker import Marker
from .races import Raced
from .replace import NotStarted, Relabelled, replace
from .rewrite import INPLACE, RECREATE, ReplaceIncomplete, choose_strategy, explain, file_metadata
from .journal import KIND_REPLACE, MANIFEST_VERSION
from .journal_set import JOURNAL_HEADROOM
from .results import FileResult
from .space import shared_bytes
from .safe_fs import FileBusy, OpenFile, WriteLease, open_dir_nofollow, open_regular, stat_nofollow

if TYPE_CHECKING:
    from .discovery import Candidate
    from .engine import Options
    from .gzip_member import GzipStats
    from .journal import JournalEntry
    from .journal_set import JournalChoice, JournalSet


class Skip(CmemgzipError):
    """Leave this file as it is, for this reason (``action`` FAILED: it could not be finished)."""

    def __init__(self, reason: str, detail: str, action: str = codes.SKIPPED, **extra: Any) -> None:
        super(Skip, self).__init__(detail)
        self.action = action
        self.reason = reason
        self.detail = detail
        self.extra = extra


class _CountingSink(object):
    """Check mode: measure the stream, store nothing."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)


def open_candidate(dir_fd: int, name: str, writable: bool) -> int:
    """``open_regular``, with a name that vanished or became a symbolic link since discovery as a Skip."""
    try:
        return open_regular(dir_fd, name, writable=writable)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Skip(codes.SYMLINK, 'became a symbolic link')
        if exc.errno == errno.ENOENT:
            raise Skip(codes.NOT_FOUND, 'vanished')
        raise


class FileCompressor(object):
    """The per-file protocol of one run; ``process`` returns a FileResult."""

    def __init__(self, options: Options, threads: int, memory_limit: int | None, journals: JournalSet) -> None:
        self.options = options
        self.threads = threads
        self.memory_limit = memory_limit
        self.journals = journals
        self.peak_journal = 0
        # Keys of journal entries recovery left for a human: their files wait.
        self.pending_keys: set[str] = set()
        self._open_dir: tuple[str, int] | None = None   # (path, descriptor) of the last file's directory

    def process(self, candidate: Candidate, filesystem: dict[str, Any]) -> FileResult:
        started = time.monotonic()
        result = FileResult(candidate.path, candidate.dest, original_size=candidate.st.st_size)
        try:
            result.update(**self._compress(candidate, filesystem))
        except Skip as skip:
            result.update(action=skip.action, reason=skip.reason, detail=skip.detail, **skip.extra)
        except (OSError, ReplaceIncomplete, VerificationError) as exc:
            result.update(action=codes.FAILED, reason=codes.ERROR, detail=str(exc))
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _compress(self, candidate: Candidate, filesystem: dict[str, Any]) -> dict[str, Any]:
        check_mode = self.options.check_mode
        dir_fd = self._directory(candidate.dir_path)
        original = OpenFile(open_candidate(dir_fd, candidate.name, writable=not check_mode))
        try:
            return self._compress_open(candidate, filesystem, dir_fd, original)
        finally:
            original.close()

    def _directory(self, dir_path: str) -> int:
        """The directory, opened without following a symlink; kept open for the next file in it.

        Files come directory by directory: opening each path component anew
        for every file cost a dozen system calls a file.  The descriptor
        stays bound to the directory that was opened, whatever is renamed
        meanwhile.
        """
        if self._open_dir is None or self._open_dir[0] != dir_path:
            self.close()
            self._open_dir = (dir_path, open_dir_nofollow(os.path.realpath(dir_path)))
        return self._open_dir[1]

    def close(self) -> None:
        if self._open_dir is not None:
            os.close(self._open_dir[1])
            self._open_dir = None

    def _compress_open(self, candidate: Candidate, filesystem: dict[str, Any], dir_fd: int,
                       original: OpenFile) -> dict[str, Any]:
        options = self.options
        fd = original.fd
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (candidate.st.st_dev, candidate.st.st_ino):
            raise Skip(codes.CHANGED_WHILE_READING, 'replaced by another file since it was found')
        if st.st_nlink > 1:
            raise Skip(codes.HARDLINKED, '%d hard links' % st.st_nlink)
        if self.pending_keys and entry_key(filesystem_id(fd), st.st_ino) in self.pending_keys:
            raise Skip(codes.JOURNAL_PENDING, 'an earlier run left a journal entry for this file that recovery '
                       'could not settle: see that entry\'s result (it names the copy)')
        found = compressed_format(os.pread(fd, LONGEST_MAGIC, 0))
        if found:
            # A .gz being compressed into itself whose journal is lost finishes from its own content.
            salvaged = window_job.salvage(self, candidate, st, dir_fd, original) if found == 'gzip' else None
            if salvaged is not None:
                return salvaged
            raise Skip(codes.ALREADY_COMPRESSED, 'already %s data' % found)
        shared = shared_bytes(fd)
        if shared:
            raise Skip(codes.SHARED_EXTENTS, '%d bytes of it are shared with a snapshot or a reflinked copy: '
                       'rewriting it would free nothing there' % shared)
        choice = self.journals.choose(st, candidate.dir_path)
        window = window_job.plan(self, filesystem, st, fd, choice)
        if choice is None and window is None:
            raise Skip(*self.journals.no_choice())
        lease = None if options.check_mode else self._lease(original)
        try:
            if window is not None:
                if options.check_mode:
                    return window_job.measure(self, candidate, filesystem, st, fd)
                return window_job.compress(self, candidate, st, dir_fd, original, window, lease)
            if options.check_mode:
                return self._measure(candidate, filesystem, st, fd, choice)
            return self._compress_to_journal(candidate, filesystem, st, dir_fd, original, choice, lease)
        finally:
            if lease is not None:
                lease.release()

    def _lease(self, original: OpenFile) -> WriteLease:
        try:
            return WriteLease(original)
        except FileBusy:
            raise Skip(codes.OPEN, 'opened by another process (the kernel refused a write lease)')

    def _deflate(self, candidate: Candidate, st: os.stat_result, fd: int, write: Callable[[bytes], Any],
                 cap: int | None, lease: WriteLease | None = None) -> GzipStats:
        # A broken lease means another process waits in open() for us: stop
        # at once rather than after the whole file.
        cancelled = (lambda: lease.broken) if lease is not None and lease.held else None
        try:
            return compress_stream(fd, write, level=self.options.level, threads=self.threads, max_output=cap,
                                   name=os.fsencode(candidate.name), mtime=int(st.st_mtime), cancelled=cancelled)
        except Cancelled:
            raise Skip(codes.OPEN, 'another process opened the file while it was compressed')

    def _measure(self, candidate: Candidate, filesystem: dict[str, Any], st: os.stat_result, fd: int,
                 choice: JournalChoice) -> dict[str, Any]:
        size, estimated = self._compressed_size(candidate, st, fd, choice)
        saved = self._allocated(st) - _rounded_to_blocks(size, st)
        if saved <= 0:
            raise Skip(codes.NOT_SMALLER, 'the compressed copy would free no block', compressed_size=size,
                       estimated=estimated)
        how = 'compressed size estimated from samples' if estimated else 'real compressed size'
        return {'action': codes.WOULD_COMPRESS, 'compressed_size': size, 'bytes_saved': saved, 'estimated': estimated,
                'strategy': choose_strategy(filesystem['fstype'], st),
                'detail': '%s; bytes_saved estimated from the block size' % how}

    def _compressed_size(self, candidate: Candidate, st: os.stat_result, fd: int,
                         choice: JournalChoice) -> tuple[int, bool]:
        """(size of the gzip member, whether it is an estimate); skips as a real run would at the cap."""
        size = None
        if self.options.estimate == SAMPLE:
            size = estimate_gzip_size(fd, st.st_size, self.options.level, os.fsencode(candidate.name))
        if size is not None:
            if size > choice.cap:
                raise self._cap_skip(choice)
            return size, True
        sink = _CountingSink()
        try:
            stats = self._deflate(candidate, st, fd, sink.write, choice.cap)
        except OutputLimitExceeded:
            raise self._cap_skip(choice)
        return stats.output_size, False

    def _compress_to_journal(self, candidate: Candidate, filesystem: dict[str, Any], st: os.stat_result, dir_fd: int,
                             original: OpenFile, choice: JournalChoice, lease: WriteLease | None) -> dict[str, Any]:
        fd = original.fd
        entry = choice.journal.create(entry_key(filesystem_id(fd), st.st_ino))
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
            strategy = choose_strategy(filesystem['fstype'], st, fd, stats.output_size)
            manifest = capture(fd, st, stats.crc32)
            manifest.update({
                'version': MANIFEST_VERSION, 'kind': KIND_REPLACE, 'dir': os.path.realpath(candidate.dir_path),
                'name': candidate.name, 'dest': candidate.dest_name, 'allocated': self._allocated(st),
                'atime_ns': st.st_atime_ns, 'compressed_size': stats.output_size,
                'compressed_crc32': stats.output_crc32, 'strategy': strategy,
                'created': time.time(), 'pid': os.getpid(), 'metadata': file_metadata(fd),
            })
            entry.commit(manifest)
            committed = True
            entry = self._durable_copy(entry, st, strategy)
            strategy, after, note = self._replace(candidate, filesystem, st, dir_fd, original, entry, strategy)
            entry.discard()
        except BaseException:
            # Before the commit nothing was touched: drop the copy.  After
            # it, the copy is what a rerun finishes from: keep it.
            if not committed:
                entry.discard()
            raise
        result = {'action': codes.COMPRESSED, 'compressed_size': stats.output_size,
                  'bytes_saved': max(0, self._allocated(st) - after.st_blocks * 512), 'strategy': strategy}
        if note:
            result['detail'] = note
        elif lease is not None and not lease.held and lease.unavailable_reason:
            result['detail'] = 'no write lease (%s): other openers were found by the /proc scan only' \
                % lease.unavailable_reason
        return result

    def _replace(self, candidate: Candidate, filesystem: dict[str, Any], st: os.stat_result, dir_fd: int,
                 original: OpenFile, entry: JournalEntry,
                 strategy: str) -> tuple[str, os.stat_result | None, str | None]:
        """The destructive phase; returns (strategy, stat after, note) or raises Skip/Failed.

        The entry is discarded here when the original is intact again;
        otherwise it is kept for the rerun that finishes the file.
        """
        marker = Marker(original.fd, entry, filesystem['mount'])
        if getattr(entry.journal, 'ram_backed', False):
            marker.place()
        try:
            strategy = replace(dir_fd, candidate.name, candidate.dest_name, original, entry, strategy)
        except NotStarted as exc:
            marker.remove()
            entry.discard()
            if exc.error.errno == errno.EEXIST:
                raise Skip(codes.DEST_EXISTS, '%s appeared just before the rename' % candidate.dest)
            raise exc.error
        except Relabelled as exc:
            marker.remove()
            return strategy, os.fstat(original.fd), exc.detail
        except Raced as exc:
            marker.remove()
            entry.discard()
            raise Skip(exc.reason, exc.detail)
        except ReplaceIncomplete as exc:
            raise self._incomplete(exc, candidate, filesystem, st, entry)
        if strategy == RECREATE:
            marker.remove(file_gone=True)
            return strategy, stat_nofollow(dir_fd, candidate.dest_name), None
        marker.remove()
        return strategy, os.fstat(original.fd), None

    def _incomplete(self, exc: ReplaceIncomplete, candidate: Candidate, filesystem: dict[str, Any],
                    st: os.stat_result, entry: JournalEntry) -> Skip:
        """The write-back stopped: say plainly where the data is, keeping a disk copy if we can."""
        if exc.original_gone:
            entry = self._durable_copy(entry, st, None)
        current = getattr(exc, 'current', None)
        path_now = os.path.join(candidate.dir_path, current) if current else candidate.dest
        text = explain(exc, entry, path_now, filesystem['mount'], _rounded_to_blocks(entry.manifest['compressed_size'], st))
        return Skip(codes.REWRITE_INCOMPLETE, text, action=codes.FAILED, alert='%s: %s' % (candidate.path, text))

    def _durable_copy(self, entry: JournalEntry, st: os.stat_result, strategy: str | None) -> JournalEntry:
        """Move a RAM copy to a disk journal off the file's filesystem before a long RAM-only window.

        ``strategy`` None: the window is already open (a failed write-back).
        Inplace windows last one rewrite and take no disk copy.
        """
        if strategy == INPLACE or not getattr(entry.journal, 'ram_backed', False):
            return entry
        size = entry.manifest['compressed_size']
        for journal in self.journals.opened():
            if getattr(journal, 'ram_backed', True) or getattr(journal, 'device', st.st_dev) == st.st_dev:
                continue
            try:
                if journal.available_bytes() - JOURNAL_HEADROOM < size:
                    continue
                return journal.adopt(entry)
            except OSError:
                continue
        return entry

    def _cap_skip(self, choice: JournalChoice) -> Skip:
        details = {
            codes.NOT_SMALLER: 'the compressed copy is not smaller',
            codes.MEMORY_BUDGET: 'the compressed copy would exceed the memory budget of %d bytes' % self.memory_limit,
            codes.NO_JOURNAL_SPACE: 'the compressed copy would not fit in %s' % choice.journal.path,
        }
        return Skip(choice.cap_reason, details[choice.cap_reason])

    @staticmethod
    def _allocated(st: os.stat_result) -> int:
        return st.st_blocks * 512


def _rounded_to_blocks(size: int, st: os.stat_result) -> int:
    block = st.st_blksize or 4096
    return -(-size // block) * block
