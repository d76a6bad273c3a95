# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The sre.cmemgzip.rescue_host module: arguments and a check-mode run on this machine (changes nothing)."""

from __future__ import absolute_import, division, print_function

import json
import os
import random

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.modules import rescue_host

MiB = 1 << 20


def run(args, capsys):
    with patch_module_args(args):
        module = rescue_host.create_module()
        with pytest.raises(SystemExit) as exc:
            rescue_host.run_module(module)
    return exc.value.code, json.loads(capsys.readouterr().out)


def old_log(path, size):
    rng = random.Random(7)
    words = [b'GET', b'POST', b'/index.html', b'/api/v1/items', b'200', b'404', b'Mozilla/5.0', b'curl/8.0']
    with open(path, 'wb') as fh:
        while fh.tell() < size:
            fh.write(b' '.join(rng.choice(words) for dummy in range(12)) + b'\n')
    os.utime(path, (1_600_000_000, 1_600_000_000))


def test_defaults_are_the_role_defaults_of_old():
    spec = rescue_host.ARGUMENT_SPEC
    assert (spec['max_used_pct']['default'], spec['max_inodes_used_pct']['default']) == (90, 95)
    assert spec['roots']['default'] == ['/var/log', '/var/crash', '/var/lib/systemd/coredump']
    assert (spec['min_age']['default'], spec['target_free']['default'], spec['level']['default']) == ('10m', '15%', 9)
    assert '*.log.[0-9]*' in spec['patterns']['default'] and '*.gz' in spec['excludes']['default']


@pytest.mark.parametrize('args, word', [({'max_used_pct': 0}, 'max_used_pct'), ({'memory_fraction': 2}, 'memory_fraction'),
                                        ({'target_free': '150%'}, 'target_free'), ({'min_age': 'soon'}, 'min_age'),
                                        ({'max_files': -1}, 'max_files')])
def test_bad_arguments_fail_before_anything_runs(capsys, args, word):
    rc, out = run(args, capsys)
    assert rc == 1 and out['failed'] and word in out['msg']
    assert 'status' not in out


def test_check_mode_plans_and_estimates_but_changes_nothing(capsys, tmp_path):
    logs = tmp_path / 'log'
    logs.mkdir()
    old_log(str(logs / 'app.log.1'), 3 * MiB)
    (logs / 'notes.txt').write_bytes(b'x' * 100)
    before = sorted(os.listdir(str(logs)))
    # Every measured filesystem is "full" at 0.01 %: only the one holding the root has a root.
    rc, out = run({'roots': [str(logs)], 'max_used_pct': 0.01, 'max_inodes_used_pct': 100, 'min_age': '0',
                   'target_free': '100%', '_ansible_check_mode': True}, capsys)
    assert rc == 0, out
    assert out['status'] == codes.FULL and out['check_mode'] is True and out['changed'] is True
    with_roots = [fs for fs in out['filesystems'] if fs['roots']]
    assert [fs['roots'] for fs in with_roots] == [[str(logs)]]
    assert with_roots[0]['note'] is None and with_roots[0]['would_compress'] == 1
    assert out['would_compress'] == 1 and out['would_save'] > 0
    assert [f['path'] for f in out['would_compress_files']] == [str(logs / 'app.log.1')]
    assert all(fs['note'] == codes.NO_ROOTS for fs in out['filesystems'] if not fs['roots'] and not fs['read_only']
               and 'used_pct' in fs['full_reasons'])
    assert sorted(os.listdir(str(logs))) == before
    assert out['thresholds'] == {'max_used_pct': 0.01, 'max_inodes_used_pct': 100.0, 'target_free': '100%'}
