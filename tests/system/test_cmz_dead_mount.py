# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Never hang: a dead FUSE mount (server stopped with SIGSTOP) somewhere on the
host, a process holding a file on it, and the module run on an unrelated
tmpfs.  The open-file scan must not touch that mount; what it cannot read in
time it skips and reports.

A hang shows as ``subprocess.TimeoutExpired`` (the module is then killed);
no assertion is about speed.
"""

from __future__ import annotations

import os

from cmzrun import entry, run_direct, short
from deadmount import blocks, dead_fuse  # noqa: F401  # pylint: disable=unused-import
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils.mounts import MountTable
from ansible_collections.sre.cmemgzip.plugins.module_utils.open_files import ProcScan

HANG_GUARD = 30   # seconds: far beyond any normal run, only there to turn a hang into a failure


def test_module_finishes_beside_a_dead_fuse_mount(dead_fuse, fullfs, journal_dir, tmp_path):
    holder = dead_fuse.hold('held.log')
    dead_fuse.stop()
    assert blocks(lambda: os.stat('/proc/%d/fd/1' % holder.pid)), 'the holder\'s descriptor does not block'
    fs = fullfs('tmpfs', size=16 * MiB)
    data = log_bytes(4 * MiB, seed=91)
    log = fs.write_file('app.log', data)
    fs.fill()

    result = run_direct({'path': [str(log)], 'journal_dir': journal_dir, 'min_size': 0}, str(tmp_path),
                        timeout=HANG_GUARD)

    assert not result.get('failed'), short(result)
    assert entry(result, log)['action'] == 'compressed', short(result)
    assert gunzip_sha256(f'{log}.gz') == sha256_bytes(data)
    # The dead mount was never touched: nothing had to be skipped.
    assert result['open_files_scan']['skipped'] == [], short(result)
    assert holder.poll() is None


def test_scan_skips_what_blocks_and_reports_it(dead_fuse):
    """The target itself on the dead mount: its confirming stat() blocks; the scan gives up on
    that process after the time limit and names it."""
    holder = dead_fuse.hold('target.log')
    path = dead_fuse.mnt / 'target.log'
    st = os.stat(path)
    mounts = MountTable()
    mount = mounts.find(str(path))
    dead_fuse.stop()

    scan = ProcScan(mounts, timeout=0.5)
    found = scan.holders([((st.st_dev, st.st_ino), os.makedev(mount.major, mount.minor))])

    assert found == {}
    assert [s['pid'] for s in scan.skipped] == [holder.pid], scan.skipped
    assert scan.skipped[0]['comm'] == 'sleep'
    assert 'stat' in scan.skipped[0]['reason']
    assert holder.pid in scan.unknown
