# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The /proc scan on real processes: who holds a file, with which open flags
and mappings, and which deleted files are still held."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from fullfs import MiB, log_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils.mounts import MountTable
from ansible_collections.sre.cmemgzip.plugins.module_utils.open_files import ProcScan, read_locks

# Opens argv[1] with the flags named in argv[2], maps it shared-writable when
# asked, prints "ready" and waits for stdin to close.
HOLDER = r'''
import fcntl, mmap, os, sys
flags = {'read': os.O_RDONLY, 'append': os.O_WRONLY | os.O_APPEND, 'write': os.O_WRONLY,
         'rdwr_append': os.O_RDWR | os.O_APPEND, 'map': os.O_RDWR, 'lock': os.O_RDWR}[sys.argv[2]]
fd = os.open(sys.argv[1], flags)
if sys.argv[2] == 'map':
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
if sys.argv[2] == 'lock':
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 100)
if len(sys.argv) > 3:
    os.unlink(sys.argv[1])
print('ready', flush=True)
sys.stdin.read()
'''


@pytest.fixture
def hold():
    started = []

    def start(path, how, unlink=False):
        p = subprocess.Popen([sys.executable, '-c', HOLDER, str(path), how] + (['unlink'] if unlink else []),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        started.append(p)
        assert p.stdout.readline() == b'ready\n'
        return p

    yield start
    for p in started:
        p.kill()
        p.wait()


def _target(path, mounts):
    st = os.stat(path)
    mount = mounts.find(str(path), st.st_dev)
    return (st.st_dev, st.st_ino), os.makedev(mount.major, mount.minor)


@pytest.mark.parametrize('kind', ['tmpfs', 'ext4', 'btrfs'])
def test_holders_with_their_flags(kind, fullfs, hold):
    fs = fullfs(kind)
    path = fs.write_log('app.log', MiB)
    other = fs.write_log('other.log', MiB, seed=2)
    procs = {how: hold(path, how) for how in ('read', 'append', 'write', 'rdwr_append', 'map')}
    hold(other, 'append')
    mounts = MountTable()
    identity, device = _target(path, mounts)

    found = ProcScan(mounts).holders([(identity, device)])

    by_pid = {}
    for h in found[identity]:
        by_pid.setdefault(h.pid, []).append(h)
    assert set(by_pid) == {p.pid for p in procs.values()}, found
    (reader,) = by_pid[procs['read'].pid]
    assert (reader.access, reader.append, reader.writes) == ('read', False, False)
    (appender,) = by_pid[procs['append'].pid]
    assert (appender.access, appender.append, appender.writes) == ('write', True, True)
    assert appender.comm.startswith('python'), appender.as_dict()
    (writer,) = by_pid[procs['write'].pid]
    assert (writer.access, writer.append) == ('write', False)
    (both,) = by_pid[procs['rdwr_append'].pid]
    assert (both.access, both.append) == ('read_write', True)
    # Python's mmap keeps a dup() of the descriptor: the mapping is listed beside it.
    (mapper,) = [h for h in by_pid[procs['map'].pid] if h.fd is None]
    assert mapper.shared_writable_map and mapper.as_dict()['map'] == 'rw-s', mapper.as_dict()


def test_byte_range_lock_is_listed(fullfs, hold):
    fs = fullfs('tmpfs')
    path = fs.write_log('db.log', MiB)
    p = hold(path, 'lock')
    st = os.stat(path)
    locks = read_locks([(st.st_dev, st.st_ino)])
    assert [(lk[0], lk[2], lk[3], lk[4]) for lk in locks[(st.st_dev, st.st_ino)]] == [('POSIX', p.pid, '100', '109')]


@pytest.mark.parametrize('kind', ['tmpfs', 'ext4'])
def test_deleted_files_still_held(kind, fullfs, hold):
    fs = fullfs(kind)
    path = fs.write_file('gone.log', log_bytes(3 * MiB, seed=5))
    kept = fs.write_log('kept.log', MiB)
    p = hold(path, 'append', unlink=True)
    hold(kept, 'append')
    mounts = MountTable()
    mount_point = str(fs.mnt)

    found = ProcScan(mounts).deleted(lambda m: m.mount_point == mount_point)

    assert [d.former_path for d in found] == [str(path)]
    (deleted,) = found
    assert deleted.st.st_size == 3 * MiB and deleted.st.st_nlink == 0
    assert [(h.pid, h.append) for h in deleted.holders] == [(p.pid, True)]
    # Another mount is never looked at.
    assert ProcScan(mounts).deleted(lambda m: False) == []
