# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
name: rescue_plan
short_description: Which full filesystems a rescue would compress on, from which roots, with how much memory
version_added: 0.1.0
author:
  - sre.cmemgzip developers (@sre)
description:
  - Plans a rescue from what M(sre.cmemgzip.fs_usage_info) measured, with the same function the module
    M(sre.cmemgzip.rescue_host) uses on the host.
  - A full filesystem is left alone, with a note, when it is read-only (V(read_only)), full by inodes only
    (V(inodes_only), compressing frees no inode) or holds none of the roots (V(no_roots)).
options:
  _input:
    description: The result of M(sre.cmemgzip.fs_usage_info), run with the roots as its O(sre.cmemgzip.fs_usage_info#module:paths).
    type: dict
    required: true
  memory_limit:
    description: Memory budget of one compressed copy (bytes or a size such as V(512M)); overrides O(memory_fraction).
    type: str
  memory_fraction:
    description: Fraction of the available memory (RV(sre.cmemgzip.fs_usage_info#module:memory.available)) one copy may take.
    type: float
    default: 0.5
seealso:
  - module: sre.cmemgzip.fs_usage_info
  - module: sre.cmemgzip.rescue_host
'''

EXAMPLES = r'''
- name: Measure, with the log directories located
  sre.cmemgzip.fs_usage_info:
    paths: [/var/log, /srv/app/logs]
  register: usage

- name: Where would a rescue compress?
  ansible.builtin.debug:
    msg: "{{ (usage | sre.cmemgzip.rescue_plan).remediate | map(attribute='mount') }}"
'''

RETURN = r'''
_value:
  description: The plan.
  type: dict
  contains:
    full:
      description: Every full filesystem, with C(mount), C(device), C(fstype), C(full_reasons), C(read_only),
        C(roots) (the roots to search on it) and C(note) (why it is left alone, V(null) when it is not).
      type: list
      elements: dict
    remediate:
      description: The entries of RV(_value.full) without a note, the filesystems to compress on.
      type: list
      elements: dict
    memory_available:
      description: Memory available on the host, in bytes.
      type: int
    memory_limit:
      description: Budget of one compressed copy, in bytes.
      type: int
'''

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_plan import plan_rescue


def rescue_plan(measured, memory_limit=None, memory_fraction=0.5):
    if not isinstance(measured, Mapping) or 'filesystems' not in measured:
        raise AnsibleFilterError('sre.cmemgzip.rescue_plan expects the result of sre.cmemgzip.fs_usage_info, got %s'
                                 % type(measured).__name__)
    try:
        limit = human_to_bytes(str(memory_limit)) if memory_limit not in (None, '') else None
        fraction = float(memory_fraction)
    except ValueError as exc:
        raise AnsibleFilterError('sre.cmemgzip.rescue_plan: %s' % exc) from exc
    return plan_rescue(measured, memory_limit=limit, memory_fraction=fraction)


class FilterModule:
    """sre.cmemgzip.rescue_plan."""

    def filters(self):
        return {'rescue_plan': rescue_plan}
