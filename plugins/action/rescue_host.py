# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.sre.cmemgzip.plugins.plugin_utils.full_disk_action import FullDiskActionBase


class ActionModule(FullDiskActionBase):
    """Start sre.cmemgzip.rescue_host even when /, /tmp and $HOME are full; name the host in its summary."""

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if 'status' in result:
            result['host'] = (task_vars or {}).get('inventory_hostname')
        return result
