# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This file only documents the action plugin of the same name: it runs on the controller.

from __future__ import annotations

DOCUMENTATION = r'''
module: rescue_report
short_description: Write the fleet report of a rescue on the controller, as JSON and Markdown
version_added: 0.1.0
description:
  - Collects the result of M(sre.cmemgzip.rescue_host) of every host of O(hosts) from C(hostvars) (see the filter
    P(sre.cmemgzip.fleet_report#filter)), and writes C(O(dest)/O(name).json) (every summary and the fleet totals) and
    C(O(dest)/O(name).md) (a table of hosts, a fleet total and a table per host).
  - Runs entirely on the controller, in the Ansible process itself; no module is started, on the controller or on a
    host, so writing the report costs a fleet run almost nothing.
  - The files are replaced atomically; O(dest) is created (mode C(0755)) when missing. They are written in check mode
    too, since they change no host, and the task never reports a change.
author:
  - sre.cmemgzip developers (@sre)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: The report is written in check mode too; it lives on the controller.
  diff_mode:
    support: none
  platform:
    platforms: posix
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  hosts:
    description: Inventory names of the hosts to report (each once; the report sorts them).
    type: list
    elements: str
    required: true
  dest:
    description: Directory of the report on the controller.
    type: path
    required: true
  name:
    description: File name of the report, without extension.
    type: str
    default: cmemgzip-report
  title:
    description: Title of the report.
    type: str
    default: cmemgzip fleet report
  var:
    description: The variable of each host that holds its M(sre.cmemgzip.rescue_host) result (or its summary).
    type: str
    default: rescue_result
notes:
  - Use it once per fleet (C(run_once)); the role P(sre.cmemgzip.rescue#role) does in its C(report) entry point.
seealso:
  - module: sre.cmemgzip.rescue_host
  - plugin: sre.cmemgzip.fleet_report
    plugin_type: filter
'''

EXAMPLES = r'''
- name: Write the report of the hosts of the play
  sre.cmemgzip.rescue_report:
    hosts: "{{ ansible_play_hosts_all }}"
    dest: "{{ lookup('ansible.builtin.env', 'PWD') }}"
  run_once: true
  register: report

- name: One line per host
  ansible.builtin.debug:
    msg: "{{ report.report.lines }}"
  run_once: true
'''

RETURN = r'''
report:
  description: The report, as P(sre.cmemgzip.fleet_report#filter) returns it (also the content of RV(json)).
  returned: always
  type: dict
json:
  description: Path of the JSON report.
  returned: always
  type: str
  sample: /home/oncall/cmemgzip-report.json
markdown:
  description: Path of the Markdown report.
  returned: always
  type: str
  sample: /home/oncall/cmemgzip-report.md
'''
