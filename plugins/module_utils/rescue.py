# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One host's rescue in one process: measure, choose, compress, measure again, summarize.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  The ``rescue_host`` module calls ``rescue``; the role runs that
module once per host, so a fleet costs one remote call per host.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from . import codes
from .deleted import reclaim
from .engine import run
from .errors import CmemgzipError
from .rescue_plan import plan_rescue
from .rescue_summary import host_summary
from .usage import survey

if TYPE_CHECKING:
    from .deleted import ReclaimOptions
    from .engine import Options


class Measure(object):
    """What and how to measure: the thresholds and filesystem filters of ``usage.survey``."""

    def __init__(self, max_used_pct: float = 90, max_inodes_used_pct: float = 95, mounts: Sequence[str] = (),
                 include_fstypes: Sequence[str] = (), exclude_fstypes: Sequence[str] = ()) -> None:
        self.max_used_pct = max_used_pct
        self.max_inodes_used_pct = max_inodes_used_pct
        self.mounts = list(mounts or ())
        self.include_fstypes = list(include_fstypes or ())
        self.exclude_fstypes = list(exclude_fstypes or ())

    def __call__(self, mounts: Sequence[str] | None = None, paths: Sequence[str] = ()) -> dict[str, Any]:
        return survey(max_used_pct=self.max_used_pct, max_inodes_used_pct=self.max_inodes_used_pct,
                      include_fstypes=self.include_fstypes, exclude_fstypes=self.exclude_fstypes,
                      mounts=self.mounts if mounts is None else mounts, paths=list(paths))


def _compress(target: dict[str, Any], options_for: Callable[[list[str], int | None], Options],
              memory_limit: int | None) -> dict[str, Any]:
    """Run the engine on the roots of one full filesystem; a run that raises is a failed run."""
    try:
        result = run(options_for(target['roots'], memory_limit))
    except (CmemgzipError, OSError) as exc:
        return {'mount': target['mount'], 'roots': target['roots'], 'failed': True, 'changed': False,
                'msg': str(exc), 'files': [], 'omitted': None}
    return {'mount': target['mount'], 'roots': target['roots'], 'failed': bool(result['failed']),
            'changed': bool(result['changed']), 'msg': result['msg'], 'files': result['files'],
            'omitted': result.get('files_omitted')}


def _reclaim(target: dict[str, Any], reclaim_for: Callable[[str, int | None], ReclaimOptions],
             memory_limit: int | None) -> dict[str, Any]:
    """Reclaim the deleted-but-open files of one full filesystem (deleted.py); a run record."""
    try:
        result = reclaim(reclaim_for(target['mount'], memory_limit))
    except (CmemgzipError, OSError) as exc:
        return {'mount': target['mount'], 'roots': [], 'failed': True, 'changed': False, 'msg': str(exc),
                'files': [], 'omitted': None}
    return {'mount': target['mount'], 'roots': [], 'failed': bool(result['failed']),
            'changed': bool(result['changed']), 'msg': result['msg'], 'files': result['files'], 'omitted': None}


def holds_deleted_files(target: dict[str, Any], measured: dict[str, Any]) -> bool:
    """Whether a full filesystem is worth a reclaim: writable, and deleted files still hold some of it.

    A filesystem with no root to search (note no_roots) still counts: its
    deleted files are found through /proc, wherever they were.
    """
    if target['note'] not in (None, codes.NO_ROOTS):
        return False
    for filesystem in measured.get('filesystems') or ():
        if filesystem['mount'] == target['mount']:
            return bool(filesystem.get('deleted_open_bytes'))
    return False


def rescue(measure: Measure, roots: Sequence[str], options_for: Callable[[list[str], int | None], Options],
           check_mode: bool, memory_limit: int | None = None, memory_fraction: float | None = None,
           thresholds: dict[str, Any] | None = None, max_files: int = 50, human: Callable[[Any], str] = str,
           reclaim_for: Callable[[str, int | None], ReclaimOptions] | None = None) -> tuple[dict[str, Any], bool]:
    """Rescue this host; return ``(summary, changed)``.

    ``measure`` is a ``Measure``; ``roots`` the directories to search;
    ``options_for(roots, memory_limit)`` builds the engine's Options for
    one full filesystem.  The memory budget is ``memory_limit`` (bytes), else
    ``memory_fraction`` of the memory available when the host is measured
    (``sysinfo.memory_budget``): the plan computes it once, every run gets it.
    ``reclaim_for(mount, memory_limit)``, when given, builds the
    ReclaimOptions of deleted.py: the deleted-but-open files of a full
    filesystem are reclaimed first - it costs one /proc scan and no walk,
    and it is space nothing else can reach - then the roots are compressed
    until target_free, which counts what the reclaim gave back.
    """
    record: dict[str, Any] = {'check_mode': check_mode, 'thresholds': thresholds or {}, 'runs': []}
    try:
        measured = measure(paths=roots)
    except (CmemgzipError, OSError, ValueError) as exc:
        record['measure_error'] = 'cannot read the mount table: %s' % exc
        return host_summary(record, max_files=max_files, human=human), False
    plan = plan_rescue(measured, memory_limit=memory_limit,
                       **({'memory_fraction': memory_fraction} if memory_fraction else {}))
    record.update(measured=measured, plan=plan, memory=dict(
        (key, measured['memory'].get(key)) for key in ('mem_total', 'cgroup', 'shm')))
    if reclaim_for is not None:
        record['runs'] = [_reclaim(target, reclaim_for, plan['memory_limit']) for target in plan['full']
                          if holds_deleted_files(target, measured)]
    record['runs'] += [_compress(target, options_for, plan['memory_limit']) for target in plan['remediate']]
    if plan['full']:
        try:
            record['after'] = measure(mounts=[entry['mount'] for entry in plan['full']])
        except (CmemgzipError, OSError, ValueError) as exc:
            record['after_error'] = 'cannot measure again: %s' % exc
    changed = any(run['changed'] for run in record['runs'])
    return host_summary(record, max_files=max_files, human=human), changed
