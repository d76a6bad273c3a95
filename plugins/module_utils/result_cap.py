# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Keep the result a size the controller can take, whatever the file count.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

Ansible holds each host's result several times over on the controller (580 MB
of RSS for a 30 MB result of 100,000 files was measured).  Past
``max_file_results`` entries, files are counted by action and reason instead
of listed.  What needs a human is listed first: failures, then recoveries,
then compressed files, then skips whose reason can be acted on, then the
rest; within each, the order of the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import codes

if TYPE_CHECKING:
    from .results import FileResult

DEFAULT_MAX_FILE_RESULTS = 1000

# Skips that point at something to fix, listed before the expected ones
# (too small, excluded, not a regular file...).
_ACTIONABLE_SKIPS = frozenset((codes.OPEN, codes.MEMORY_BUDGET, codes.NO_JOURNAL_SPACE, codes.JOURNAL_UNSAFE,
                               codes.CHANGED_WHILE_READING, codes.NAME_TOO_LONG, codes.ERROR, codes.NOT_FOUND))

_ACTION_RANK = {
    codes.FAILED: 0,
    codes.RECOVERED: 1,
    codes.WOULD_RECOVER: 1,
    codes.COMPRESSED: 2,
    codes.WOULD_COMPRESS: 2,
}
_SUMMED = ('original_size', 'compressed_size', 'bytes_saved')


def _rank(result: FileResult) -> int:
    if result.action in _ACTION_RANK:
        return _ACTION_RANK[result.action]
    return 3 if result.reason in _ACTIONABLE_SKIPS else 4


def cap_results(results: list[FileResult], limit: int | None) -> tuple[list[FileResult], dict[str, Any]]:
    """(results to list, in their order; summary of the others).

    The summary is ``{'count': N, 'by_reason': [{'action', 'reason', 'count',
    'original_size', 'compressed_size', 'bytes_saved'}, ...]}``, largest
    groups first.  ``limit`` 0 or None lists everything.
    """
    if not limit or len(results) <= limit:
        return list(results), {'count': 0, 'by_reason': []}
    by_rank = sorted(range(len(results)), key=lambda index: (_rank(results[index]), index))
    listed = set(by_rank[:limit])
    groups: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for index, result in enumerate(results):
        if index in listed:
            continue
        group = groups.get((result.action, result.reason))
        if group is None:
            group = groups[(result.action, result.reason)] = dict(
                action=result.action, reason=result.reason, count=0, **dict.fromkeys(_SUMMED, 0))
        group['count'] += 1
        for key in _SUMMED:
            group[key] += getattr(result, key) or 0
    summary = sorted(groups.values(), key=lambda group: (-group['count'], group['action'], group['reason'] or ''))
    return ([result for index, result in enumerate(results) if index in listed],
            {'count': len(results) - len(listed), 'by_reason': summary})
