# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A plain ad-hoc call over SSH against hosts whose /, /tmp, /var/tmp and ~ are full.

No pipelining flag and no TMPDIR from the user: the collection's action plugin
must make the module start by itself.
"""

import json
import os
import re
import subprocess

from cmzrun import COLLECTIONS, ANSIBLE_HOME, ensure_collection_link

HOSTS = 'fx-container,fx-vm'


def _ansible(inventory, module, args, extra_env=None):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_HOME=str(ANSIBLE_HOME),
               ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='0', ANSIBLE_PIPELINING='0')
    env.pop('TMPDIR', None)
    env.update(extra_env or {})
    proc = subprocess.run(['ansible', '-i', inventory, HOSTS, '-m', module, '-a', json.dumps(args)],
                          capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL,
                          check=False)
    results = {}
    for match in re.finditer(r'^(\S+) \| (\S+)(?: \| rc=\d+)? => (\{.*?^\})', proc.stdout, re.M | re.S):
        results[match.group(1)] = (match.group(2), json.loads(match.group(3)))
    return proc, results


def _root_df(hosts, name):
    return hosts.fs_now(name)


def test_plain_module_cannot_start_there(full_ssh_host):
    """The problem this collection solves: without its action plugin, nothing starts."""
    ensure_collection_link()
    proc, results = _ansible(full_ssh_host.inventory, 'ansible.builtin.ping', {})
    assert proc.returncode != 0
    for name in full_ssh_host.names:
        assert _root_df(full_ssh_host, name)['avail'] == 0
        assert results[name][0] in ('FAILED!', 'UNREACHABLE!'), proc.stdout


def test_adhoc_call_compresses_on_full_root(full_ssh_host):
    ensure_collection_link()
    before = {name: _root_df(full_ssh_host, name) for name in full_ssh_host.names}
    assert all(stats['avail'] == 0 for stats in before.values())

    proc, results = _ansible(full_ssh_host.inventory, 'sre.cmemgzip.cmemgzip',
                             {'path': ['/var/log/app'], 'recurse': True})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in full_ssh_host.names:
        status, result = results[name]
        assert status == 'CHANGED', result
        compressed = {f['path']: f for f in result['files'] if f['action'] == 'compressed'}
        manifest = full_ssh_host.manifests[name]
        for log in manifest['logs']:
            if not log['path'].startswith('/var/log/app/') or log['expect'] != 'compress':
                continue
            assert log['path'] in compressed, (log['path'], result['files'])
            check = full_ssh_host.ssh(name, "zcat '%s.gz' | sha256sum; stat -c '%%u %%g %%a %%Y' '%s.gz'; "
                                            "test ! -e '%s' && echo gone" % (log['path'], log['path'], log['path']))
            digest, meta, gone = check.stdout.split('\n')[:3]
            assert digest.split()[0] == log['sha256']
            assert meta.split() == [str(log['uid']), str(log['gid']), log['mode'].lstrip('0'), str(log['mtime'])]
            assert gone == 'gone'
        after = _root_df(full_ssh_host, name)
        saved = result['totals']['bytes_saved']
        assert saved > 0
        # the host's root got back what the module says, to the block
        assert abs((after['free'] - before[name]['free']) - saved) <= 64 * 1024

    # a second call changes nothing
    proc, results = _ansible(full_ssh_host.inventory, 'sre.cmemgzip.cmemgzip',
                             {'path': ['/var/log/app'], 'recurse': True})
    assert proc.returncode == 0, proc.stdout
    for name in full_ssh_host.names:
        assert results[name][0] == 'SUCCESS'
        assert results[name][1]['changed'] is False
