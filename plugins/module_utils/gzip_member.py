# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Deflate a file descriptor into ONE gzip member, blocks in parallel.

The pigz scheme: the input is cut into blocks; each block is deflated by a
worker thread with the previous 32 KiB of input as preset dictionary and ends
with a sync flush (byte-aligned, no final bit), so the blocks concatenate into
one raw deflate stream that any inflater reads as a single member.  zlib
releases the GIL while it deflates, inflates and computes CRC-32, so threads
give real parallelism.

The main thread reads sequentially, keeps the CRC-32 of the input, writes the
compressed blocks in order and inflates them again as they are written: the
stream that reached ``write`` is proven to expand to exactly the bytes read
before the caller may touch the original.  Memory stays bounded by the number
of blocks in flight; nothing of the input or output is kept beyond them.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from .errors import CmemgzipError
from .sysinfo import usable_cpus

BLOCK_SIZE = 1024 * 1024
DICTIONARY_SIZE = 32 * 1024
GZIP_MAGIC = b'\x1f\x8b'
_FLAG_FNAME = 0x08
_OS_UNIX = 3
_READ_ADVICE_CHUNK = 64 * 1024 * 1024


# Memory: each thread has IN_FLIGHT_PER_THREAD blocks in flight, each an
# input block and its deflated output (as large at worst), plus zlib's
# deflate state (window, hash chains and pending buffer: about 400 KiB at
# memLevel 8).  The reader adds its own few blocks (the next block, the
# inflated check copy, the dictionary).
IN_FLIGHT_PER_THREAD = 2
_DEFLATE_STATE = 512 * 1024
_READER_BLOCKS = 3
MAX_THREADS = 1024


def memory_per_thread(block_size: int = BLOCK_SIZE) -> int:
    """Bytes one compression thread may hold at once."""
    return IN_FLIGHT_PER_THREAD * 2 * block_size + _DEFLATE_STATE


def threads_within(memory: int, requested: int, block_size: int = BLOCK_SIZE) -> int:
    """The most threads, up to ``requested``, whose blocks in flight fit in ``memory`` (at least one)."""
    fitting = (memory - _READER_BLOCKS * block_size) // memory_per_thread(block_size)
    return int(max(1, min(requested, fitting)))


class _Deflated(object):
    """A block deflated in the reading thread: the interface of a Future."""

    __slots__ = ('_data',)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def result(self) -> bytes:
        return self._data

    def cancel(self) -> bool:
        return False


class OutputLimitExceeded(CmemgzipError):
    """The compressed stream would exceed the limit the caller set."""

    def __init__(self, limit: int) -> None:
        super(OutputLimitExceeded, self).__init__('compressed output would exceed %d bytes' % limit)
        self.limit = limit


class Cancelled(CmemgzipError):
    """The caller's ``cancelled()`` said stop."""


class VerificationError(CmemgzipError):
    """The compressed stream does not expand to the bytes that were read."""


class GzipStats(object):
    __slots__ = ('input_size', 'output_size', 'crc32', 'output_crc32')

    def __init__(self, input_size: int, output_size: int, crc32: int, output_crc32: int) -> None:
        self.input_size = input_size
        self.output_size = output_size
        self.crc32 = crc32
        self.output_crc32 = output_crc32

    def __repr__(self) -> str:
        return 'GzipStats(input_size=%d, output_size=%d, crc32=%#010x)' % (
            self.input_size, self.output_size, self.crc32)


def gzip_header(name: bytes = b'', mtime: float = 0, level: int = 9) -> bytes:
    """The 10-byte header, plus the NUL-terminated original name like gzip's."""
    flags = _FLAG_FNAME if name else 0
    extra_flags = 2 if level == 9 else (4 if level == 1 else 0)
    header = GZIP_MAGIC + struct.pack('<BBIBB', 8, flags, int(mtime) & 0xFFFFFFFF, extra_flags, _OS_UNIX)
    if name:
        header += name.replace(b'\x00', b'') + b'\x00'
    return header


def gzip_trailer(crc: int, size: int) -> bytes:
    return struct.pack('<II', crc & 0xFFFFFFFF, size & 0xFFFFFFFF)


def deflate_block(block: bytes, dictionary: bytes, level: int, last: bool) -> bytes:
    """Raw deflate of one block, primed with the preceding input."""
    if dictionary:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL,
                                      zlib.Z_DEFAULT_STRATEGY, dictionary)
    else:
        compressor = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = compressor.compress(block)
    tail = compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
    return head + tail if head else tail


def read_block(fd: int, size: int) -> bytes:
    """Read exactly ``size`` bytes unless the file ends first."""
    data = os.read(fd, size)
    if len(data) == size or not data:
        return data
    parts = [data]
    missing = size - len(data)
    while missing:
        more = os.read(fd, missing)
        if not more:
            break
        parts.append(more)
        missing -= len(more)
    return b''.join(parts)


def _advise_sequential(fd: int) -> None:
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except (AttributeError, OSError):
        pass


def _advise_willneed(fd: int, offset: int) -> None:
    # Start the kernel's read-ahead well before the reader gets there, so a
    # cold file on a real disk is read while the workers deflate.
    try:
        os.posix_fadvise(fd, offset, _READ_ADVICE_CHUNK, os.POSIX_FADV_WILLNEED)
    except (AttributeError, OSError):
        pass


class _StreamWriter(object):
    """Writes the stream in order, checks the limit and inflates it back."""

    def __init__(self, write: Callable[[bytes], Any], limit: int | None) -> None:
        self._write = write
        self._limit = limit
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.size = 0
        self.crc = 0
        self.inflated_size = 0
        self.inflated_crc = 0

    def emit(self, chunk: bytes) -> None:
        if self._limit is not None and self.size + len(chunk) > self._limit:
            raise OutputLimitExceeded(self._limit)
        self._write(chunk)
        self.size += len(chunk)
        self.crc = zlib.crc32(chunk, self.crc)

    def emit_deflate(self, chunk: bytes) -> None:
        self.emit(chunk)
        # One block of output per call: bounded by BLOCK_SIZE.
        inflated = self._inflater.decompress(chunk)
        self.inflated_size += len(inflated)
        self.inflated_crc = zlib.crc32(inflated, self.inflated_crc)

    def check(self, crc: int, size: int) -> None:
        inflater = self._inflater
        if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
            raise VerificationError('the deflate stream does not end where it should')
        if self.inflated_crc != crc or self.inflated_size != size:
            raise VerificationError(
                'inflated %d bytes with CRC-32 %#010x, read %d bytes with CRC-32 %#010x'
                % (self.inflated_size, self.inflated_crc, size, crc))


def compress_stream(read_fd: int, write: Callable[[bytes], Any], level: int = 9, threads: int = 0,
                    max_output: int | None = None, name: bytes = b'', mtime: float = 0,
                    block_size: int = BLOCK_SIZE, cancelled: Callable[[], bool] | None = None,
                    length: int | None = None) -> GzipStats:
    """Deflate ``read_fd`` from its current offset to EOF into one gzip member.

    With ``length`` set, at most that many bytes are read (a prefix of a
    file that keeps growing).

    ``write`` receives the member in order, header to trailer.  With
    ``max_output`` set, OutputLimitExceeded is raised before a byte beyond it
    is passed to ``write``.  ``cancelled()``, when given, is asked before
    each block; Cancelled is raised as soon as it is true.  Returns GzipStats after the stream has been
    inflated again and found equal (CRC-32 and length) to what was read.
    """
    threads = threads or usable_cpus()
    in_flight_max = IN_FLIGHT_PER_THREAD * threads
    writer = _StreamWriter(write, max_output)
    writer.emit(gzip_header(name, mtime, level))
    _advise_sequential(read_fd)

    crc = 0
    size = 0
    dictionary = b''
    pending = deque()
    pool = None
    remaining = length

    def next_read(previous_size: int) -> bytes:
        nonlocal remaining
        if previous_size < block_size:
            return b''
        if remaining is None:
            return read_block(read_fd, block_size)
        data = read_block(read_fd, min(block_size, remaining)) if remaining else b''
        remaining -= len(data)
        return data

    try:
        block = next_read(block_size)
        while True:
            if cancelled is not None and cancelled():
                raise Cancelled()
            next_block = next_read(len(block))
            last = not next_block
            crc = zlib.crc32(block, crc)
            size += len(block)
            if size % _READ_ADVICE_CHUNK < block_size:
                _advise_willneed(read_fd, size + _READ_ADVICE_CHUNK)
            if last and pool is None:
                # The whole input is one block: starting a thread costs more
                # than it saves (many small files are the common case).
                pending.append(_Deflated(deflate_block(block, dictionary, level, last)))
            else:
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=threads)
                pending.append(pool.submit(deflate_block, block, dictionary, level, last))
            dictionary = block[-DICTIONARY_SIZE:] if len(block) >= DICTIONARY_SIZE \
                else (dictionary + block)[-DICTIONARY_SIZE:]
            while pending and (last or len(pending) >= in_flight_max):
                writer.emit_deflate(pending.popleft().result())
            if last:
                break
            block = next_block
    finally:
        for future in pending:
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=True)

    writer.check(crc, size)
    writer.emit(gzip_trailer(crc, size))
    return GzipStats(size, writer.size, crc, writer.crc)
