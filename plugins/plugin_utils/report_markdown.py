# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report as Markdown: a table of hosts, a fleet total and a table per host.

This is a private plugin_utils file of sre.cmemgzip: it may change without
notice.  A pure function of what ``fleet_report.fleet_report`` returns.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

from ansible.module_utils.common.text.formatters import bytes_to_human

HOST_COLUMNS = ('Host', 'Status', 'Full before', 'Still full', 'Files compressed', 'Bytes saved', 'Would compress',
                'Would save', 'Skipped', 'Failures', 'Summary')
FILESYSTEM_COLUMNS = ('Filesystem', 'Type', 'Full by', 'Avail before', 'Avail after', 'Freed', 'Used % before',
                      'Used % after', 'Inodes free before', 'Inodes free after', 'Files compressed', 'Bytes saved',
                      'Would compress', 'Would save', 'Skipped', 'Failed', 'Note')


def size(value: int | None, human: Callable[[Any], str] = bytes_to_human) -> str:
    return '-' if value is None else human(value)


def cell(value: object) -> str:
    """Text safe in a table cell."""
    return ('' if value is None else str(value)).replace('|', '\\|').replace('\n', ' ')


def row(values: Iterable[object]) -> str:
    return '| ' + ' | '.join(str(value) for value in values) + ' |'


def header(columns: Sequence[str], numeric_from: int) -> list[str]:
    """The header and alignment lines; columns from ``numeric_from`` on are right-aligned."""
    align = ['---' if index < numeric_from or column in ('Note', 'Summary') else '---:'
             for index, column in enumerate(columns)]
    return [row(columns), '|' + '|'.join(align) + '|']


def _fleet_total(totals: Mapping[str, Any]) -> list[str]:
    statuses = list(totals['statuses'].items())
    columns = ['Hosts'] + [status for status, dummy in statuses] + [
        'Full filesystems', 'Still full', 'Files compressed', 'Bytes saved', 'Would compress', 'Would save', 'Skipped',
        'Failures']
    values = [totals['hosts']] + [count for dummy, count in statuses] + [
        totals['full_filesystems'], totals['still_full_filesystems'], totals['files_compressed'],
        size(totals['bytes_saved']), totals['would_compress'], size(totals['would_save']), totals['skipped'],
        totals['failures']]
    lines = ['## Fleet total', ''] + header(columns, 0) + [row(values), '']
    for kind, noun in (('live_files', 'Live files cut'), ('deleted_files', 'Deleted files reclaimed')):
        done, would = totals.get('%s_count' % kind, 0), totals.get('%s_would' % kind, 0)
        if done or would:
            lines += ['%s: %d, %s saved%s.' % (noun, done, size(totals['%s_bytes_saved' % kind]),
                                               ('; would: %d, about %s' % (would, size(totals['%s_would_save' % kind])))
                                               if would else ''), '']
    return lines


def _hosts_table(hosts: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ['## Hosts', ''] + header(HOST_COLUMNS, 4)
    for host, s in hosts.items():
        lines.append(row([cell(host), s['status'], cell(', '.join(s['full'])), cell(', '.join(s['still_full'])),
                          s['files_compressed'], size(s['bytes_saved']), s['would_compress'], size(s['would_save']),
                          s['skips']['count'], s['failure_count'], cell(s['msg'])]))
    return lines + ['']


def _filesystems_table(s: Mapping[str, Any]) -> list[str]:
    lines = header(FILESYSTEM_COLUMNS, 3)
    for fs in s['filesystems']:
        before, after = fs['before'] or {}, fs['after']
        note = '; '.join(part for part in (fs.get('note'), 'still full' if fs['still_full'] else None) if part)
        lines.append(row([
            cell(fs['mount']), fs['fstype'], ', '.join(fs['full_reasons']), size(before.get('avail')),
            size(after['avail'] if after else None), size(fs['freed']), before.get('used_pct'),
            after['used_pct'] if after else '-', before.get('inodes_free'), after['inodes_free'] if after else '-',
            fs['files_compressed'], size(fs['bytes_saved']), fs['would_compress'], size(fs['would_save']),
            fs['skipped'], fs['failed'], cell(note)]))
    freed = sum(fs['freed'] for fs in s['filesystems'] if isinstance(fs['freed'], int))
    lines.append(row(['**Total**', '', '', '', '', size(freed), '', '', '', '', s['files_compressed'],
                      size(s['bytes_saved']), s['would_compress'], size(s['would_save']), s['skips']['count'],
                      s['failure_count'], '']))
    return lines + ['']


def _files_table(columns: Sequence[str], files: Iterable[Mapping[str, Any]],
                 values: Callable[[Mapping[str, Any]], list[object]]) -> list[str]:
    lines = header(columns, 1)
    lines.extend(row(values(f)) for f in files)
    return lines + ['']


def _host_section(host: str, s: Mapping[str, Any]) -> list[str]:
    lines = ['## %s: %s' % (host, s['status']), '', s['msg'], '']
    if s['filesystems']:
        lines += _filesystems_table(s)
    if s['skips']['count']:
        lines += ['Skipped: %s.' % ', '.join('%s %d' % pair for pair in s['skips']['reasons'].items()), '']
    for kind, title in (('live_files', 'Live file'), ('deleted_files', 'Deleted file')):
        files = (s.get(kind) or {}).get('files')
        if files:
            lines += _files_table((title, 'Action', 'Saved to', 'Method', 'Size', 'Saved'), files, lambda f: [
                cell(f['path']), f['action'], cell(f['dest']), f['strategy'] or '', size(f['original_size']),
                size(f['bytes_saved'])])
    if s.get('compressed'):
        lines += _files_table(('Compressed', 'Original', 'Compressed', 'Saved'), s['compressed'], lambda f: [
            cell(f['path']), size(f['original_size']), size(f['compressed_size']), size(f['bytes_saved'])])
    if s.get('would_compress_files'):
        lines += _files_table(('Would compress', 'Size', 'Would save (estimate)'), s['would_compress_files'],
                              lambda f: [cell(f['path']), size(f['original_size']), size(f['bytes_saved'])])
    if s['failures']:
        lines += header(('Failure', 'Reason', 'Detail'), 3)
        lines += [row([cell(f['path'] or f['mount'] or 'task'), cell(f['reason']), cell(f['detail'])])
                  for f in s['failures']] + ['']
    return lines


def markdown_report(report: Mapping[str, Any]) -> str:
    """The Markdown text of ``report`` (see fleet_report.fleet_report)."""
    note = ' in check mode: nothing was changed, sizes saved are estimates' if report['check_mode'] else ''
    lines = ['# %s' % report['title'], '', 'Generated %s%s.' % (report['generated'], note), '']
    lines += _fleet_total(report['totals'])
    lines += _hosts_table(report['hosts'])
    for host, summary in report['hosts'].items():
        lines += _host_section(host, summary)
    return '\n'.join(lines).rstrip('\n') + '\n'
