# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The summary of one host's rescue: status, one line, counts, short file lists.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  Pure functions: the ``rescue_host`` module summarizes on the host
with ``host_summary`` (so the result it sends stays small however many files
there are), the ``rescue_summary`` filter turns a result that has no summary
(unreachable host, module that could not run) into one with
``failure_summary``, and the fleet report reads these summaries.

Every count is complete; the file lists keep the first ``max_files`` per kind.
Counts per action kind (``actions``) come from the files' own action codes,
so a new kind of action is counted without a change here (``Tally``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

from . import codes
from .rescue_open_files import empty as no_open_files, message_parts, open_files_summary

# The usage figures a summary keeps of a filesystem, before and after.
USAGE_KEYS = ('size', 'free', 'avail', 'used_pct', 'inodes', 'inodes_free', 'inodes_used_pct')
# The keys of a summary, in order (the rescue_host module returns exactly these, plus changed/failed).
SUMMARY_KEYS = ('host', 'status', 'check_mode', 'msg', 'thresholds', 'memory', 'measured', 'full', 'still_full',
                'filesystems', 'actions', 'files_compressed', 'bytes_saved', 'original_size', 'compressed_size',
                'would_compress', 'would_save', 'recovered', 'compressed', 'would_compress_files', 'skips',
                'failures', 'failure_count', 'live_files', 'deleted_files')


def truncate(text: object, length: int) -> str:
    """``text`` cut at a word boundary to at most ``length`` characters, with '...' when cut."""
    text = '' if text is None else str(text)
    if len(text) <= length:
        return text
    cut = text[:length - 3].rsplit(' ', 1)[0] if ' ' in text[:length - 3] else text[:length - 3]
    return cut + '...'


class Tally(object):
    """Counts and byte sums per action and reason, over the files of some runs.

    A run's result may list only some files (``files``) and summarize the
    others by action and reason (``omitted``: the engine's ``files_omitted``):
    both count, so the counts stay complete however many files there were.
    """

    SUMMED = ('bytes_saved', 'original_size', 'compressed_size')

    def __init__(self, runs: Iterable[Mapping[str, Any]]) -> None:
        self.groups: dict[tuple[str | None, str | None], dict[str, int]] = {}
        for run in runs:
            for f in run.get('files') or ():
                self._add(f.get('action'), f.get('reason'), 1, f)
            for group in (run.get('omitted') or {}).get('by_reason') or ():
                self._add(group.get('action'), group.get('reason'), group.get('count') or 0, group)

    def _add(self, action: str | None, reason: str | None, count: int, sums: Mapping[str, Any]) -> None:
        group = self.groups.setdefault((action, reason), dict(count=0, **dict.fromkeys(self.SUMMED, 0)))
        group['count'] += count
        for key in self.SUMMED:
            group[key] += sums.get(key) or 0

    def count(self, action: str) -> int:
        return sum(g['count'] for (act, dummy), g in self.groups.items() if act == action)

    def total(self, key: str, action: str) -> int:
        return sum(g[key] for (act, dummy), g in self.groups.items() if act == action)

    def actions(self) -> dict[str | None, int]:
        """{action code: number of files}, in the order the actions were first met."""
        counts = {}
        for (action, dummy), group in self.groups.items():
            counts[action] = counts.get(action, 0) + group['count']
        return counts

    def reasons(self, action: str) -> dict[str, int]:
        """{reason code: number of files} of one action."""
        counts = {}
        for (act, reason), group in self.groups.items():
            if act == action:
                counts[reason or 'unknown'] = counts.get(reason or 'unknown', 0) + group['count']
        return counts


def _of(files: Iterable[dict[str, Any]], *actions: str) -> list[dict[str, Any]]:
    return [f for f in files if f.get('action') in actions]


def _usage(filesystem: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if filesystem is None:
        return None
    return dict((key, filesystem.get(key)) for key in USAGE_KEYS)


def _by_mount(measurement: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    return dict((fs['mount'], fs) for fs in (measurement or {}).get('filesystems') or ())


def failure(reason: str | None, detail: str | None, mount: str | None = None,
            path: str | None = None) -> dict[str, Any]:
    return {'mount': mount, 'path': path, 'reason': reason, 'detail': detail}


def _task_failures(measure_error: str | None, runs: Iterable[Mapping[str, Any]],
                   after_error: str | None) -> list[dict[str, Any]]:
    found = []
    if measure_error is not None:
        found.append(failure(codes.MEASURE_FAILED, measure_error))
    for run in runs:
        if run.get('failed'):
            found.append(failure(codes.RUN_FAILED, run.get('msg') or '', mount=run.get('mount')))
    if after_error is not None:
        found.append(failure(codes.MEASURE_FAILED, after_error))
    return found


def _filesystem_entry(entry: Mapping[str, Any], before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                      runs: Iterable[Mapping[str, Any]], check_mode: bool) -> dict[str, Any]:
    mine = [run for run in runs if run.get('mount') == entry['mount']]
    tally = Tally(mine)
    result = dict(entry)
    result.update({
        'before': _usage(before),
        'after': _usage(after),
        'freed': (after['avail'] - before['avail']) if after is not None and before is not None else None,
        'still_full': (after['full'] if after is not None else True) and not check_mode,
        'still_full_reasons': [] if check_mode else (
            list(after['full_reasons']) if after is not None else [codes.NOT_MEASURED]),
        'actions': tally.actions(),
        'files_compressed': tally.count(codes.COMPRESSED),
        'bytes_saved': tally.total('bytes_saved', codes.COMPRESSED),
        'would_compress': tally.count(codes.WOULD_COMPRESS),
        'would_save': tally.total('bytes_saved', codes.WOULD_COMPRESS),
        'skipped': tally.count(codes.SKIPPED),
        'failed': tally.count(codes.FAILED) + sum(1 for run in mine if run.get('failed')),
    })
    return result


def _status(failures: list[dict[str, Any]], full: list[str], check_mode: bool, still_full: list[str]) -> str:
    if failures:
        return codes.HOST_FAILED
    if not full:
        return codes.HEALTHY
    if check_mode:
        return codes.FULL
    if still_full:
        return codes.STILL_FULL
    return codes.REMEDIATED


def _message(record: Mapping[str, Any], summary: Mapping[str, Any], human: Callable[[Any], str]) -> str:
    full = summary['full']
    if record.get('measure_error') is not None:
        msg = 'cannot measure: %s' % truncate(record['measure_error'], 200)
    elif not full:
        msg = 'no full filesystem among %d measured' % summary['measured']
    elif summary['check_mode']:
        msg = '%s full; would compress %d files, saving about %s' % (
            ', '.join(full), summary['would_compress'], human(summary['would_save']))
    else:
        msg = '%s full before; compressed %d files, saved %s; %s' % (
            ', '.join(full), summary['files_compressed'], human(summary['bytes_saved']),
            ('still full: ' + ', '.join(summary['still_full'])) if summary['still_full'] else 'none still full')
    for part in message_parts(summary, human):
        msg += '; ' + part
    notes = ['%s %s' % (fs['mount'], fs['note']) for fs in summary['filesystems'] if fs.get('note')]
    if notes:
        msg += ' (%s)' % ', '.join(notes)
    failures = summary['failures']
    if failures:
        first = failures[0]
        msg += '; %d failure(s), first: %s %s %s' % (
            summary['failure_count'], first['path'] or first['mount'] or '', first['reason'] or '',
            truncate(first['detail'] or '', 120))
    return msg


def host_summary(record: Mapping[str, Any], max_files: int = 50, human: Callable[[Any], str] = str) -> dict[str, Any]:
    """The summary of one host from the record of its rescue.

    ``record`` has ``measured`` (a measurement, see ``usage.survey``, or None),
    ``measure_error`` (why it could not be measured, or None), ``plan`` (see
    ``rescue_plan.plan_rescue``), ``runs`` (per filesystem compressed on:
    ``mount``, ``failed``, ``msg``, ``files``: the engine's file results,
    ``omitted``: its summary of the files it did not list),
    ``after`` (the full filesystems measured again, or None), ``after_error``,
    ``check_mode``, ``thresholds`` and ``memory`` (extra memory figures).
    ``human`` formats a byte count for the one-line ``msg``.
    """
    measured = record.get('measured') or {}
    plan = record.get('plan') or {'full': [], 'memory_limit': None, 'memory_available': None}
    runs = record.get('runs') or []
    check_mode = bool(record.get('check_mode'))
    files = [f for run in runs for f in run.get('files') or ()]
    tally = Tally(runs)
    task_failures = _task_failures(record.get('measure_error'), runs, record.get('after_error'))
    failures = task_failures + [failure(f.get('reason'), f.get('detail'), path=f.get('path'))
                                for f in _of(files, codes.FAILED)]
    before_fs, after_fs = _by_mount(measured), _by_mount(record.get('after'))
    filesystems = [_filesystem_entry(entry, before_fs.get(entry['mount']), after_fs.get(entry['mount']), runs,
                                     check_mode)
                   for entry in plan['full']]
    compressed = _of(files, codes.COMPRESSED)
    would = _of(files, codes.WOULD_COMPRESS)
    skipped = _of(files, codes.SKIPPED)
    memory = dict(record.get('memory') or {})
    memory.update(available=plan.get('memory_available'), limit=plan.get('memory_limit'))
    summary = {
        'host': record.get('host'),
        'status': None,
        'check_mode': check_mode,
        'msg': None,
        'thresholds': record.get('thresholds') or {},
        'memory': memory,
        'measured': len(measured.get('filesystems') or ()),
        'full': [entry['mount'] for entry in plan['full']],
        'still_full': [fs['mount'] for fs in filesystems if fs['still_full']],
        'filesystems': filesystems,
        'actions': tally.actions(),
        'files_compressed': tally.count(codes.COMPRESSED),
        'bytes_saved': tally.total('bytes_saved', codes.COMPRESSED),
        'original_size': tally.total('original_size', codes.COMPRESSED),
        'compressed_size': tally.total('compressed_size', codes.COMPRESSED),
        'would_compress': tally.count(codes.WOULD_COMPRESS),
        'would_save': tally.total('bytes_saved', codes.WOULD_COMPRESS),
        'recovered': tally.count(codes.RECOVERED) + tally.count(codes.WOULD_RECOVER),
        'compressed': [dict((key, f.get(key)) for key in ('path', 'dest', 'original_size', 'compressed_size',
                                                          'bytes_saved', 'seconds'))
                       for f in compressed[:max_files]],
        'would_compress_files': [dict((key, f.get(key)) for key in ('path', 'original_size', 'bytes_saved',
                                                                    'estimated'))
                                 for f in would[:max_files]],
        'skips': {'count': tally.count(codes.SKIPPED), 'reasons': tally.reasons(codes.SKIPPED),
                  'files': [dict((key, f.get(key)) for key in ('path', 'reason', 'detail'))
                            for f in skipped[:max_files]]},
        'failures': failures[:max_files],
        'failure_count': len(task_failures) + tally.count(codes.FAILED),
    }
    summary.update(open_files_summary(tally, files, max_files))
    summary['status'] = _status(failures, summary['full'], check_mode, summary['still_full'])
    summary['msg'] = _message(record, summary, human)
    return summary


def failure_summary(host: str | None, status: str, reason: str | None, detail: object,
                    check_mode: bool | None = None) -> dict[str, Any]:
    """The summary of a host that produced no summary of its own.

    ``status`` is codes.UNREACHABLE, codes.HOST_FAILED (the module could not
    run) or codes.NO_RESULT (nothing ran: the failure list stays empty).
    """
    detail = '' if detail is None else str(detail)
    failures = [] if status == codes.NO_RESULT else [failure(reason, detail)]
    if status == codes.UNREACHABLE:
        msg = 'unreachable: %s' % truncate(detail, 200)
    elif status == codes.NO_RESULT:
        msg = detail
    else:
        msg = 'cannot run: %s' % truncate(detail, 200)
    summary = {
        'host': host, 'status': status, 'check_mode': check_mode, 'msg': msg, 'thresholds': {}, 'memory': {},
        'measured': 0, 'full': [], 'still_full': [], 'filesystems': [], 'actions': {}, 'files_compressed': 0,
        'bytes_saved': 0, 'original_size': 0, 'compressed_size': 0, 'would_compress': 0, 'would_save': 0,
        'recovered': 0, 'compressed': [], 'would_compress_files': [],
        'skips': {'count': 0, 'reasons': {}, 'files': []}, 'failures': failures, 'failure_count': len(failures),
    }
    summary.update(no_open_files())
    return summary


def summary_of_result(result: Mapping[str, Any] | None, host: str | None = None) -> dict[str, Any]:
    """The summary in a task result of the ``rescue_host`` module, or one that says why there is none.

    ``result`` is what the task registered: the module's result (its
    summary keys), an unreachable result, a skipped task, or a failure
    before the module could summarize (argument error, Python missing, a
    crash).  A summary is returned as it is.
    """
    result = result or {}
    if not result or result.get('skipped'):
        return failure_summary(host, codes.NO_RESULT, None, result.get('skip_reason') or 'the rescue did not run')
    if result.get('unreachable'):
        return failure_summary(host, codes.UNREACHABLE, codes.UNREACHABLE, result.get('msg'))
    if result.get('status') not in codes.HOST_STATUSES:
        return failure_summary(host, codes.HOST_FAILED, codes.RUN_FAILED, result.get('msg')
                               or result.get('module_stderr') or 'no result')
    summary = dict((key, result.get(key)) for key in SUMMARY_KEYS)
    if host is not None:
        summary['host'] = host
    return summary
