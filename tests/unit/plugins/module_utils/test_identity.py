# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""identity.classify: the content evidence recovery decides on, state by state."""

from __future__ import absolute_import, division, print_function

import gzip
import os
import random
import zlib

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils import identity

SIZE = 3 * 1024 * 1024 + 1234


@pytest.fixture
def made(tmp_path):
    rng = random.Random(5)
    words = [b'alpha', b'beta', b'gamma', b'delta', b'error', b'GET', b'/api/v1']
    lines = []
    total = 0
    while total < SIZE:
        line = b' '.join(rng.choice(words) for _word in range(12)) + b'\n'
        lines.append(line)
        total += len(line)
    original = b''.join(lines)[:SIZE]
    copy = gzip.compress(original, compresslevel=6)
    copy_path = tmp_path / 'copy.gz'
    copy_path.write_bytes(copy)
    probe = tmp_path / 'probe'
    probe.write_bytes(original)
    fd = os.open(str(probe), os.O_RDONLY)
    try:
        manifest = identity.capture(fd, os.fstat(fd), zlib.crc32(original))
    finally:
        os.close(fd)
    manifest.update(compressed_size=len(copy), compressed_crc32=zlib.crc32(copy))
    return tmp_path, original, copy, copy_path, manifest


def _classify(made, content, zeros_allowed=False):
    tmp_path, original, copy, copy_path, manifest = made
    path = tmp_path / 'file'
    path.write_bytes(content)
    fd = os.open(str(path), os.O_RDONLY)
    try:
        return identity.classify(fd, manifest, lambda: os.open(str(copy_path), os.O_RDONLY), zeros_allowed)
    finally:
        os.close(fd)


def test_untouched_and_grown(made):
    original = made[1]
    assert _classify(made, original) == identity.ORIGINAL
    assert _classify(made, original + b'appended line\n') == identity.GROWN


def test_complete_copy(made):
    assert _classify(made, made[2]) == identity.COMPLETE


@pytest.mark.parametrize('cut', [0, 1, 4096, 4097, 1024 * 1024 + 17])
def test_inplace_rewrite_cut_short(made, cut):
    original, copy = made[1], made[2]
    cut = min(cut, len(copy))
    assert _classify(made, copy[:cut] + original[cut:]) in (identity.REWRITE, identity.ORIGINAL)


def test_truncate_first_prefix_and_zeros(made):
    copy = made[2]
    assert _classify(made, copy[:70000]) == identity.REWRITE
    holed = copy[:8192] + b'\0' * 8192
    assert _classify(made, holed) == identity.FOREIGN
    assert _classify(made, holed, zeros_allowed=True) == identity.REWRITE


def test_someone_elses_data(made):
    original, copy = made[1], made[2]
    assert _classify(made, copy + b'plain text appended after the rewrite\n') == identity.FOREIGN
    assert _classify(made, b'a brand new file\n' * 100) == identity.FOREIGN
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0x20
    assert _classify(made, bytes(changed)) == identity.FOREIGN
    mixed = copy[:5000] + original[5000:] + b'tail'
    assert _classify(made, mixed) == identity.FOREIGN


def test_keys_and_filesystem_identity(tmp_path):
    fd = os.open(str(tmp_path), os.O_RDONLY)
    try:
        fs_id = identity.filesystem_id(fd)
        assert identity.same_filesystem(fd, fs_id)
        assert identity.filesystem_ids(fd)[-1].startswith('dev:')
    finally:
        os.close(fd)
    assert fs_id.split(':')[0] in ('fsid', 'uuid', 'dev')
    key = identity.entry_key(fs_id, 4711)
    assert key.endswith('-4711') and '/' not in key and ':' not in key
