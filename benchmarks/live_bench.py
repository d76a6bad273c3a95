# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Live mode under load: a 1 GiB log cut while a writer appends 10,000 lines/s.

    python3 benchmarks/live_bench.py                       # ext4 (collapse), 1G, 10000 lines/s
    python3 benchmarks/live_bench.py --fs tmpfs --size 256M --quick

1. A filesystem of its own (a loop ext4 or xfs image under /var/tmp, or a
   tmpfs) holds ``app.log``: SIZE of generated access log (tests/lib/loggen.py).
2. Baseline: the writer (tests/lib/livewriter.py, ``O_APPEND``, one write()
   per line) appends at RATE lines/s for SECONDS; its worst write latency and
   its slow writes are recorded.
3. The same writer again, and meanwhile the module's engine (its own Python
   process, as AnsiballZ runs it) with ``open_files: live``: time, bytes
   freed, the writer stall it reports, the writer's worst write latency.
4. Check: the .gz followed by the live file is the original SIZE bytes then
   the writer's lines, every one once (sha256 and an exact comparison).

Results go to benchmarks/results/live-<timestamp>.json and live-latest.md.
Root is needed (mount, losetup).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests', 'lib'))

from livewriter import LiveWriter, expected_lines, live_tail, saved_parts  # noqa: E402
from loggen import parse_size, write_log  # noqa: E402
from worktree import COLLECTIONS, link_collection  # noqa: E402

MODULE = 'ansible_collections.sre.cmemgzip.plugins.modules.cmemgzip'
RESULTS = os.path.join(REPO, 'benchmarks', 'results')


def _run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip()


class Filesystem(object):
    def __init__(self, kind, size):
        self.kind = kind
        self.mnt = tempfile.mkdtemp(prefix='cmz-bench-live-', dir='/mnt')
        self.image = self.dev = None
        if kind == 'tmpfs':
            _run(['mount', '-t', 'tmpfs', '-o', 'size=%d' % size, 'cmz-bench', self.mnt])
        else:
            fd, self.image = tempfile.mkstemp(prefix='cmz-bench-live-', suffix='.img', dir='/var/tmp')
            os.close(fd)
            os.truncate(self.image, size)
            _run({'ext4': ['mkfs.ext4', '-q', '-F', '-m', '0'], 'xfs': ['mkfs.xfs', '-q', '-f']}[kind] + [self.image])
            self.dev = _run(['losetup', '--find', '--show', self.image])
            _run(['mount', self.dev, self.mnt])

    def avail(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def close(self):
        subprocess.run(['umount', self.mnt], check=False)
        if self.dev:
            subprocess.run(['losetup', '-d', self.dev], check=False)
        if self.image:
            os.unlink(self.image)
        os.rmdir(self.mnt)


def run_module(args, workdir):
    """The module in its own process, as AnsiballZ runs it; (seconds, result)."""
    path = os.path.join(workdir, 'args.json')
    with open(path, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    started = time.monotonic()
    out = subprocess.run([sys.executable, '-m', MODULE, path], env=env, capture_output=True, check=False).stdout
    return time.monotonic() - started, json.loads(out)


def writer_phase(log, status, rate, seconds, during=None):
    """Run the writer for ``seconds`` (and ``during()`` meanwhile); its final status."""
    writer = LiveWriter(log, status, rate=rate, line_bytes=120)
    try:
        time.sleep(1)
        outcome = during() if during else None
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.1)
        return writer.stop(), outcome
    finally:
        writer.kill()


def verify(fs, log, original_sha, original_size, lines):
    """The .gz files then the live file: the original, then ``lines`` lines of the two writer runs."""
    parts = saved_parts(fs.mnt, 'app.log')
    stream = b''.join(gzip.decompress(open(p, 'rb').read()) for p in parts) + live_tail(log)
    head, tail = stream[:original_size], stream[original_size:]
    expected = b''.join(expected_lines(count, 120) for count in lines)
    return {'parts': len(parts), 'original_intact': hashlib.sha256(head).hexdigest() == original_sha,
            'appended_intact': tail == expected, 'lines_lost': sum(lines) - tail.count(b'\n'),
            'crc32': zlib.crc32(stream)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--fs', choices=['ext4', 'xfs', 'tmpfs'], default='ext4')
    parser.add_argument('--size', default='1G')
    parser.add_argument('--rate', type=int, default=10000)
    parser.add_argument('--seconds', type=float, default=20, help='writer time after the run (and for the baseline)')
    parser.add_argument('--level', type=int, default=6)
    parser.add_argument('--quick', action='store_true', help='256M, 5 s')
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.seconds = '256M', 5
    if os.geteuid() != 0:
        sys.exit('live_bench.py needs root (mount, losetup)')
    link_collection()
    size = parse_size(args.size)
    fs = Filesystem(args.fs, max(size * 2, 400 << 20))
    workdir = tempfile.mkdtemp(prefix='cmz-bench-live-', dir='/dev/shm')
    os.mkdir(os.path.join(workdir, 'journal'), 0o700)
    try:
        log = os.path.join(fs.mnt, 'app.log')
        print('generating %s of access log on %s...' % (args.size, args.fs), flush=True)
        original_sha = write_log(log, size, seed=1, kind='access')
        baseline, _unused = writer_phase(log, os.path.join(workdir, 'baseline.json'), args.rate, args.seconds)
        print('baseline: %d lines, worst write %.1f ms' % (baseline['lines'], baseline['worst_latency'] * 1e3),
              flush=True)
        avail_before = fs.avail()
        module_args = {'path': [log], 'open_files': 'live', 'min_size': '0', 'level': args.level,
                       'journal_dir': os.path.join(workdir, 'journal')}
        live, (seconds, result) = writer_phase(log, os.path.join(workdir, 'live.json'), args.rate, args.seconds,
                                               during=lambda: run_module(module_args, workdir))
        avail_after = fs.avail()
        entry = [f for f in result['files'] if f['path'] == log][0]
        checked = verify(fs, log, original_sha, size, [baseline['lines'], live['lines']])
        report = {
            'fs': args.fs, 'size': size, 'rate': args.rate, 'level': args.level, 'seconds_module': round(seconds, 2),
            'action': entry['action'], 'strategy': entry.get('strategy'), 'bytes_saved': entry.get('bytes_saved'),
            'compressed_size': entry.get('compressed_size'), 'writer_stall_reported': entry.get('writer_stall'),
            'avail_before': avail_before, 'avail_after': avail_after,
            'baseline': baseline, 'live': live, 'check': checked,
        }
    finally:
        fs.close()
        subprocess.run(['rm', '-rf', '--one-file-system', workdir], check=False)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())
    with open(os.path.join(RESULTS, 'live-%s.json' % stamp), 'w') as handle:
        json.dump(report, handle, indent=1)
    table = '\n'.join([
        '| fs | size | writer | module time | freed | method | stall (reported) | worst write, baseline | '
        'worst write, during the cut | writes > 10 ms (baseline / cut) | lines lost |',
        '|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|',
        '| %s | %s | %d lines/s | %.1f s | %.1f MiB | %s | %.1f ms | %.1f ms | %.1f ms | %d / %d | %d |' % (
            args.fs, args.size, args.rate, report['seconds_module'], (report['bytes_saved'] or 0) / 1048576.0,
            report['strategy'], (report['writer_stall_reported'] or 0) * 1e3, baseline['worst_latency'] * 1e3,
            live['worst_latency'] * 1e3, baseline['over_10ms'], live['over_10ms'], checked['lines_lost']),
    ])
    with open(os.path.join(RESULTS, 'live-latest.md'), 'w') as handle:
        handle.write(table + '\n')
    print(table)
    ok = report['action'] == 'live_compressed' and checked['original_intact'] and checked['appended_intact']
    print('verified: %s' % ('yes, every byte and every line once' if ok else 'NO: %s' % checked))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
