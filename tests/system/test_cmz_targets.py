# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Wrong targets and wrong skips (issue 8, item 5): literal paths against globs,
spill_dir against the memory budget, a roomy filesystem holding its own
journal, per-user journal directories and a planted one, min_age for live
names only."""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time

import pytest

from cmzrun import COLLECTIONS, entry, short
from fullfs import MiB, file_state, gunzip_sha256, log_bytes, sha256_bytes, tree_state

NOBODY = pwd.getpwnam('nobody')
ROOT_JOURNAL = 'sre.cmemgzip'


def _user_journal(uid):
    return ROOT_JOURNAL if uid == 0 else '%s-%d' % (ROOT_JOURNAL, uid)


# -- literal paths win over globs ------------------------------------------------

def test_existing_literal_path_wins_over_glob(engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    literal = fs.write_log('app[1].log', 2 * MiB, seed=101)
    lookalike = fs.write_log('app1.log', 2 * MiB, seed=102)
    fs.fill()
    untouched = file_state(lookalike)
    result = engine.run(engine.Options(paths=[str(literal)], min_size=0, journal_dir=journal_dir))
    assert entry(result, literal)['action'] == 'compressed', short(result)
    assert gunzip_sha256(f'{literal}.gz') == sha256_bytes(log_bytes(2 * MiB, seed=101))
    assert file_state(lookalike) == untouched
    assert [e['path'] for e in result['files']] == [str(literal)]


def test_glob_expands_when_no_such_literal_path(engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    one = fs.write_log('app1.log', 2 * MiB, seed=103)
    bracket = fs.write_log('app[2].log', 2 * MiB, seed=104)
    fs.fill()
    # No file is literally named "app[12].log": a glob; "[[]" matches a literal "[".
    result = engine.run(engine.Options(paths=[str(fs.data / 'app[12].log'), str(fs.data / 'app[[]2].log')],
                                       min_size=0, journal_dir=journal_dir))
    assert entry(result, one)['action'] == 'compressed', short(result)
    assert entry(result, bracket)['action'] == 'compressed', short(result)


# -- spill_dir when the RAM budget is too small ------------------------------------

def test_spill_dir_takes_a_file_beyond_the_memory_budget(engine, fullfs):
    """/dev/shm has room, but memory_limit is smaller than the file: the disk spill_dir
    holds the copy (the module's own EXAMPLES promise it)."""
    fs = fullfs('tmpfs', size=32 * MiB)
    data = log_bytes(20 * MiB, seed=105)   # about 4 MiB compressed
    f = fs.write_file('core.log', data)
    fs.fill()
    shm = fullfs('tmpfs', size=256 * MiB)
    spill_fs = fullfs('ext4', size=64 * MiB)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, memory_limit=1 * MiB,
                                       journal_dir=str(shm.mnt), spill_dir=str(spill_fs.mnt)))
    e = entry(result, f)
    assert e['action'] == 'compressed', short(result)
    assert gunzip_sha256(f'{f}.gz') == sha256_bytes(data)
    assert result['memory']['peak_journal'] == 0, 'the copy went to RAM despite the 1 MiB budget'


def test_memory_budget_without_spill_dir_still_skips(engine, fullfs):
    fs = fullfs('tmpfs', size=32 * MiB)
    f = fs.write_log('core.log', 20 * MiB, seed=106)
    fs.fill()
    shm = fullfs('tmpfs', size=256 * MiB)
    before = tree_state(fs.data)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, memory_limit=1 * MiB,
                                       journal_dir=str(shm.mnt)))
    assert (entry(result, f)['action'], entry(result, f)['reason']) == ('skipped', 'memory_budget'), short(result)
    assert tree_state(fs.data) == before


# -- a roomy filesystem holds its own journal --------------------------------------

def test_roomy_filesystem_holds_its_own_journal(engine, fullfs):
    """Like gzip, the copy may sit on the file's own filesystem when it has room,
    when no other filesystem can take it (here: the journal_dir is full)."""
    fs = fullfs('tmpfs', size=128 * MiB)           # 20 MiB used: roomy
    data = log_bytes(20 * MiB, seed=107)
    f = fs.write_file('app.log', data)
    shm = fullfs('tmpfs', size=1 * MiB)
    shm.fill()
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=str(shm.mnt)))
    e = entry(result, f)
    assert e['action'] == 'compressed', short(result)
    assert gunzip_sha256(f'{f}.gz') == sha256_bytes(data)
    # The journal it made on that filesystem is gone again.
    assert sorted(os.listdir(fs.mnt)) == ['data', 'filler'], os.listdir(fs.mnt)


def test_full_filesystem_never_holds_its_own_journal(engine, fullfs):
    fs = fullfs('tmpfs', size=32 * MiB)
    f = fs.write_log('app.log', 20 * MiB, seed=108)
    fs.fill()
    shm = fullfs('tmpfs', size=1 * MiB)
    shm.fill()
    before = tree_state(fs.data)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=str(shm.mnt)))
    assert entry(result, f)['reason'] == 'no_journal_space', short(result)
    assert tree_state(fs.data) == before
    assert sorted(os.listdir(fs.mnt)) == ['data', 'filler']


def _shm(fullfs, size=256 * MiB):
    """A world-writable sticky tmpfs, like /dev/shm."""
    shm = fullfs('tmpfs', size=size)
    os.chmod(shm.mnt, 0o1777)
    return shm


def _spawn_as(uid, gid, options):
    """The engine as another user, in its own process (stdlib Python only)."""
    code = ('import json, sys; sys.path.insert(0, %r)\n'
            'from ansible_collections.sre.cmemgzip.plugins.module_utils import engine\n'
            'print(json.dumps(engine.run(engine.Options(**json.loads(sys.argv[1])))))\n' % str(COLLECTIONS))
    return subprocess.Popen(['setpriv', '--reuid=%d' % uid, '--regid=%d' % gid, '--clear-groups',
                             '/usr/bin/python3', '-c', code, json.dumps(options)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd='/')


def _run_as(uid, gid, options):
    p = _spawn_as(uid, gid, options)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err[-3000:]
    return json.loads(out)


def _user_file(fs, name, seed=None, data=None):
    """A compressible log owned by nobody, in a directory nobody owns."""
    home = fs.data / 'nobody'
    home.mkdir(exist_ok=True)
    os.chown(home, NOBODY.pw_uid, NOBODY.pw_gid)
    f = fs.write_file('nobody/' + name, data if data is not None else log_bytes(2 * MiB, seed=seed))
    os.chown(f, NOBODY.pw_uid, NOBODY.pw_gid)
    return f


def test_own_filesystem_journal_is_recovered_by_the_next_run(fullfs):
    """Killed while its copy sits on the file's own filesystem, the next run (any path)
    finds that journal and finishes or rolls back; no byte is lost.

    Run as nobody: the journal is then nobody's (``.sre.cmemgzip-65534``), and root runs
    of other suites on this machine, which recover any root journal they find, keep out."""
    fs = fullfs('tmpfs', size=160 * MiB)
    os.chmod(fs.mnt, 0o1777)
    data = log_bytes(48 * MiB, seed=109)
    f = _user_file(fs, 'app.log', data=data)
    shm = _shm(fullfs, size=1 * MiB)
    shm.fill()
    journal = fs.mnt / ('.' + _user_journal(NOBODY.pw_uid))
    p = _spawn_as(NOBODY.pw_uid, NOBODY.pw_gid, {'paths': [str(f)], 'min_size': 0, 'journal_dir': str(shm.mnt),
                                                 'threads': 1, 'level': 9})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and p.poll() is None:
            if journal.is_dir() and any(n.endswith('.json') for n in os.listdir(journal)):
                break
            time.sleep(0.001)
    finally:
        p.kill()
        p.communicate(timeout=30)
    assert journal.is_dir(), 'the run never used a journal on its own filesystem'
    other = fullfs('tmpfs', size=8 * MiB)
    rerun = _run_as(NOBODY.pw_uid, NOBODY.pw_gid, {'paths': [str(other.data)], 'journal_dir': str(shm.mnt)})
    assert not rerun['failed'], short(rerun)
    names = sorted(os.listdir(f.parent))
    assert names in (['app.log'], ['app.log.gz']), names
    if names == ['app.log.gz']:
        assert gunzip_sha256(f'{f}.gz') == sha256_bytes(data)
        assert rerun['totals']['recovered'] == 1, short(rerun)
    else:
        assert sha256_bytes(f.read_bytes()) == sha256_bytes(data)
    assert not journal.exists() or os.listdir(journal) == []


# -- per-user journal directories ------------------------------------------------


def test_non_root_run_after_a_root_run(engine, fullfs):
    fs = fullfs('tmpfs', size=32 * MiB)
    mine = fs.write_log('root.log', 2 * MiB, seed=110)
    theirs = _user_file(fs, 'user.log', seed=111)
    fs.fill()
    shm = _shm(fullfs)
    root_run = engine.run(engine.Options(paths=[str(mine)], min_size=0, journal_dir=str(shm.mnt)))
    assert entry(root_run, mine)['action'] == 'compressed', short(root_run)
    assert (shm.mnt / _user_journal(0)).is_dir()

    user_run = _run_as(NOBODY.pw_uid, NOBODY.pw_gid,
                       {'paths': [str(theirs)], 'min_size': 0, 'journal_dir': str(shm.mnt)})
    assert entry(user_run, theirs)['action'] == 'compressed', short(user_run)
    assert gunzip_sha256(f'{theirs}.gz') == sha256_bytes(log_bytes(2 * MiB, seed=111))
    st = os.stat(shm.mnt / _user_journal(NOBODY.pw_uid))
    assert (st.st_uid, st.st_mode & 0o777) == (NOBODY.pw_uid, 0o700)
    # And root again after the user: each keeps to its own directory.
    again = engine.run(engine.Options(paths=[str(fs.data)], min_size=0, recurse=True, journal_dir=str(shm.mnt)))
    assert not again['failed'] and again['totals']['recovered'] == 0, short(again)


def test_planted_journal_directory_is_named_with_its_owner(engine, fullfs):
    fs = fullfs('tmpfs', size=32 * MiB)
    f = fs.write_log('app.log', 2 * MiB, seed=112)
    fs.fill()
    shm = _shm(fullfs)
    planted = shm.mnt / _user_journal(0)
    planted.mkdir(mode=0o700)
    os.chown(planted, NOBODY.pw_uid, NOBODY.pw_gid)
    before = tree_state(fs.data)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=str(shm.mnt)))
    e = entry(result, f)
    assert (e['action'], e['reason']) == ('skipped', 'journal_unsafe'), short(result)
    assert str(planted) in e['detail'] and 'nobody' in e['detail'], e['detail']
    assert tree_state(fs.data) == before
    assert os.listdir(planted) == [], 'root wrote into a directory another user owns'

    # Root still has a way: spill_dir.
    spill = fullfs('tmpfs', size=64 * MiB)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=str(shm.mnt),
                                       spill_dir=str(spill.mnt)))
    assert entry(result, f)['action'] == 'compressed', short(result)
    assert any(str(planted) in note and 'nobody' in note for note in result['journal']['notes']), result['journal']


# -- min_age for live names only ---------------------------------------------------

def test_min_age_applies_to_live_names_only(engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    live = fs.write_log('access.log', 2 * MiB, seed=113)
    rotated = fs.write_log('access.log.1', 2 * MiB, seed=114)
    fs.fill()
    result = engine.run(engine.Options(paths=[str(fs.data)], min_size=0, min_age=600,
                                       min_age_patterns=['*.log'], journal_dir=journal_dir))
    assert (entry(result, live)['action'], entry(result, live)['reason']) == ('skipped', 'too_young'), short(result)
    assert entry(result, rotated)['action'] == 'compressed', short(result)


def test_min_age_without_patterns_applies_to_every_file(engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    rotated = fs.write_log('access.log.1', 2 * MiB, seed=115)
    fs.fill()
    result = engine.run(engine.Options(paths=[str(fs.data)], min_size=0, min_age=600, journal_dir=journal_dir))
    assert entry(result, rotated)['reason'] == 'too_young', short(result)


# -- threads ---------------------------------------------------------------------------

@pytest.mark.parametrize('threads', [-1, 100000])
def test_threads_out_of_range_fail_clearly(fullfs, journal_dir, threads):
    from cmzrun import run_ansible
    fs = fullfs('tmpfs', size=8 * MiB)
    result = run_ansible({'path': [str(fs.data)], 'threads': threads, 'journal_dir': journal_dir})
    assert result['_status'] == 'FAILED!', short(result)
    assert 'threads' in result['msg'] and 'Traceback' not in result['msg'], result['msg']
    assert 'exception' not in result, short(result)


def test_threads_bounded_by_memory_limit(fullfs, journal_dir, tmp_path):
    """threads=1000 at memory_limit=40M: the blocks in flight fit in the budget."""
    from cmzrun import run_direct
    fs = fullfs('tmpfs', size=160 * MiB)
    f = fs.write_log('app.log', 64 * MiB, seed=116)
    base = {'path': [str(f)], 'min_size': 0, 'journal_dir': journal_dir, 'memory_limit': '40M', 'level': 1}
    one = run_direct(dict(base, threads=1), str(tmp_path), check=True)
    many = run_direct(dict(base, threads=1000), str(tmp_path), check=True)
    assert entry(many, f)['action'] == 'would_compress', short(many)
    assert 1 <= many['memory']['threads'] < 1000, many['memory']
    assert many['memory']['threads_requested'] == 1000
    grown = many['memory']['peak_rss'] - one['memory']['peak_rss']
    assert grown <= 40 * MiB, 'threads=1000 grew RSS by %d MiB at a 40 MiB limit' % (grown // MiB)


def test_a_journal_another_run_holds_on_some_filesystem_is_left_alone(engine, fullfs, journal_dir):
    """Every run looks for own-filesystem journals on every local filesystem; one that a
    living run holds (its lock) belongs to that run: this run neither fails nor touches it."""
    elsewhere = fullfs('tmpfs', size=16 * MiB)
    held = elsewhere.mnt / ('.' + ROOT_JOURNAL)
    held.mkdir(mode=0o700)
    (held / 'k.gz').write_bytes(b'a live run is writing this')
    code = ('import fcntl, os, sys, time\n'
            'fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n'
            'fcntl.flock(fd, fcntl.LOCK_EX)\n'
            'print("ready", flush=True)\n'
            'time.sleep(600)\n')
    holder = subprocess.Popen(['/usr/bin/python3', '-c', code, str(held)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b'ready'
        fs = fullfs('tmpfs', size=32 * MiB)
        f = fs.write_log('app.log', 2 * MiB, seed=117)
        fs.fill()
        result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=journal_dir))
    finally:
        holder.kill()
        holder.wait()
    assert entry(result, f)['action'] == 'compressed', short(result)
    assert any(str(held) in note and 'another run' in note for note in result['journal']['notes']), result['journal']
    assert os.listdir(held) == ['k.gz']
