# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A live writer for the open-file tests and the benchmark, and the checks of its stream.

As a script: ``python livewriter.py PATH STATUS [--rate LINES_PER_S] [--flags append|write]
[--unlink] [--line-bytes N]`` opens PATH (``O_WRONLY|O_APPEND|O_CREAT`` by
default) and writes numbered lines, one ``write()`` each, as fast as it can
or at ``--rate``.  A write that fails with ENOSPC is retried with the same
line (the filesystem is full: that is the writer's world, not an error of
ours); any other error is counted.  Every 0.2 s and on SIGTERM it writes
STATUS (JSON): lines written, ENOSPC retries, other errors, the worst write
latency, how many writes took more than 1, 10 and 100 ms, and ``alive``.  With ``--unlink`` it removes PATH once opened (a
deleted-but-open log).

As a library: ``LiveWriter`` starts and stops it (by its own pid);
``check_stream`` proves that a set of .gz files followed by the live file is
exactly lines 0..N-1, once each, in order.
"""

from __future__ import annotations

import argparse
import errno
import gzip
import json
import os
import re
import signal
import subprocess
import sys
import time

LINE_FORMAT = b'%010d %s\n'
DEFAULT_LINE_BYTES = 64
_LINE = re.compile(rb'^(\d{10}) x*$')


def _write_status(path, status):
    tmp = path + '.tmp'
    with open(tmp, 'w') as handle:
        json.dump(status, handle)
    os.replace(tmp, path)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument('path')
    parser.add_argument('status')
    parser.add_argument('--rate', type=float, default=0)
    parser.add_argument('--flags', choices=['append', 'write'], default='append')
    parser.add_argument('--unlink', action='store_true')
    parser.add_argument('--line-bytes', type=int, default=DEFAULT_LINE_BYTES)
    parser.add_argument('--burst', type=int, default=0, help='bytes written as fast as possible before --rate applies')
    args = parser.parse_args(argv)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if args.flags == 'append' else 0)
    fd = os.open(args.path, flags, 0o644)
    if args.flags == 'write':
        os.lseek(fd, 0, os.SEEK_END)
    if args.unlink:
        os.unlink(args.path)
    padding = b'x' * max(0, args.line_bytes - 12)
    status = {'pid': os.getpid(), 'lines': 0, 'enospc': 0, 'errors': 0, 'worst_latency': 0.0,
              'over_1ms': 0, 'over_10ms': 0, 'over_100ms': 0, 'alive': True, 'last_error': None}
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    next_status = time.monotonic()
    interval = 1.0 / args.rate if args.rate else 0.0
    next_line = time.monotonic()
    while not stop:
        line = LINE_FORMAT % (status['lines'], padding)
        started = time.monotonic()
        try:
            os.write(fd, line)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                status['enospc'] += 1
                time.sleep(0.001)
            else:
                status['errors'] += 1
                status['last_error'] = str(exc)
                time.sleep(0.01)
            continue
        now = time.monotonic()
        latency = now - started
        status['worst_latency'] = max(status['worst_latency'], latency)
        if latency > 0.001:
            status['over_1ms'] += 1
            status['over_10ms'] += latency > 0.01
            status['over_100ms'] += latency > 0.1
        status['lines'] += 1
        if now >= next_status:
            _write_status(args.status, status)
            next_status = now + 0.2
        if interval and status['lines'] * len(line) >= args.burst:
            # At the rate from here on (from now, when the burst just ended).
            next_line = max(next_line, now - 1.0) + interval
            delay = next_line - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    status['alive'] = False
    _write_status(args.status, status)
    os.close(fd)


class LiveWriter(object):
    """The script above as a child process."""

    def __init__(self, path, status_path, rate=0, flags='append', unlink=False, line_bytes=DEFAULT_LINE_BYTES,
                 burst=0):
        self.path = str(path)
        self.status_path = str(status_path)
        self.line_bytes = line_bytes
        cmd = [sys.executable, os.path.abspath(__file__), self.path, self.status_path, '--rate', str(rate),
               '--flags', flags, '--line-bytes', str(line_bytes), '--burst', str(burst)] + \
            (['--unlink'] if unlink else [])
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        self.pid = self.process.pid
        deadline = time.monotonic() + 30
        while not os.path.exists(self.status_path):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError('the writer did not start (rc %s)' % self.process.poll())
            time.sleep(0.01)

    def status(self):
        with open(self.status_path) as handle:
            return json.load(handle)

    def alive(self):
        return self.process.poll() is None

    def wait_lines(self, count, timeout=120):
        deadline = time.monotonic() + timeout
        while self.status()['lines'] < count:
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError('the writer stopped at %s' % self.status())
            time.sleep(0.02)

    def wait_bytes(self, size, timeout=120):
        self.wait_lines(size // self.line_bytes, timeout)

    def still_writing(self, timeout=30):
        """Whether the line count goes up again (the writer is not stuck)."""
        before = self.status()['lines']
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.25)
            if self.status()['lines'] > before:
                return True
        return False

    def stop(self):
        """SIGTERM (only after the test's checks) and the final status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.status()

    def kill(self):
        if self.alive():
            self.process.kill()
            self.process.wait()


def rotation_key(name):
    """Sort key of NAME-YYYYmmddTHHMMSSZ[-N].gz: time, then N."""
    match = re.search(r'-(\d{8}T\d{6}Z)(?:-(\d+))?\.gz$', name)
    assert match, name
    return match.group(1), int(match.group(2) or 1)


def saved_parts(directory, base):
    """The rotation-style .gz files of ``base`` in ``directory``, oldest first."""
    names = [n for n in os.listdir(directory) if n.startswith(base + '-') and n.endswith('.gz')]
    return [os.path.join(directory, n) for n in sorted(names, key=rotation_key)]


def live_tail(path_or_fd):
    """The live file from its first data byte (after the holes punched at its start)."""
    fd = os.open(path_or_fd, os.O_RDONLY) if isinstance(path_or_fd, str) else path_or_fd
    try:
        size = os.fstat(fd).st_size
        try:
            start = os.lseek(fd, 0, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            start = size
        os.lseek(fd, start, os.SEEK_SET)
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 22)
            if not chunk:
                break
            chunks.append(chunk)
        return b''.join(chunks)
    finally:
        if isinstance(path_or_fd, str):
            os.close(fd)


def expected_lines(count, line_bytes):
    padding = b'x' * max(0, line_bytes - 12)
    return b''.join([LINE_FORMAT % (number, padding) for number in range(count)])


def check_stream(gz_paths, live_bytes, at_least=0, line_bytes=DEFAULT_LINE_BYTES):
    """Assert the .gz files then the live bytes are lines 0..N-1 in order; return N.

    The last line may be cut (the writer is still writing); it is ignored.
    """
    stream = b''.join(gzip.decompress(open(p, 'rb').read()) for p in gz_paths) + live_bytes
    complete = stream[:stream.rfind(b'\n') + 1]
    count = complete.count(b'\n')
    if complete != expected_lines(count, line_bytes):
        for number, line in enumerate(complete.split(b'\n')):
            match = _LINE.match(line)
            assert match and int(match.group(1)) == number, (
                'line %d of the saved stream is %r (%d .gz files, %d live bytes)'
                % (number, line[:40], len(gz_paths), len(live_bytes)))
        raise AssertionError('the saved stream differs from lines 0..%d' % (count - 1))
    assert count >= at_least, (count, at_least)
    return count


if __name__ == '__main__':
    main()
