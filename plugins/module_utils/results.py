# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The one result type of a file, and text that JSON and Ansible accept.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional


def printable(path: str | bytes | None) -> str | None:
    """Text safe for JSON: bytes that are not UTF-8 become ``\\xNN`` escapes.

    Names come from ``os`` as str with surrogate escapes; Ansible refuses to
    serialise those, and one such name would cost the whole task its result.
    """
    if path is None:
        return None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return path.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')


def raw_b64(path: str | bytes | None) -> str | None:
    """Base64 of the name's bytes when they are not valid UTF-8, else None."""
    if path is None:
        return None
    raw = os.fsencode(path)
    try:
        raw.decode('utf-8')
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode('ascii')
    return None


@dataclass
class FileResult:
    """What happened to one file: the engine, recovery and skips all return this."""

    path: Optional[str]
    dest: Optional[str] = None
    action: Optional[str] = None
    reason: Optional[str] = None
    detail: Optional[str] = None
    original_size: Optional[int] = None
    compressed_size: Optional[int] = None
    bytes_saved: int = 0
    seconds: Optional[float] = None
    strategy: Optional[str] = None
    estimated: bool = False
    pids: Optional[List[Dict[str, Any]]] = None
    # Fields of one kind of result only (journal copy, holders, live prefix...).
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.compressed_size and self.original_size:
            return round(float(self.original_size) / self.compressed_size, 2)
        return None

    def update(self, **fields: Any) -> FileResult:
        """Set known fields; anything else goes to ``extra``."""
        for key, value in fields.items():
            if key in _FIELD_NAMES:
                setattr(self, key, value)
            else:
                self.extra[key] = value
        return self

    def as_dict(self) -> dict[str, Any]:
        result = {
            'path': printable(self.path),
            'dest': printable(self.dest),
            'action': self.action,
            'reason': self.reason,
            'detail': printable(self.detail),
            'original_size': self.original_size,
            'compressed_size': self.compressed_size,
            'bytes_saved': self.bytes_saved,
            'ratio': self.ratio,
            'seconds': self.seconds,
            'strategy': self.strategy,
            'estimated': self.estimated,
        }
        if self.pids:
            result['pids'] = [dict(holder, comm=printable(holder.get('comm'))) for holder in self.pids]
        encoded = raw_b64(self.path)
        if encoded is not None:
            result['path_b64'] = encoded
        result.update(self.extra)
        return result


_FIELD_NAMES = frozenset(('path', 'dest', 'action', 'reason', 'detail', 'original_size', 'compressed_size',
                          'bytes_saved', 'seconds', 'strategy', 'estimated', 'pids'))
