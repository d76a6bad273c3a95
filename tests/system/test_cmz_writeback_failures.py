# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""When the write-back cannot finish (issue 8, "What to build" 2 and the
unclear messages): the result says plainly where the data is and what to do,
a reboot that empties the RAM journal does not leave later runs silent, a
read-only rerun names the copy, and blocks shared with a snapshot are never
freed first.  Faults are real: strace EIO injection on the system call, a
read-only remount, btrfs reflinks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time

import pytest

from cmzrun import entries, journal_names, JOURNAL_SUBDIR, module_args, run_direct, short
from faults import finish, run_injected, spawn_injected
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes, sha256_file

SUBDIR = JOURNAL_SUBDIR
MARKER = 'user.cmemgzip'
# The role's way to look at a directory: rotated names, .gz names excluded.
ROLE_LIKE = {'recurse': True, 'patterns': ['*.log', '*.log.[0-9]*', '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]'],
             'excludes': ['*.gz']}


def _marker(path):
    try:
        return os.getxattr(path, MARKER, follow_symlinks=False)
    except OSError:
        return None


def test_eio_on_directory_fsync_after_rename_says_where_the_file_is(fullfs, journal_dir, tmp_path):
    """fsync #4 of a run is the directory's, right after the rename (1: journal data,
    2: manifest, 3: journal directory)."""
    fs = fullfs('tmpfs', size=48 * MiB)
    data = log_bytes(8 * MiB, seed=71)
    path = fs.write_file('app.log', data)
    fs.fill()
    rc, result = run_injected(module_args(path, journal_dir), 'fsync:error=EIO:when=4', str(tmp_path))
    assert result is not None, rc
    found = entries(result, path=str(path))
    assert [(e['action'], e['reason']) for e in found] == [('failed', 'rewrite_incomplete')], short(result)
    detail = found[0]['detail']
    assert 'Input/output error' in detail and 'the file is now %s.gz' % path in detail, detail
    copy = [n for n in journal_names(journal_dir) if n.endswith('.gz')]
    assert len(copy) == 1 and os.path.join(journal_dir, SUBDIR, copy[0]) in detail, detail

    rerun = run_direct(module_args(path, journal_dir), str(tmp_path))
    assert [e['reason'] for e in entries(rerun, path=str(path), action='recovered')] == ['finished'], short(rerun)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)
    assert journal_names(journal_dir) == []


def _eio_mid_rewrite(fullfs, journal_dir, tmp_path):
    fs = fullfs('ext4')
    data = log_bytes(32 * MiB, seed=72)  # about 5 MiB at level 1: two 4 MiB pwrites
    path = fs.write_file('app.log', data)
    fs.fill()
    rc, result = run_injected(module_args(path, journal_dir), 'pwrite64:error=EIO:when=2', str(tmp_path))
    assert result is not None, rc
    return fs, path, data, result


def test_eio_mid_rewrite_says_the_original_is_gone(fullfs, journal_dir, tmp_path):
    fs, path, data, result = _eio_mid_rewrite(fullfs, journal_dir, tmp_path)
    found = entries(result, path=str(path))
    assert [(e['action'], e['reason']) for e in found] == [('failed', 'rewrite_incomplete')], short(result)
    detail = found[0]['detail']
    copy = os.path.join(journal_dir, SUBDIR, [n for n in journal_names(journal_dir) if n.endswith('.gz')][0])
    for words in ('the original is gone', '%s.gz holds an incomplete compressed copy' % path,
                  'the only complete copy is at %s in RAM: do not reboot' % copy, 'rerun'):
        assert words in detail, (words, detail)
    assert 'ATTENTION' in result['msg'] and 'do not reboot' in result['msg'], result['msg']
    assert _marker('%s.gz' % path) is not None, 'no marker on the half-written file'

    rerun = run_direct(module_args(path, journal_dir), str(tmp_path))
    assert [e['reason'] for e in entries(rerun, path=str(path), action='recovered')] == ['finished'], short(rerun)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)
    assert _marker('%s.gz' % path) is None, 'the marker outlived the finished file'


@pytest.mark.parametrize('looking_at', ['its directory', 'another directory of the filesystem'])
def test_reboot_after_eio_mid_rewrite_is_not_silent(looking_at, fullfs, journal_dir, tmp_path):
    """The RAM journal is gone after a reboot: the half-written NAME.gz carries our mark, its
    filesystem's mount directory points at it, and every later run that looks at that
    filesystem says so, role-like filters (which never match app.log.gz) included."""
    fs, path, data, result = _eio_mid_rewrite(fullfs, journal_dir, tmp_path)
    shutil.rmtree(os.path.join(journal_dir, SUBDIR))   # what a reboot does to /dev/shm
    broken = sha256_file('%s.gz' % path)
    where = fs.data if looking_at == 'its directory' else fs.filler_dir
    for attempt in range(2):
        later = run_direct(module_args(where, journal_dir, **ROLE_LIKE), str(tmp_path))
        lost = [e for e in later['files'] if e['reason'] == 'journal_lost']
        assert len(lost) == 1 and lost[0]['path'] == '%s.gz' % path, short(later)
        assert lost[0]['action'] == 'failed' and 'gzip -t' in lost[0]['detail'], lost[0]
        assert later.get('failed'), 'a lost rewrite must fail the run'
        assert sha256_file('%s.gz' % path) == broken, 'the broken file is left for a human'


def test_rerun_on_read_only_filesystem_names_the_copy(fullfs, journal_dir, tmp_path):
    fs = fullfs('ext4')
    data = log_bytes(32 * MiB, seed=73)
    path = fs.write_file('app.log', data)
    fs.fill()
    rc, result = run_injected(module_args(path, journal_dir), 'pwrite64:signal=SIGKILL:when=2', str(tmp_path))
    assert result is None
    subprocess.run(['mount', '-o', 'remount,ro', str(fs.mnt)], check=True)
    try:
        before = sha256_file('%s.gz' % path)
        rerun = run_direct(module_args(path, journal_dir), str(tmp_path))
        found = [e for e in rerun['files'] if e['reason'] == 'read_only']
        assert len(found) == 1 and found[0]['action'] == 'failed', short(rerun)
        copy = [n for n in journal_names(journal_dir) if n.endswith('.gz')][0]
        assert copy in found[0]['detail'] and '%s.gz' % path in found[0]['detail'], found[0]['detail']
        assert sha256_file('%s.gz' % path) == before
    finally:
        subprocess.run(['mount', '-o', 'remount,rw', str(fs.mnt)], check=True)
    again = run_direct(module_args(path, journal_dir), str(tmp_path))
    assert [e['reason'] for e in entries(again, path=str(path), action='recovered')] == ['finished'], short(again)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)


@pytest.mark.parametrize('sharing', ['reflink', 'snapshot'])
def test_btrfs_shared_extents_are_never_freed_first(sharing, fullfs, journal_dir, tmp_path):
    fs = fullfs('btrfs')
    data = log_bytes(8 * MiB, seed=74)
    if sharing == 'snapshot':
        subprocess.run(['btrfs', 'subvolume', 'create', str(fs.mnt / 'vol')], check=True, capture_output=True)
        path = fs.mnt / 'vol' / 'app.log'
        with open(path, 'wb') as handle:
            handle.write(data)
        os.sync()
        subprocess.run(['btrfs', 'subvolume', 'snapshot', str(fs.mnt / 'vol'), str(fs.mnt / 'snap')], check=True,
                       capture_output=True)
    else:
        path = fs.write_file('app.log', data)
        subprocess.run(['cp', '--reflink=always', str(path), str(fs.data / 'copy.log')], check=True)
    fs.fill()
    result = run_direct(module_args(path, journal_dir), str(tmp_path))
    found = entries(result, path=str(path))
    assert [(e['action'], e['reason']) for e in found] == [('skipped', 'shared_extents')], short(result)
    assert sha256_file(path) == sha256_bytes(data)
    assert journal_names(journal_dir) == []


# A rival writer: appends to its own file on the same filesystem and retries at once on
# ENOSPC, so that it takes every block the moment one is free.
RIVAL = textwrap.dedent('''
    import errno, os, sys
    path, ready, stop = sys.argv[1:4]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    block = os.urandom(65536)
    open(ready, 'w').close()
    while not os.path.exists(stop):
        for size in (65536, 4096):
            try:
                os.write(fd, block[:size])
                break
            except OSError as exc:
                if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
''')


def _start_rival(fs, tmp_path):
    ready, stop = tmp_path / 'rival-ready', tmp_path / 'rival-stop'
    rival = subprocess.Popen([sys.executable, '-c', RIVAL, str(fs.filler_dir / 'rival'), str(ready), str(stop)])
    while not ready.exists():
        assert rival.poll() is None, 'the rival writer died'
        time.sleep(0.01)
    return rival, stop


@pytest.mark.parametrize('spill', [False, True], ids=['ram-journal-only', 'disk-spill-dir'])
def test_rival_writer_takes_the_freed_blocks(spill, fullfs, journal_dir, tmp_path):
    """btrfs: truncate_first frees the file's blocks and reserves them again at once; strace
    holds that reservation back 2 s so that the rival writer surely wins.  Nothing is lost,
    the result says plainly where the only copy is, and with a spill_dir on disk that copy
    was moved there before the blocks were freed (it survives a reboot)."""
    fs = fullfs('btrfs')
    data = log_bytes(32 * MiB, seed=75)
    path = fs.write_file('app.log', data)
    args = module_args(path, journal_dir)
    copies = journal_dir
    if spill:
        disk = fullfs('ext4')
        copies = str(disk.mnt / 'spill')
        os.mkdir(copies, 0o700)
        args['spill_dir'] = copies
    fs.fill()
    rival, stop = _start_rival(fs, tmp_path)
    try:
        rc, result = finish(spawn_injected(args, 'fallocate:delay_enter=2000000:when=1', str(tmp_path)))
    finally:
        stop.touch()
        rival.wait(timeout=60)
    assert result is not None, rc
    found = entries(result, path=str(path))
    assert [(e['action'], e['reason']) for e in found] == [('failed', 'rewrite_incomplete')], short(result)
    detail = found[0]['detail']
    kept = [n for n in journal_names(copies) if n.endswith('.gz')]
    assert len(kept) == 1, (copies, journal_names(copies))
    copy = os.path.join(copies, SUBDIR, kept[0])
    assert gunzip_sha256(copy) == sha256_bytes(data), 'the only copy must hold every byte'
    for words in ('the original is gone', 'the only complete copy is at %s' % copy,
                  'bytes on %s and rerun' % fs.mnt):
        assert words in detail, (words, detail)
    assert ('in RAM: do not reboot' in detail) == (not spill), detail
    assert 'ATTENTION' in result['msg'] and copy in result['msg'], result['msg']
    if spill:
        assert [n for n in journal_names(journal_dir) if n.endswith('.gz')] == [], 'the RAM copy should have moved'

    os.unlink(fs.filler_dir / 'rival')
    fs.syncfs()
    rerun = run_direct(dict(args, path=[str(fs.mnt / 'nothing')]), str(tmp_path))
    assert [e['reason'] for e in entries(rerun, path=str(path), action='recovered')] == ['finished'], short(rerun)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)
    assert journal_names(copies) == []


def test_sparse_file_with_holes_past_the_copy_is_rewritten_in_place(fullfs, journal_dir, tmp_path):
    """truncate_first (a window with the only copy in the journal) only where an overwrite
    would allocate: here every hole lies beyond the compressed size."""
    fs = fullfs('ext4')
    head, tail = log_bytes(16 * MiB, seed=76), log_bytes(4 * MiB, seed=77)
    path = fs.data / 'core.1234'
    with open(path, 'wb') as handle:
        handle.write(head)
        handle.seek(24 * MiB)
        handle.write(tail)
    data = head + b'\0' * (8 * MiB) + tail
    assert os.stat(path).st_blocks * 512 < len(data), 'the file should be sparse'
    fs.fill()
    result = run_direct(module_args(path, journal_dir), str(tmp_path))
    found = entries(result, path=str(path))
    assert [(e['action'], e['strategy']) for e in found] == [('compressed', 'inplace')], short(result)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)
