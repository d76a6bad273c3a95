# SPDX-License-Identifier: GPL-3.0-or-later
import gzip
import hashlib
import io
import os
import random
import subprocess
import zlib

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils.gzip_member import (
    BLOCK_SIZE, Cancelled, OutputLimitExceeded, compress_stream,
)


def log_text(size, seed=7):
    rng = random.Random(seed)
    words = ['GET', 'POST', '/index.html', '/api/v1/items', '200', '404', 'Mozilla/5.0', 'curl/8.1', '-']
    out = io.StringIO()
    while out.tell() < size:
        out.write('10.0.%d.%d - - [26/Nov/2026:10:%02d:%02d +0000] "%s %s HTTP/1.1" %s %d "%s"\n' % (
            rng.randrange(256), rng.randrange(256), rng.randrange(60), rng.randrange(60), rng.choice(words[:2]),
            rng.choice(words[2:4]), rng.choice(words[4:6]), rng.randrange(99999), rng.choice(words[6:])))
    return out.getvalue().encode()[:size]


def compress_bytes(data, tmp_path, **kwargs):
    source = tmp_path / 'input'
    source.write_bytes(data)
    out = bytearray()
    fd = os.open(str(source), os.O_RDONLY)
    try:
        stats = compress_stream(fd, out.extend, **kwargs)
    finally:
        os.close(fd)
    return bytes(out), stats


@pytest.mark.parametrize('size', [0, 1, 1000, BLOCK_SIZE - 1, BLOCK_SIZE, BLOCK_SIZE + 1, 3 * BLOCK_SIZE + 12345])
@pytest.mark.parametrize('threads', [1, 3])
def test_round_trip_is_one_gzip_member(tmp_path, size, threads):
    data = log_text(size)
    out, stats = compress_bytes(data, tmp_path, level=6, threads=threads, name=b'input')
    assert gzip.decompress(out) == data
    assert stats.input_size == size
    assert stats.output_size == len(out)
    assert stats.crc32 == zlib.crc32(data)
    assert stats.output_crc32 == zlib.crc32(out)
    # exactly one member: the inflater consumes everything up to the trailer
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    header_len = 10 + len(b'input') + 1
    inflater.decompress(out[header_len:])
    assert inflater.eof and len(inflater.unused_data) == 8


def test_output_does_not_depend_on_thread_count(tmp_path):
    data = log_text(5 * BLOCK_SIZE // 2)
    one = compress_bytes(data, tmp_path, threads=1)[0]
    four = compress_bytes(data, tmp_path, threads=4)[0]
    assert one == four


def test_size_close_to_gzip_9(tmp_path):
    data = log_text(8 * BLOCK_SIZE)
    out = compress_bytes(data, tmp_path, level=9, threads=2)[0]
    reference = subprocess.run(['gzip', '-9', '-n', '-c'], input=data, stdout=subprocess.PIPE, check=True).stdout
    assert len(out) <= len(reference) * 1.002


def test_gzip_tool_accepts_it(tmp_path):
    data = log_text(2 * BLOCK_SIZE + 7)
    out = compress_bytes(data, tmp_path, name=b'access.log', mtime=1700000000)[0]
    archive = tmp_path / 'access.log.gz'
    archive.write_bytes(out)
    subprocess.run(['gzip', '-t', str(archive)], check=True)
    listed = subprocess.run(['gzip', '-lvN', str(archive)], stdout=subprocess.PIPE, check=True, text=True).stdout
    assert 'access.log' in listed
    unpacked = subprocess.run(['gzip', '-dc', str(archive)], stdout=subprocess.PIPE, check=True).stdout
    assert hashlib.sha256(unpacked).digest() == hashlib.sha256(data).digest()


def test_limit_stops_before_writing_past_it(tmp_path):
    data = os.urandom(3 * BLOCK_SIZE)
    written = []
    source = tmp_path / 'random'
    source.write_bytes(data)
    fd = os.open(str(source), os.O_RDONLY)
    try:
        with pytest.raises(OutputLimitExceeded):
            compress_stream(fd, written.append, max_output=len(data) - 1, threads=2)
    finally:
        os.close(fd)
    assert sum(len(chunk) for chunk in written) <= len(data) - 1


def test_cancel_stops_early(tmp_path):
    data = log_text(4 * BLOCK_SIZE)
    source = tmp_path / 'input'
    source.write_bytes(data)
    calls = []

    def cancelled():
        calls.append(1)
        return len(calls) > 1

    fd = os.open(str(source), os.O_RDONLY)
    try:
        with pytest.raises(Cancelled):
            compress_stream(fd, lambda chunk: None, threads=1, cancelled=cancelled)
    finally:
        os.close(fd)
    assert len(calls) == 2


@pytest.mark.parametrize('start,length', [(0, 0), (0, BLOCK_SIZE), (4096, BLOCK_SIZE - 1), (4096, 2 * BLOCK_SIZE + 7),
                                          (BLOCK_SIZE, 3 * BLOCK_SIZE)])
def test_length_reads_only_that_prefix(tmp_path, start, length):
    """A growing file: only [start, start + length) goes into the member, whatever follows."""
    data = log_text(5 * BLOCK_SIZE)
    source = tmp_path / 'input'
    source.write_bytes(data)
    out = bytearray()
    fd = os.open(str(source), os.O_RDONLY)
    try:
        os.lseek(fd, start, os.SEEK_SET)
        stats = compress_stream(fd, out.extend, threads=2, length=length)
    finally:
        os.close(fd)
    assert gzip.decompress(bytes(out)) == data[start:start + length]
    assert stats.input_size == length


def test_threads_within_a_memory_budget():
    from ansible_collections.sre.cmemgzip.plugins.module_utils.gzip_member import memory_per_thread, threads_within
    mib = 1024 * 1024
    assert threads_within(40 * mib, 1000) * memory_per_thread() <= 40 * mib
    assert threads_within(40 * mib, 2) == 2
    assert threads_within(1024, 8) == 1  # never fewer than one
    assert threads_within(10 ** 12, 1000) == 1000


def test_a_single_block_is_deflated_without_a_thread(tmp_path):
    """Many small files are the common case: a thread pool per file cost 1 ms each."""
    import threading
    source = tmp_path / 'input'
    source.write_bytes(b'small file\n' * 100)
    seen = []
    out = bytearray()

    def write(chunk):
        seen.append(threading.active_count())
        out.extend(chunk)

    fd = os.open(str(source), os.O_RDONLY)
    try:
        compress_stream(fd, write, threads=4)
    finally:
        os.close(fd)
    assert max(seen) == threading.active_count()
    assert zlib.decompress(bytes(out), 16 + zlib.MAX_WBITS) == b'small file\n' * 100
