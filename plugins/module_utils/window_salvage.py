# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Rebuild the checkpoint of a window run from the file alone (its journal was lost).

A file that was being compressed into itself starts with a gzip header
carrying the ``CW`` extra field (original size, inode, end of the first
write).  It holds the compressed stream, block after block, each block the
deflate of exactly one block of input ending at a sync point, and from the
input end of the last durable block on, the original bytes.  Decoding the
blocks one by one finds that point: the input offset ``read``, the output
offset ``written``, the CRC-32, the dictionary.  That is a checkpoint with
nothing pending, from which the run rolls forward as from a journal.

A block ends where its ``00 00 ff ff`` sync marker ends, the inflater has
produced exactly one block of input, and an empty final block appended there
would end the stream: all three must hold, so compressed bytes that happen to
contain the marker are never taken for a block end.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import os
import struct
import zlib
from typing import TYPE_CHECKING, Any

from .gzip_member import DICTIONARY_SIZE
from .window_format import PHASE_COMPLETE, TRAILER_SIZE, WindowState, growth_per_block, parse_window_header

if TYPE_CHECKING:
    from .window_format import HeaderInfo

SYNC_MARKER = b'\x00\x00\xff\xff'
_EMPTY_FINAL_BLOCK = b'\x03\x00'
_HEADER_READ = 64 * 1024


class SalvageError(Exception):
    """The file is a window file that cannot be finished from its own content."""


class Salvaged(object):
    """What the file holds: its header and the checkpoint it amounts to."""

    __slots__ = ('info', 'state', 'complete')

    def __init__(self, info: HeaderInfo, state: WindowState, complete: bool) -> None:
        self.info = info
        self.state = state
        self.complete = complete


def window_header_of(fd: int) -> HeaderInfo | None:
    """The HeaderInfo of a file being compressed into itself, or None."""
    return parse_window_header(os.pread(fd, _HEADER_READ, 0))


def read_checkpoint(fd: int) -> Salvaged | None:
    """A Salvaged for a window file; None when the file is not one.

    Raises SalvageError when the file is one but cannot be finished.
    """
    info = window_header_of(fd)
    if info is None:
        return None
    st = os.fstat(fd)
    if info.ino != st.st_ino:
        raise SalvageError('the gzip header was written for inode %d, this file is inode %d: a copy of a file '
                           'that was being compressed, not the file itself' % (info.ino, st.st_ino))
    state, complete = _decode(fd, info, st.st_size)
    if not complete:
        if st.st_size != info.size:
            raise SalvageError('the file is %d bytes, the original was %d: the original bytes after the '
                               'compressed prefix are not all there' % (st.st_size, info.size))
        if state.written < info.first_write or not info.first_write:
            raise SalvageError('only %d bytes of the compressed stream are readable, the first write ended at %d: '
                               'the power cut came before the first write reached the disk, and the original '
                               'bytes it replaced are lost; the original is intact from offset %d on'
                               % (state.written, info.first_write, max(info.first_write, state.read)))
    return Salvaged(info, state, complete)


class _Blocks(object):
    """Walks the compressed stream block by block."""

    def __init__(self, fd: int, info: HeaderInfo, file_size: int) -> None:
        self.fd = fd
        self.info = info
        self.file_size = file_size
        self.state = WindowState(read=0, written=info.length)
        self.state.output_crc32 = zlib.crc32(os.pread(fd, info.length, 0))

    def next_block(self) -> bool:
        """Decode one block; False at the first one that does not decode."""
        info = self.info
        state = self.state
        expected = min(info.block_size, info.size - state.read)
        last = state.read + expected >= info.size
        span = expected + growth_per_block(info.block_size) + TRAILER_SIZE
        data = os.pread(self.fd, span, state.written)
        if state.dictionary:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS, zdict=state.dictionary)
        else:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            found = _find_end(inflater, data, expected, last)
        except zlib.error:
            return False
        if found is None:
            return False
        end, block = found
        if last:
            trailer = data[end:end + TRAILER_SIZE]
            crc = zlib.crc32(block, state.crc32)
            if trailer != struct.pack('<II', crc & 0xFFFFFFFF, info.size & 0xFFFFFFFF):
                return False
            end += TRAILER_SIZE
        state.output_crc32 = zlib.crc32(data[:end], state.output_crc32)
        state.crc32 = zlib.crc32(block, state.crc32)
        state.read += expected
        state.written += end
        state.dictionary = (state.dictionary + block)[-DICTIONARY_SIZE:]
        return True


def _find_end(inflater: Any, data: bytes, expected: int, last: bool) -> tuple[int, bytes] | None:
    """(end offset in ``data``, the block) where a block of ``expected`` bytes ends, or None."""
    parts = []
    produced = 0
    fed = 0
    while fed < len(data):
        if last:
            stop = len(data)
        else:
            marker = data.find(SYNC_MARKER, fed)
            if marker < 0:
                return None
            stop = marker + len(SYNC_MARKER)
        out = inflater.decompress(data[fed:stop], expected - produced + 1)
        if inflater.unconsumed_tail:
            return None  # more output than a block: not our stream
        produced += len(out)
        parts.append(out)
        fed = stop
        if produced > expected:
            return None
        if last:
            if not inflater.eof or produced != expected:
                return None
            return len(data) - len(inflater.unused_data), b''.join(parts)
        if produced == expected and _at_block_boundary(inflater):
            return fed, b''.join(parts)
    return None


def _at_block_boundary(inflater: Any) -> bool:
    probe = inflater.copy()
    try:
        extra = probe.decompress(_EMPTY_FINAL_BLOCK)
    except zlib.error:
        return False
    return probe.eof and not extra and not probe.unused_data


def _decode(fd: int, info: HeaderInfo, file_size: int) -> tuple[WindowState, bool]:
    blocks = _Blocks(fd, info, file_size)
    state = blocks.state
    while state.read < info.size and blocks.next_block():
        pass
    complete = state.read == info.size
    state.synced_input = state.read
    if complete:
        state.phase = PHASE_COMPLETE
    return state, complete
