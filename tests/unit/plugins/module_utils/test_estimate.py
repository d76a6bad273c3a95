# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Check mode's estimate of the compressed size from samples (estimate.py)."""

from __future__ import absolute_import, division, print_function

import gzip
import os
import random

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils import estimate

MiB = 1 << 20


def log_text(size, seed):
    rng = random.Random(seed)
    paths = ['/', '/login', '/api/v1/items/%d', '/static/app.%x.js', '/search?q=item%d']
    lines = []
    total = 0
    while total < size:
        line = '10.0.%d.%d - - [26/Nov/2026:08:%02d:%02d +0000] "GET %s HTTP/1.1" %d %d\n' % (
            rng.randrange(256), rng.randrange(256), rng.randrange(60), rng.randrange(60),
            rng.choice(paths).replace('%d', str(rng.randrange(10000))).replace('%x', '%x' % rng.getrandbits(32)),
            rng.choice((200, 200, 200, 304, 404, 500)), rng.randrange(100000))
        lines.append(line)
        total += len(line)
    return ''.join(lines).encode()[:size]


def test_sample_offsets_cover_the_file_evenly():
    offsets = estimate.sample_offsets(10 * MiB)
    assert len(offsets) == estimate.SAMPLES and offsets[0] == 0
    assert offsets[-1] + estimate.SAMPLE_SIZE <= 10 * MiB
    assert offsets[-1] + estimate.SAMPLE_SIZE > 10 * MiB - estimate.SAMPLES
    steps = set(b - a for a, b in zip(offsets, offsets[1:]))
    assert len(steps) == 1


def test_small_files_are_left_to_an_exact_measure(tmp_path):
    path = tmp_path / 'small.log'
    path.write_bytes(log_text(estimate.SAMPLED_ABOVE, 1))
    fd = os.open(str(path), os.O_RDONLY)
    try:
        assert estimate.estimate_gzip_size(fd, estimate.SAMPLED_ABOVE, 9) is None
    finally:
        os.close(fd)


@pytest.mark.parametrize('level', [1, 6, 9])
def test_the_estimate_is_within_a_few_percent_of_gzip(tmp_path, level):
    data = log_text(6 * MiB, level)
    path = tmp_path / 'app.log.1'
    path.write_bytes(data)
    real = len(gzip.compress(data, level))
    fd = os.open(str(path), os.O_RDONLY)
    try:
        guess = estimate.estimate_gzip_size(fd, len(data), level, b'app.log.1')
    finally:
        os.close(fd)
    assert abs(guess - real) <= 0.05 * real, (guess, real)


def test_incompressible_data_is_estimated_incompressible(tmp_path):
    data = random.Random(3).getrandbits(8 * 4 * MiB).to_bytes(4 * MiB, 'little')
    path = tmp_path / 'core.1'
    path.write_bytes(data)
    fd = os.open(str(path), os.O_RDONLY)
    try:
        assert estimate.estimate_gzip_size(fd, len(data), 9) >= len(data)
    finally:
        os.close(fd)


def test_a_file_that_shrank_under_the_sampler_is_measured_exactly(tmp_path):
    path = tmp_path / 'shrunk.log'
    path.write_bytes(log_text(MiB, 4))
    fd = os.open(str(path), os.O_RDONLY)
    try:
        assert estimate.estimate_gzip_size(fd, 8 * MiB, 9) is None
    finally:
        os.close(fd)
