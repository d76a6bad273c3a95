# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Races during the run (issue 8, "What to build" 4): before and after each
destructive step NAME (then NAME.gz) must still be our inode with one link;
a step someone raced is undone, and no name ever holds the wrong kind of
data.

The module is held at an exact system call by strace
(``inject=SYSCALL:delay_enter=US``); the test waits until the module's main
thread sits in that call (/proc/PID/syscall), then renames or links the file
the way logrotate or an on-call would.  No timing decides the outcome.
"""

from __future__ import annotations

import os

import pytest

from cmzrun import entries, journal_names, JOURNAL_SUBDIR, module_args, run_direct, short
from faults import finish, spawn_injected, tracee, wait_in_syscall
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes, sha256_file

SUBDIR = JOURNAL_SUBDIR
HOLD = 'delay_enter=8000000:when=1'   # 8 s: ample for the test's one rename or link


def _is_gzip(path):
    with open(path, 'rb') as handle:
        return handle.read(2) == b'\x1f\x8b'


def _assert_names_match_content(directory, result):
    """No plain name holds gzip data, no .gz name holds plain text."""
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.path.getsize(path):
            assert _is_gzip(path) == name.endswith('.gz'), '%s holds the wrong kind of data:\n%s' % (
                path, short(result))


def _held(fs_kind, fullfs, journal_dir, tmp_path, syscall, size=6 * MiB):
    fs = fullfs(fs_kind)
    data = log_bytes(size, seed=61)
    path = fs.write_file('app.log', data, mode=0o640)
    fs.fill()
    process = spawn_injected(module_args(path, journal_dir), '%s:%s' % (syscall, HOLD), str(tmp_path))
    pid = tracee(process)
    try:
        wait_in_syscall(pid, syscall)
    except AssertionError as exc:
        kids = open('/proc/%d/task/%d/children' % (process.pid, process.pid)).read()
        rc, result = finish(process)
        raise AssertionError('%s (rc %s, children now %s): %s' % (exc, rc, kids, short(result) if result else None))
    return fs, path, data, process


def test_logrotate_renames_before_our_rename(fullfs, journal_dir, tmp_path):
    """logrotate moves NAME to NAME.1 and creates a new NAME just before our rename: the
    rename moved the new file; it is put back and the file is skipped as renamed."""
    fs, path, data, process = _held('tmpfs', fullfs, journal_dir, tmp_path, 'renameat2')
    os.unlink(fs.filler_dir / 'filler0000')
    os.rename(path, '%s.1' % path)
    fresh = b'the new log after rotation\n' * 100
    with open(path, 'wb') as handle:
        handle.write(fresh)
    rc, result = finish(process)
    assert result is not None, rc
    found = entries(result, path=str(path))
    assert [(e['action'], e['reason']) for e in found] == [('skipped', 'renamed')], short(result)
    assert 'renamed' in found[0]['detail'] and 'back' in found[0]['detail'], found[0]['detail']
    assert sha256_file('%s.1' % path) == sha256_bytes(data)
    assert sha256_file(path) == sha256_bytes(fresh)
    assert not os.path.exists('%s.gz' % path)
    _assert_names_match_content(fs.data, result)
    assert journal_names(journal_dir) == []


@pytest.mark.parametrize('kind', ['tmpfs', 'ext4'])
def test_hard_link_made_during_the_rewrite(kind, fullfs, journal_dir, tmp_path):
    """A hard link appears while the inode is being overwritten: the original's bytes go
    back, the rename is undone, both names hold the original."""
    fs, path, data, process = _held(kind, fullfs, journal_dir, tmp_path, 'pwrite64')
    other = fs.data / 'other-name'
    os.link('%s.gz' % path, other)
    rc, result = finish(process)
    assert result is not None, rc
    found = entries(result, path=str(path))
    assert [(e['action'], e['reason']) for e in found] == [('skipped', 'hardlinked')], short(result)
    assert sha256_file(path) == sha256_bytes(data), 'the original was not put back'
    assert os.stat(other).st_ino == os.stat(path).st_ino
    assert not os.path.exists('%s.gz' % path)
    _assert_names_match_content(fs.data, result)
    assert journal_names(journal_dir) == []


@pytest.mark.parametrize('kind', ['ext4', 'btrfs'])
def test_renamed_during_the_rewrite(kind, fullfs, journal_dir, tmp_path):
    """The on-call moves NAME.gz to a plain name while it is rewritten.  In place (ext4) the
    overwrite is undone; after a truncate (btrfs) the compressed file is relabelled .gz."""
    fs, path, data, process = _held(kind, fullfs, journal_dir, tmp_path, 'pwrite64')
    moved = fs.data / 'app.log.old'
    os.rename('%s.gz' % path, moved)
    rc, result = finish(process)
    assert result is not None, rc
    found = entries(result, path=str(path))
    _assert_names_match_content(fs.data, result)
    if kind == 'ext4':
        assert [(e['action'], e['reason']) for e in found] == [('skipped', 'renamed')], short(result)
        assert sha256_file(moved) == sha256_bytes(data)
    else:
        assert [e['action'] for e in found] == ['compressed'], short(result)
        assert 'app.log.old.gz' in found[0]['detail']
        assert gunzip_sha256('%s.gz' % moved) == sha256_bytes(data)
    assert not os.path.exists(path) and not os.path.exists('%s.gz' % path)
    assert journal_names(journal_dir) == []
    again = run_direct(module_args(fs.data, journal_dir), str(tmp_path))
    assert not again.get('failed'), short(again)
