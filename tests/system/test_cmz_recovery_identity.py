# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Recovery proves identity before it writes (issue 8, "What to build" 1).

The world moves between an interrupted run and the next: an application
appends to the log, the on-call deletes a broken .gz and a new file reuses
the inode number, a reboot renumbers loop devices, a filesystem is no
longer mounted.  The module is killed at exact system calls with strace
(``inject=SYSCALL:signal=SIGKILL``) or has them fail (``error=ENOSPC``);
nothing else is simulated.  Every test compares sha256 sums: the next run,
on any path, must never lose a byte of anybody's data.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cmzrun import entries, journal_names, JOURNAL_SUBDIR, module_args, run_direct, short
from faults import renumber, run_injected
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes, sha256_file

SUBDIR = JOURNAL_SUBDIR
APPENDED = b''.join(b'2024-01-01T00:00:%02d appended line %d after the kill\n' % (i % 60, i) for i in range(2000))


def _kill_at_rename(fs_kind, fullfs, journal_dir, tmp_path, size=6 * MiB, **mkfs):
    """A file on a full filesystem, and a run killed at its first destructive step."""
    fs = fullfs(fs_kind, **mkfs)
    data = log_bytes(size, seed=81)
    path = fs.write_file('app.log', data, mode=0o640)
    fs.fill()
    rc, result = run_injected(module_args(path, journal_dir), 'renameat2:signal=SIGKILL:when=1', str(tmp_path))
    assert result is None, 'the module should have been killed at its rename: %r' % (result,)
    assert any(n.endswith('.json') for n in journal_names(journal_dir)), journal_names(journal_dir)
    assert sha256_file(path) == sha256_bytes(data), 'the kill came before the first destructive step'
    return fs, path, data


def _other_path_run(fs, journal_dir, tmp_path):
    """A rerun on an unrelated path: recovery of every journal entry runs all the same."""
    other = fs.mnt / 'nothing-here'
    return run_direct(module_args(other, journal_dir), str(tmp_path))


@pytest.mark.parametrize('kind', ['tmpfs', 'ext4'])
def test_append_after_kill_before_first_destructive_step(kind, fullfs, journal_dir, tmp_path):
    fs, path, data = _kill_at_rename(kind, fullfs, journal_dir, tmp_path)
    # The application appends (a few bytes fit in the last partial block, or
    # the space a test frees for it).
    os.unlink(fs.filler_dir / 'filler0000')
    with open(path, 'ab') as handle:
        handle.write(APPENDED)
    expected = sha256_bytes(data + APPENDED)

    rerun = _other_path_run(fs, journal_dir, tmp_path)
    assert sha256_file(path) == expected, 'appended lines lost by recovery:\n' + short(rerun)
    assert not os.path.exists('%s.gz' % path)
    recovered = entries(rerun, path=str(path))
    assert [e['reason'] for e in recovered] == ['rolled_back'], short(rerun)
    assert 'appended' in recovered[0]['detail']
    assert journal_names(journal_dir) == [], 'the stale copy should have been dropped'

    # The next run compresses the whole file, appended lines included.
    again = run_direct(module_args(path, journal_dir), str(tmp_path))
    assert [e['action'] for e in entries(again, path=str(path))] == ['compressed'], short(again)
    assert gunzip_sha256('%s.gz' % path) == expected


def test_rename_refused_then_appended(fullfs, journal_dir, tmp_path):
    """Every rename fails with ENOSPC: the run rewrites the file under its plain name and
    keeps its journal; the application then appends plain text to it."""
    fs = fullfs('tmpfs', size=24 * MiB)
    data = log_bytes(6 * MiB, seed=82)
    path = fs.write_file('app.log', data)
    fs.fill()
    rc, result = run_injected(module_args(path, journal_dir), 'renameat2:error=ENOSPC', str(tmp_path))
    assert result is not None and result['failed'], result
    assert [e['action'] for e in entries(result, path=str(path))] == ['failed'], short(result)
    with open(path, 'rb') as handle:
        assert handle.read(2) == b'\x1f\x8b', 'the rename-refused state holds gzip data under the old name'
    with open(path, 'ab') as handle:
        handle.write(APPENDED)
    before = sha256_file(path)

    for attempt in range(2):
        rerun = _other_path_run(fs, journal_dir, tmp_path)
        assert sha256_file(path) == before, 'appended lines overwritten by recovery:\n' + short(rerun)
        found = entries(rerun, path=str(path))
        assert [(e['action'], e['reason']) for e in found] == [('failed', 'not_ours')], short(rerun)
        kept = [n for n in journal_names(journal_dir) if n.endswith('.gz')]
        assert len(kept) == 1 and kept[0] in found[0]['detail'], found[0]['detail']
    # A run on the file itself leaves it alone as well.
    direct = run_direct(module_args(path, journal_dir), str(tmp_path))
    assert sha256_file(path) == before
    reasons = sorted(e['reason'] for e in entries(direct, path=str(path)))
    assert reasons == ['journal_pending', 'not_ours'], short(direct)


def test_inode_number_reused_after_broken_gz_deleted(fullfs, journal_dir, tmp_path):
    """Killed after its first write into NAME.gz; the on-call deletes the broken NAME.gz, the
    application creates NAME again and ext4 hands it the same inode number."""
    fs = fullfs('ext4')
    data = log_bytes(32 * MiB, seed=83)  # about 5 MiB at level 1: more than one 4 MiB pwrite
    path = fs.write_file('app.log', data)
    fs.fill()
    ino = os.stat(path).st_ino
    rc, result = run_injected(module_args(path, journal_dir), 'pwrite64:signal=SIGKILL:when=2', str(tmp_path))
    assert result is None
    gz = '%s.gz' % path
    assert os.stat(gz).st_ino == ino and os.path.getsize(gz) == len(data), 'killed inside the rewrite'
    os.unlink(gz)
    new_data = b'a brand new log, not ours\n' * 1000
    with open(path, 'wb') as handle:
        handle.write(new_data)
    if os.stat(path).st_ino != ino:
        pytest.skip('ext4 did not reuse the inode number this time')

    rerun = run_direct(module_args(path, journal_dir), str(tmp_path))
    assert sha256_file(path) == sha256_bytes(new_data), 'the new file was overwritten:\n' + short(rerun)
    found = [e for e in rerun['files'] if e['reason'] in ('not_ours', 'journal_orphaned')]
    assert len(found) == 1 and found[0]['action'] == 'failed', short(rerun)
    copy = [n for n in journal_names(journal_dir) if n.endswith('.gz')]
    assert len(copy) == 1 and copy[0] in found[0]['detail']
    assert gunzip_sha256(os.path.join(journal_dir, SUBDIR, copy[0])) == sha256_bytes(data), \
        'the kept copy is the only one left of the original'


@pytest.mark.parametrize('kind', ['ext4', 'xfs', 'btrfs'])
def test_reboot_renumbering_the_loop_device_keeps_the_entry(kind, fullfs, journal_dir, tmp_path):
    """Killed in the middle of the rewrite; the filesystem comes back on another loop device.
    Keys and identity are not the device number: the rerun finishes the file."""
    size = 300 * MiB if kind == 'xfs' else None
    fs = fullfs(kind, size=size)
    data = log_bytes(32 * MiB, seed=84)  # about 5 MiB at level 1: more than one 4 MiB pwrite
    path = fs.write_file('app.log', data)
    fs.fill()
    rc, result = run_injected(module_args(path, journal_dir), 'pwrite64:signal=SIGKILL:when=2', str(tmp_path))
    assert result is None
    old_dev = os.stat(fs.mnt).st_dev
    renumber(fs)
    assert os.stat(fs.mnt).st_dev != old_dev or kind == 'btrfs'

    rerun = _other_path_run(fs, journal_dir, tmp_path)
    found = entries(rerun, path=str(path))
    assert [(e['action'], e['reason']) for e in found] == [('recovered', 'finished')], short(rerun)
    assert gunzip_sha256('%s.gz' % path) == sha256_bytes(data)
    assert journal_names(journal_dir) == []


def test_filesystem_gone_is_reported_once_and_kept(fullfs, journal_dir, tmp_path):
    fs, path, data = _kill_at_rename('ext4', fullfs, journal_dir, tmp_path)
    mount_point = str(fs.mnt)
    subprocess.run(['umount', mount_point], check=True)
    fs.mounted = False
    kept = journal_names(journal_dir)

    first = run_direct(module_args('/nonexistent-cmz', journal_dir), str(tmp_path))
    gone = [e for e in first['files'] if e['reason'] == 'filesystem_gone']
    assert len(gone) == 1 and gone[0]['action'] == 'skipped', short(first)
    assert not first.get('failed'), short(first)
    assert [n for n in kept if n.endswith('.gz')][0] in gone[0]['detail']

    second = run_direct(module_args('/nonexistent-cmz', journal_dir), str(tmp_path))
    assert not second.get('failed')
    assert [e for e in second['files'] if e['reason'] == 'filesystem_gone'] == [], 'reported once only'
    assert any(str(path) in note and 'kept at' in note for note in second['journal']['notes']), short(second)
    assert journal_names(journal_dir) == kept, 'the copy stays for a human'

    subprocess.run(['mount', '-t', 'ext4', fs.dev, mount_point], check=True)
    fs.mounted = True
    back = _other_path_run(fs, journal_dir, tmp_path)
    assert [e['reason'] for e in entries(back, path=str(path))] == ['rolled_back'], short(back)
    assert sha256_file(path) == sha256_bytes(data)


def test_recovery_waits_for_a_holder_of_the_interrupted_file(fullfs, journal_dir, tmp_path):
    """Killed inside the rewrite; someone then reads NAME.gz.  Recovery makes the same
    open-file check as a fresh run: it writes nothing while the file is held."""
    fs = fullfs('tmpfs', size=64 * MiB)
    data = log_bytes(32 * MiB, seed=85)
    path = fs.write_file('app.log', data)
    fs.fill()
    rc, result = run_injected(module_args(path, journal_dir), 'pwrite64:signal=SIGKILL:when=2', str(tmp_path))
    assert result is None
    gz = '%s.gz' % path
    before = sha256_file(gz)
    with open(gz, 'rb') as held:
        reader = subprocess.Popen(['sleep', '600'], stdin=held)
    try:
        rerun = _other_path_run(fs, journal_dir, tmp_path)
        found = entries(rerun, path=str(path))
        assert [(e['action'], e['reason']) for e in found] == [('failed', 'open')], short(rerun)
        assert 'sleep[%d]' % reader.pid in found[0]['detail'], found[0]['detail']
        assert sha256_file(gz) == before, 'recovery wrote into a file someone holds'
    finally:
        reader.kill()
        reader.wait()
    again = _other_path_run(fs, journal_dir, tmp_path)
    assert [e['reason'] for e in entries(again, path=str(path))] == ['finished'], short(again)
    assert gunzip_sha256(gz) == sha256_bytes(data)


def test_rollback_needs_no_claim_while_the_writer_appends(fullfs, journal_dir, tmp_path):
    """Killed before its rename; the application keeps the log open and appends.  Rolling
    back writes nothing, so it happens at once; the fresh run then skips the open file."""
    fs, path, data = _kill_at_rename('tmpfs', fullfs, journal_dir, tmp_path)
    os.unlink(fs.filler_dir / 'filler0000')
    writer = subprocess.Popen([sys.executable, '-c', 'import os, sys, time\n'
                               'fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)\n'
                               'os.write(fd, sys.argv[2].encode())\n'
                               'print("ready", flush=True)\n'
                               'time.sleep(600)\n', str(path), APPENDED.decode()],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == 'ready'
        rerun = run_direct(module_args(path, journal_dir), str(tmp_path))
        reasons = [(e['action'], e['reason']) for e in entries(rerun, path=str(path))]
        assert reasons == [('recovered', 'rolled_back'), ('skipped', 'open')], short(rerun)
        assert sha256_file(path) == sha256_bytes(data + APPENDED)
        assert journal_names(journal_dir) == []
    finally:
        writer.kill()
        writer.wait()
