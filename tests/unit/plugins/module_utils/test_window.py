# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The window engine on plain files: the order of writes, the checkpoint, and
what the file alone holds at every checkpoint (power loss).

At every checkpoint the test checks, from the file and the checkpoint only,
that the original can be rebuilt; and, from the file only, that salvage finds
a prefix after which the file holds the original.  Power cuts between two
checkpoints are simulated by mixing, page by page, the file as it was at one
checkpoint (durable: fdatasync'ed) with the file at the next: salvage then
rolls forward to the original bytes, or refuses; it never returns other bytes.
"""

from __future__ import absolute_import, division, print_function

import gzip
import os
import random
import zlib

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils import window, window_format, window_salvage
from ansible_collections.sre.cmemgzip.plugins.module_utils.gzip_member import BLOCK_SIZE

MiB = 1024 * 1024
PAGE = 4096


def _text(size, seed):
    rng = random.Random(seed)
    words = [b'GET', b'POST', b'/api/v1/items', b'status=200', b'status=404', b'user=%d', b'ms=%d', b'INFO', b'WARN']
    out = bytearray()
    n = 0
    while len(out) < size:
        out += b'2024-01-01T00:00:%02d line %d %s %s %s\n' % (
            n % 60, n, rng.choice(words), rng.choice(words), rng.choice(words))
        n += 1
    return bytes(out[:size])


def _mixed(size_text, size_random, seed=1):
    return _text(size_text, seed) + random.Random(seed).randbytes(size_random) + _text(size_text // 2, seed + 1)


class Recorder(object):
    """Checkpoint callback that checks the invariants and keeps file snapshots."""

    def __init__(self, path, original):
        self.path = path
        self.original = original
        self.snapshots = []
        self.commits = 0

    def file_bytes(self):
        with open(self.path, 'rb') as handle:
            return handle.read()

    def commit(self, state):
        self.commits += 1
        assert state.written == 0
        assert self.file_bytes() == self.original, 'written before the commit'
        self.checkpoint(state)

    def checkpoint(self, state):
        data = self.file_bytes()
        # The checkpoint alone rebuilds the original.
        stream = data[:state.written] + bytes(state.pending)
        rebuilt = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(stream)
        assert rebuilt == self.original[:state.read]
        if state.phase != window_format.PHASE_COMPLETE:
            assert data[state.read:] == self.original[state.read:], 'written at or past the checkpoint'
            assert zlib.crc32(self.original[:state.read]) == state.crc32
        self.snapshots.append(data)


def _compress(tmp_path, original, level=6, threads=2, interval=2):
    path = str(tmp_path / 'app.log')
    with open(path, 'wb') as handle:
        handle.write(original)
    fd = os.open(path, os.O_RDWR)
    st = os.fstat(fd)
    state = window_format.WindowState(pending=window_format.window_header(
        b'app.log', st.st_mtime, level, st.st_size, st.st_ino))
    recorder = Recorder(path, original)
    engine = window.WindowCompressor(fd, st.st_size, state, level, threads, recorder.checkpoint,
                                     commit=recorder.commit, interval_blocks=interval)
    return path, fd, st, state, recorder, engine


def test_header_is_plain_gzip_and_says_what_it_is():
    header = bytearray(window_format.window_header(b'app.log', 1700000000, 9, 123456, 42))
    window_format.set_first_write(header, 777)
    deflated = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    body = deflated.compress(b'hello') + deflated.flush()
    member = bytes(header) + body + zlib.crc32(b'hello').to_bytes(4, 'little') + (5).to_bytes(4, 'little')
    assert gzip.decompress(member) == b'hello'
    info = window_format.parse_window_header(member)
    assert (info.size, info.ino, info.first_write, info.block_size, info.length) == (
        123456, 42, 777, BLOCK_SIZE, len(header))
    assert window_format.parse_window_header(gzip.compress(b'plain gzip')) is None


@pytest.mark.parametrize('level', [1, 6, 9])
def test_a_block_never_grows_more_than_the_bound(level):
    block = random.Random(level).randbytes(BLOCK_SIZE)
    dictionary = random.Random(level + 1).randbytes(32 * 1024)
    out = window.deflate_verified(block, dictionary, level, False, window_format.BLOCK_GROWTH)
    assert len(out) <= BLOCK_SIZE + window_format.BLOCK_GROWTH
    # A zlib that grows more is replaced by stored blocks.
    stored = window.deflate_verified(block, dictionary, level, False, 0)
    assert len(stored) <= BLOCK_SIZE + 100
    assert zlib.decompressobj(-zlib.MAX_WBITS, zdict=dictionary).decompress(stored) == block


def test_compresses_into_itself(tmp_path):
    original = _mixed(12 * MiB, 6 * MiB)
    path, fd, st, state, recorder, engine = _compress(tmp_path, original)
    try:
        engine.run()
        window.finish(fd, state, st.st_size, st.st_atime_ns, st.st_mtime_ns)
    finally:
        os.close(fd)
    assert recorder.commits == 1 and len(recorder.snapshots) >= 4
    with open(path, 'rb') as handle:
        assert gzip.decompress(handle.read()) == original
    assert os.stat(path).st_ino == st.st_ino and os.stat(path).st_mtime_ns == st.st_mtime_ns
    # The pending bytes stayed within the window: a few intervals of blocks, not the file.
    assert engine.peak_pending <= (engine.interval_blocks + 1) * BLOCK_SIZE


def test_never_commits_when_the_output_cannot_trail(tmp_path):
    original = random.Random(5).randbytes(6 * MiB)
    path, fd, _st, _state, recorder, engine = _compress(tmp_path, original)
    try:
        with pytest.raises(window.NotCommitted):
            engine.run()
    finally:
        os.close(fd)
    assert recorder.commits == 0
    with open(path, 'rb') as handle:
        assert handle.read() == original


def _write_over(path, data):
    # Same inode: the header names it.
    with open(path, 'r+b') as handle:
        handle.write(data)
        handle.truncate(len(data))


def _salvage_and_finish(path, size):
    fd = os.open(path, os.O_RDWR)
    try:
        salvaged = window_salvage.read_checkpoint(fd)
        if salvaged is None:
            raise window_salvage.SalvageError('not a window file (its first page is not the header)')
        if not salvaged.complete:
            window.WindowCompressor(fd, size, salvaged.state, 6, 2, lambda _state: None).run()
        window.finish(fd, salvaged.state, size, 0, 0)
    finally:
        os.close(fd)
    with open(path, 'rb') as handle:
        return gzip.decompress(handle.read())


def test_salvage_at_every_checkpoint_and_after_torn_writes(tmp_path):
    original = _mixed(10 * MiB, 5 * MiB, seed=7)
    path, fd, st, state, recorder, engine = _compress(tmp_path, original)
    try:
        engine.run()
    finally:
        os.close(fd)
    snapshots = recorder.snapshots
    rng = random.Random(11)
    salvaged_torn = 0
    for index in range(1, len(snapshots)):
        durable, later = snapshots[index - 1], snapshots[index]
        for trial in range(3):
            torn = bytearray(durable)
            for page in range(0, len(later), PAGE):
                if rng.random() < 0.5:
                    torn[page:page + PAGE] = later[page:page + PAGE]
            _write_over(path, bytes(torn))
            try:
                got = _salvage_and_finish(path, len(original))
            except window_salvage.SalvageError:
                # Only a cut during the first write may be beyond salvage.
                assert index == 1, 'salvage refused after the first write was durable'
                continue
            assert got == original, 'salvage returned other bytes (checkpoint %d, trial %d)' % (index, trial)
            salvaged_torn += 1
    assert salvaged_torn >= 3 * (len(snapshots) - 2)


def test_salvage_of_a_complete_untruncated_stream(tmp_path):
    original = _text(6 * MiB, 3)
    path, fd, st, state, recorder, engine = _compress(tmp_path, original)
    try:
        engine.run()  # complete, trailer written, not yet truncated
        assert os.fstat(fd).st_size == len(original)
        salvaged = window_salvage.read_checkpoint(fd)
        assert salvaged.complete and salvaged.state.written == state.written
        assert (salvaged.state.crc32, salvaged.state.output_crc32) == (state.crc32, state.output_crc32)
    finally:
        os.close(fd)
    assert _salvage_and_finish(path, len(original)) == original


def test_salvage_ignores_other_gzip_files(tmp_path):
    path = tmp_path / 'other.gz'
    path.write_bytes(gzip.compress(_text(MiB, 4)))
    fd = os.open(str(path), os.O_RDONLY)
    try:
        assert window_salvage.read_checkpoint(fd) is None
    finally:
        os.close(fd)
