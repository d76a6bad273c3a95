# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""sre.cmemgzip.rescue_report writes the fleet report in the Ansible process (a real ansible-playbook run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PLAYBOOK = '''
- hosts: all
  gather_facts: false
  tasks:
    - name: A result as rescue_host returns it (db1 was unreachable)
      ansible.builtin.set_fact:
        rescue_result: "{{ {'unreachable': true, 'msg': 'no route'} if inventory_hostname == 'db1' else
          {'status': 'healthy', 'msg': 'no full filesystem among 2 measured', 'check_mode': false, 'full': [],
           'still_full': [], 'filesystems': [], 'files_compressed': 0, 'bytes_saved': 0, 'would_compress': 0,
           'would_save': 0, 'skips': {'count': 0, 'reasons': {}, 'files': []}, 'failures': [], 'failure_count': 0} }}"

- hosts: localhost
  gather_facts: false
  tasks:
    - name: Write the report
      sre.cmemgzip.rescue_report:
        hosts: [web1, db1, gone]
        dest: "{{ report_dir }}"
        title: Test fleet
      register: written
      check_mode: true

    - name: Keep what it returned
      ansible.builtin.copy:
        content: "{{ written | to_json }}"
        dest: "{{ report_dir }}/../returned.json"
        mode: "0644"
'''


def test_the_report_is_written_also_in_check_mode(tmp_path):
    (tmp_path / 'play.yml').write_text(PLAYBOOK)
    (tmp_path / 'inventory').write_text('localhost ansible_connection=local\nweb1 ansible_connection=local\n'
                                        'db1 ansible_connection=local\n')
    report_dir = tmp_path / 'reports' / 'new'
    env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=sys.executable, ANSIBLE_LOCALHOST_WARNING='0')
    run = subprocess.run(['ansible-playbook', '-i', str(tmp_path / 'inventory'), str(tmp_path / 'play.yml'),
                          '-e', 'report_dir=%s' % report_dir], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((report_dir / 'cmemgzip-report.json').read_text())
    assert report['title'] == 'Test fleet' and list(report['hosts']) == ['db1', 'gone', 'web1']
    assert [report['hosts'][h]['status'] for h in ('db1', 'gone', 'web1')] == ['unreachable', 'no_result', 'healthy']
    markdown = (report_dir / 'cmemgzip-report.md').read_text()
    assert markdown.startswith('# Test fleet\n') and '## web1: healthy' in markdown
    assert oct(os.stat(report_dir / 'cmemgzip-report.json').st_mode & 0o777) == '0o644'
    returned = json.loads((tmp_path / 'reports' / 'returned.json').read_text())
    assert returned['changed'] is False and returned['json'] == str(report_dir / 'cmemgzip-report.json')
    assert returned['report']['totals']['statuses'] == report['totals']['statuses']
    assert not [name for name in os.listdir(report_dir) if name.startswith('.')]
