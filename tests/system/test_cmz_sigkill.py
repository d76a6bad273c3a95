# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SIGKILL the module in the middle of its work; the next run recovers and no
byte is ever lost.

The product has no test hooks: the test watches the journal directory with
inotify and kills the module process the instant a manifest (``*.json``)
appears, i.e. when the destructive phase begins; other cases kill it at a
random instant.  The module runs as its own Python process (``python -m
...modules.cmemgzip ARGS``, as AnsiballZ would run it), so the killed pid is
the one doing the work.

``CMZ_IT_KILL_MIB`` (default 64; 200 widens the windows) sets the file size; ``CMZ_IT_SEED`` fixes
the random instants (the seed used is printed on failure).
"""

from __future__ import annotations

import os
import random
import signal
import time

import pytest

from cmzrun import entries, journal_names, JOURNAL_SUBDIR, run_direct, short, spawn_direct
from fullfs import (IN_CREATE, IN_MOVED_TO, Inotify, MiB, gunzip_sha256, log_bytes, sha256_bytes,
                    sha256_file)

KILL_MIB = int(os.environ.get('CMZ_IT_KILL_MIB', '64'))
SEED = int(os.environ.get('CMZ_IT_SEED', str(int(time.time()) % 100000)))
SUBDIR = JOURNAL_SUBDIR
MTIME_NS = 1_600_000_000_444_555_666

# Seconds from start to the first manifest, measured by the first test and
# used to aim the random kills.
_timing = {}


def _setup(fullfs, journal_dir):
    size = KILL_MIB * MiB
    fs = fullfs('tmpfs', size=size + 16 * MiB)
    data = log_bytes(size, seed=71)
    f = fs.write_file('huge.log', data, mode=0o640, mtime_ns=MTIME_NS)
    os.chown(f, 1234, 2345)
    fs.fill()
    # Created beforehand (private, as the module requires) so that inotify
    # can watch it from the start.
    os.mkdir(os.path.join(journal_dir, SUBDIR), 0o700)
    return fs, f, sha256_bytes(data)


def _kill(p):
    """SIGKILL the module process (and its own session, in case it forked)."""
    try:
        os.kill(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait(timeout=30)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _check_after_rerun(fs, f, original_sha, journal_dir, manifest_at_kill, tmp_path):
    rerun = run_direct({'path': [str(f)], 'journal_dir': journal_dir, 'level': 1, 'min_size': 0},
                       str(tmp_path))
    assert not rerun.get('failed'), short(rerun)
    recovered = entries(rerun, action='recovered')
    if manifest_at_kill:
        assert recovered, f'a manifest was left but nothing was recovered:\n{short(rerun)}'
    assert rerun['totals']['recovered'] == len(recovered)
    for e in recovered:
        assert e['path'] in (str(f), f'{f}.gz'), e
    names = sorted(os.listdir(fs.data))
    assert names in (['huge.log'], ['huge.log.gz']), f'leftovers in {fs.data}: {names}'
    st = os.stat(fs.data / names[0])
    assert (st.st_uid, st.st_gid, oct(st.st_mode), st.st_mtime_ns, st.st_nlink) == (
        1234, 2345, oct(0o100640), MTIME_NS, 1), f'{names[0]}: metadata not kept through the crash'
    if names == ['huge.log.gz']:
        assert gunzip_sha256(f'{f}.gz') == original_sha, 'bytes lost in huge.log.gz'
    else:
        assert sha256_file(f) == original_sha, 'bytes lost in huge.log'
    assert journal_names(journal_dir) == [], 'journal not cleaned after recovery'
    return rerun


def test_sigkill_when_manifest_appears(fullfs, journal_dir, tmp_path):
    fs, f, original_sha = _setup(fullfs, journal_dir)
    watch = Inotify(os.path.join(journal_dir, SUBDIR), IN_CREATE | IN_MOVED_TO)
    p = None
    try:
        t0 = time.monotonic()
        p = spawn_direct({'path': [str(f)], 'journal_dir': journal_dir, 'level': 9, 'threads': 1},
                         str(tmp_path))
        killed = False
        deadline = t0 + 300
        while time.monotonic() < deadline and p.poll() is None:
            if any(n.endswith('.json') for n in watch.names(0.5)):
                _kill(p)
                killed = True
                _timing['manifest'] = time.monotonic() - t0
                break
        if not killed:
            out, err = p.communicate(timeout=30)
            pytest.fail(f'no manifest appeared before the module ended (rc={p.returncode}):\n'
                        f'{out[-2000:]!r}\n{err[-2000:]!r}')
    finally:
        watch.close()
        if p is not None and p.poll() is None:
            _kill(p)
    left = journal_names(journal_dir)
    assert any(n.endswith('.json') for n in left), f'killed at the manifest, but the journal holds {left}'
    _check_after_rerun(fs, f, original_sha, journal_dir, True, tmp_path)


@pytest.mark.parametrize('phase', ['compressing', 'destructive'])
def test_sigkill_at_random_instant(phase, fullfs, journal_dir, tmp_path):
    """Kill at a random instant: during compression (uniform in [0, 0.8 t_manifest]
    as measured by the test above, or a guess), or inside the destructive
    phase (uniform [0, 80 ms] after the manifest appears; that phase lasted
    about 75 ms for 64 MiB on tmpfs)."""
    rng = random.Random(f'{SEED}-{phase}')
    fs, f, original_sha = _setup(fullfs, journal_dir)
    watch = Inotify(os.path.join(journal_dir, SUBDIR), IN_CREATE | IN_MOVED_TO)
    t0 = time.monotonic()
    p = spawn_direct({'path': [str(f)], 'journal_dir': journal_dir, 'level': 9, 'threads': 1},
                     str(tmp_path))
    try:
        if phase == 'compressing':
            delay = rng.uniform(0, 0.8 * _timing.get('manifest', KILL_MIB / 40.0))
            deadline = t0 + delay
        else:
            delay = rng.uniform(0, 0.08)
            deadline = t0 + 300
        while p.poll() is None and time.monotonic() < deadline:
            names = watch.names(min(0.5, max(0.0, deadline - time.monotonic())))
            if phase == 'destructive' and any(n.endswith('.json') for n in names):
                time.sleep(delay)
                break
        finished = p.poll() is not None
        _kill(p)
    finally:
        watch.close()
        if p.poll() is None:
            _kill(p)
    manifest_at_kill = any(n.endswith('.json') for n in journal_names(journal_dir))
    info = (f'seed={SEED} phase={phase} delay={delay:.3f}s finished={finished} '
            f'manifest_at_kill={manifest_at_kill} elapsed={time.monotonic() - t0:.3f}s')
    print(info)
    try:
        _check_after_rerun(fs, f, original_sha, journal_dir, manifest_at_kill, tmp_path)
    except AssertionError as e:
        raise AssertionError(f'{info}\n{e}') from None
