# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SIGKILL the module in the middle of a live cut (cmemgzip, open_files: live)
or of a reclaim (reclaim_deleted) while the writer keeps appending; the next
run finishes or rolls back, and not one line is lost or repeated.

Kill points: entering the first ``fallocate`` (the collapse or punch: the
range is not freed yet), entering the second (the reservation of the .gz:
the range is freed, the manifest still says ``freeing``), entering the first
``pwrite64`` into the .gz (reserved, nothing written), the instant the
manifest appears, and random instants of the whole run.  ``CMZ_IT_SEED``
fixes the random instants.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

from cmzrun import COLLECTIONS, MODULE_PYNAME, _args_file, _env, ensure_collection_link, entries, run_direct, short
from fullfs import IN_CREATE, IN_MOVED_TO, Inotify, MiB
from livewriter import LiveWriter, check_stream, live_tail, saved_parts

SEED = int(os.environ.get('CMZ_IT_SEED', str(int(time.time()) % 100000)))
SUBDIR = 'sre.cmemgzip'
POINTS = ['fallocate1', 'fallocate2', 'pwrite64_1', 'manifest', 'random']
# Kill points at exact system calls (strace): syscall -> its Nth call.
SYSCALL_POINTS = {'fallocate1': ('fallocate', 1), 'fallocate2': ('fallocate', 2), 'pwrite64_1': ('pwrite64', 1)}


RECLAIM_PYNAME = 'ansible_collections.sre.cmemgzip.plugins.modules.reclaim_deleted'


def _spawn(args, tmpdir, syscall=None, module=MODULE_PYNAME):
    ensure_collection_link()
    env = _env()
    env['PYTHONPATH'] = str(COLLECTIONS)
    cmd = [sys.executable, '-m', module, _args_file(args, False, tmpdir)]
    if syscall is not None:
        name, when = syscall
        cmd = ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=%s' % name,
               '-e', 'inject=%s:signal=SIGKILL:when=%d' % (name, when)] + cmd
    return subprocess.Popen(cmd, env=env, cwd='/', stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _kill(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.communicate(timeout=60)


def _kill_at(point, args, rng, journal_dir, tmp_path, module=MODULE_PYNAME):
    """Start the module and SIGKILL it at ``point``."""
    if point in SYSCALL_POINTS:
        p = _spawn(args, str(tmp_path), syscall=SYSCALL_POINTS[point], module=module)
        p.communicate(timeout=300)
        assert p.returncode != 0, 'the module was not killed'
    elif point == 'manifest':
        watch = Inotify(os.path.join(journal_dir, SUBDIR), IN_CREATE | IN_MOVED_TO)
        try:
            p = _spawn(args, str(tmp_path), module=module)
            deadline = time.monotonic() + 300
            while p.poll() is None and time.monotonic() < deadline:
                if any(n.endswith('.json') for n in watch.names(0.05)):
                    time.sleep(rng.uniform(0, 0.05))
                    break
            _kill(p)
        finally:
            watch.close()
    else:
        p = _spawn(args, str(tmp_path), module=module)
        time.sleep(rng.uniform(0.2, 3.0))
        _kill(p)


def _check_recovered(rerun, kind, point, journal_dir):
    assert not rerun.get('failed'), short(rerun)
    recovered = [e['reason'] for e in entries(rerun, action='recovered')]
    # Killed before the collapse: rolled back.  A punch is finished (holes are idempotent).
    expected = {'fallocate1': ['rolled_back' if kind == 'ext4' else 'finished'],
                'fallocate2': ['finished'], 'pwrite64_1': ['finished']}.get(point)
    if expected is not None:
        assert recovered == expected, short(rerun)
    assert set(recovered) <= {'finished', 'rolled_back'}, short(rerun)
    assert os.listdir(os.path.join(journal_dir, SUBDIR)) == [], short(rerun)


@pytest.mark.parametrize('point', POINTS)
@pytest.mark.parametrize('kind', ['ext4', 'tmpfs'])
def test_sigkill_during_live_cut(kind, point, fullfs, journal_dir, tmp_path):
    if point in SYSCALL_POINTS and shutil.which('strace') is None:
        pytest.skip('strace is not installed')
    rng = random.Random('%s-%s-%d' % (kind, point, SEED))
    fs = fullfs(kind, size=160 * MiB)
    log = fs.data / 'app.log'
    os.mkdir(os.path.join(journal_dir, SUBDIR), 0o700)
    args = {'path': [str(log)], 'journal_dir': journal_dir, 'min_size': 0, 'open_files': 'live', 'level': 1}
    writer = LiveWriter(log, tmp_path / 'writer.json')
    try:
        writer.wait_bytes(16 * MiB)
        _kill_at(point, args, rng, journal_dir, tmp_path)
        rerun = run_direct(args, str(tmp_path))
        _check_recovered(rerun, kind, point, journal_dir)
        # The rerun cuts again after recovering: the file is in use all along.
        assert [e['action'] for e in entries(rerun, path=str(log))][-1] == 'live_compressed', short(rerun)
        assert writer.still_writing()
        final = writer.stop()
        parts = saved_parts(fs.data, 'app.log')
        assert parts, 'nothing was saved (seed %d)' % SEED
        assert check_stream(parts, live_tail(str(log))) == final['lines'], 'seed %d' % SEED
        assert final['errors'] == 0, final
    finally:
        writer.kill()


@pytest.mark.parametrize('point', POINTS)
@pytest.mark.parametrize('kind', ['ext4', 'tmpfs'])
def test_sigkill_during_reclaim(kind, point, fullfs, journal_dir, tmp_path):
    """A deleted log its writer still appends to, on a full filesystem."""
    if point in SYSCALL_POINTS and shutil.which('strace') is None:
        pytest.skip('strace is not installed')
    rng = random.Random('reclaim-%s-%s-%d' % (kind, point, SEED))
    fs = fullfs(kind, size=96 * MiB)
    log = fs.data / 'app.log'
    os.mkdir(os.path.join(journal_dir, SUBDIR), 0o700)
    args = {'paths': [str(fs.mnt)], 'journal_dir': journal_dir, 'min_size': '0', 'level': 1}
    writer = LiveWriter(log, tmp_path / 'writer.json', unlink=True)
    held = None
    try:
        writer.wait_bytes(16 * MiB)
        fs.fill()
        held = os.open('/proc/%d/fd/3' % writer.pid, os.O_RDONLY)
        _kill_at(point, args, rng, journal_dir, tmp_path, module=RECLAIM_PYNAME)
        rerun = run_direct(args, str(tmp_path), module=RECLAIM_PYNAME)
        _check_recovered(rerun, kind, point, journal_dir)
        assert writer.still_writing()
        final = writer.stop()
        parts = saved_parts(fs.data, 'app.log-deleted-pid%d' % writer.pid)
        assert parts, 'nothing was saved (seed %d): %s %s' % (SEED, os.listdir(fs.data), short(rerun))
        assert check_stream(parts, live_tail(held)) == final['lines'], 'seed %d' % SEED
        assert final['errors'] == 0, final
    finally:
        writer.kill()
        if held is not None:
            os.close(held)
