# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""SIGKILL a window run at random instants; every time, every byte is still
there, and the rerun rolls forward to a complete, verified .gz.

One ~300 MB log is compressed into itself by the module process (as
AnsiballZ runs it).  Each run is killed at a random instant; after each kill
the test proves, from the file and the journal checkpoint alone, that the
original can be rebuilt (stream prefix in the file + pending bytes of the
checkpoint inflate to the first ``read`` bytes, the file holds the rest);
then it reruns, and that rerun is the next one killed.  Runs that end before
their kill are checked with gunzip and sha256, and the original is put back
for the next chain.  Kills at exact system calls (strace) cover the rename,
the first write, a checkpoint's fdatasync and the truncate.

``CMZ_IT_WINDOW_KILLS`` (default 30), ``CMZ_IT_WINDOW_MIB`` (default 300),
``CMZ_IT_SEED`` fix the schedule (printed on failure).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
import zlib

import pytest

from cmzrun import COLLECTIONS, MODULE_PYNAME, _args_file, _env, entries, run_direct, short, spawn_direct
from faults import sigkill
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes, sha256_file

KILLS = int(os.environ.get('CMZ_IT_WINDOW_KILLS', '30'))
SIZE = int(os.environ.get('CMZ_IT_WINDOW_MIB', '300')) * MiB
SEED = int(os.environ.get('CMZ_IT_SEED', str(int(time.time()) % 100000)))
SUBDIR = 'sre.cmemgzip'
MTIME_NS = 1_600_000_000_444_555_666


def _args(f, journal):
    return {'path': [str(f)], 'journal_dir': journal, 'level': 1, 'threads': 2, 'min_size': 0,
            'strategy': 'window'}


def _checkpoint(journal):
    names = [n for n in os.listdir(os.path.join(journal, SUBDIR)) if n.endswith('.json')]
    assert len(names) <= 1, names
    if not names:
        return None
    with open(os.path.join(journal, SUBDIR, names[0])) as handle:
        return json.load(handle)


def _rebuilt_sha(path, manifest):
    """sha256 of the original rebuilt from the file and the checkpoint alone."""
    digest = hashlib.sha256()
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    produced = 0
    with open(path, 'rb') as handle:
        left = manifest['written']
        while left:
            chunk = handle.read(min(4 * MiB, left))
            assert chunk, 'the file is shorter than the checkpoint says'
            left -= len(chunk)
            out = inflater.decompress(chunk)
            digest.update(out)
            produced += len(out)
        out = inflater.decompress(base64.b64decode(manifest['pending']))
        digest.update(out)
        produced += len(out)
        assert produced == manifest['read'], (produced, manifest['read'])
        if manifest['phase'] == 'complete':
            assert inflater.eof
            return digest.hexdigest()
        handle.seek(manifest['read'])
        for chunk in iter(lambda: handle.read(4 * MiB), b''):
            digest.update(chunk)
    return digest.hexdigest()


class Chain(object):
    def __init__(self, fs, data, journal, tmp_path):
        self.fs = fs
        self.data = data
        self.sha = sha256_bytes(data)
        self.journal = journal
        self.tmp_path = tmp_path
        self.f = fs.data / 'huge.log'
        self.gz = fs.data / 'huge.log.gz'
        self.completed = 0

    def restore(self):
        for path in (self.f, self.gz):
            if path.exists():
                path.unlink()
        self.fs.write_file('huge.log', self.data, mode=0o640, mtime_ns=MTIME_NS)
        os.chown(self.f, 1234, 2345)

    def check_after_kill(self, note):
        manifest = _checkpoint(self.journal)
        names = sorted(os.listdir(self.fs.data))
        assert names in (['huge.log'], ['huge.log.gz']), (note, names)
        path = self.fs.data / names[0]
        if manifest is None:
            # Killed before the commit (untouched) or after the journal was dropped (done).
            got = sha256_file(path) if names == ['huge.log'] else gunzip_sha256(path)
        else:
            assert manifest['kind'] == 'window', manifest.get('kind')
            got = _rebuilt_sha(path, manifest)
        assert got == self.sha, f'{note}: bytes lost (seed {SEED})'
        return manifest

    def check_complete(self, result, note):
        assert not result.get('failed'), short(result)
        assert sorted(os.listdir(self.fs.data)) == ['huge.log.gz'], (note, short(result))
        assert gunzip_sha256(self.gz) == self.sha, f'{note}: bytes lost (seed {SEED})'
        st = os.stat(self.gz)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777, st.st_mtime_ns) == (1234, 2345, 0o640, MTIME_NS)
        assert _checkpoint(self.journal) is None
        self.completed += 1


@pytest.fixture
def chain(fullfs, tmp_path):
    fs = fullfs('tmpfs', size=SIZE + 24 * MiB)
    jfs = fullfs('tmpfs', size=32 * MiB)
    journal = jfs.mnt / 'journal'
    journal.mkdir(mode=0o700)
    os.mkdir(journal / SUBDIR, 0o700)
    c = Chain(fs, log_bytes(SIZE, seed=111), str(journal), tmp_path)
    c.restore()
    fs.fill()
    return c


def _manifest_ino(journal):
    """Inode of the checkpoint manifest (each checkpoint renames a new one in), or None."""
    for name in os.listdir(os.path.join(journal, SUBDIR)):
        if name.endswith('.json'):
            try:
                return os.stat(os.path.join(journal, SUBDIR, name)).st_ino
            except FileNotFoundError:
                return None
    return None


def _wait_for_checkpoint(p, journal, seen, timeout=600):
    """Wait until this run publishes a checkpoint (a manifest inode other than ``seen``)."""
    deadline = time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < deadline:
        ino = _manifest_ino(journal)
        if ino is not None and ino != seen:
            return True
        time.sleep(0.005)
    return False


def test_sigkill_at_random_instants(chain, tmp_path):
    """Most kills land at a random instant after the run's own first checkpoint (so that
    a loaded machine's slow start-up does not eat them); one in six at a random instant
    from the start, before the commit as often as not."""
    rng = random.Random(SEED)
    p = spawn_direct(_args(chain.f, chain.journal), str(tmp_path))
    t0 = time.monotonic()
    assert _wait_for_checkpoint(p, chain.journal, None)
    to_checkpoint = time.monotonic() - t0
    out, _err = p.communicate(timeout=600)
    after_checkpoint = time.monotonic() - t0 - to_checkpoint
    chain.check_complete(json.loads(out), 'uninterrupted run')
    chain.restore()

    kills = 0
    after_commit = 0
    while kills < KILLS:
        early = rng.random() < 1 / 6
        # Short delays make long chains of reruns, each resuming where the last was killed.
        delay = rng.uniform(0.0, to_checkpoint if early else 0.3 * after_checkpoint)
        note = f'kill {kills + 1}, {"from the start" if early else "after a checkpoint"} + {delay:.3f} s'
        seen = _manifest_ino(chain.journal)
        p = spawn_direct(_args(chain.f if chain.f.exists() else chain.gz, chain.journal), str(tmp_path))
        try:
            if not early:
                _wait_for_checkpoint(p, chain.journal, seen)
            p.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            sigkill(p)
            kills += 1
            if chain.check_after_kill(note) is not None:
                after_commit += 1
            continue
        out = json.loads(p.stdout.read())
        p.stdout.close()
        p.stderr.close()
        chain.check_complete(out, note)
        chain.restore()
    # The last chain: the rerun that nobody kills.
    target = chain.f if chain.f.exists() else chain.gz
    final = run_direct(_args(target, chain.journal), str(tmp_path))
    chain.check_complete(final, 'final rerun')
    assert after_commit >= KILLS // 2, f'only {after_commit} of {KILLS} kills after the first write (seed {SEED})'


STRACE_KILLS = [
    ('renameat2', 1),   # the rename at the commit: nothing written yet, rolls back
    ('pwrite64', 1),    # the first write over the original
    ('fdatasync', 3),   # a checkpoint's barrier
    ('ftruncate', 1),   # the end: stream complete, not yet cut to size
    ('fsync', 9),       # somewhere among the journal's and the end's fsyncs
]


@pytest.mark.parametrize('syscall,when', STRACE_KILLS)
def test_sigkill_at_a_system_call(syscall, when, chain, tmp_path):
    if shutil.which('strace') is None:
        pytest.skip('strace is not installed')
    env = _env()
    env['PYTHONPATH'] = str(COLLECTIONS)
    cmd = ['strace', '-f', '-qq', '-o', '/dev/null', '-e', f'trace={syscall}',
           '-e', f'inject={syscall}:signal=SIGKILL:when={when}',
           sys.executable, '-m', MODULE_PYNAME, _args_file(_args(chain.f, chain.journal), False, str(tmp_path))]
    p = subprocess.run(cmd, env=env, cwd='/', capture_output=True, timeout=600, check=False)
    assert p.returncode != 0, f'{syscall} #{when} was never called: {p.stdout[-500:]!r}'
    manifest = chain.check_after_kill(f'{syscall} #{when}')
    if syscall != 'renameat2':
        assert manifest is not None, 'killed after the commit, but no checkpoint'
    target = chain.f if chain.f.exists() else chain.gz
    rerun = run_direct(_args(target, chain.journal), str(tmp_path))
    chain.check_complete(rerun, f'rerun after {syscall} #{when}')
    recovered = entries(rerun, action='recovered')
    assert len(recovered) == 1, short(rerun)
    assert recovered[0]['reason'] == ('rolled_back' if syscall == 'renameat2' else 'finished'), short(rerun)
