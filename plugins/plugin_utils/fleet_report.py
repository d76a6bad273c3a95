# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report: every host's rescue summary, totals, one line per host.

This is a private plugin_utils file of sre.cmemgzip: it may change without
notice.  A pure function, used by the ``fleet_report`` filter and the
``rescue_report`` action (which writes it, with report_markdown.py).
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Iterable, Mapping

from ansible.module_utils.common.text.formatters import bytes_to_human

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_summary import failure_summary

NO_SUMMARY = 'no summary: the role did not complete on this host (see the play output)'

# Summary counts the fleet totals add up, by the name of the total.
SUMMED = (
    ('files_compressed', lambda s: s['files_compressed']),
    ('bytes_saved', lambda s: s['bytes_saved']),
    ('would_compress', lambda s: s['would_compress']),
    ('would_save', lambda s: s['would_save']),
    ('skipped', lambda s: s['skips']['count']),
    ('failures', lambda s: s['failure_count']),
    ('full_filesystems', lambda s: len(s['full'])),
    ('still_full_filesystems', lambda s: len(s['still_full'])),
) + tuple(
    # Live files cut and deleted files reclaimed, each on their own (rescue_open_files.py).
    ('%s_%s' % (kind, count), lambda s, kind=kind, count=count: (s.get(kind) or {}).get(count) or 0)
    for kind in ('live_files', 'deleted_files') for count in ('count', 'bytes_saved', 'would', 'would_save'))


def open_files_line(totals: Mapping[str, Any], check_mode: bool, human: Callable[[Any], str] = bytes_to_human) -> str:
    """``live files: 2 cut, saved 1.00 GB; deleted files: 1 reclaimed, saved 2.00 GB``, or '' when none."""
    parts = []
    for kind, noun, verb in (('live_files', 'live files', 'cut'), ('deleted_files', 'deleted files', 'reclaimed')):
        if check_mode and totals['%s_would' % kind]:
            parts.append('%s: would %s %d, saving about %s' % (
                noun, 'cut' if verb == 'cut' else 'reclaim', totals['%s_would' % kind],
                human(totals['%s_would_save' % kind])))
        elif not check_mode and totals['%s_count' % kind]:
            parts.append('%s: %d %s, saved %s' % (noun, totals['%s_count' % kind], verb,
                                                  human(totals['%s_bytes_saved' % kind])))
    return '; '.join(parts)


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def total_line(totals: Mapping[str, Any], check_mode: bool, human: Callable[[Any], str] = bytes_to_human) -> str:
    """``fleet: 4 hosts (healthy 1, full 3); would compress 6 files, saving about 35.38 MB; ...``."""
    statuses = ', '.join('%s %d' % pair for pair in totals['statuses'].items())
    if check_mode:
        work = 'would compress %d files, saving about %s' % (totals['would_compress'], human(totals['would_save']))
    else:
        work = 'compressed %d files, saved %s' % (totals['files_compressed'], human(totals['bytes_saved']))
    open_files = open_files_line(totals, check_mode, human)
    if open_files:
        work += '; ' + open_files
    return 'fleet: %d hosts (%s); %s; %d filesystems still full; %d failures' % (
        totals['hosts'], statuses, work, totals['still_full_filesystems'], totals['failures'])


def fleet_report(summaries: Mapping[str, dict[str, Any] | None], hosts: Iterable[str], title: str,
                 generated: str | None = None, human: Callable[[Any], str] = bytes_to_human) -> dict[str, Any]:
    """The report of ``hosts`` (each once, sorted) from ``summaries`` (host -> summary or None).

    A host without a summary gets the status ``no_result``.  Returns
    ``title``, ``generated``, ``check_mode`` (any host in check mode),
    ``totals`` (``hosts``, ``statuses``: count per status in the order
    first met, and the sums of SUMMED), ``total_line``, ``lines`` (one per
    host) and ``hosts`` (host -> summary).
    """
    by_host = {}
    for host in sorted(set(hosts)):
        summary = summaries.get(host)
        if not summary:
            summary = failure_summary(host, codes.NO_RESULT, None, NO_SUMMARY)
        by_host[host] = summary
    totals: dict[str, Any] = {'hosts': len(by_host), 'statuses': {}}
    totals.update((name, 0) for name, dummy in SUMMED)
    for summary in by_host.values():
        totals['statuses'][summary['status']] = totals['statuses'].get(summary['status'], 0) + 1
        for name, count in SUMMED:
            totals[name] += count(summary)
    check_mode = any(summary.get('check_mode') for summary in by_host.values())
    return {
        'title': title,
        'generated': generated or utc_now(),
        'check_mode': check_mode,
        'totals': totals,
        'total_line': total_line(totals, check_mode, human),
        'lines': ['%s: %s - %s' % (host, summary['status'], summary['msg']) for host, summary in by_host.items()],
        'hosts': by_host,
    }
