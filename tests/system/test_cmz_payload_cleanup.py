# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A killed run leaves its AnsiballZ payload directory (about 160 KB) in /dev/shm,
where the action plugin put TMPDIR (issue 8, item 7).  The next run removes the
stale ones of this collection, and only those: never a live run's (its lock),
never a young one, never another collection's or another user's."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import sys
import time

from cmzrun import COLLECTIONS, REPO, _env, ensure_collection_link, run_ansible, short
from fullfs import MiB

NOBODY = pwd.getpwnam('nobody')
HOUR = 3600


def _payload_dir(base, suffix, module='sre.cmemgzip.cmemgzip', age=2 * HOUR, uid=None):
    path = os.path.join(base, 'ansible_%s_payload_%s' % (module, suffix))
    os.mkdir(path, 0o700)
    zipped = os.path.join(path, 'ansible_%s_payload.zip' % module)
    with open(zipped, 'wb') as handle:
        handle.write(b'PK' + b'\0' * 160 * 1024)
    if uid is not None:
        os.chown(zipped, uid, -1)
        os.chown(path, uid, -1)
    then = time.time() - age
    for item in (zipped, path):
        os.utime(item, (then, then))
    return path


def _holder(path):
    """A real process that locks ``path`` the way a running module locks its own payload."""
    code = ('import sys, time; sys.path.insert(0, %r)\n'
            'from ansible_collections.sre.cmemgzip.plugins.module_utils import payload_cleanup\n'
            'assert payload_cleanup.hold(sys.argv[1])\n'
            'print("ready", flush=True)\n'
            'time.sleep(600)\n' % str(COLLECTIONS))
    holder = subprocess.Popen([sys.executable, '-c', code, path], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b'ready'
    return holder


def test_only_dead_payloads_of_this_collection_are_removed(fullfs):
    from ansible_collections.sre.cmemgzip.plugins.module_utils.payload_cleanup import Cleanup
    shm = fullfs('tmpfs', size=16 * MiB)
    os.chmod(shm.mnt, 0o1777)
    base = str(shm.mnt)
    dead = _payload_dir(base, 'dead1234')
    dead_other_module = _payload_dir(base, 'dead5678', module='sre.cmemgzip.fs_usage_info')
    live = _payload_dir(base, 'live1234')
    young = _payload_dir(base, 'young123', age=60)
    foreign = _payload_dir(base, 'other123', module='community.general.archive')
    theirs = _payload_dir(base, 'theirs12', uid=NOBODY.pw_uid)
    link = os.path.join(base, 'ansible_sre.cmemgzip.cmemgzip_payload_link1234')
    os.symlink(dead, link)
    holder = _holder(live)
    try:
        cleanup = Cleanup()
        cleanup.sweep(base)
    finally:
        holder.kill()
        holder.wait()
    report = cleanup.report()
    assert sorted(report['removed']) == sorted([dead, dead_other_module]), report
    assert report['bytes_freed'] >= 2 * 160 * 1024
    assert report['errors'] == []
    for kept in (live, young, foreign, theirs):
        assert os.path.isdir(kept), kept
    assert os.path.islink(link)
    # Once its holder is gone, the formerly live one goes too.
    again = Cleanup()
    again.sweep(base)
    assert again.report()['removed'] == [live]


def test_check_mode_removes_nothing(fullfs):
    from ansible_collections.sre.cmemgzip.plugins.module_utils.payload_cleanup import Cleanup
    shm = fullfs('tmpfs', size=16 * MiB)
    dead = _payload_dir(str(shm.mnt), 'dead1234')
    cleanup = Cleanup(check_mode=True)
    cleanup.sweep(str(shm.mnt))
    assert cleanup.report()['would_remove'] == [dead]
    assert os.path.isdir(dead)


def _payloads():
    return set(n for n in os.listdir('/dev/shm') if n.startswith('ansible_sre.cmemgzip.cmemgzip_payload_'))


def _holders_of(path):
    """Pids with a descriptor open on ``path`` (the running module holds its payload directory)."""
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            fds = os.listdir('/proc/%s/fd' % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink('/proc/%s/fd/%s' % (pid, fd)) == path:
                    pids.append(int(pid))
                    break
            except OSError:
                continue
    return pids


def test_a_killed_run_leaks_its_payload_and_the_next_run_removes_it(fullfs, journal_dir):
    """End to end: SIGKILL the running module (the process that holds its payload directory), run again."""
    fs = fullfs('tmpfs', size=64 * MiB)
    fs.write_log('big.log', 48 * MiB, seed=121)   # long enough to be killed while it works
    before = _payloads()
    ensure_collection_link()
    cmd = ['ansible', 'localhost', '-i', 'localhost,', '-c', 'local', '-m', 'sre.cmemgzip.cmemgzip',
           '-a', json.dumps({'path': [str(fs.data)], 'journal_dir': journal_dir, 'min_size': 0, 'threads': 1,
                             'level': 9}),
           '-e', 'ansible_python_interpreter=%s' % sys.executable]
    run = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    leaked_path = None
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None and leaked_path is None:
            for name in _payloads() - before:
                holders = _holders_of(os.path.join('/dev/shm', name))
                if holders:
                    leaked_path = os.path.join('/dev/shm', name)
                    for pid in holders:
                        os.kill(pid, 9)
            time.sleep(0.02)
    finally:
        run.wait(timeout=120)
    assert leaked_path is not None, 'no running module held a payload directory'
    assert os.path.isdir(leaked_path), 'the killed run left nothing behind'
    # An hour later, as far as the payload's times go.
    then = time.time() - 2 * HOUR
    for name in os.listdir(leaked_path):
        os.utime(os.path.join(leaked_path, name), (then, then))
    os.utime(leaked_path, (then, then))

    result = run_ansible({'path': [str(fs.data)], 'journal_dir': journal_dir, 'min_size': 0})
    assert not result.get('failed'), short(result)
    assert leaked_path in result['payload_cleanup']['removed'], short(result)
    assert not os.path.exists(leaked_path)
