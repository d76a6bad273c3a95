# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The part of a host's rescue summary about open files: live files cut, deleted files reclaimed.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  rescue_summary.py adds ``live_files`` and ``deleted_files`` to every
summary with ``open_files_summary`` and their segments to its one line with
``message_parts``; the fleet report (plugin_utils) adds them up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import codes

if TYPE_CHECKING:
    from .rescue_summary import Tally

# Summary key -> (action when done, action in check mode).
KINDS = (
    ('live_files', codes.LIVE_COMPRESSED, codes.WOULD_LIVE_COMPRESS),
    ('deleted_files', codes.RECLAIMED, codes.WOULD_RECLAIM),
)
FILE_KEYS = ('path', 'dest', 'action', 'original_size', 'compressed_size', 'bytes_saved', 'strategy', 'writer_stall')


def empty() -> dict[str, dict[str, Any]]:
    """The open-file part of a summary where nothing ran."""
    return dict((key, {'count': 0, 'bytes_saved': 0, 'would': 0, 'would_save': 0, 'files': []})
                for key, dummy, dummy2 in KINDS)


def open_files_summary(tally: Tally, files: list[dict[str, Any]], max_files: int) -> dict[str, dict[str, Any]]:
    """``{'live_files': ..., 'deleted_files': ...}`` from a rescue_summary.Tally and the listed files.

    Each has ``count`` and ``bytes_saved`` (done), ``would`` and ``would_save``
    (check mode) and ``files``: the first ``max_files`` of them.
    """
    result = {}
    for key, done, would in KINDS:
        listed = [f for f in files if f.get('action') in (done, would)]
        result[key] = {
            'count': tally.count(done), 'bytes_saved': tally.total('bytes_saved', done),
            'would': tally.count(would), 'would_save': tally.total('bytes_saved', would),
            'files': [dict((name, f.get(name)) for name in FILE_KEYS) for f in listed[:max_files]],
        }
    return result


def message_parts(summary: Mapping[str, Any], human: Callable[[int], str]) -> list[str]:
    """Segments of the host's one-line message, one per kind that has files."""
    parts = []
    for key, noun, verb in (('live_files', 'live file', 'cut'), ('deleted_files', 'deleted file', 'reclaimed')):
        part = summary.get(key) or {}
        if part.get('count'):
            parts.append('%s %d %s%s, saved %s' % (verb, part['count'], noun, '' if part['count'] == 1 else 's',
                                                   human(part['bytes_saved'])))
        if part.get('would'):
            parts.append('would %s %d %s%s, saving about %s' % (
                'cut' if verb == 'cut' else 'reclaim', part['would'], noun, '' if part['would'] == 1 else 's',
                human(part['would_save'])))
    return parts
