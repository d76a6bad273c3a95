# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet report as Markdown (report_markdown.py)."""

from __future__ import annotations

from ansible.module_utils.common.text.formatters import bytes_to_human

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_plan import plan_rescue
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_summary import failure_summary, host_summary
from ansible_collections.sre.cmemgzip.plugins.plugin_utils.fleet_report import fleet_report
from ansible_collections.sre.cmemgzip.plugins.plugin_utils.report_markdown import cell, markdown_report

MiB = 1 << 20


def remediated_summary():
    fs = {'mount': '/', 'device': 'overlay', 'fstype': 'overlay', 'size': 100 * MiB, 'free': 0, 'avail': 0,
          'used_pct': 100.0, 'inodes': 1000, 'inodes_free': 10, 'inodes_used_pct': 99.0, 'read_only': False,
          'bind_mounts': [], 'full': True, 'full_reasons': ['used_pct']}
    before = {'filesystems': [fs], 'memory': {'available': 100 * MiB},
              'paths': [{'path': '/var/log', 'resolved': '/var/log', 'exists': True, 'mount': '/'}]}
    after = {'filesystems': [dict(fs, avail=18 * MiB, free=18 * MiB, used_pct=82.0, full=False, full_reasons=[])]}
    files = [{'path': '/var/log/a|b.log.1', 'dest': '/var/log/a|b.log.1.gz', 'action': codes.COMPRESSED,
              'original_size': 20 * MiB, 'compressed_size': 2 * MiB, 'bytes_saved': 18 * MiB, 'seconds': 1.0},
             {'path': '/var/log/x.log', 'action': codes.SKIPPED, 'reason': codes.TOO_SMALL, 'detail': 'small'}]
    return host_summary({'measured': before, 'plan': plan_rescue(before), 'after': after, 'check_mode': False,
                         'runs': [{'mount': '/', 'failed': False, 'files': files}]}, human=bytes_to_human)


def test_the_report_has_a_fleet_total_a_host_table_and_a_section_per_host():
    summaries = {'web1': dict(remediated_summary(), host='web1'),
                 'db1': failure_summary('db1', codes.UNREACHABLE, codes.UNREACHABLE, 'no route to host')}
    text = markdown_report(fleet_report(summaries, ['web1', 'db1'], 'Fleet', generated='2026-11-26T08:00:00Z'))
    lines = text.splitlines()
    assert lines[0] == '# Fleet' and lines[2] == 'Generated 2026-11-26T08:00:00Z.'
    total = lines.index('## Fleet total')
    assert lines[total + 2].startswith('| Hosts | unreachable | remediated | Full filesystems |')
    assert lines[total + 4].startswith('| 2 | 1 | 1 | 1 | 0 | 1 | 18.00 MB |')
    assert '| db1 | unreachable |  |  | 0 | 0.00 Bytes | 0 | 0.00 Bytes | 0 | 1 | unreachable: no route to host |' in lines
    assert lines.index('## db1: unreachable') < lines.index('## web1: remediated')
    assert '| / | overlay | used_pct | 0.00 Bytes | 18.00 MB | 18.00 MB | 100.0 | 82.0 | 10 | 10 | 1 | 18.00 MB ' \
           '| 0 | 0.00 Bytes | 1 | 0 |  |' in lines
    assert 'Skipped: too_small 1.' in lines
    assert '| /var/log/a\\|b.log.1 | 20.00 MB | 2.00 MB | 18.00 MB |' in lines
    assert '| task | unreachable | no route to host |' in lines
    assert '\n\n\n' not in text and text.endswith('|\n')


def test_check_mode_says_nothing_changed():
    summary = dict(remediated_summary(), check_mode=True, host='web1')
    text = markdown_report(fleet_report({'web1': summary}, ['web1'], 'Survey', generated='now'))
    assert 'Generated now in check mode: nothing was changed, sizes saved are estimates.' in text


def test_cell_escapes_what_breaks_a_table():
    assert cell('a|b\nc') == 'a\\|b c' and cell(None) == ''
