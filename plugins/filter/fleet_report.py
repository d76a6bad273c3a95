# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: fleet_report
short_description: The fleet report of a rescue - every host's summary, totals, one line per host
version_added: 0.1.0
author:
  - sre.cmemgzip developers (@sre)
description:
  - Collects the summary of each host of O(hosts) from the input, normally C(hostvars), and adds fleet totals
    and one line per host.
  - O(var) may hold the registered result of M(sre.cmemgzip.rescue_host) or a summary; it is read through
    P(sre.cmemgzip.rescue_summary#filter), so an unreachable host gets the status V(unreachable).
  - A host without it gets the status V(no_result).
  - The role P(sre.cmemgzip.rescue#role) writes it as JSON and renders its Markdown report from it.
options:
  _input:
    description: Host name -> variables of the host (C(hostvars)), where O(var) holds the summary.
    type: dict
    required: true
  hosts:
    description: The hosts to report (each once; the report sorts them).
    type: list
    elements: str
    required: true
  title:
    description: Title of the report.
    type: str
    default: cmemgzip fleet report
  var:
    description: The variable of each host that holds its result or summary.
    type: str
    default: rescue_result
  generated:
    description: Time stamp of the report; default now, in UTC (C(2026-11-26T08:00:00Z)).
    type: str
seealso:
  - module: sre.cmemgzip.rescue_host
  - plugin: sre.cmemgzip.rescue_summary
    plugin_type: filter
'''

EXAMPLES = r'''
- name: Report the hosts of the play
  ansible.builtin.copy:
    content: "{{ hostvars | sre.cmemgzip.fleet_report(hosts=ansible_play_hosts_all) | to_nice_json }}"
    dest: /tmp/cmemgzip-report.json
    mode: "0644"
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
_value:
  description: The report.
  type: dict
  contains:
    title:
      description: O(title).
      type: str
    generated:
      description: O(generated).
      type: str
    check_mode:
      description: Whether a host ran in check mode (a survey).
      type: bool
    totals:
      description:
        - C(hosts), C(statuses) (hosts per status), and the sums over the hosts of C(full_filesystems),
          C(still_full_filesystems), C(files_compressed), C(bytes_saved), C(would_compress), C(would_save),
          C(skipped) and C(failures).
      type: dict
    total_line:
      description: The totals in one line.
      type: str
      sample: "fleet: 4 hosts (healthy 1, remediated 3); compressed 9 files, saved 53.07 MB; 0 filesystems still full; 0 failures"
    lines:
      description: "One line per host, C(HOST: STATUS - MSG)."
      type: list
      elements: str
    hosts:
      description: Host name -> summary, sorted by host name.
      type: dict
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_summary import summary_of_result
from ansible_collections.sre.cmemgzip.plugins.plugin_utils.fleet_report import fleet_report as build_report


def fleet_report(variables, hosts, title='cmemgzip fleet report', var='rescue_result', generated=None):
    if not isinstance(variables, Mapping):
        raise AnsibleFilterError('sre.cmemgzip.fleet_report expects hostvars (host -> variables), got %s'
                                 % type(variables).__name__)
    if isinstance(hosts, (str, bytes)) or not all(isinstance(host, str) for host in hosts):
        raise AnsibleFilterError('sre.cmemgzip.fleet_report: hosts must be a list of host names')
    summaries = {}
    for host in hosts:
        host_vars = variables[host] if host in variables else None
        value = host_vars.get(var) if isinstance(host_vars, Mapping) else None
        summaries[host] = summary_of_result(dict(value), host=host) if isinstance(value, Mapping) else None
    return build_report(summaries, hosts, title, generated=generated)


class FilterModule:
    """sre.cmemgzip.fleet_report."""

    def filters(self):
        return {'fleet_report': fleet_report}
