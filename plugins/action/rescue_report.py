# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Write the fleet report on the controller, in this process (sre.cmemgzip.rescue_report).

A report written with ``copy`` and ``template`` starts five modules on the
controller (each a new Python process), which cost a fleet run more than
its per-host work: this action writes the two files itself.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.sre.cmemgzip.plugins.filter.fleet_report import fleet_report
from ansible_collections.sre.cmemgzip.plugins.plugin_utils.report_markdown import markdown_report

ARGUMENT_SPEC = dict(
    hosts=dict(type='list', elements='str', required=True),
    dest=dict(type='path', required=True),
    name=dict(type='str', default='cmemgzip-report'),
    title=dict(type='str', default='cmemgzip fleet report'),
    var=dict(type='str', default='rescue_result'),
)


def write_atomically(path, text):
    """Replace ``path`` by ``text`` (mode 0644) so that a reader never sees half a report."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), dir=directory)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ActionModule(ActionBase):
    """Build the report from hostvars and write NAME.json and NAME.md into DEST."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # tmp no longer has any effect
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        report = fleet_report((task_vars or {}).get('hostvars', {}), args['hosts'], title=args['title'],
                              var=args['var'])
        base = os.path.join(args['dest'], args['name'])
        try:
            os.makedirs(args['dest'], mode=0o755, exist_ok=True)
            write_atomically(base + '.json', json.dumps(report, indent=2, sort_keys=False) + '\n')
            write_atomically(base + '.md', markdown_report(report))
        except OSError as exc:
            raise AnsibleActionFail('cannot write the report %s.{json,md}: %s' % (base, exc)) from exc
        result.update(changed=False, report=report, json=base + '.json', markdown=base + '.md')
        return result
