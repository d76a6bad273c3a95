# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Numbers and formats of the window strategy (a file compressed into itself).

The gzip header of such a file carries an extra field (``CW``: version,
block size, original size, inode number, end of the first write), so that
the file alone says what it is when its journal is lost.  ``WindowState`` is the checkpoint: where
the input and the output stand, the running CRC-32s, the dictionary and the
compressed bytes not yet written.  ``BLOCK_GROWTH`` bounds how much one
block can grow, whatever zlib does: a block that would grow more is stored.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import base64
import struct
from typing import Any, Iterable

from .gzip_member import BLOCK_SIZE, GZIP_MAGIC

KIND = 'window'
EXTRA_ID = b'CW'
EXTRA_VERSION = 1
_EXTRA_DATA = struct.Struct('<BBQQQ')  # version, log2(block size), original size, inode, first write end
# Where the first write's end sits in the header (patched at the commit).
FIRST_WRITE_OFFSET = 16 + _EXTRA_DATA.size - 8
_FLAG_FEXTRA = 0x04
_FLAG_FNAME = 0x08
_OS_UNIX = 3
TRAILER_SIZE = 8
# One block of stored (level 0) deflate: 5 bytes per stored block of at most
# 64 KiB, plus the 5-byte sync marker; zlib's own worst case for default
# parameters (deflateBound) is B/4096 + B/16384 + 7.  A block whose output
# exceeds BLOCK_SIZE + BLOCK_GROWTH is re-encoded stored.
BLOCK_GROWTH = (BLOCK_SIZE >> 12) + (BLOCK_SIZE >> 14) + 64
# What the output must trail the input by, at least, once the first byte is
# written: every checkpoint interval can then write at least one block.
MIN_GAP = 2 * BLOCK_SIZE
# Bytes after the checkpointed input offset whose CRC-32 proves, on recovery,
# that the file still holds the original there.
PROOF_SPAN = 64 * 1024

PHASE_COMPRESSING = 'compressing'
PHASE_COMPLETE = 'complete'


def worst_growth(remaining: int, block_size: int = BLOCK_SIZE) -> int:
    """Most the output of ``remaining`` more input bytes can exceed them by."""
    return -(-remaining // block_size) * growth_per_block(block_size)


def growth_per_block(block_size: int) -> int:
    return (block_size >> 12) + (block_size >> 14) + 64


def window_header(name: bytes, mtime: float, level: int, size: int, ino: int, block_size: int = BLOCK_SIZE) -> bytes:
    """The gzip header (with the CW extra field and the original name)."""
    flags = _FLAG_FEXTRA | (_FLAG_FNAME if name else 0)
    extra_flags = 2 if level == 9 else (4 if level == 1 else 0)
    data = _EXTRA_DATA.pack(EXTRA_VERSION, block_size.bit_length() - 1, size, ino, 0)
    subfield = EXTRA_ID + struct.pack('<H', len(data)) + data
    header = GZIP_MAGIC + struct.pack('<BBIBB', 8, flags, int(mtime) & 0xFFFFFFFF, extra_flags, _OS_UNIX)
    header += struct.pack('<H', len(subfield)) + subfield
    if name:
        header += name.replace(b'\x00', b'') + b'\x00'
    return header


def set_first_write(stream: bytearray, end: int) -> None:
    """Record in the header (the start of ``stream``) where the first write ends."""
    stream[FIRST_WRITE_OFFSET:FIRST_WRITE_OFFSET + 8] = struct.pack('<Q', end)


class HeaderInfo(object):
    __slots__ = ('length', 'block_size', 'size', 'ino', 'first_write', 'mtime')

    def __init__(self, length: int, block_size: int, size: int, ino: int, first_write: int, mtime: int) -> None:
        self.length = length
        self.block_size = block_size
        self.size = size
        self.ino = ino
        self.first_write = first_write
        self.mtime = mtime


def parse_window_header(data: bytes) -> HeaderInfo | None:
    """HeaderInfo when ``data`` starts with a window header, else None."""
    if len(data) < 12 or data[:2] != GZIP_MAGIC or data[2] != 8 or not data[3] & _FLAG_FEXTRA:
        return None
    flags = data[3]
    mtime = struct.unpack('<I', data[4:8])[0]
    xlen = struct.unpack('<H', data[10:12])[0]
    extra = data[12:12 + xlen]
    offset = 12 + xlen
    if len(extra) != xlen:
        return None
    info = None
    while len(extra) >= 4:
        ident, length = extra[:2], struct.unpack('<H', extra[2:4])[0]
        body = extra[4:4 + length]
        if ident == EXTRA_ID and len(body) == _EXTRA_DATA.size:
            version, block_log2, size, ino, first_write = _EXTRA_DATA.unpack(body)
            if version == EXTRA_VERSION and 12 <= block_log2 <= 30:
                info = (1 << block_log2, size, ino, first_write)
        extra = extra[4 + length:]
    if info is None:
        return None
    if flags & _FLAG_FNAME:
        end = data.find(b'\x00', offset)
        if end < 0:
            return None
        offset = end + 1
    if flags & ~(_FLAG_FEXTRA | _FLAG_FNAME):
        return None  # we never write a comment or a header CRC
    return HeaderInfo(offset, info[0], info[1], info[2], info[3], mtime)


def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(bytes(data)).decode('ascii')


class WindowState(object):
    """A checkpoint: everything needed to go on from input offset ``read``.

    The file holds the compressed stream in [0, written) and the original
    bytes from ``read`` on; ``pending`` is the rest of the stream for the
    input [0, read).  ``marks`` are the (input end, output end) of the
    blocks whose output is not yet durable in the file; ``synced_input`` is
    the input end of the last block whose output is.
    """

    FIELDS = ('read', 'written', 'crc32', 'output_crc32', 'synced_input', 'phase')

    def __init__(self, read: int = 0, written: int = 0, crc32: int = 0, output_crc32: int = 0,
                 dictionary: bytes = b'', pending: bytes = b'', marks: Iterable[Iterable[int]] = (),
                 synced_input: int = 0, phase: str = PHASE_COMPRESSING) -> None:
        self.read = read
        self.written = written
        self.crc32 = crc32
        self.output_crc32 = output_crc32
        self.dictionary = bytes(dictionary)
        self.pending = bytearray(pending)
        self.marks = [tuple(mark) for mark in marks]
        self.synced_input = synced_input
        self.phase = phase

    @property
    def output_size(self) -> int:
        """Bytes of the stream produced so far (written or pending)."""
        return self.written + len(self.pending)

    def as_manifest(self) -> dict[str, Any]:
        fields = dict((name, getattr(self, name)) for name in self.FIELDS)
        fields.update(dictionary=_b64(self.dictionary), pending=_b64(self.pending),
                      marks=[list(mark) for mark in self.marks])
        return fields

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> WindowState:
        fields = dict((name, manifest[name]) for name in cls.FIELDS)
        return cls(dictionary=base64.b64decode(manifest['dictionary']),
                   pending=base64.b64decode(manifest['pending']), marks=manifest['marks'], **fields)
