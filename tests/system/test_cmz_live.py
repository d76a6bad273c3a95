# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``open_files: live`` with a real writer appending numbered lines as fast as it can
(``O_APPEND``, one write() per line) during the whole run.

Afterwards, on every filesystem: the rotation-style .gz files followed by
the live file are exactly lines 0..N-1, once each, in order; the space is
back; the writer is alive, still writing, and never got an error.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from cmzrun import entry, short
from fullfs import MiB
from livewriter import LiveWriter, check_stream, live_tail, saved_parts

# (kind, fs size, bytes the writer writes before the run)
KINDS = {
    'ext4': (160 * MiB, 24 * MiB),
    'xfs': (300 * MiB, 24 * MiB),
    'tmpfs': (160 * MiB, 24 * MiB),
    'btrfs': (256 * MiB, 24 * MiB),
}
EXPECTED_METHOD = {'ext4': 'collapse', 'xfs': 'collapse', 'tmpfs': 'punch_hole', 'btrfs': 'punch_hole'}


def _data_start(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_DATA)
    finally:
        os.close(fd)


def _run_live(engine, path, journal_dir, **extra):
    options = dict(paths=[str(path)], min_size=0, journal_dir=journal_dir, open_files='live', level=1)
    options.update(extra)
    return engine.run(engine.Options(**options))


@pytest.mark.parametrize('kind', list(KINDS))
def test_live_writer_loses_no_line(kind, engine, fullfs, journal_dir, tmp_path):
    size, before = KINDS[kind]
    fs = fullfs(kind, size=size)
    log = fs.data / 'app.log'
    writer = LiveWriter(log, tmp_path / 'writer.json')
    try:
        writer.wait_bytes(before)
        os.chown(log, 1234, 2345)
        os.chmod(log, 0o640)
        subprocess.run(['setfattr', '-n', 'user.origin', '-v', 'app', str(log)], check=False)
        result = _run_live(engine, log, journal_dir)
        e = entry(result, log)
        assert e['action'] == 'live_compressed', short(result)
        assert e['strategy'] == EXPECTED_METHOD[kind], e
        assert e['prefix_end'] >= before - 4096, e
        assert e['writer_stall'] >= 0
        assert [p['pid'] for p in e['pids']] == [writer.pid], e
        (gz,) = saved_parts(fs.data, 'app.log')
        assert e['dest'] == gz
        st = os.stat(gz)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 2345, 0o640)
        assert subprocess.run(['gzip', '-t', gz], check=False).returncode == 0
        # The space is back: the file's blocks hold only what follows the prefix.
        tail_start = _data_start(log)
        now = os.stat(log)
        assert now.st_blocks * 512 <= now.st_size - tail_start + 4 * MiB, (now, tail_start)
        assert tail_start == (e['prefix_end'] if e['strategy'] == 'punch_hole' else 0)
        assert e['bytes_saved'] > 0
        assert writer.still_writing()
        check_stream([gz], live_tail(str(log)), at_least=before // writer.line_bytes)

        # A second run cuts again; the stream is still whole.
        again = _run_live(engine, log, journal_dir)
        assert entry(again, log)['action'] == 'live_compressed', short(again)
        assert writer.still_writing()
        final = writer.stop()
        parts = saved_parts(fs.data, 'app.log')
        assert len(parts) == 2
        assert check_stream(parts, live_tail(str(log))) == final['lines']
        assert final['errors'] == 0 and final['enospc'] == 0, final
    finally:
        writer.kill()
