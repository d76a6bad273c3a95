# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""sre.cmemgzip.rescue_host on real full filesystems: one call measures, compresses, measures again, summarizes."""

from __future__ import annotations

import os
import time

from cmzrun import run_ansible, short
from fullfs import MiB, gunzip_sha256, sha256_file, tree_state

MODULE = 'sre.cmemgzip.rescue_host'


def rescue(fs, journal_dir, check=False, **args):
    params = {'mounts': [str(fs.mnt)], 'roots': [str(fs.data)], 'journal_dir': journal_dir, 'min_age': '0',
              'patterns': ['*.log.[0-9]*', '*.log']}
    params.update(args)
    return run_ansible(params, check=check, module=MODULE)


def test_a_full_filesystem_is_remediated_and_the_summary_says_so(fullfs, journal_dir):
    fs = fullfs('ext4', size=64 * MiB)
    logs = [fs.write_log('app/access.log.%d' % i, (6 - i) * MiB, seed=60 + i) for i in (1, 2, 3)]
    small = fs.write_log('app/small.log', 64 * 1024, seed=69)
    digests = dict((str(log), sha256_file(log)) for log in logs)
    fs.fill()
    avail_before = fs.avail_bytes()

    result = rescue(fs, journal_dir, target_free='10%')
    assert result['_status'] == 'CHANGED', short(result)
    assert result['status'] == 'remediated', short(result)
    assert result['full'] == [str(fs.mnt)] and result['still_full'] == []
    [filesystem] = result['filesystems']
    assert filesystem['roots'] == [str(fs.data)] and filesystem['note'] is None
    assert filesystem['before']['avail'] == avail_before
    assert filesystem['after']['avail'] == fs.avail_bytes() >= 0.10 * filesystem['before']['size']
    assert filesystem['freed'] == filesystem['after']['avail'] - avail_before > 0
    # largest first, until target_free: the rest is skipped with that reason
    compressed = [f['path'] for f in result['compressed']]
    assert compressed and compressed[0] == str(logs[0])
    for path in compressed:
        assert not os.path.exists(path) and gunzip_sha256(path + '.gz') == digests[path]
    assert result['files_compressed'] == len(compressed) == result['actions']['compressed']
    assert result['bytes_saved'] == sum(f['bytes_saved'] for f in result['compressed']) > 0
    assert result['skips']['reasons'].get('too_small') == 1
    assert set(result['skips']['reasons']) <= {'too_small', 'target_free_reached'}
    assert small.exists() and result['failure_count'] == 0
    assert result['msg'].startswith('%s full before; compressed %d files' % (fs.mnt, len(compressed)))

    again = rescue(fs, journal_dir, target_free='10%')
    assert again['_status'] == 'SUCCESS' and again['status'] == 'healthy', short(again)


def test_check_mode_surveys_a_full_filesystem_without_touching_it(fullfs, journal_dir):
    fs = fullfs('ext4', size=64 * MiB)
    fs.write_log('app/access.log.1', 8 * MiB, seed=71)
    fs.write_log('app/error.log', 4 * MiB, seed=72)
    fs.fill()
    before = tree_state(fs.data)

    result = rescue(fs, journal_dir, check=True, target_free='50%')
    assert result['status'] == 'full' and result['check_mode'] is True, short(result)
    assert result['would_compress'] == 2 and result['would_save'] > 8 * MiB
    assert result['still_full'] == [] and result['filesystems'][0]['after'] is not None
    assert tree_state(fs.data) == before
    assert not [n for walked in os.walk(journal_dir) for n in walked[2]]


def test_a_filesystem_full_by_inodes_only_is_left_alone(fullfs, journal_dir):
    fs = fullfs('tmpfs', size=64 * MiB, nr_inodes=64)
    log = fs.write_log('app/access.log.1', 4 * MiB, seed=73)
    fs.fill_inodes()
    digest = sha256_file(log)

    result = rescue(fs, journal_dir)
    assert result['status'] == 'still_full', short(result)
    assert result['filesystems'][0]['note'] == 'inodes_only'
    assert result['msg'].endswith('still full: %s (%s inodes_only)' % (fs.mnt, fs.mnt))
    assert sha256_file(log) == digest and result['files_compressed'] == 0


def test_a_just_rotated_log_is_taken_at_once_and_a_young_live_log_waits(fullfs, journal_dir):
    """Issue 8, the role: logrotate's access.log.1 of two minutes ago is the file to compress."""
    fs = fullfs('ext4', size=64 * MiB)
    two_minutes_ago = int((time.time() - 120) * 1e9)
    rotated = fs.write_log('app/access.log.1', 8 * MiB, seed=74, mtime_ns=two_minutes_ago)
    live = fs.write_log('app/access.log', 8 * MiB, seed=75, mtime_ns=two_minutes_ago)
    digest = sha256_file(live)
    fs.fill()

    result = rescue(fs, journal_dir, min_age='10m', target_free='90%')
    assert result['status'] in ('remediated', 'still_full'), short(result)
    assert [f['path'] for f in result['compressed']] == [str(rotated)]
    assert [(f['path'], f['reason']) for f in result['skips']['files']] == [(str(live), 'too_young')]
    assert sha256_file(live) == digest and not os.path.exists(str(live) + '.gz')
