# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A plain ad-hoc call over SSH against hosts whose /, /tmp, /var/tmp and ~ are full.

No pipelining flag and no TMPDIR from the user: the collection's action plugin
must make the module start by itself.
"""

import json
import re
import subprocess

import worktree
from cmzrun import ensure_collection_link

HOSTS = 'fx-container,fx-vm'


def _ansible(inventory, module, args, extra_env=None, hosts=HOSTS, options=()):
    env = dict(worktree.ansible_env(), ANSIBLE_NOCOLOR='1', ANSIBLE_HOST_KEY_CHECKING='0', ANSIBLE_PIPELINING='0')
    env.pop('TMPDIR', None)
    env.update(extra_env or {})
    proc = subprocess.run(['ansible', '-i', inventory, hosts, '-m', module, '-a', json.dumps(args)] + list(options),
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


def _check_compressed(hosts, name, result):
    compressed = {f['path']: f for f in result['files'] if f['action'] == 'compressed'}
    for log in hosts.manifests[name]['logs']:
        if not log['path'].startswith('/var/log/app/') or log['expect'] != 'compress':
            continue
        assert log['path'] in compressed, (log['path'], result['files'])
        check = hosts.ssh(name, "zcat '%s.gz' | sha256sum; stat -c '%%u %%g %%a %%Y' '%s.gz'; "
                                "test ! -e '%s' && echo gone" % (log['path'], log['path'], log['path']))
        digest, meta, gone = check.stdout.split('\n')[:3]
        assert digest.split()[0] == log['sha256']
        assert meta.split() == [str(log['uid']), str(log['gid']), log['mode'].lstrip('0'), str(log['mtime'])]
        assert gone == 'gone'


def _compress_and_check(hosts, name, options=()):
    ensure_collection_link()
    before = _root_df(hosts, name)
    assert before['avail'] == 0
    args = {'path': ['/var/log/app'], 'recurse': True}
    proc, results = _ansible(hosts.inventory, 'sre.cmemgzip.cmemgzip', args, hosts=name, options=options)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    status, result = results[name]
    assert status == 'CHANGED', result
    _check_compressed(hosts, name, result)
    saved = result['totals']['bytes_saved']
    assert saved > 0
    # the host's root got back what the module says, to the block
    assert abs((_root_df(hosts, name)['free'] - before['free']) - saved) <= 64 * 1024

    # a second call changes nothing
    proc, results = _ansible(hosts.inventory, 'sre.cmemgzip.cmemgzip', args, hosts=name, options=options)
    assert proc.returncode == 0, proc.stdout
    assert results[name][0] == 'SUCCESS'
    assert results[name][1]['changed'] is False


def test_adhoc_call_as_root_compresses_on_full_root(full_ssh_host):
    """ansible HOST -m sre.cmemgzip.cmemgzip -a ..., logged in as root (no become)."""
    _compress_and_check(full_ssh_host, full_ssh_host.by_kind('vm'))


def test_adhoc_call_with_become_compresses_on_full_root(full_ssh_host):
    """ansible HOST -b -m ..., logged in as an unprivileged user whose home is on the full
    filesystem too, become root with sudo."""
    _compress_and_check(full_ssh_host, full_ssh_host.by_kind('container'),
                        options=['-e', 'ansible_user=cmzops', '--become'])
