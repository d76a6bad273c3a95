# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The role's min_age (issue 8, item 8): a rotated access.log.1 that logrotate made two
minutes ago is the very file to compress; only live names (*.log) wait for min_age."""

from __future__ import annotations

import os

from cmzrun import run_ansible, short
from fullfs import MiB, gunzip_sha256, sha256_file


def test_rotated_names_are_compressed_at_once_live_names_wait(fullfs, journal_dir):
    fs = fullfs('ext4', size=64 * MiB)
    rotated = fs.write_log('app/access.log.1', 8 * MiB, seed=131)
    live = fs.write_log('app/access.log', 4 * MiB, seed=132)
    digest = sha256_file(rotated)
    fs.fill()

    # The module's defaults: min_age 10m, min_age_patterns ['*.log'].
    result = run_ansible({'mounts': [str(fs.mnt)], 'roots': [str(fs.data)], 'journal_dir': journal_dir},
                         module='sre.cmemgzip.rescue_host')
    assert result['_status'] == 'CHANGED', short(result)
    assert [f['path'] for f in result['compressed']] == [str(rotated)], short(result)
    assert gunzip_sha256(str(rotated) + '.gz') == digest
    assert result['skips']['reasons'].get('too_young') == 1, short(result)
    assert os.path.exists(live)


def test_min_age_patterns_empty_makes_every_name_wait(fullfs, journal_dir):
    fs = fullfs('ext4', size=64 * MiB)
    rotated = fs.write_log('app/access.log.1', 8 * MiB, seed=133)
    fs.fill()
    result = run_ansible({'mounts': [str(fs.mnt)], 'roots': [str(fs.data)], 'journal_dir': journal_dir,
                          'min_age_patterns': []}, module='sre.cmemgzip.rescue_host')
    assert result['files_compressed'] == 0 and result['skips']['reasons'].get('too_young') == 1, short(result)
    assert os.path.exists(rotated)
