# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This doc fragment is private to sre.cmemgzip: it may change without notice.

from __future__ import annotations


class ModuleDocFragment:
    """What every module of this collection gets from its action plugin (plugin_utils/full_disk_action.py)."""

    # Use together with ansible.builtin.action_common_attributes and ansible.builtin.action_common_attributes.flow.
    DOCUMENTATION = r'''
options: {}
requirements:
  - Python 3.8 or later on the managed host (only its standard library is used).
attributes:
  action:
    support: full
    details:
      - The action plugin of the same name starts the module on a host whose C(/), C(/tmp), C(/var/tmp) and home
        directory have no free byte. It turns pipelining on for this task (nothing is copied to C(remote_tmp)) and
        puts E(TMPDIR=/dev/shm) first in the task's environment, where AnsiballZ unpacks its payload. A E(TMPDIR)
        set on the task still wins.
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    platforms: posix
    details: Linux only (C(/proc/self/mountinfo)).
notes:
  - Pipelining needs a connection and a become method that support it (C(ssh), C(local), C(sudo), C(doas)...).
    With one that cannot pipeline (C(su)), a warning says so and the module needs a writable C(remote_tmp).
  - No fact gathering is needed, and none should run first on a full host.
'''
