# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Recognise already-compressed data by its magic bytes, not by its name."""

from __future__ import annotations

MAGIC_BYTES = (
    (b'\x1f\x8b', 'gzip'),
    (b'\xfd7zXZ\x00', 'xz'),
    (b'\x28\xb5\x2f\xfd', 'zstd'),
    (b'BZh', 'bzip2'),
    (b'PK\x03\x04', 'zip'),
    (b'PK\x05\x06', 'zip'),
    (b'\x04\x22\x4d\x18', 'lz4'),
    (b'\x02\x21\x4c\x18', 'lz4'),  # legacy lz4 frame
    (b'\x1f\x9d', 'compress'),
    (b'\x89LZO', 'lzo'),
    (b'7z\xbc\xaf\x27\x1c', '7z'),
)
LONGEST_MAGIC = max(len(magic) for magic, _name in MAGIC_BYTES)


def compressed_format(head: bytes) -> str | None:
    """The compressed format whose magic starts ``head``, or None."""
    for magic, name in MAGIC_BYTES:
        if head.startswith(magic):
            return name
    return None
