# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""rescue_host (the role's one call) with its default open-file handling: a filesystem filled by a
deleted log its process still holds and by a live log being written is remediated; the survey
says what it would do; each can be turned off."""

from __future__ import annotations

import os

from cmzrun import run_ansible, short
from fullfs import MiB
from livewriter import LiveWriter, check_stream, live_tail, saved_parts

MODULE = 'sre.cmemgzip.rescue_host'


def _rescue(fs, journal_dir, check=False, **args):
    params = {'mounts': [str(fs.mnt)], 'roots': [str(fs.data)], 'journal_dir': journal_dir, 'level': 1,
              'target_free': '30%'}
    params.update(args)
    return run_ansible(params, check=check, module=MODULE)


def _filled_by_open_files(fullfs, tmp_path):
    fs = fullfs('ext4', size=96 * MiB)
    # 24 MiB at once, then 2,000 lines/s: unthrottled, two writers fill what the rescue freed again
    # within a second, and "still writing" would only measure the disk.
    live = LiveWriter(fs.data / 'app.log', tmp_path / 'live.json', rate=2000, burst=24 * MiB)
    gone = LiveWriter(fs.data / 'old.log', tmp_path / 'gone.json', unlink=True, rate=2000, burst=24 * MiB)
    live.wait_bytes(24 * MiB)
    gone.wait_bytes(24 * MiB)
    fs.fill()
    return fs, live, gone


def test_survey_then_remediate_frees_both_and_reports_them(fullfs, journal_dir, tmp_path):
    fs, live, gone = _filled_by_open_files(fullfs, tmp_path)
    try:
        survey = _rescue(fs, journal_dir, check=True)
        assert survey['status'] == 'full', short(survey)
        assert survey['live_files']['would'] == 1 and survey['deleted_files']['would'] == 1, short(survey)
        assert 'would cut 1 live file' in survey['msg'] and 'would reclaim 1 deleted file' in survey['msg']
        assert saved_parts(fs.data, 'app.log') == []

        result = _rescue(fs, journal_dir)
        assert result['status'] == 'remediated' and result['still_full'] == [], short(result)
        assert result['deleted_files']['count'] == 1 and result['deleted_files']['bytes_saved'] > 16 * MiB
        # Deleted first: its space alone may reach target_free; the live log is cut when it does not.
        assert result['live_files']['count'] + result['deleted_files']['count'] >= 1
        assert 'reclaimed 1 deleted file' in result['msg'], result['msg']
        assert live.still_writing() and gone.still_writing()
        held = os.open('/proc/%d/fd/3' % gone.pid, os.O_RDONLY)
        try:
            final_gone = gone.stop()
            parts = saved_parts(fs.data, 'old.log-deleted-pid%d' % gone.pid)
            assert check_stream(parts, live_tail(held)) == final_gone['lines']
        finally:
            os.close(held)
        final_live = live.stop()
        assert check_stream(saved_parts(fs.data, 'app.log'), live_tail(str(fs.data / 'app.log'))) == \
            final_live['lines']
    finally:
        live.kill()
        gone.kill()


def test_a_live_log_alone_is_cut(fullfs, journal_dir, tmp_path):
    fs = fullfs('ext4', size=64 * MiB)
    live = LiveWriter(fs.data / 'app.log', tmp_path / 'live.json')
    try:
        live.wait_bytes(24 * MiB)
        fs.fill()
        result = _rescue(fs, journal_dir)
        assert result['status'] == 'remediated', short(result)
        assert result['live_files']['count'] == 1 and result['live_files']['files'][0]['strategy'] == 'collapse'
        assert 'cut 1 live file' in result['msg']
        final = live.stop()
        assert check_stream(saved_parts(fs.data, 'app.log'), live_tail(str(fs.data / 'app.log'))) == final['lines']
    finally:
        live.kill()


def test_each_can_be_turned_off(fullfs, journal_dir, tmp_path):
    fs, live, gone = _filled_by_open_files(fullfs, tmp_path)
    try:
        result = _rescue(fs, journal_dir, live_files=False, deleted_files=False)
        assert result['status'] == 'still_full', short(result)
        assert result['live_files']['count'] == 0 and result['deleted_files']['count'] == 0
        # Without the live method a young live log waits min_age (an old one would be skipped as open).
        assert result['skips']['reasons'] == {'too_young': 1}, short(result)
        assert saved_parts(fs.data, 'app.log') == [] and saved_parts(fs.data, 'old.log-deleted-pid%d' % gone.pid) == []
    finally:
        live.kill()
        gone.kill()
