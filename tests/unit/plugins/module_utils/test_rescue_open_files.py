# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Live files cut and deleted files reclaimed, on their own lines: host summary, fleet totals, Markdown."""

from __future__ import absolute_import, division, print_function

from ansible.module_utils.common.text.formatters import bytes_to_human

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_plan import plan_rescue
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_summary import (
    SUMMARY_KEYS, failure_summary, host_summary)
from ansible_collections.sre.cmemgzip.plugins.plugin_utils.fleet_report import fleet_report
from ansible_collections.sre.cmemgzip.plugins.plugin_utils.report_markdown import markdown_report

MiB = 1024 * 1024


def _measured(avail):
    return {'filesystems': [{'mount': '/', 'device': 'overlay', 'fstype': 'overlay', 'full': avail == 0,
                             'full_reasons': ['used_pct'] if avail == 0 else [], 'read_only': False,
                             'size': 100 * MiB, 'free': avail, 'avail': avail, 'used_pct': 100.0 - avail / MiB,
                             'inodes': 10, 'inodes_free': 5, 'inodes_used_pct': 50.0, 'bind_mounts': []}],
            'paths': [{'path': '/var/log', 'resolved': '/var/log', 'exists': True, 'mount': '/'}],
            'memory': {'available': 1024 * MiB}}


def _summary(check_mode=False):
    before, after = _measured(0), _measured(0 if check_mode else 40 * MiB)
    live = {'path': '/var/log/app.log', 'dest': '/var/log/app.log-20261202T101500Z.gz', 'strategy': 'collapse',
            'action': codes.WOULD_LIVE_COMPRESS if check_mode else codes.LIVE_COMPRESSED,
            'original_size': 30 * MiB, 'compressed_size': 2 * MiB, 'bytes_saved': 28 * MiB, 'writer_stall': 0.002}
    deleted = {'path': '/var/log/old.log', 'dest': '/var/log/old.log-deleted-pid7-20261202T101500Z.gz',
               'action': codes.WOULD_RECLAIM if check_mode else codes.RECLAIMED, 'strategy': 'truncate',
               'original_size': 13 * MiB, 'compressed_size': MiB, 'bytes_saved': 12 * MiB}
    runs = [{'mount': '/', 'failed': False, 'files': [deleted]}, {'mount': '/', 'failed': False, 'files': [live]}]
    return host_summary({'measured': before, 'plan': plan_rescue(before), 'after': after, 'check_mode': check_mode,
                         'runs': runs, 'host': 'web1'}, human=bytes_to_human)


def test_the_host_summary_counts_live_and_deleted_files_apart():
    summary = _summary()
    assert tuple(summary) == SUMMARY_KEYS
    assert summary['files_compressed'] == 0 and summary['status'] == codes.REMEDIATED
    assert summary['live_files']['count'] == 1 and summary['live_files']['bytes_saved'] == 28 * MiB
    assert summary['deleted_files']['count'] == 1 and summary['deleted_files']['bytes_saved'] == 12 * MiB
    assert summary['live_files']['files'][0]['dest'].endswith('Z.gz')
    assert '; cut 1 live file, saved 28.00 MB; reclaimed 1 deleted file, saved 12.00 MB' in summary['msg']
    assert tuple(failure_summary('x', codes.UNREACHABLE, codes.UNREACHABLE, 'down')) == SUMMARY_KEYS


def test_a_survey_says_what_it_would_cut_and_reclaim():
    summary = _summary(check_mode=True)
    assert summary['live_files']['would'] == 1 and summary['deleted_files']['would_save'] == 12 * MiB
    assert 'would cut 1 live file, saving about 28.00 MB' in summary['msg']
    assert 'would reclaim 1 deleted file, saving about 12.00 MB' in summary['msg']


def test_the_fleet_report_has_a_line_for_each():
    report = fleet_report({'web1': _summary(), 'db1': _summary()}, ['web1', 'db1'], 'Fleet', generated='now')
    assert report['totals']['live_files_count'] == 2 and report['totals']['deleted_files_bytes_saved'] == 24 * MiB
    assert report['total_line'].endswith('; live files: 2 cut, saved 56.00 MB; deleted files: 2 reclaimed, '
                                         'saved 24.00 MB; 0 filesystems still full; 0 failures')
    lines = markdown_report(report).splitlines()
    assert 'Live files cut: 2, 56.00 MB saved.' in lines
    assert 'Deleted files reclaimed: 2, 24.00 MB saved.' in lines
    assert '| /var/log/app.log | live_compressed | /var/log/app.log-20261202T101500Z.gz | collapse | 30.00 MB | ' \
           '28.00 MB |' in lines
