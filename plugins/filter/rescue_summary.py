# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: rescue_summary
short_description: The summary of one host's rescue, also when the host was unreachable or the module could not run
version_added: 0.1.0
author:
  - sre.cmemgzip developers (@sre)
description:
  - Takes what a task with M(sre.cmemgzip.rescue_host) registered and returns the host's summary, the same keys
    M(sre.cmemgzip.rescue_host) returns (see its RETURN).
  - An unreachable host gets the status V(unreachable); a result without a summary (the module could not start,
    an argument was refused) gets the status V(failed) with the failure reason V(module_failed).
  - The role P(sre.cmemgzip.rescue#role) sets its fact C(rescue_summary) with it.
options:
  _input:
    description: The registered result of M(sre.cmemgzip.rescue_host) (with C(ignore_errors) and C(ignore_unreachable)).
    type: dict
    required: true
  host:
    description: The inventory name of the host, for the summary's C(host).
    type: str
seealso:
  - module: sre.cmemgzip.rescue_host
  - plugin: sre.cmemgzip.fleet_report
    plugin_type: filter
'''

EXAMPLES = r'''
- name: Rescue the host
  sre.cmemgzip.rescue_host:
  register: rescue
  ignore_errors: true
  ignore_unreachable: true

- name: Keep its summary
  ansible.builtin.set_fact:
    my_summary: "{{ rescue | sre.cmemgzip.rescue_summary(host=inventory_hostname) }}"
'''

RETURN = r'''
_value:
  description:
    - The summary, with the keys of M(sre.cmemgzip.rescue_host)'s RETURN.
    - C(status) is one of V(healthy), V(remediated), V(full), V(still_full), V(failed) and, from this filter only,
      V(unreachable).
  type: dict
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_summary import summary_of_result


def rescue_summary(result, host=None):
    if result is not None and not isinstance(result, Mapping):
        raise AnsibleFilterError('sre.cmemgzip.rescue_summary expects a registered task result, got %s'
                                 % type(result).__name__)
    return summary_of_result(dict(result or {}), host=host)


class FilterModule:
    """sre.cmemgzip.rescue_summary."""

    def filters(self):
        return {'rescue_summary': rescue_summary}
