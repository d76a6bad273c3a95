# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One host's rescue in one process: measure, choose, compress, measure again, summarize.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  The ``rescue_host`` module calls ``rescue``; the role runs that
module once per host, so a fleet costs one remote call per host.
"""

from __future__ import absolute_import, division, print_function

from .engine import run
from .errors import CmemgzipError
from .rescue_plan import plan_rescue
from .rescue_summary import host_summary
from .usage import survey


class Measure(object):
    """What and how to measure: the thresholds and filesystem filters of ``usage.survey``."""

    def __init__(self, max_used_pct=90, max_inodes_used_pct=95, mounts=(), include_fstypes=(), exclude_fstypes=()):
        self.max_used_pct = max_used_pct
        self.max_inodes_used_pct = max_inodes_used_pct
        self.mounts = list(mounts or ())
        self.include_fstypes = list(include_fstypes or ())
        self.exclude_fstypes = list(exclude_fstypes or ())

    def __call__(self, mounts=None, paths=()):
        return survey(max_used_pct=self.max_used_pct, max_inodes_used_pct=self.max_inodes_used_pct,
                      include_fstypes=self.include_fstypes, exclude_fstypes=self.exclude_fstypes,
                      mounts=self.mounts if mounts is None else mounts, paths=list(paths))


def _compress(target, options_for, memory_limit):
    """Run the engine on the roots of one full filesystem; a run that raises is a failed run."""
    try:
        result = run(options_for(target['roots'], memory_limit))
    except (CmemgzipError, OSError) as exc:
        return {'mount': target['mount'], 'roots': target['roots'], 'failed': True, 'changed': False,
                'msg': str(exc), 'files': [], 'omitted': None}
    return {'mount': target['mount'], 'roots': target['roots'], 'failed': bool(result['failed']),
            'changed': bool(result['changed']), 'msg': result['msg'], 'files': result['files'],
            'omitted': result.get('files_omitted')}


def rescue(measure, roots, options_for, check_mode, memory_limit=None, memory_fraction=None, thresholds=None,
           max_files=50, human=str):
    """Rescue this host; return ``(summary, changed)``.

    ``measure`` is a ``Measure``; ``roots`` the directories to search;
    ``options_for(roots, memory_limit)`` builds the engine's Options for
    one full filesystem.  The memory budget is ``memory_limit`` (bytes), else
    ``memory_fraction`` of the memory available when the host is measured
    (``sysinfo.memory_budget``): the plan computes it once, every run gets it.
    """
    record = {'check_mode': check_mode, 'thresholds': thresholds or {}, 'runs': []}
    try:
        measured = measure(paths=roots)
    except (CmemgzipError, OSError, ValueError) as exc:
        record['measure_error'] = 'cannot read the mount table: %s' % exc
        return host_summary(record, max_files=max_files, human=human), False
    plan = plan_rescue(measured, memory_limit=memory_limit,
                       **({'memory_fraction': memory_fraction} if memory_fraction else {}))
    record.update(measured=measured, plan=plan, memory=dict(
        (key, measured['memory'].get(key)) for key in ('mem_total', 'cgroup', 'shm')))
    record['runs'] = [_compress(target, options_for, plan['memory_limit']) for target in plan['remediate']]
    if plan['full']:
        try:
            record['after'] = measure(mounts=[entry['mount'] for entry in plan['full']])
        except (CmemgzipError, OSError, ValueError) as exc:
            record['after_error'] = 'cannot measure again: %s' % exc
    changed = any(run['changed'] for run in record['runs'])
    return host_summary(record, max_files=max_files, human=human), changed
