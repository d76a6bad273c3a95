# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SIGKILL at every destructive system call of the replace protocol, on every
filesystem kind; the next run (on another path) finishes or rolls back, and
not a byte is lost.  strace delivers the signal on entry of the N-th call, so
the call itself never happens.

Calls of one run, in order: renameat2 (the rename), fsync #4 (the directory,
after it), fallocate (truncate_first's reservation), pwrite64 #1 and #2 (the
rewrite, 4 MiB each), ftruncate #1 (truncate_first: to 0; inplace: to the
compressed size), fsync #5 and #6 (the file, then the directory).
"""

from __future__ import annotations

import os

import pytest

from cmzrun import entries, run_direct, short
from faults import run_injected
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes, sha256_file

SUBDIR = 'sre.cmemgzip'
KINDS = {'tmpfs': None, 'ext4': None, 'xfs': 300 * MiB, 'btrfs': None}
# The calls each strategy makes: inplace (tmpfs, ext4, xfs) and truncate_first (btrfs).
INPLACE_POINTS = ['renameat2:when=1', 'fsync:when=4', 'pwrite64:when=2', 'ftruncate:when=1', 'fsync:when=6']
TRUNCATE_FIRST_POINTS = ['renameat2:when=1', 'ftruncate:when=1', 'fallocate:when=1', 'pwrite64:when=2',
                         'fsync:when=5']
CASES = ([('tmpfs', p) for p in INPLACE_POINTS] + [('ext4', p) for p in INPLACE_POINTS]
         + [('xfs', p) for p in ('renameat2:when=1', 'pwrite64:when=2', 'ftruncate:when=1')]
         + [('btrfs', p) for p in TRUNCATE_FIRST_POINTS])


@pytest.mark.parametrize('kind,point', CASES)
def test_sigkill_at_each_destructive_call(kind, point, fullfs, journal_dir, tmp_path):
    fs = fullfs(kind, size=KINDS[kind])
    data = log_bytes(32 * MiB, seed=91)  # about 5 MiB at level 1: two 4 MiB pwrites
    path = fs.write_file('app.log', data, mode=0o640, mtime_ns=1_600_000_000_123_456_789)
    os.chown(path, 1234, 2345)
    fs.fill()
    syscall, when = point.split(':')
    args = {'path': [str(path)], 'journal_dir': journal_dir, 'min_size': 0, 'level': 1}
    rc, result = run_injected(args, '%s:signal=SIGKILL:%s' % (syscall, when), str(tmp_path))
    assert result is None, 'the run was not killed at %s: %s' % (point, short(result))

    rerun = run_direct(dict(args, path=[str(fs.mnt / 'elsewhere')]), str(tmp_path))
    assert not rerun.get('failed'), short(rerun)
    names = sorted(os.listdir(fs.data))
    assert names in (['app.log'], ['app.log.gz']), names
    if names == ['app.log']:
        assert sha256_file(path) == sha256_bytes(data), 'bytes lost'
    else:
        assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data), 'bytes lost'
    st = os.stat(fs.data / names[0])
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777, st.st_mtime_ns, st.st_nlink) == (
        1234, 2345, 0o640, 1_600_000_000_123_456_789, 1)
    assert os.listdir(os.path.join(journal_dir, SUBDIR)) == []
    assert len(entries(rerun, action='recovered')) == 1, short(rerun)
    for marked in (fs.data / names[0], fs.mnt):
        assert not [a for a in os.listxattr(marked) if a.startswith('user.cmemgzip')], 'marks left on %s' % marked


EIO_CASES = ([('ext4', p) for p in INPLACE_POINTS if not p.startswith('renameat2')]
             + [('btrfs', p) for p in TRUNCATE_FIRST_POINTS if not p.startswith('renameat2')])


@pytest.mark.parametrize('kind,point', EIO_CASES)
def test_eio_at_each_destructive_call(kind, point, fullfs, journal_dir, tmp_path):
    """An I/O error instead of a kill: the result names the file and the kept copy, and
    a rerun finishes the file."""
    fs = fullfs(kind, size=KINDS[kind])
    data = log_bytes(32 * MiB, seed=92)
    path = fs.write_file('app.log', data)
    fs.fill()
    syscall, when = point.split(':')
    args = {'path': [str(path)], 'journal_dir': journal_dir, 'min_size': 0, 'level': 1}
    rc, result = run_injected(args, '%s:error=EIO:%s' % (syscall, when), str(tmp_path))
    assert result is not None, rc
    found = entries(result, path=str(path))
    assert len(found) == 1 and found[0]['action'] == 'failed', short(result)
    kept = [n for n in os.listdir(os.path.join(journal_dir, SUBDIR)) if n.endswith('.gz')]
    assert len(kept) == 1 and kept[0] in found[0]['detail'], found[0]['detail']
    assert 'Input/output error' in found[0]['detail'] and str(fs.data) in found[0]['detail'], found[0]['detail']

    rerun = run_direct(dict(args, path=[str(fs.mnt / 'elsewhere')]), str(tmp_path))
    assert not rerun.get('failed'), short(rerun)
    assert [e['reason'] for e in entries(rerun, action='recovered')] == ['finished'], short(rerun)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)
    assert os.listdir(os.path.join(journal_dir, SUBDIR)) == []
