# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compress a file into itself, behind the read position, through a bounded window.

The blocks are those of gzip_member (1 MiB, primed with the previous 32 KiB,
ended with a sync flush), so the result is one gzip member.  Each block is
inflated again by the worker that deflated it and compared with its input
before its bytes may reach the file.

Order of writes.  The output is written over the beginning of the same
inode.  Nothing is ever written at or past the input offset of the last
checkpoint (``read``), so a rerun resumes from the checkpoint and finds the
original bytes there.  Before each checkpoint the file is fdatasync'ed; the
writes that follow it stop before ``synced_input``, the input end of the
last block whose output is already durable: after a power cut the file
itself decompresses up to at least that point and holds the original bytes
from there on (window_salvage.py).

Commit point.  Nothing is written until the output trails the input by
enough to absorb the worst-case growth of all the input still to come
(``BLOCK_GROWTH`` per block) plus ``MIN_GAP``.  Before that the original is
untouched and the job may still give up; from the first write on there is no
way back, only forward.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import os
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

from . import codes
from .gzip_member import (
    BLOCK_SIZE, DICTIONARY_SIZE, Cancelled, VerificationError, deflate_block, gzip_trailer,
)
from .safe_fs import pwrite_all
from .window_format import (
    MIN_GAP, PHASE_COMPLETE, TRAILER_SIZE, WindowState, growth_per_block, set_first_write, worst_growth,
)

_READ_AHEAD = 64 * 1024 * 1024
_VERIFY_CHUNK = 4 * 1024 * 1024
_VERIFY_PIECE = 64 * 1024


class NotCommitted(Exception):
    """The window never opened wide enough; the file was not touched."""

    def __init__(self, reason: str, detail: str) -> None:
        super(NotCommitted, self).__init__(detail)
        self.reason = reason
        self.detail = detail


def deflate_verified(block: bytes, dictionary: bytes, level: int, last: bool, growth_limit: int) -> bytes:
    """One block of the stream, proven to inflate back to ``block``.

    Output that grows more than ``growth_limit`` (a zlib whose worst case is
    not the reference one) is replaced by stored blocks, whose growth is known.
    """
    out = deflate_block(block, dictionary, level, last)
    if len(out) > len(block) + growth_limit:
        out = deflate_block(block, dictionary, 0, last)
    if dictionary:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS, zdict=dictionary)
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    # Compared piece by piece: a whole inflated block per worker thread
    # would spread 1 MiB buffers over malloc's per-thread arenas.
    expected = memoryview(block)
    checked = 0
    data = inflater.decompress(out, _VERIFY_PIECE)
    while data:
        if expected[checked:checked + len(data)] != data:
            raise VerificationError('a compressed block does not inflate back to its input')
        checked += len(data)
        data = inflater.decompress(inflater.unconsumed_tail, _VERIFY_PIECE)
    if checked != len(block) or inflater.unused_data or inflater.eof != last:
        raise VerificationError('a compressed block does not inflate back to its input')
    return out


def _next_dictionary(dictionary: bytes, block: bytes) -> bytes:
    if len(block) >= DICTIONARY_SIZE:
        return block[-DICTIONARY_SIZE:]
    return (dictionary + block)[-DICTIONARY_SIZE:]


class WindowCompressor(object):
    """Run the window from ``state`` to the end of the input.

    ``checkpoint(state)`` must make the state durable (journal) before it
    returns.  ``commit(state)``, for a run that has not written yet, is
    called once, just before the first write: it publishes the first
    checkpoint and renames the file.  A resumed run passes ``commit=None``.
    ``cancelled()`` is honoured only before the commit.
    """

    def __init__(self, fd: int, size: int, state: WindowState, level: int, threads: int,
                 checkpoint: Callable[[WindowState], None], commit: Callable[[WindowState], None] | None = None,
                 cancelled: Callable[[], bool] | None = None, precommit_limit: int | None = None,
                 interval_blocks: int = 8, block_size: int = BLOCK_SIZE) -> None:
        self.fd = fd
        self.size = size
        self.state = state
        self.level = level
        self.threads = max(1, threads)
        self.checkpoint = checkpoint
        self.commit = commit
        self.cancelled = cancelled
        self.precommit_limit = precommit_limit
        # Independent of the threads: the checkpoint's size is what the journal must hold.
        self.interval_blocks = max(1, interval_blocks)
        self.block_size = block_size
        self.growth = growth_per_block(block_size)
        self.pending_limit = self.interval_blocks * block_size
        self.peak_pending = len(state.pending)
        self.checkpoints = 0

    @property
    def committed(self) -> bool:
        return self.commit is None

    # -- the pipeline -----------------------------------------------------

    def run(self) -> WindowState:
        """Compress to the end, write everything, checkpoint ``complete``."""
        state = self.state
        offset = state.read
        dictionary = state.dictionary
        in_flight: deque[tuple[Future[bytes], bytes, bool]] = deque()
        blocks_since = 0
        pool = ThreadPoolExecutor(max_workers=self.threads)
        try:
            while offset < self.size or in_flight:
                while offset < self.size and len(in_flight) < 2 * self.threads:
                    if not self.committed and self.cancelled is not None and self.cancelled():
                        raise Cancelled()
                    block = self._read(offset)
                    last = offset + len(block) >= self.size
                    in_flight.append((pool.submit(deflate_verified, block, dictionary, self.level, last,
                                                  self.growth), block, last))
                    dictionary = _next_dictionary(dictionary, block)
                    offset += len(block)
                future, block, last = in_flight.popleft()
                self._append(future.result(), block, last)
                blocks_since += 1
                if not self.committed:
                    self._maybe_commit()
                elif last or blocks_since >= self.interval_blocks or len(state.pending) >= self.pending_limit:
                    self._cycle()
                    blocks_since = 0
        finally:
            for future, _block, _last in in_flight:
                future.cancel()
            pool.shutdown(wait=True)
        if state.read != self.size:
            raise VerificationError('read %d bytes of a %d-byte file' % (state.read, self.size))
        if not self.committed:
            raise NotCommitted(codes.NOT_SMALLER, 'the compressed stream never trailed the input by %d bytes; '
                               'the file was not changed' % MIN_GAP)
        while state.pending:
            before = len(state.pending)
            self._cycle()
            if len(state.pending) == before:
                raise VerificationError('the window stopped moving at output offset %d' % state.written)
        os.fdatasync(self.fd)
        state.phase = PHASE_COMPLETE
        state.marks = []
        state.synced_input = state.read
        self._checkpoint()
        return state

    def _read(self, offset: int) -> bytes:
        if (offset // self.block_size) % (_READ_AHEAD // self.block_size) == 0:
            try:
                os.posix_fadvise(self.fd, offset + _READ_AHEAD, _READ_AHEAD, os.POSIX_FADV_WILLNEED)
            except (AttributeError, OSError):
                pass
        want = min(self.block_size, self.size - offset)
        block = os.pread(self.fd, want, offset)
        while len(block) < want:
            more = os.pread(self.fd, want - len(block), offset + len(block))
            if not more:
                raise VerificationError('the file ended at %d bytes, %d were expected'
                                        % (offset + len(block), self.size))
            block += more
        return block

    def _append(self, out: bytes, block: bytes, last: bool) -> None:
        state = self.state
        state.crc32 = zlib.crc32(block, state.crc32)
        state.read += len(block)
        state.dictionary = _next_dictionary(state.dictionary, block)
        state.pending += out
        if last:
            state.pending += gzip_trailer(state.crc32, state.read)
        state.marks.append((state.read, state.output_size))
        self.peak_pending = max(self.peak_pending, len(state.pending))

    # -- before the first write -------------------------------------------

    def _maybe_commit(self) -> None:
        state = self.state
        remaining = self.size - state.read
        need = worst_growth(remaining, self.block_size) + MIN_GAP + (TRAILER_SIZE if remaining else 0)
        if state.read - state.output_size >= need:
            # One mark for everything before the commit: its output is the
            # first write, and from it on the output trails by MIN_GAP.
            state.marks = [(state.read, state.output_size)]
            set_first_write(state.pending, state.output_size)
            self.commit(state)
            self.commit = None
            self.checkpoints += 1
            self._write_until(state.marks[0][1])
        elif self.precommit_limit is not None and len(state.pending) > self.precommit_limit:
            raise NotCommitted(codes.MEMORY_BUDGET, 'the compressed stream did not trail the input by enough '
                               'before %d bytes of it had to be held; the file was not changed' % self.precommit_limit)

    # -- after it ---------------------------------------------------------

    def _cycle(self) -> None:
        """fdatasync, checkpoint, then write what may be written."""
        state = self.state
        os.fdatasync(self.fd)
        while state.marks and state.marks[0][1] <= state.written:
            state.synced_input = state.marks.pop(0)[0]
        self._checkpoint()
        if state.synced_input:
            bound = min(state.read, state.synced_input)
        else:  # killed before the first write was durable: write it again
            bound = state.marks[0][1]
        self._write_until(bound)

    def _checkpoint(self) -> None:
        self.checkpoint(self.state)
        self.checkpoints += 1

    def _write_until(self, bound: int) -> None:
        state = self.state
        count = min(len(state.pending), bound - state.written)
        if count <= 0:
            return
        chunk = memoryview(state.pending)[:count]
        try:
            pwrite_all(self.fd, chunk, state.written)
            state.output_crc32 = zlib.crc32(chunk, state.output_crc32)
        finally:
            chunk.release()
        state.written += count
        del state.pending[:count]


def finish(fd: int, state: WindowState, size: int, atime_ns: int, mtime_ns: int) -> None:
    """Truncate to the stream, restore the times, fsync, read the whole result back."""
    os.ftruncate(fd, state.written)
    os.utime(fd, ns=(atime_ns, mtime_ns))
    os.fsync(fd)
    verify_file(fd, state.written, state.output_crc32, state.crc32, size)


def verify_file(fd: int, compressed_size: int, output_crc32: int, crc32: int, size: int) -> None:
    """The file is the expected member: its own CRC-32, and what it inflates to."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    stored_crc = 0
    inflated_crc = 0
    inflated = 0
    offset = 0
    while offset < compressed_size:
        chunk = os.pread(fd, min(_VERIFY_CHUNK, compressed_size - offset), offset)
        if not chunk:
            break
        offset += len(chunk)
        stored_crc = zlib.crc32(chunk, stored_crc)
        data = inflater.decompress(chunk, _VERIFY_CHUNK)
        while data:
            inflated_crc = zlib.crc32(data, inflated_crc)
            inflated += len(data)
            data = inflater.decompress(inflater.unconsumed_tail, _VERIFY_CHUNK)
    if os.fstat(fd).st_size != compressed_size or offset != compressed_size or stored_crc != output_crc32:
        raise VerificationError('the file does not read back as written (%d bytes, CRC-32 %#010x)'
                                % (offset, stored_crc))
    if not inflater.eof or inflater.unused_data or (inflated_crc, inflated) != (crc32, size):
        raise VerificationError('the file inflates to %d bytes with CRC-32 %#010x, not %d with %#010x'
                                % (inflated, inflated_crc, size, crc32))
