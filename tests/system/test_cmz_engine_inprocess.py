# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The engine called in-process (``engine.run(engine.Options(...))``) on a full
tmpfs: the fast path for the same guarantees as the Ansible tests."""

from __future__ import annotations

import os
import subprocess

from cmzrun import assert_contract_keys, entry, short
from fullfs import MiB, gunzip_sha256, gzip_members, log_bytes, sha256_bytes, tree_state


def test_engine_run_on_full_tmpfs(engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    data = log_bytes(3 * MiB, seed=81)
    f = fs.write_file('svc.log', data, mode=0o600, mtime_ns=1_500_000_000_111_222_333)
    os.chown(f, 1234, 2345)
    st = os.stat(f)
    fs.fill()
    free_before = fs.free_bytes()

    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=journal_dir))
    assert_contract_keys(result)
    assert result['changed'] is True
    e = entry(result, f)
    assert e['action'] == 'compressed', short(result)
    gz = f'{f}.gz'
    assert e['dest'] == gz
    assert not os.path.lexists(f)
    assert gunzip_sha256(gz) == sha256_bytes(data)
    assert subprocess.run(['gzip', '-t', gz], check=False).returncode == 0
    assert gzip_members(gz) == 1
    new = os.stat(gz)
    assert (new.st_ino, new.st_uid, new.st_gid, new.st_mode, new.st_mtime_ns) == (
        st.st_ino, st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns)
    assert fs.free_bytes() - free_before == e['bytes_saved'] == result['totals']['bytes_saved']

    before = tree_state(fs.data)
    again = engine.run(engine.Options(paths=[str(fs.data)], recurse=True, min_size=0,
                                      journal_dir=journal_dir))
    assert again['changed'] is False, short(again)
    assert entry(again, gz)['reason'] == 'already_compressed'
    assert tree_state(fs.data) == before


def test_check_mode_stops_where_the_real_run_would(engine, fullfs, journal_dir):
    """A survey with target_free counts what it would free, like the real run frees it."""
    fs = fullfs('tmpfs', size=32 * MiB)
    big = fs.write_file('big.log', log_bytes(6 * MiB, seed=83))
    small = fs.write_file('small.log', log_bytes(3 * MiB, seed=84))
    fs.fill()
    options = dict(paths=[str(big), str(small)], min_size=0, journal_dir=journal_dir,
                   target_free_bytes=2 * MiB)
    survey = engine.run(engine.Options(check_mode=True, **options))
    assert [entry(survey, p)['action'] for p in (big, small)] == ['would_compress', 'skipped'], short(survey)
    assert entry(survey, small)['reason'] == 'target_free_reached'
    exact = engine.run(engine.Options(check_mode=True, estimate='exact', **options))
    real = engine.run(engine.Options(**options))
    assert [entry(real, p)['action'] for p in (big, small)] == ['compressed', 'skipped'], short(real)
    # the survey's size is estimated from samples (estimate='sample', the default): close, not equal
    saved, guessed = entry(real, big)['bytes_saved'], entry(survey, big)['bytes_saved']
    assert entry(survey, big)['estimated'] is True and abs(saved - guessed) <= 0.02 * saved
    assert entry(exact, big)['estimated'] is False
    assert entry(real, big)['bytes_saved'] == entry(exact, big)['bytes_saved']


def test_read_only_filesystem_loses_nothing(engine, fullfs, journal_dir):
    """cmemgzip 0.4.4 lost the whole file when its write after the unlink failed on a
    filesystem remounted read-only.  Here nothing is touched, the journal is left clean,
    and the run after the remount finishes the job."""
    fs = fullfs('tmpfs', size=32 * MiB)
    data = log_bytes(3 * MiB, seed=85)
    path = fs.write_file('svc.log', data)
    fs.fill()
    subprocess.run(['mount', '-o', 'remount,ro', str(fs.mnt)], check=True)
    try:
        result = engine.run(engine.Options(paths=[str(path)], min_size=0, journal_dir=journal_dir))
    finally:
        subprocess.run(['mount', '-o', 'remount,rw', str(fs.mnt)], check=True)
    assert result['failed'] is True and result['changed'] is False, short(result)
    assert entry(result, path)['action'] == 'failed'
    assert sha256_bytes(path.read_bytes()) == sha256_bytes(data)
    assert not os.path.lexists('%s.gz' % path)
    assert os.listdir(os.path.join(journal_dir, 'sre.cmemgzip')) == []

    again = engine.run(engine.Options(paths=[str(path)], min_size=0, journal_dir=journal_dir))
    assert entry(again, path)['action'] == 'compressed', short(again)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)
