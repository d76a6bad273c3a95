# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which full filesystems a rescue compresses on, from which roots (rescue_plan.py)."""

from __future__ import absolute_import, division, print_function

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue_plan import plan_rescue

from rescue_samples import MiB, filesystem, located, measurement, missing


def test_a_host_without_a_full_filesystem_has_nothing_to_do():
    plan = plan_rescue(measurement([filesystem('/', avail=50 * MiB, full_reasons=())],
                                   [located('/var/log', '/')]))
    assert plan['full'] == [] and plan['remediate'] == []


def test_each_full_filesystem_gets_the_roots_that_lie_on_it():
    measured = measurement(
        [filesystem('/'), filesystem('/var/log/app'), filesystem('/srv', avail=90 * MiB, full_reasons=())],
        [located('/var/log', '/'), located('/var/crash', '/'), located('/srv/logs', '/srv'),
         missing('/var/lib/systemd/coredump')])
    plan = plan_rescue(measured)
    by_mount = dict((entry['mount'], entry) for entry in plan['full'])
    assert sorted(by_mount) == ['/', '/var/log/app']
    assert by_mount['/']['roots'] == ['/var/log', '/var/crash']
    # a full filesystem mounted below a root is searched from its mount point
    assert by_mount['/var/log/app']['roots'] == ['/var/log/app']
    assert [entry['mount'] for entry in plan['remediate']] == ['/', '/var/log/app']
    assert all(entry['note'] is None for entry in plan['full'])


def test_a_bind_mount_below_a_root_counts_once():
    measured = measurement([filesystem('/data', bind_mounts=['/var/log/data'])],
                           [located('/var/log', '/'), located('/var/log/data', '/data')])
    assert plan_rescue(measured)['full'][0]['roots'] == ['/var/log/data']


def test_full_filesystems_that_cannot_be_helped_get_a_note():
    measured = measurement(
        [filesystem('/', read_only=True), filesystem('/var', full_reasons=('inodes_used_pct',)),
         filesystem('/home')],
        [located('/var/log', '/var'), located('/srv', '/')])
    plan = plan_rescue(measured)
    notes = dict((entry['mount'], entry['note']) for entry in plan['full'])
    assert notes == {'/': codes.READ_ONLY, '/var': codes.INODES_ONLY, '/home': codes.NO_ROOTS}
    assert plan['remediate'] == []


def test_memory_budget_is_the_limit_or_a_fraction_of_the_available_memory():
    measured = measurement([filesystem('/')], [located('/var/log', '/')], available=800 * MiB)
    assert plan_rescue(measured)['memory_limit'] == 400 * MiB
    assert plan_rescue(measured, memory_fraction=0.25)['memory_limit'] == 200 * MiB
    assert plan_rescue(measured, memory_limit=64 * MiB)['memory_limit'] == 64 * MiB
    assert plan_rescue(measured)['memory_available'] == 800 * MiB
