# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""reclaim_deleted with real processes holding deleted files on full filesystems.

Every run is limited to the test's own filesystem (``paths``): the machine is
shared, and other processes' deleted files are none of the tests' business.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cmzrun import REPO, entries, entry, short
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes
from livewriter import LiveWriter, check_stream, live_tail

from ansible_collections.sre.cmemgzip.plugins.module_utils import deleted as deleted_engine
from ansible_collections.sre.cmemgzip.plugins.module_utils.usage import survey

sys.path.insert(0, str(REPO / 'tests' / 'lib'))


def _reclaim(fs, journal_dir, **options):
    options.setdefault('paths', [str(fs.mnt)])
    options.setdefault('journal_dir', journal_dir)
    options.setdefault('level', 1)
    options.setdefault('min_size', 0)
    return deleted_engine.reclaim(deleted_engine.ReclaimOptions(**options))


def _gz_parts(directory, name):
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.startswith(name + '-deleted-pid') and n.endswith('.gz'))


@pytest.mark.parametrize('kind', ['tmpfs', 'ext4'])
def test_deleted_log_of_a_running_writer_on_a_full_filesystem(kind, fullfs, journal_dir, tmp_path):
    """0 bytes free, the space held by a deleted log its writer still appends to: the content is
    saved and verified, the space comes back, the writer never stops."""
    fs = fullfs(kind, size=96 * MiB)
    log = fs.data / 'app.log'
    writer = LiveWriter(log, tmp_path / 'writer.json', unlink=True)
    try:
        writer.wait_bytes(24 * MiB)
        assert not log.exists()
        fs.fill()
        avail_before = fs.avail_bytes()
        result = _reclaim(fs, journal_dir, min_size=MiB)
        e = entry(result, log)
        assert e['action'] == 'reclaimed', short(result)
        assert e['deleted'] is True and e['allocated'] >= 24 * MiB
        assert [(p['pid'], p['append']) for p in e['pids']] == [(writer.pid, True)]
        assert os.path.basename(e['dest']).startswith('app.log-deleted-pid%d-' % writer.pid)
        assert e['strategy'] == ('collapse' if kind == 'ext4' else 'punch_hole')
        assert fs.avail_bytes() > avail_before + 8 * MiB
        assert writer.still_writing()
        held = '/proc/%d/fd/3' % writer.pid
        final_lines = None
        # What the writer wrote meanwhile stays in the file; .gz + file = every line once.
        fd = os.open(held, os.O_RDONLY)
        try:
            final = writer.stop()
            final_lines = final['lines']
            assert check_stream([e['dest']], live_tail(fd)) == final_lines
        finally:
            os.close(fd)
        assert final['errors'] == 0, final
        assert os.listdir(os.path.join(journal_dir, 'sre.cmemgzip')) == []
    finally:
        writer.kill()


def test_deleted_file_held_by_a_reader_is_saved_whole_and_truncated(fullfs, journal_dir):
    fs = fullfs('tmpfs', size=64 * MiB)
    data = log_bytes(12 * MiB, seed=7)
    path = fs.write_file('old.log', data, mode=0o640)
    os.chown(path, 1234, 2345)
    with open(path, 'rb') as handle:
        reader = subprocess.Popen(['sleep', '600'], stdin=handle)
    try:
        os.unlink(path)
        fs.fill()
        result = _reclaim(fs, journal_dir)
        e = entry(result, path)
        assert e['action'] == 'reclaimed' and e['strategy'] == 'truncate', short(result)
        assert gunzip_sha256(e['dest']) == sha256_bytes(data)
        st = os.stat(e['dest'])
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1234, 2345, 0o640)
        assert os.fstat(os.open('/proc/%d/fd/0' % reader.pid, os.O_RDONLY)).st_size == 0
        assert e['bytes_saved'] > 9 * MiB
        assert reader.poll() is None
        again = _reclaim(fs, journal_dir)
        assert again['changed'] is False and entries(again, path=str(path)) == [], short(again)
    finally:
        reader.kill()
        reader.wait()


def test_check_mode_lists_and_changes_nothing(fullfs, journal_dir):
    fs = fullfs('tmpfs', size=64 * MiB)
    path = fs.write_log('gone.log', 8 * MiB, seed=9)
    with open(path, 'ab') as handle:
        holder = subprocess.Popen(['sleep', '600'], stdout=handle)
    try:
        os.unlink(path)
        avail = fs.avail_bytes()
        result = _reclaim(fs, journal_dir, check_mode=True)
        e = entry(result, path)
        assert e['action'] == 'would_reclaim' and result['changed'] is True, short(result)
        assert 0 < e['compressed_size'] < 4 * MiB and e['bytes_saved'] > 4 * MiB
        assert fs.avail_bytes() == avail
        assert not [n for n in os.listdir(fs.data) if n.endswith('.gz')]
        assert os.stat('/proc/%d/fd/1' % holder.pid).st_size == 8 * MiB
    finally:
        holder.kill()
        holder.wait()


def test_save_false_only_frees_and_filters_select(fullfs, journal_dir):
    fs = fullfs('tmpfs', size=64 * MiB)
    kept = fs.write_log('kept.log', 4 * MiB, seed=10)
    freed = fs.write_log('freed.log', 4 * MiB, seed=11)
    holders = []
    for path in (kept, freed):
        with open(path, 'ab') as handle:
            holders.append(subprocess.Popen(['sleep', '600'], stdout=handle))
        os.unlink(path)
    try:
        by_pid = _reclaim(fs, journal_dir, save=False, pids=[holders[1].pid])
        assert [e['path'] for e in by_pid['files']] == [str(freed)], short(by_pid)
        assert by_pid['files'][0]['action'] == 'reclaimed' and by_pid['files'][0]['strategy'] == 'truncate'
        assert not [n for n in os.listdir(fs.data) if n.endswith('.gz')]
        assert os.stat('/proc/%d/fd/1' % holders[1].pid).st_size == 0
        assert os.stat('/proc/%d/fd/1' % holders[0].pid).st_size == 4 * MiB
        by_name = _reclaim(fs, journal_dir, save=False, process_names=['nomatch*'])
        assert by_name['files'] == []
        elsewhere = _reclaim(fs, journal_dir, save=False, paths=[str(fs.data / 'other')])
        assert elsewhere['files'] == []
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_writer_without_o_append_is_refused(fullfs, journal_dir):
    fs = fullfs('tmpfs', size=64 * MiB)
    path = fs.write_log('db.log', 4 * MiB, seed=12)
    with open(path, 'r+b') as handle:
        holder = subprocess.Popen(['sleep', '600'], stdout=handle)
    try:
        os.unlink(path)
        result = _reclaim(fs, journal_dir)
        e = entry(result, path)
        assert (e['action'], e['reason']) == ('skipped', 'holder_refused'), short(result)
        assert 'pid %d (sleep) writes without O_APPEND' % holder.pid in e['detail']
        assert os.stat('/proc/%d/fd/1' % holder.pid).st_size == 4 * MiB
    finally:
        holder.kill()
        holder.wait()


def test_fs_usage_info_counts_deleted_open_bytes(fullfs):
    fs = fullfs('tmpfs', size=64 * MiB)
    path = fs.write_log('gone.log', 6 * MiB, seed=13)
    with open(path, 'rb') as handle:
        holder = subprocess.Popen(['sleep', '600'], stdin=handle)
    try:
        os.unlink(path)
        found = [f for f in survey()['filesystems'] if f['mount'] == str(fs.mnt)]
        assert len(found) == 1
        assert found[0]['deleted_open_bytes'] == 6 * MiB and found[0]['deleted_open_files'] == 1, found[0]
    finally:
        holder.kill()
        holder.wait()
