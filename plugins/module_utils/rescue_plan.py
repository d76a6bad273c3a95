# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which full filesystems a rescue compresses on, from which roots, with how much memory.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  A pure function over a measurement (what ``usage.survey`` and the
``fs_usage_info`` module return): the ``rescue_host`` module plans with it on
the host, the ``rescue_plan`` filter on the controller.
"""

from __future__ import annotations

from typing import Any

from . import codes
from .sysinfo import DEFAULT_MEMORY_FRACTION, memory_budget


def roots_on(filesystem: dict[str, Any], located: list[dict[str, Any]]) -> list[str]:
    """The roots to search for ``filesystem``, in order, without duplicates.

    ``located`` are the existing roots (entries of ``survey()['paths']``).  A
    root counts for the filesystem that holds it; a mount point of the
    filesystem that lies below a root (``/var/log/app`` under ``/var/log``)
    is searched from that mount point, since recursion never leaves a
    filesystem.
    """
    roots = [entry['path'] for entry in located if entry['mount'] == filesystem['mount']]
    for point in [filesystem['mount']] + list(filesystem.get('bind_mounts') or ()):
        for entry in located:
            resolved = entry.get('resolved')
            if resolved is not None and point.startswith(resolved.rstrip('/') + '/'):
                roots.append(point)
    unique = []
    for root in roots:
        if root not in unique:
            unique.append(root)
    return unique


def filesystem_note(filesystem: dict[str, Any], roots: list[str]) -> str | None:
    """Why a full filesystem is left alone (a codes.FILESYSTEM_NOTES code), or None."""
    if filesystem.get('read_only'):
        return codes.READ_ONLY
    if codes.USED_PCT not in filesystem.get('full_reasons', ()):
        return codes.INODES_ONLY
    if not roots:
        return codes.NO_ROOTS
    return None


def plan_rescue(measured: dict[str, Any], memory_limit: int | None = None,
                memory_fraction: float = DEFAULT_MEMORY_FRACTION) -> dict[str, Any]:
    """The plan of a rescue.

    ``measured``: a measurement with ``filesystems``, ``paths`` (the roots
    located) and ``memory``.  Returns ``full`` (every full filesystem, with
    its ``roots`` and a ``note`` when it is left alone), ``remediate`` (the
    full filesystems to compress on), ``memory_available`` and
    ``memory_limit`` (bytes: ``memory_limit`` when given, else
    ``memory_fraction`` of the available memory, as the engine computes it).
    """
    located = [entry for entry in measured.get('paths') or () if entry.get('exists')]
    full = []
    for filesystem in measured.get('filesystems') or ():
        if not filesystem.get('full'):
            continue
        roots = roots_on(filesystem, located)
        full.append({
            'mount': filesystem['mount'],
            'device': filesystem.get('device'),
            'fstype': filesystem.get('fstype'),
            'full_reasons': list(filesystem.get('full_reasons') or ()),
            'read_only': bool(filesystem.get('read_only')),
            'roots': roots,
            'note': filesystem_note(filesystem, roots),
        })
    available = (measured.get('memory') or {}).get('available')
    return {
        'full': full,
        'remediate': [entry for entry in full if entry['note'] is None],
        'memory_available': available,
        'memory_limit': memory_budget(available, memory_limit, memory_fraction),
    }
