# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""--check on a full filesystem: nothing changes, the would-be result is reported."""

from __future__ import annotations

import gzip
import os

from cmzrun import assert_contract_keys, entry, run_ansible, short
from fullfs import MiB, tree_state


def test_check_mode_changes_nothing_and_measures_exactly_when_asked(fullfs, journal_dir):
    fs = fullfs('ext4', size=64 * MiB)
    a = fs.write_log('a.log', 4 * MiB, seed=51, mtime_ns=1_600_000_000_000_000_007)
    b = fs.write_log('b/b.log', 2 * MiB, seed=52, mtime_ns=1_600_000_000_000_000_009)
    fs.fill()
    before = tree_state(fs.data)
    listing = sorted(os.listdir(fs.data))
    free = fs.free_bytes()

    result = run_ansible({'path': [str(a), str(b)], 'journal_dir': journal_dir, 'estimate': 'exact'}, check=True)
    assert not result.get('failed'), short(result)
    assert_contract_keys(result)
    assert result['changed'] is True, 'check mode should report the change it would make'
    for path, size in ((a, 4 * MiB), (b, 2 * MiB)):
        e = entry(result, path)
        assert e['action'] == 'would_compress', e
        assert e['reason'] is None, e
        # the size is measured (compressed into nothing), not estimated
        assert e['estimated'] is False, e
        assert isinstance(e['compressed_size'], int) and 0 < e['compressed_size'] < size, e
        with open(path, 'rb') as handle:
            real = len(gzip.compress(handle.read(), 9))
        assert abs(e['compressed_size'] - real) <= real * 0.01 + 64, (e['compressed_size'], real)
        assert e['original_size'] == size, e
        assert not os.path.lexists(f'{path}.gz')
    assert result['totals']['would_compress'] == 2
    assert result['totals']['compressed'] == 0

    assert tree_state(fs.data) == before
    assert sorted(os.listdir(fs.data)) == listing
    assert fs.free_bytes() == free
    jfiles = [n for walked in os.walk(journal_dir) for n in walked[2]]
    assert not jfiles, f'check mode wrote to the journal: {jfiles}'


def test_check_mode_estimates_big_files_from_samples_by_default(fullfs, journal_dir):
    fs = fullfs('ext4', size=64 * MiB)
    big = fs.write_log('big.log', 12 * MiB, seed=53)
    small = fs.write_log('small.log', 2 * MiB, seed=54)
    fs.fill()
    before = tree_state(fs.data)

    result = run_ansible({'path': [str(big), str(small)], 'journal_dir': journal_dir}, check=True)
    assert not result.get('failed'), short(result)
    for path, estimated in ((big, True), (small, False)):
        e = entry(result, path)
        assert e['action'] == 'would_compress' and e['estimated'] is estimated, e
        with open(path, 'rb') as handle:
            real = len(gzip.compress(handle.read(), 9))
        assert abs(e['compressed_size'] - real) <= real * 0.05, (e['compressed_size'], real)
        assert 'estimated from samples' in e['detail'] if estimated else 'real compressed size' in e['detail']
    assert tree_state(fs.data) == before
