# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Odd inputs (issue 8, item 6): names that are not UTF-8, names too long for
``.gz``, trees deeper than Python's recursion limit and than PATH_MAX, and a
result that stays bounded however many files there are."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

from cmzrun import assert_contract_keys, entries, entry, run_ansible, short
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes, tree_state

NAME_MAX = 255
PATH_MAX = 4096


def test_non_utf8_names_come_back_escaped_through_ansible(fullfs, journal_dir):
    """One undecodable name in a recursed directory must not cost the task its result."""
    fs = fullfs('tmpfs', size=32 * MiB)
    bad_dir = os.path.join(os.fsencode(fs.data), b'r\xe9pertoire')
    os.mkdir(bad_dir)
    data = log_bytes(2 * MiB, seed=91)
    raw_name = os.path.join(bad_dir, b'caf\xe9-\xff.log')
    with open(raw_name, 'wb') as handle:
        handle.write(data)
    small = os.path.join(bad_dir, b'tiny-\xfe.log')
    with open(small, 'wb') as handle:
        handle.write(b'x' * 10)
    fs.fill()

    result = run_ansible({'path': [str(fs.data)], 'recurse': True, 'min_size': '1M',
                          'journal_dir': journal_dir})
    assert result['_status'] in ('CHANGED', 'SUCCESS'), short(result)
    assert not result.get('failed'), short(result)
    assert_contract_keys(result)
    shown = os.fsdecode(raw_name).encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
    e = entry(result, shown)
    assert e['action'] == 'compressed', short(result)
    assert base64.b64decode(e['path_b64']) == raw_name
    assert e['dest'] == shown + '.gz'
    assert gunzip_sha256(os.fsdecode(raw_name + b'.gz')) == sha256_bytes(data)
    tiny = [f for f in result['files'] if f.get('reason') == 'too_small']
    assert len(tiny) == 1 and base64.b64decode(tiny[0]['path_b64']) == small, short(result)


def test_non_utf8_mount_point_and_holder_name_through_ansible(fullfs, journal_dir):
    """A filesystem mounted at an undecodable path, and a process with an undecodable
    name holding a file open: both reach the result escaped."""
    fs = fullfs('tmpfs', size=32 * MiB)
    mount_point = os.path.join(os.fsencode(fs.data), b'mnt-\xe9')
    os.mkdir(mount_point)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=16m', b'cmz-it-\xe9', mount_point], check=True)
    holder = None
    try:
        data = log_bytes(2 * MiB, seed=96)
        inner = os.path.join(mount_point, b'inner.log')
        with open(inner, 'wb') as handle:
            handle.write(data)
        held = os.path.join(mount_point, b'held.log')
        with open(held, 'wb') as handle:
            handle.write(data)
        code = ('import ctypes, sys, time\n'
                'f = open(sys.argv[1], "rb")\n'
                'ctypes.CDLL(None).prctl(15, b"hold\\xff\\xfe", 0, 0, 0)\n'
                'print("ready", flush=True)\n'
                'time.sleep(600)\n')
        holder = subprocess.Popen([sys.executable, '-c', code, held], stdout=subprocess.PIPE)
        assert holder.stdout.readline().strip() == b'ready'
        result = run_ansible({'path': [str(fs.data)], 'recurse': True, 'one_file_system': False,
                              'min_size': '1M', 'journal_dir': journal_dir})
        assert result['_status'] in ('CHANGED', 'SUCCESS'), short(result)
        shown_mount = os.fsdecode(mount_point).encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')
        assert entry(result, shown_mount + '/inner.log')['action'] == 'compressed', short(result)
        assert shown_mount in [f['mount'] for f in result['filesystems']], result['filesystems']
        busy = entry(result, shown_mount + '/held.log')
        assert busy['reason'] == 'open', short(result)
        assert busy['pids'][0]['pid'] == holder.pid and busy['pids'][0]['comm'] == 'hold\\xff\\xfe', busy
        assert gunzip_sha256(os.fsdecode(inner + b'.gz')) == sha256_bytes(data)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        subprocess.run(['umount', mount_point], check=True)


def test_name_too_long_for_gz_is_skipped(engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    longest = 'a' * (NAME_MAX - len('.log')) + '.log'
    path = fs.write_log(longest, 2 * MiB, seed=92)
    fits = fs.write_log('a' * (NAME_MAX - len('.log.gz')) + '.log', 2 * MiB, seed=93)
    fs.fill()
    before = tree_state(fs.data)
    del before[fits.name]

    result = engine.run(engine.Options(paths=[str(fs.data)], min_size=0, journal_dir=journal_dir))
    assert not result['failed'], short(result)
    e = entry(result, path)
    assert (e['action'], e['reason']) == ('skipped', 'name_too_long'), short(result)
    assert '255' in e['detail']
    assert entry(result, fits)['action'] == 'compressed', short(result)
    after = tree_state(fs.data)
    del after[fits.name + '.gz']
    assert after == before


def _make_deep_tree(top, depth, files_at):
    """``depth`` nested directories named ``d`` below ``top``, by descriptor (the
    paths grow beyond PATH_MAX); a 2 MiB log in each depth of ``files_at``."""
    data = log_bytes(2 * MiB, seed=94)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, depth + 1):
            os.mkdir('d', dir_fd=fd)
            child = os.open('d', os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            if level in files_at:
                out = os.open('deep.log', os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(out, data)
                os.close(out)
    finally:
        os.close(fd)
    return sha256_bytes(data)


def test_tree_4096_deep(engine, fullfs, journal_dir):
    """No recursion limit; what lies beyond PATH_MAX is reported, not silently dropped."""
    fs = fullfs('tmpfs', size=64 * MiB)
    digest = _make_deep_tree(str(fs.data), 4096, files_at={3, 1500, 4096})
    fs.fill()
    result = engine.run(engine.Options(paths=[str(fs.data)], recurse=True, min_size=0,
                                       journal_dir=journal_dir))
    assert not result['failed'], short(result)
    shallow = os.path.join(str(fs.data), *(['d'] * 3), 'deep.log')
    middle = os.path.join(str(fs.data), *(['d'] * 1500), 'deep.log')
    for path in (shallow, middle):
        assert entry(result, path)['action'] == 'compressed', short(result)
    assert gunzip_sha256(shallow + '.gz') == digest
    too_long = [e for e in result['files'] if e['reason'] == 'name_too_long']
    assert len(too_long) == 1, short(result)
    assert len(os.fsencode(too_long[0]['path'])) < PATH_MAX + 2
    assert 'PATH_MAX' in too_long[0]['detail']


def test_result_size_is_capped_and_summarized(engine, fullfs, journal_dir):
    """Beyond max_file_results, entries are counted by action and reason; compressed and
    failed entries are kept before skips; totals still count every file."""
    fs = fullfs('tmpfs', size=128 * MiB)
    data = log_bytes(64 * 1024, seed=95)
    for index in range(40):
        fs.write_file('big-%03d.log' % index, data)
    for index in range(300):
        fs.write_file('small-%03d.log' % index, b'tiny\n')
    result = engine.run(engine.Options(paths=[str(fs.data)], min_size=1024, journal_dir=journal_dir,
                                       max_file_results=25))
    assert not result['failed'], short(result)
    assert len(result['files']) == 25
    assert {e['action'] for e in result['files']} == {'compressed'}
    omitted = result['files_omitted']
    assert omitted['count'] == 340 - 25
    by_reason = {(o['action'], o['reason']): o for o in omitted['by_reason']}
    assert by_reason[('compressed', None)]['count'] == 15
    assert by_reason[('skipped', 'too_small')]['count'] == 300
    assert by_reason[('skipped', 'too_small')]['original_size'] == 300 * 5
    assert by_reason[('compressed', None)]['bytes_saved'] > 0
    assert result['totals']['compressed'] == 40 and result['totals']['skipped'] == 300
    assert result['totals']['bytes_saved'] == (sum(e['bytes_saved'] for e in result['files'])
                                               + sum(o['bytes_saved'] for o in omitted['by_reason']))
    assert len(entries(result, action='skipped')) == 0


def test_result_cap_zero_means_unlimited(engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    for index in range(30):
        fs.write_file('small-%03d.log' % index, b'tiny\n')
    result = engine.run(engine.Options(paths=[str(fs.data)], min_size=1024, journal_dir=journal_dir,
                                       max_file_results=0))
    assert len(result['files']) == 30
    assert result['files_omitted']['count'] == 0
