# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of the sre.cmemgzip.fs_usage_info module (argument spec, result, check mode)."""

from __future__ import absolute_import, division, print_function

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.sre.cmemgzip.plugins.modules import fs_usage_info


def run(args, capsys):
    with patch_module_args(args):
        module = fs_usage_info.build_module()
        with pytest.raises(SystemExit) as exc:
            fs_usage_info.run_module(module)
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    # Once a controller-side module is imported in this process (a filter's test), Ansible shows module
    # warnings on the controller's display instead of returning them.
    out['_stderr'] = captured.err
    return exc.value.code, out


def test_argument_spec_is_a_dict_with_documented_defaults():
    spec = fs_usage_info.ARGUMENT_SPEC
    assert isinstance(spec, dict)
    assert spec['max_used_pct']['default'] == 90
    assert spec['max_inodes_used_pct']['default'] == 95
    for name in ('include_fstypes', 'exclude_fstypes', 'mounts', 'paths'):
        assert spec[name]['type'] == 'list' and spec[name]['default'] == []


def test_measures_the_root_filesystem(capsys):
    rc, out = run({'mounts': ['/'], 'paths': ['/']}, capsys)
    assert rc == 0
    assert out['changed'] is False and out['check_mode'] is False
    assert [fs['mount'] for fs in out['filesystems']] == ['/']
    fs = out['filesystems'][0]
    for key in ('device', 'fstype', 'size', 'used', 'free', 'avail', 'inodes', 'inodes_used', 'inodes_free',
                'used_pct', 'inodes_used_pct', 'read_only', 'full', 'full_reasons', 'bind_mounts', 'scratch'):
        assert key in fs
    assert out['paths'][0]['mount'] == '/'
    assert out['memory']['mem_total'] > 0 and out['memory']['available'] > 0
    assert out['missing_mounts'] == []


def test_check_mode_is_reported_and_changes_nothing(capsys):
    rc, out = run({'mounts': ['/'], '_ansible_check_mode': True}, capsys)
    assert rc == 0 and out['changed'] is False and out['check_mode'] is True


def test_threshold_makes_root_full(capsys):
    # Anything with at least one used block is at or past 0.01 %.
    rc, out = run({'mounts': ['/'], 'max_used_pct': 0.01}, capsys)
    assert out['full'] == ['/'] and out['filesystems'][0]['full_reasons'][0] == 'used_pct'
    assert '1 of 1 filesystems full' in out['msg']


def test_missing_mount_warns(capsys):
    rc, out = run({'mounts': ['/no/such/mount']}, capsys)
    assert rc == 0 and out['filesystems'] == [] and out['missing_mounts'] == ['/no/such/mount']
    # str (<= 2.18) or WarningSummary (2.19) in the result, or on the display (see run)
    assert '/no/such/mount' in json.dumps(out.get('warnings', [])) + out['_stderr']


@pytest.mark.parametrize('name, value', [('max_used_pct', 0), ('max_used_pct', 101), ('max_inodes_used_pct', -5)])
def test_bad_thresholds_fail(capsys, name, value):
    rc, out = run({name: value}, capsys)
    assert rc == 1 and out['failed'] and name in out['msg']
