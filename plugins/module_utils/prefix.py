# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The prefix protocol: save the first bytes of a file that is being written,
then free them while the writer goes on.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

Used by ``open_files: live`` (live.py) and by reclaim_deleted (deleted.py).
For a file whose holders only append (``O_APPEND``) or read:

1. Choose the prefix ``[start, end)``: ``start`` is the first byte that is
   not a hole (an earlier punch), ``end`` the last block boundary before
   the size at the start (collapse wants the range to end before EOF).
2. Deflate exactly that range into the journal and verify it (inflate
   again, read the journal back), check the holders again (the caller's
   ``recheck``) and read the range once more: its CRC-32 must be unchanged.
3. Commit the manifest (phase ``prepared``) and create the output
   ``NAME-<UTC time>.gz`` empty, exclusively, while it needs no block.
4. Phase ``freeing``, then free the range: collapse (the file then starts
   at ``end``), punch a hole (offsets stay) or truncate (nobody writes).
   Then reserve the output's blocks at once, before a writer takes them,
   and record phase ``freed``: the point of no return, after which the
   journal holds the only copy of the range.
5. Write the output from the journal (owner, group, xattrs, mode of the
   original), read it back, fsync it and its directory; drop the journal.

Recovery (prefix_recovery.py) reads the phase and the evidence recorded here.
"""

from __future__ import annotations

import errno
import os
import time
from typing import TYPE_CHECKING, Any, Callable

from . import codes, falloc, gz_output
from .file_job import Skip
from .gzip_member import OutputLimitExceeded, VerificationError, compress_stream
from .identity import crc_range, entry_key, filesystem_id, inode_generation
from .journal import MANIFEST_VERSION
from .rewrite import file_metadata

if TYPE_CHECKING:
    from .gzip_member import GzipStats
    from .journal import JournalEntry
    from .journal_set import JournalChoice, JournalSet
    from .results import FileResult

PHASE_PREPARED = 'prepared'
PHASE_FREEING = 'freeing'
PHASE_FREED = 'freed'
EVIDENCE_SPAN = 64 * 1024


class Target(object):
    """What the protocol works on.

    ``fd``: the file, open read-write; ``out_dir_fd``/``out_dir``: where the
    .gz goes; ``out_name``: the name wanted for it; ``inner_name``: the name
    in its gzip header; ``methods``: freeing methods to try in order;
    ``manifest``: the kind's own manifest fields (``kind`` among them);
    ``recheck()``: raises Skip when the holders no longer allow it.
    """

    def __init__(self, fd: int, out_dir_fd: int, out_dir: str, out_name: str, inner_name: str, methods: list[str],
                 manifest: dict[str, Any], recheck: Callable[[], None] | None = None) -> None:
        self.fd = fd
        self.out_dir_fd = out_dir_fd
        self.out_dir = out_dir
        self.out_name = out_name
        self.inner_name = inner_name
        self.methods = methods
        self.manifest = manifest
        self.recheck = recheck or (lambda: None)


class _PrefixStat(object):
    """The file's fstat with the size of the prefix: what the journal must hold."""

    def __init__(self, st: os.stat_result, size: int) -> None:
        self._st = st
        self.st_size = size

    def __getattr__(self, name: str) -> Any:
        return getattr(self._st, name)


def plan(fd: int, methods: list[str]) -> tuple[int, int, int, os.stat_result]:
    """(start, end, size, stat) of the prefix to free now; Skip when there is none."""
    st = os.fstat(fd)
    size = st.st_size
    start = falloc.first_data(fd, size)
    if methods == [falloc.TRUNCATE]:
        end = size
    else:
        unit = falloc.alignment(fd)
        end = (max(size - 1, 0) // unit) * unit
    if end <= start:
        raise Skip(codes.TOO_SMALL, 'less than one filesystem block before the end the writer appends at')
    return start, end, size, st


class PrefixSaver(object):
    """Runs the protocol for one file; ``run`` returns the result fields."""

    def __init__(self, journals: JournalSet, level: int, threads: int) -> None:
        self.journals = journals
        self.level = level
        self.threads = threads
        self.peak_journal = 0
        # Keys of journal entries recovery left for a human: their files wait.
        self.pending_keys: set[str] = set()

    def measure(self, target: Target) -> dict[str, Any]:
        """Check mode: the real compressed size of the prefix, nothing stored."""
        start, end, _size, st = plan(target.fd, target.methods)
        counted = [0]

        def count(chunk: bytes) -> None:
            counted[0] += len(chunk)
        os.lseek(target.fd, start, os.SEEK_SET)
        compress_stream(target.fd, count, level=self.level, threads=self.threads, length=end - start)
        freed = falloc.data_bytes(target.fd, start, end)
        return {'original_size': end - start, 'compressed_size': counted[0],
                'bytes_saved': max(0, freed - _rounded(counted[0], st)), 'strategy': target.methods[0],
                'prefix_start': start, 'prefix_end': end}

    def run(self, target: Target) -> dict[str, Any]:
        fd = target.fd
        start, end, size, st = plan(fd, target.methods)
        fs_id = filesystem_id(fd)
        key = entry_key(fs_id, st.st_ino)
        if key in self.pending_keys:
            raise Skip(codes.JOURNAL_PENDING, 'an earlier run left a journal entry for this file that recovery '
                       'could not settle: see that entry\'s result (it names the copy)')
        choice = self.journals.choose(_PrefixStat(st, end - start))
        if choice is None:
            raise Skip(*self.journals.no_choice())
        entry = choice.journal.create(key)
        committed = False
        try:
            stats = self._deflate(target, start, end, entry, choice)
            freeable = falloc.data_bytes(fd, start, end)
            if freeable - _rounded(stats.output_size, st) <= 0:
                raise Skip(codes.NOT_SMALLER, 'the compressed copy would free no block',
                           compressed_size=stats.output_size)
            target.recheck()
            if crc_range(fd, start, end - start) != (stats.crc32, end - start):
                raise Skip(codes.CHANGED_WHILE_READING, 'bytes before the end changed while they were compressed '
                           '(a writer without O_APPEND?)')
            out_name = gz_output.free_name(target.out_dir_fd, target.out_name)
            manifest = dict(target.manifest)
            manifest.update({
                'version': MANIFEST_VERSION, 'phase': PHASE_PREPARED, 'fs_id': fs_id, 'dev': st.st_dev,
                'ino': st.st_ino, 'generation': inode_generation(fd), 'size': size,
                'start': start, 'end': end, 'method': target.methods[0], 'methods': list(target.methods),
                'crc32': stats.crc32, 'compressed_size': stats.output_size, 'compressed_crc32': stats.output_crc32,
                'evidence_span': min(EVIDENCE_SPAN, end - start),
                'head_crc32': crc_range(fd, start, min(EVIDENCE_SPAN, end - start))[0],
                'out_dir': target.out_dir, 'dest': out_name, 'metadata': file_metadata(fd),
                'created': time.time(), 'pid': os.getpid(),
            })
            entry.commit(manifest)
            committed = True
            return self._free_and_write(target, entry, st, start, end, stats, freeable)
        except BaseException:
            if not committed:
                entry.discard()
            raise

    def _deflate(self, target: Target, start: int, end: int, entry: JournalEntry,
                 choice: JournalChoice) -> GzipStats:
        os.lseek(target.fd, start, os.SEEK_SET)
        try:
            stats = compress_stream(target.fd, entry.write, level=self.level, threads=self.threads,
                                    max_output=choice.cap, name=os.fsencode(target.inner_name),
                                    mtime=int(time.time()), length=end - start)
        except OutputLimitExceeded:
            raise Skip(choice.cap_reason, 'the compressed copy of the first %d bytes would exceed its limit (%s)'
                       % (end - start, choice.cap_reason))
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise Skip(codes.NO_JOURNAL_SPACE, 'the journal at %s ran out of space' % choice.journal.path)
            raise
        if stats.input_size != end - start:
            raise Skip(codes.CHANGED_WHILE_READING, 'the file became shorter while it was read (truncated?)')
        if choice.journal.ram_backed:
            self.peak_journal = max(self.peak_journal, stats.output_size)
        if entry.stored_crc() != (stats.output_crc32, stats.output_size):
            raise VerificationError('the journal copy at %s does not read back as written' % entry.data_path)
        return stats

    def _free_and_write(self, target: Target, entry: JournalEntry, st: os.stat_result, start: int, end: int,
                        stats: GzipStats, freeable: int) -> dict[str, Any]:
        out_fd = _create_early(target.out_dir_fd, entry)
        try:
            method, stall = _free(target, entry, start, end)
            if out_fd is None:
                out_fd = gz_output.create(target.out_dir_fd, entry.manifest['dest'])
            _reserve(out_fd, stats.output_size)
            entry.update(phase=PHASE_FREED)
            write_output(out_fd, target.out_dir_fd, entry)
            out_blocks = os.fstat(out_fd).st_blocks * 512
        except gz_output.OutputIncomplete as exc:
            raise Unfinished(str(exc))
        except OSError as exc:
            if entry.manifest.get('phase') != PHASE_FREED:
                raise
            raise Unfinished('writing %s failed: %s; the first %d bytes were already freed, their only copy is the '
                             'verified journal copy at %s: free some space and rerun, the next run writes it'
                             % (entry.manifest['dest'], exc.strerror, end - start, entry.data_path))
        finally:
            if out_fd is not None:
                os.close(out_fd)
        entry.discard()
        return {'compressed_size': stats.output_size, 'original_size': end - start,
                'bytes_saved': max(0, freeable - out_blocks), 'strategy': method,
                'dest': os.path.join(target.out_dir, entry.manifest['dest']),
                'prefix_start': start, 'prefix_end': end, 'writer_stall': round(stall, 6)}


class Unfinished(Exception):
    """The range is freed but its .gz is not complete; the journal keeps the copy."""


def record_outcome(result: FileResult, work: Callable[[], dict[str, Any]]) -> None:
    """Update ``result`` with what ``work`` (a live cut or a reclaim) returns, or with why it stopped."""
    try:
        result.update(**work())
    except Skip as skip:
        result.update(action=codes.SKIPPED, reason=skip.reason, detail=skip.detail, **skip.extra)
    except Unfinished as exc:
        result.update(action=codes.FAILED, reason=codes.OUTPUT_PENDING, detail=str(exc))
    except (OSError, gz_output.OutputIncomplete, VerificationError) as exc:
        result.update(action=codes.FAILED, reason=codes.ERROR, detail=str(exc))


def _create_early(dir_fd: int, entry: JournalEntry) -> int | None:
    """The output, created empty while that needs no data block (None: after freeing)."""
    while True:
        try:
            return gz_output.create(dir_fd, entry.manifest['dest'])
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                entry.update(dest=gz_output.free_name(dir_fd, entry.manifest['dest']))
                continue
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                return None
            raise


def _free(target: Target, entry: JournalEntry, start: int, end: int) -> tuple[str, float]:
    """Free the prefix with the first method the filesystem accepts: (method, worst lock)."""
    # Written-back pages first: xfs writes back the whole file inside the
    # collapse (4.6 s for a fresh 1 GiB file, 11 ms after this), and the
    # writer would wait for all of it.
    os.fdatasync(target.fd)
    # Clean pages of the range dropped now, without the inode lock: the
    # collapse or punch would drop them while holding it (0.3 s for 256 MiB
    # on ext4).
    try:
        os.posix_fadvise(target.fd, start, end - start, os.POSIX_FADV_DONTNEED)
    except (AttributeError, OSError):
        pass
    for method in target.methods:
        entry.update(phase=PHASE_FREEING, method=method)
        try:
            # A collapse also removes the holes earlier punches left before start.
            stall = falloc.free_prefix(target.fd, method, 0 if method == falloc.COLLAPSE else start, end)
        except OSError as exc:
            if falloc.unsupported(exc) or (method == falloc.COLLAPSE and exc.errno == errno.EINVAL):
                continue
            raise
        os.fsync(target.fd)
        return method, stall
    _roll_back(target.out_dir_fd, entry)
    raise Skip(codes.LIVE_UNSUPPORTED, 'the filesystem frees no range of a file (tried %s)'
               % ', '.join(target.methods))


def _roll_back(out_dir_fd: int, entry: JournalEntry) -> None:
    remove_empty_output(out_dir_fd, entry.manifest['dest'])
    entry.discard()


def remove_empty_output(dir_fd: int, name: str) -> None:
    """Remove the output if it is still the empty file we created."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return
        raise
    if st.st_size == 0 and st.st_uid == os.geteuid() and st.st_nlink == 1:
        os.unlink(name, dir_fd=dir_fd)


def _reserve(fd: int, size: int) -> None:
    try:
        falloc.reserve(fd, size)
    except OSError as exc:
        if not falloc.unsupported(exc):
            raise


def write_output(out_fd: int, out_dir_fd: int, entry: JournalEntry) -> None:
    """Metadata, data from the journal, read back, fsync of the file and its directory."""
    manifest = entry.manifest
    gz_output.apply_metadata(out_fd, manifest['metadata'])
    gz_output.write_copy(out_fd, entry, manifest['compressed_size'], manifest['compressed_crc32'])
    gz_output.finish(out_dir_fd)


def _rounded(size: int, st: os.stat_result) -> int:
    block = st.st_blksize or 4096
    return -(-size // block) * block
