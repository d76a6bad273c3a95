# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Power loss in the middle of a window run: the RAM journal is gone, the file
alone is finished by pointing the module at NAME.gz (reason ``salvaged``).

``kill``: the run is stopped (SIGKILL) and its journal deleted.  ``shutdown``:
a real power cut of the data filesystem (EXT4_IOC_SHUTDOWN / XFS_IOC_GOINGDOWN
with NOLOGFLUSH: whatever was not on disk is lost), the run killed, the
journal deleted, the filesystem mounted again.  Each time the original bytes
come back.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import struct
import subprocess
import time

import pytest

from cmzrun import entry, run_direct, short, spawn_direct
from fullfs import MiB, gunzip_sha256, log_bytes, random_bytes, sha256_bytes

SUBDIR = 'sre.cmemgzip'
MTIME_NS = 1_600_000_000_000_000_000
GOINGDOWN = 0x8004587D          # EXT4_IOC_SHUTDOWN == XFS_IOC_GOINGDOWN: _IOR('X', 125, __u32)
GOINGDOWN_NOLOGFLUSH = 0x2


def _checkpoint(journal):
    for name in os.listdir(os.path.join(journal, SUBDIR)):
        if name.endswith('.json'):
            try:
                with open(os.path.join(journal, SUBDIR, name)) as handle:
                    return json.load(handle)
            except (OSError, ValueError):
                return None  # being replaced
    return None


def _power_cut(mnt):
    fd = os.open(mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.ioctl(fd, GOINGDOWN, struct.pack('I', GOINGDOWN_NOLOGFLUSH))
    finally:
        os.close(fd)


@pytest.mark.parametrize('how', ['kill-tmpfs', 'shutdown-ext4', 'shutdown-xfs'])
def test_salvage_after_the_journal_is_lost(how, fullfs, tmp_path):
    kind = how.split('-')[1]
    size = 160 * MiB
    fs = fullfs(kind, size=size + (200 if kind == 'xfs' else 40) * MiB)
    # Text, an incompressible stretch, text: the salvage crosses both kinds of blocks.
    data = log_bytes(100 * MiB, seed=131) + random_bytes(12 * MiB, seed=132) + log_bytes(48 * MiB, seed=133)
    f = fs.write_file('app.log', data, mode=0o640, mtime_ns=MTIME_NS)
    os.chown(f, 1234, 2345)
    os.setxattr(f, 'user.origin', b'salvage-test')
    ino = os.stat(f).st_ino
    fs.fill()
    jfs = fullfs('tmpfs', size=32 * MiB)
    journal = str(jfs.mnt / 'journal')
    os.mkdir(journal, 0o700)
    os.mkdir(os.path.join(journal, SUBDIR), 0o700)

    args = {'path': [str(f)], 'journal_dir': journal, 'strategy': 'window', 'level': 1, 'threads': 1,
            'min_size': 0}
    p = spawn_direct(args, str(tmp_path))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and p.poll() is None:
            checkpoint = _checkpoint(journal)
            if checkpoint and checkpoint.get('phase') == 'compressing' and checkpoint['read'] > 110 * MiB:
                break
            time.sleep(0.005)
        assert p.poll() is None, 'the run ended before the point of the power cut'
        if how.startswith('shutdown'):
            _power_cut(str(fs.mnt))
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    shutil.rmtree(os.path.join(journal, SUBDIR))   # the RAM journal is gone
    os.mkdir(os.path.join(journal, SUBDIR), 0o700)
    if how.startswith('shutdown'):
        subprocess.run(['umount', str(fs.mnt)], check=True)
        subprocess.run(['mount', '-t', kind, fs.dev, str(fs.mnt)], check=True)
    gz = fs.data / 'app.log.gz'
    assert sorted(os.listdir(fs.data)) == ['app.log.gz']
    assert subprocess.run(['gzip', '-t', str(gz)], capture_output=True, check=False).returncode != 0

    survey = run_direct({'path': [str(gz)], 'journal_dir': journal}, str(tmp_path), check=True)
    assert (entry(survey, gz)['action'], entry(survey, gz)['reason']) == ('would_recover', 'salvaged'), short(survey)

    result = run_direct({'path': [str(gz)], 'journal_dir': journal}, str(tmp_path))
    assert not result.get('failed'), short(result)
    e = entry(result, gz)
    assert (e['action'], e['reason'], e['strategy']) == ('recovered', 'salvaged', 'window'), short(result)
    assert gunzip_sha256(gz) == sha256_bytes(data), 'bytes lost'
    st = os.stat(gz)
    assert (st.st_ino, st.st_uid, st.st_gid, st.st_mode & 0o7777) == (ino, 1234, 2345, 0o640)
    assert st.st_mtime_ns == MTIME_NS  # the header's mtime, in whole seconds
    assert os.getxattr(gz, 'user.origin') == b'salvage-test'
    assert e['bytes_saved'] > size // 2
    again = run_direct({'path': [str(gz)], 'journal_dir': journal}, str(tmp_path))
    assert entry(again, gz)['reason'] == 'already_compressed', short(again)
