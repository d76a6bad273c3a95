# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every skip reason of codes.py, each on a full tmpfs, each proving the
skipped file was not touched (content, inode, mtime, no NAME.gz).

Most reasons share one Ansible run (module-scoped fixture ``skip_run``); the
ones that need their own options run separately."""

from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest

from cmzrun import assert_contract_keys, entries, entry, run_ansible, short
from fullfs import (IN_ACCESS, IN_MODIFY, IN_OPEN, Inotify, KiB, MiB, file_state, gunzip_sha256,
                    log_bytes, random_bytes, sha256_bytes, tree_state)

MAGICS = {
    'gzip': b'\x1f\x8b\x08\x00',
    'xz': b'\xfd7zXZ\x00',
    'zstd': b'\x28\xb5\x2f\xfd',
    'bzip2': b'BZh91AY&SY',
    'zip': b'PK\x03\x04',
    'lz4': b'\x04\x22\x4d\x18',
}

# case -> (paths given to the module, expected reason); every path listed
# here must be untouched and must not get a NAME.gz.
CASES = {
    'fifo': (['pipe.log'], 'not_regular'),
    'device_node': (['dev.log'], 'not_regular'),
    'symlink': (['link.log'], 'symlink'),
    'hardlink': (['hard1.log', 'hard2.log'], 'hardlinked'),
    **{f'magic_{k}': ([f'{k}-data.log'], 'already_compressed') for k in MAGICS},
    'incompressible': (['random.log'], 'not_smaller'),
    'open_read': (['open-read.log'], 'open'),
    'open_append': (['open-append.log'], 'open'),
    'dest_exists': (['dest.log'], 'dest_exists'),
    'too_small': (['small.log'], 'too_small'),
    'excluded': (['x.skipme'], 'excluded'),
    'not_found': (['missing.log'], 'not_found'),
}
# Files that exist beside the given paths and must stay untouched too.
ALSO_UNTOUCHED = {'symlink': ['target.log'], 'dest_exists': ['dest.log.gz']}


@pytest.fixture(scope='module')
def skip_run(fullfs_module):
    fs = fullfs_module('tmpfs', size=64 * MiB)
    jfs = fullfs_module('tmpfs', size=256 * MiB)
    journal = jfs.mnt / 'journal'
    journal.mkdir(mode=0o700)
    d = fs.data
    size = 3 * MiB // 2

    os.mkfifo(d / 'pipe.log')
    os.mknod(d / 'dev.log', 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    fs.write_log('target.log', 2 * MiB, seed=21)
    os.symlink('target.log', d / 'link.log')
    fs.write_log('hard1.log', 2 * MiB, seed=22)
    os.link(d / 'hard1.log', d / 'hard2.log')
    for i, (k, magic) in enumerate(MAGICS.items()):
        fs.write_file(f'{k}-data.log', magic + random_bytes(size - len(magic), seed=100 + i))
    fs.write_file('random.log', b'r' + random_bytes(size - 1, seed=30))
    fs.write_log('open-read.log', size, seed=31)
    fs.write_log('open-append.log', size, seed=32)
    fs.write_log('dest.log', 2 * MiB, seed=33)
    fs.write_file('dest.log.gz', b'not really gzip, but it is there\n')
    fs.write_log('small.log', 100 * KiB, seed=34)
    fs.write_log('x.skipme', 2 * MiB, seed=35)
    control = fs.write_log('control.log', 2 * MiB, seed=36)

    holders = []
    with open(d / 'open-read.log', 'rb') as rf:
        holders.append(subprocess.Popen(['sleep', '600'], stdin=rf))
    with open(d / 'open-append.log', 'ab') as af:
        holders.append(subprocess.Popen(['sleep', '600'], stdout=af, stdin=subprocess.DEVNULL))
    watches = {}
    try:
        fs.fill()
        state_before = tree_state(d)
        # Prove that the FIFO and the device node are never opened (a
        # blocking open of the FIFO would hang; any open is a mistake).
        for name in ('pipe.log', 'dev.log'):
            watches[name] = Inotify(str(d / name), IN_OPEN | IN_ACCESS | IN_MODIFY)
        paths = [str(d / p) for ps, _reason in CASES.values() for p in ps] + [str(control)]
        t0 = time.monotonic()
        result = run_ansible({'path': paths, 'excludes': ['*.skipme'], 'journal_dir': str(journal)},
                             timeout=120)
        seconds = time.monotonic() - t0
        opened = {name: len(w.names(0.01)) for name, w in watches.items()}
        state_after = tree_state(d)
        yield {'fs': fs, 'result': result, 'before': state_before, 'after': state_after,
               'holders': {'open_read': holders[0], 'open_append': holders[1]},
               'control': control, 'control_data': log_bytes(2 * MiB, seed=36), 'seconds': seconds,
               'opened': opened}
    finally:
        for w in watches.values():
            w.close()
        for p in holders:
            p.kill()
            p.wait()


def test_skip_run_overall(skip_run):
    result = skip_run['result']
    assert_contract_keys(result)
    assert not result.get('failed'), short(result)
    # Only the control file is compressed: the run really works.
    compressed = entries(result, action='compressed')
    assert [e['path'] for e in compressed] == [str(skip_run['control'])], short(result)
    assert result['changed'] is True
    assert gunzip_sha256(f"{skip_run['control']}.gz") == sha256_bytes(skip_run['control_data'])
    # A FIFO must never be opened: a blocked open would have hung the run.
    assert skip_run['seconds'] < 100


@pytest.mark.parametrize('case', list(CASES))
def test_skip_reason(case, skip_run):
    fs, result = skip_run['fs'], skip_run['result']
    names, reason = CASES[case]
    for name in names:
        path = fs.data / name
        e = entry(result, path)
        assert e['action'] == 'skipped', e
        assert e['reason'] == reason, e
        assert isinstance(e['detail'], str) and e['detail'], e
        if case != 'dest_exists':
            assert not os.path.lexists(f'{path}.gz'), f'{path}.gz was created'
    for name in names + ALSO_UNTOUCHED.get(case, []):
        assert skip_run['after'].get(name) == skip_run['before'].get(name), f'{name} was touched'
    if case == 'not_found':
        assert 'missing.log' not in skip_run['after']
    for name in names:
        if name in skip_run['opened']:
            assert skip_run['opened'][name] == 0, f'{name} was opened by the module'


@pytest.mark.parametrize('case', ['open_read', 'open_append'])
def test_skip_open_lists_pids(case, skip_run):
    fs, result = skip_run['fs'], skip_run['result']
    name = CASES[case][0][0]
    e = entry(result, fs.data / name)
    holder = skip_run['holders'][case]
    assert holder.poll() is None, 'the holder process died'
    pids = e.get('pids') or []
    assert {'pid': holder.pid, 'comm': 'sleep'} in [{'pid': p.get('pid'), 'comm': p.get('comm')} for p in pids], e


# --------------------------------------------------------------------------
# Reasons that need options of their own
# --------------------------------------------------------------------------

def _full_tmpfs_with(fullfs, files, size=48 * MiB):
    fs = fullfs('tmpfs', size=size)
    paths = {}
    for name, (nbytes, seed) in files.items():
        paths[name] = fs.write_log(name, nbytes, seed=seed)
    fs.fill()
    return fs, paths


def test_skip_memory_budget(fullfs, journal_dir):
    fs, p = _full_tmpfs_with(fullfs, {'big.log': (4 * MiB, 41)})
    before = tree_state(fs.data)
    result = run_ansible({'path': [str(p['big.log'])], 'memory_limit': '1K', 'journal_dir': journal_dir})
    e = entry(result, p['big.log'])
    assert (e['action'], e['reason']) == ('skipped', 'memory_budget'), short(result)
    assert result['changed'] is False
    assert tree_state(fs.data) == before


def test_skip_too_young(fullfs, journal_dir):
    fs, p = _full_tmpfs_with(fullfs, {'fresh.log': (2 * MiB, 42), 'old.log': (2 * MiB, 43)})
    two_hours_ago = time.time_ns() - 2 * 3600 * 10**9
    os.utime(p['old.log'], ns=(two_hours_ago, two_hours_ago))
    fresh_before = file_state(p['fresh.log'])
    result = run_ansible({'path': [str(p['fresh.log']), str(p['old.log'])], 'min_age': '1h',
                          'journal_dir': journal_dir})
    e = entry(result, p['fresh.log'])
    assert (e['action'], e['reason']) == ('skipped', 'too_young'), short(result)
    assert file_state(p['fresh.log']) == fresh_before
    assert not os.path.lexists(f"{p['fresh.log']}.gz")
    # The control: an old enough file is compressed in the same run.
    assert entry(result, p['old.log'])['action'] == 'compressed', short(result)
    assert gunzip_sha256(f"{p['old.log']}.gz") == sha256_bytes(log_bytes(2 * MiB, seed=43))


@pytest.mark.parametrize('largest_first', [True, False])
def test_skip_target_free_reached(largest_first, fullfs, journal_dir):
    # mid.log is given first; largest_first must still start with big.log.
    fs, p = _full_tmpfs_with(fullfs, {'mid.log': (4 * MiB, 44), 'big.log': (8 * MiB, 45)})
    first, second = ('big.log', 'mid.log') if largest_first else ('mid.log', 'big.log')
    second_before = file_state(p[second])
    result = run_ansible({'path': [str(p['mid.log']), str(p['big.log'])], 'target_free': '2M',
                          'largest_first': largest_first, 'journal_dir': journal_dir})
    e1, e2 = entry(result, p[first]), entry(result, p[second])
    assert e1['action'] == 'compressed', short(result)
    assert (e2['action'], e2['reason']) == ('skipped', 'target_free_reached'), short(result)
    assert file_state(p[second]) == second_before
    assert not os.path.lexists(f'{p[second]}.gz')
    seed = 45 if first == 'big.log' else 44
    size = 8 * MiB if first == 'big.log' else 4 * MiB
    assert gunzip_sha256(f'{p[first]}.gz') == sha256_bytes(log_bytes(size, seed=seed))


def test_symlink_followed(fullfs, journal_dir):
    """follow: true compresses the symlink's target (the module option ``follow``).

    What becomes of the link itself (left dangling, or pointed at the .gz) is
    not specified, so only the data and the target are asserted."""
    fs, p = _full_tmpfs_with(fullfs, {'target.log': (2 * MiB, 46)})
    link = fs.data / 'link.log'
    os.symlink('target.log', link)
    result = run_ansible({'path': [str(link)], 'follow': True, 'journal_dir': journal_dir})
    found = entries(result, str(link)) + entries(result, str(p['target.log']))
    assert len(found) == 1, short(result)
    assert found[0]['action'] == 'compressed', short(result)
    assert not os.path.exists(p['target.log'])
    assert gunzip_sha256(f"{p['target.log']}.gz") == sha256_bytes(log_bytes(2 * MiB, seed=46))
