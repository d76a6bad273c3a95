# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

from ansible_collections.sre.cmemgzip.plugins.plugin_utils.full_disk_action import FullDiskActionBase


class ActionModule(FullDiskActionBase):
    """Start sre.cmemgzip.reclaim_deleted even when /, /tmp and $HOME are full."""
