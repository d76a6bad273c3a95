# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The journal directory is too small for the verified copy."""

from __future__ import annotations

import os

from cmzrun import assert_contract_keys, entry, run_ansible, short
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes, tree_state

SIZE = 20 * MiB      # compresses to about 4 MiB: far more than the 1 MiB journal


def _setup(fullfs):
    fs = fullfs('tmpfs', size=32 * MiB)
    f = fs.write_log('big.log', SIZE, seed=61)
    fs.fill()
    jfs = fullfs('tmpfs', size=1 * MiB)
    journal = jfs.mnt / 'journal'
    journal.mkdir(mode=0o700)
    return fs, f, str(journal)


def test_journal_too_small(fullfs):
    fs, f, journal = _setup(fullfs)
    before = tree_state(fs.data)
    result = run_ansible({'path': [str(f)], 'journal_dir': journal})
    assert not result.get('failed'), short(result)
    e = entry(result, f)
    assert (e['action'], e['reason']) == ('skipped', 'no_journal_space'), short(result)
    assert result['changed'] is False
    assert tree_state(fs.data) == before
    assert not os.path.lexists(f'{f}.gz')


def test_journal_spills(fullfs):
    fs, f, journal = _setup(fullfs)
    spill_fs = fullfs('ext4', size=64 * MiB)
    spill = spill_fs.mnt / 'spill'
    spill.mkdir(mode=0o700)
    result = run_ansible({'path': [str(f)], 'journal_dir': journal, 'spill_dir': str(spill)})
    assert not result.get('failed'), short(result)
    assert_contract_keys(result)
    e = entry(result, f)
    assert e['action'] == 'compressed', short(result)
    assert gunzip_sha256(f'{f}.gz') == sha256_bytes(log_bytes(SIZE, seed=61))
    assert not os.path.lexists(f)
    # The result says where the journal was.
    assert result['journal']['dir'] in (journal, os.path.join(journal, 'sre.cmemgzip')), result['journal']
    assert result['journal']['spill_dir'] in (str(spill), os.path.join(str(spill), 'sre.cmemgzip')), result['journal']
    text = ' '.join(str(v) for v in (e['detail'], result['msg'], result['journal']))
    assert str(spill) in text
    # ... and cleaned both up.
    left = [n for d in (journal, str(spill)) for walked in os.walk(d) for n in walked[2]]
    assert not left, left
