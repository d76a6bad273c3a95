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
import sys

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
        # The space is back: the file's blocks hold only what follows the prefix (xfs keeps a
        # speculative preallocation past the end of a file being appended to, up to its size).
        tail_start = _data_start(log)
        now = os.stat(log)
        assert now.st_blocks * 512 <= 2 * (now.st_size - tail_start) + 4 * MiB, (now, tail_start)
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


@pytest.fixture
def overlay(fullfs):
    """An overlay mount whose upper layer is on a fresh filesystem of the given kind."""
    made = []

    def make(kind):
        fs = fullfs(kind, size=160 * MiB)
        lower = fs.mnt / 'lower'
        upper = fs.mnt / 'upper'
        work = fs.mnt / 'work'
        merged = fs.mnt / 'merged'
        for d in (lower, upper, work, merged):
            d.mkdir()
        subprocess.run(['mount', '-t', 'overlay', 'overlay', '-o',
                        f'lowerdir={lower},upperdir={upper},workdir={work}', str(merged)], check=True)
        made.append(merged)
        return merged

    yield make
    for merged in reversed(made):
        subprocess.run(['umount', str(merged)], check=False)


@pytest.mark.parametrize('upper', ['tmpfs', 'ext4'])
def test_live_on_overlay(upper, overlay, engine, journal_dir, tmp_path):
    merged = overlay(upper)
    log = merged / 'app.log'
    writer = LiveWriter(log, tmp_path / 'writer.json')
    try:
        writer.wait_bytes(8 * MiB)
        result = _run_live(engine, log, journal_dir)
        e = entry(result, log)
        assert e['action'] == 'live_compressed', short(result)
        # What the layer below can do: ext4 collapses, tmpfs punches.
        assert e['strategy'] == EXPECTED_METHOD[upper], e
        assert writer.still_writing()
        final = writer.stop()
        assert check_stream(saved_parts(merged, 'app.log'), live_tail(str(log))) == final['lines']
        assert final['errors'] == 0
    finally:
        writer.kill()


@pytest.mark.parametrize('kind', ['ext4', 'tmpfs'])
def test_live_on_a_full_filesystem(kind, engine, fullfs, journal_dir, tmp_path):
    """0 bytes free: the writer's appends fail with ENOSPC and it retries; the cut frees the space,
    the .gz is written into it, and the writer goes on."""
    fs = fullfs(kind, size=96 * MiB)
    log = fs.data / 'app.log'
    writer = LiveWriter(log, tmp_path / 'writer.json')
    try:
        writer.wait_bytes(16 * MiB)
        fs.fill()
        stuck = writer.status()['enospc']
        assert writer.still_writing() is False or writer.status()['enospc'] > stuck
        result = _run_live(engine, log, journal_dir)
        e = entry(result, log)
        assert e['action'] == 'live_compressed', short(result)
        assert e['bytes_saved'] > 8 * MiB
        assert writer.still_writing()
        final = writer.stop()
        assert final['enospc'] > 0 and final['errors'] == 0, final
        assert check_stream(saved_parts(fs.data, 'app.log'), live_tail(str(log))) == final['lines']
    finally:
        writer.kill()


def test_rotated_file_still_held(engine, fullfs, journal_dir, tmp_path):
    """access.log.1 before the writer reopens: handled the same way."""
    fs = fullfs('ext4', size=160 * MiB)
    log = fs.data / 'access.log'
    writer = LiveWriter(log, tmp_path / 'writer.json')
    try:
        writer.wait_bytes(8 * MiB)
        rotated = fs.data / 'access.log.1'
        os.rename(log, rotated)
        result = _run_live(engine, rotated, journal_dir)
        e = entry(result, rotated)
        assert e['action'] == 'live_compressed', short(result)
        assert os.path.basename(e['dest']).startswith('access.log.1-')
        assert writer.still_writing()
        final = writer.stop()
        assert check_stream(saved_parts(fs.data, 'access.log.1'), live_tail(str(rotated))) == final['lines']
    finally:
        writer.kill()


def test_readers_are_followed(engine, fullfs, journal_dir, tmp_path):
    fs = fullfs('tmpfs', size=96 * MiB)
    log = fs.data / 'app.log'
    writer = LiveWriter(log, tmp_path / 'writer.json')
    reader = None
    try:
        writer.wait_bytes(8 * MiB)
        reader = subprocess.Popen(['tail', '-f', str(log)], stdout=subprocess.DEVNULL)
        writer.wait_bytes(9 * MiB)
        result = _run_live(engine, log, journal_dir)
        e = entry(result, log)
        assert e['action'] == 'live_compressed', short(result)
        assert {p['pid'] for p in e['pids']} >= {writer.pid, reader.pid}
        assert reader.poll() is None
        final = writer.stop()
        assert check_stream(saved_parts(fs.data, 'app.log'), live_tail(str(log))) == final['lines']
    finally:
        writer.kill()
        if reader is not None:
            reader.kill()
            reader.wait()


HOLDS = {
    # how the refused process holds the file -> words the detail must contain
    'write_no_append': 'writes without O_APPEND',
    'shared_map': 'maps it shared and writable',
    'range_lock': 'lock on bytes 100-109',
}
REFUSED_HOLDER = r'''
import fcntl, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
if sys.argv[2] == 'shared_map':
    m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    os.close(fd)
elif sys.argv[2] == 'range_lock':
    os.close(fd)
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    fcntl.lockf(fd, fcntl.LOCK_EX, 10, 100)
print('ready', flush=True)
sys.stdin.read()
'''


@pytest.mark.parametrize('how', list(HOLDS))
def test_refused_holder_is_named_and_nothing_changes(how, engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    log = fs.write_file('app.log', b''.join(b'%010d line\n' % i for i in range(400000)))
    before = fs.data / 'app.log'
    state = os.stat(before)
    holder = subprocess.Popen([sys.executable, '-c', REFUSED_HOLDER, str(log), how], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b'ready\n'
        digest = subprocess.run(['sha256sum', str(log)], capture_output=True, check=True).stdout.split()[0]
        result = _run_live(engine, log, journal_dir)
        e = entry(result, log)
        assert (e['action'], e['reason']) == ('skipped', 'holder_refused'), short(result)
        assert 'pid %d (python' % holder.pid in e['detail'] and HOLDS[how] in e['detail'], e['detail']
        assert holder.pid in [p['pid'] for p in e['pids']]
        assert subprocess.run(['sha256sum', str(log)], capture_output=True, check=True).stdout.split()[0] == digest
        assert os.stat(log).st_ino == state.st_ino
        assert saved_parts(fs.data, 'app.log') == []
    finally:
        holder.kill()
        holder.wait()


def test_min_age_and_an_existing_gz_do_not_stop_a_held_file(engine, fullfs, journal_dir, tmp_path):
    """A runaway log is always young, and app.log.gz may exist from an earlier compression:
    neither matters to the live method; a young file nobody holds still waits."""
    fs = fullfs('tmpfs', size=96 * MiB)
    log = fs.data / 'app.log'
    (fs.data / 'app.log.gz').write_bytes(b'an older compressed log\n')
    idle = fs.write_log('idle.log', 2 * MiB, seed=3)
    writer = LiveWriter(log, tmp_path / 'writer.json')
    try:
        writer.wait_bytes(8 * MiB)
        result = _run_live(engine, fs.data, journal_dir, recurse=True, min_age=600)
        assert entry(result, log)['action'] == 'live_compressed', short(result)
        assert entry(result, idle)['reason'] == 'too_young', short(result)
        assert (fs.data / 'app.log.gz').read_bytes() == b'an older compressed log\n'
        final = writer.stop()
        assert check_stream(saved_parts(fs.data, 'app.log'), live_tail(str(log))) == final['lines']
    finally:
        writer.kill()
