# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The window strategy in-process: a file compressed into itself on full
filesystems, with a journal too small for the compressed copy.

The journal is a small tmpfs of its own (what a container's 64 MiB /dev/shm
leaves); the big-file tests in a real mount namespace with /dev/shm itself
replaced are in test_cmz_window_container.py.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from cmzrun import assert_contract_keys, entry, short
from fullfs import MiB, gunzip_sha256, gzip_members, log_bytes, random_bytes, sha256_bytes, tree_state

MTIME_NS = 1_500_000_000_111_222_333


def _small_journal(fullfs, size=16 * MiB):
    jfs = fullfs('tmpfs', size=size)
    path = jfs.mnt / 'journal'
    path.mkdir(mode=0o700)
    return str(path)


def _write(fs, name, data):
    f = fs.write_file(name, data, mode=0o640, mtime_ns=MTIME_NS)
    os.chown(f, 1234, 2345)
    os.setxattr(f, 'user.origin', b'window-test')
    return f, os.stat(f)


def _assert_compressed(f, st, data, e):
    gz = f'{f}.gz'
    assert e['action'] == 'compressed', e
    assert e['strategy'] == 'window', e
    assert not os.path.lexists(f)
    assert gunzip_sha256(gz) == sha256_bytes(data), 'bytes lost'
    assert subprocess.run(['gzip', '-t', gz], check=False).returncode == 0
    assert gzip_members(gz) == 1
    new = os.stat(gz)
    assert (new.st_ino, new.st_uid, new.st_gid, new.st_mode, new.st_mtime_ns, new.st_nlink) == (
        st.st_ino, st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns, 1)
    assert os.getxattr(gz, 'user.origin') == b'window-test'
    assert e['compressed_size'] == new.st_size


@pytest.mark.parametrize('kind', ['tmpfs', 'ext4', 'xfs'])
def test_bigger_than_the_journal(engine, fullfs, kind):
    """Auto picks the window when the journal cannot hold the copy; the space comes back."""
    size = {'tmpfs': 96 * MiB, 'ext4': 96 * MiB, 'xfs': 200 * MiB}[kind]
    fs = fullfs(kind, size=size + (32 if kind != 'xfs' else 100) * MiB)
    data = log_bytes(size, seed=91)
    f, st = _write(fs, 'app.log.1', data)
    fs.fill()
    free_before = fs.free_bytes()
    journal = _small_journal(fullfs)

    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=journal))
    assert_contract_keys(result)
    e = entry(result, f)
    _assert_compressed(f, st, data, e)
    freed = fs.free_bytes() - free_before
    assert e['bytes_saved'] > size // 2
    # tmpfs counts pages exactly; ext4 and xfs also free metadata blocks (extent tree) of their own.
    assert freed == e['bytes_saved'] if kind == 'tmpfs' else abs(freed - e['bytes_saved']) <= MiB, (freed, e)
    assert os.listdir(os.path.join(journal, 'sre.cmemgzip')) == []
    assert 0 < result['memory']['peak_journal'] < 16 * MiB, result['memory']


def test_copy_strategy_still_skips(engine, fullfs):
    """strategy=copy keeps today's behaviour: the journal is too small, nothing changes."""
    fs = fullfs('tmpfs', size=48 * MiB)
    f, _st = _write(fs, 'app.log.1', log_bytes(40 * MiB, seed=92))
    fs.fill()
    before = tree_state(fs.data)
    journal = _small_journal(fullfs, size=12 * MiB)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=journal, strategy='copy'))
    e = entry(result, f)
    assert (e['action'], e['reason']) == ('skipped', 'no_journal_space'), short(result)
    assert tree_state(fs.data) == before


def test_incompressible_middle(engine, fullfs):
    """Random bytes between log text: the gap absorbs the stored blocks; nothing is lost."""
    fs = fullfs('ext4', size=96 * MiB)
    data = log_bytes(24 * MiB, seed=93) + random_bytes(20 * MiB, seed=94) + log_bytes(16 * MiB, seed=95)
    f, st = _write(fs, 'mixed.log', data)
    fs.fill()
    journal = _small_journal(fullfs)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=journal, strategy='window'))
    e = entry(result, f)
    _assert_compressed(f, st, data, e)


def test_incompressible_start_is_left_alone(engine, fullfs):
    """The output must trail the input before the first write: a file that starts with
    more random bytes than the window may hold is skipped untouched."""
    fs = fullfs('tmpfs', size=64 * MiB)
    data = random_bytes(24 * MiB, seed=96) + log_bytes(16 * MiB, seed=97)
    f, _st = _write(fs, 'random-start.bin', data)
    fs.fill()
    before = tree_state(fs.data)
    journal = _small_journal(fullfs, size=24 * MiB)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=journal, strategy='window'))
    e = entry(result, f)
    assert e['action'] == 'skipped' and e['reason'] in ('memory_budget', 'not_smaller'), short(result)
    assert tree_state(fs.data) == before
    assert os.listdir(os.path.join(journal, 'sre.cmemgzip')) == []


def _assert_window_refused(engine, fullfs, fs, f, why):
    """On a filled ``fs``, strategy=window skips ``f`` as window_unsupported (``why`` in the detail), untouched."""
    fs.fill()
    before = tree_state(fs.data)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=_small_journal(fullfs),
                                       strategy='window'))
    e = entry(result, f)
    assert (e['action'], e['reason']) == ('skipped', 'window_unsupported'), short(result)
    assert why in e['detail']
    assert tree_state(fs.data) == before


def test_window_refused_on_btrfs(engine, fullfs):
    fs = fullfs('btrfs')
    f, _st = _write(fs, 'app.log', log_bytes(8 * MiB, seed=98))
    _assert_window_refused(engine, fullfs, fs, f, 'copy-on-write')


def test_window_refused_for_a_sparse_file(engine, fullfs):
    fs = fullfs('ext4', size=64 * MiB)
    f, _st = _write(fs, 'sparse.log', log_bytes(4 * MiB, seed=99))
    with open(f, 'r+b') as handle:
        handle.seek(12 * MiB)
        handle.write(log_bytes(MiB, seed=100))
    os.utime(f, ns=(MTIME_NS, MTIME_NS))
    _assert_window_refused(engine, fullfs, fs, f, 'sparse')


def test_check_mode_reports_the_window(engine, fullfs):
    fs = fullfs('tmpfs', size=48 * MiB)
    f, _st = _write(fs, 'app.log.1', log_bytes(40 * MiB, seed=101))
    fs.fill()
    before = tree_state(fs.data)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=_small_journal(fullfs),
                                       check_mode=True))
    e = entry(result, f)
    assert (e['action'], e['strategy']) == ('would_compress', 'window'), short(result)
    assert tree_state(fs.data) == before


def test_window_refused_for_shared_blocks(engine, fullfs):
    """xfs reflink: a file whose blocks another file shares would need new blocks when overwritten
    (the run skips it before any strategy is chosen)."""
    fs = fullfs('xfs')
    f, _st = _write(fs, 'app.log', log_bytes(16 * MiB, seed=102))
    copy = fs.data / 'copy.log'
    made = subprocess.run(['cp', '--reflink=always', str(f), str(copy)], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        pytest.skip('no reflink on this xfs: %s' % made.stderr.strip())
    fs.fill()
    before = tree_state(fs.data)
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=_small_journal(fullfs),
                                       strategy='window'))
    e = entry(result, f)
    assert (e['action'], e['reason']) == ('skipped', 'shared_extents'), short(result)
    assert tree_state(fs.data) == before


def test_auto_keeps_the_copy_where_checkpoints_do_not_fit(engine, fullfs):
    """A journal too small for the window's checkpoints but big enough for this copy: the copy is used."""
    fs = fullfs('tmpfs', size=24 * MiB)
    data = log_bytes(12 * MiB, seed=103)
    f, st = _write(fs, 'app.log.1', data)
    fs.fill()
    journal = _small_journal(fullfs, size=12 * MiB)   # 4 MiB above the 8 MiB headroom
    result = engine.run(engine.Options(paths=[str(f)], min_size=0, journal_dir=journal))
    e = entry(result, f)
    assert (e['action'], e['strategy']) == ('compressed', 'inplace'), short(result)
    assert gunzip_sha256(f'{f}.gz') == sha256_bytes(data)
