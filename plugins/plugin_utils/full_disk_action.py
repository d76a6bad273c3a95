# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run a module of this collection on a host whose disks are full.

Without pipelining, Ansible copies the module into ``remote_tmp`` before it
runs it: on a full ``$HOME`` that copy fails and the module never starts.
Even with pipelining, the AnsiballZ wrapper unpacks its payload into
``tempfile.mkdtemp()``, which tries ``$TMPDIR``, ``/tmp``, ``/var/tmp``,
``/usr/tmp`` and the working directory: all full on such a host.  ``/dev/shm``
is RAM and normally has room, and ``tempfile`` skips a ``$TMPDIR`` it cannot
write to, so pointing ``TMPDIR`` there costs nothing where it does not help.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

display = Display()

RAM_TMPDIR = '/dev/shm'


class FullDiskActionBase(ActionBase):
    """Execute the module of the same name with pipelining and a RAM TMPDIR."""

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: str | None = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect

        self._force_pipelining()
        self._prepend_ram_tmpdir()

        result.update(self._execute_module(
            module_name=self._task.resolved_action,
            module_args=self._task.args,
            task_vars=task_vars,
        ))
        return result

    def _force_pipelining(self) -> None:
        if not self._connection.has_pipelining:
            return
        try:
            self._connection.set_option('pipelining', True)
        except KeyError:
            # Connections without the option fall back to the play context.
            self._play_context.pipelining = True
        if not self._connection.is_pipelining_enabled():
            display.warning(
                'pipelining cannot be used with this connection or become method; '
                'on a host whose home directory is full the module may fail to start'
            )

    def _prepend_ram_tmpdir(self) -> None:
        # Prepended, not appended: a TMPDIR the user set on the task still wins.
        environments = self._task.environment or []
        if not isinstance(environments, list):
            environments = [environments]
        self._task.environment = [{'TMPDIR': RAM_TMPDIR}] + list(environments)
