# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Many small files through the real module (issue 8: 100,000 files took 662 s).

Mounts a tmpfs at /mnt/cmz-many-PID, writes N small log files into one
directory, runs ``ansible localhost -c local -m sre.cmemgzip.cmemgzip`` on it
(recurse) and reports the wall time, seconds per file, the controller's peak
RSS (the ``ansible`` processes, sampled every 0.1 s; the module's own peak
comes from its result) and the result's size.  Root is needed for the mount.

    python3 benchmarks/many_files.py --files 100000 --size 16K --min-size 0
    python3 benchmarks/many_files.py --files 100000 --size 16K           # default min_size: all skipped
    python3 benchmarks/many_files.py --collections DIR ...               # another tree (e.g. main's)

``--collections`` is a directory holding ``ansible_collections/sre/cmemgzip``
(default: this working tree's .cache/collections).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINE = b'2026-11-26T10:00:00.123456+00:00 web-01 app[4242]: INFO request served in 12 ms path=/api/v1/items id=%08d\n'


def human(text):
    units = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def write_files(directory, count, size):
    for index in range(count):
        body = (LINE % index) * (size // len(LINE % index) + 1)
        with open(os.path.join(directory, 'f%06d.log' % index), 'wb') as handle:
            handle.write(body[:size])


def _rss(pid):
    try:
        with open('/proc/%d/status' % pid) as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _descendants(root):
    children = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry) as handle:
                parent = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, pending = [], [root]
    while pending:
        pid = pending.pop()
        found.append(pid)
        pending.extend(children.get(pid, []))
    return found


def _is_controller(pid):
    try:
        with open('/proc/%d/cmdline' % pid, 'rb') as handle:
            return b'bin/ansible' in handle.read()
    except OSError:
        return False


def run_module(args, collections, timeout):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=collections,
               ANSIBLE_HOME=os.path.join(REPO, '.cache', 'ansible-home'),
               ANSIBLE_STDOUT_CALLBACK='ansible.builtin.minimal', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_NOCOLOR='1', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    cmd = ['ansible', 'localhost', '-i', 'localhost,', '-c', 'local', '-m', 'sre.cmemgzip.cmemgzip',
           '-a', json.dumps(args), '-e', 'ansible_python_interpreter=%s' % sys.executable]
    peak = {'controller': 0}
    started = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        done = threading.Event()

        def sample():
            while not done.wait(0.1):
                total = sum(_rss(pid) for pid in _descendants(proc.pid) if _is_controller(pid))
                peak['controller'] = max(peak['controller'], total)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc.wait(timeout=timeout)
        done.set()
        sampler.join()
        seconds = time.monotonic() - started
        out.seek(0)
        text = out.read().decode('utf-8', 'replace')
    marker = text.find('=> {')
    if marker < 0:
        raise SystemExit('no result from ansible:\n' + text[-3000:])
    result = json.JSONDecoder().raw_decode(text[marker + 3:])[0]
    return seconds, peak['controller'], len(text), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--files', type=int, default=100000)
    parser.add_argument('--size', default='16K', help='bytes per file (K/M suffix)')
    parser.add_argument('--min-size', default='0', help="the module's min_size (1M: every file skipped)")
    parser.add_argument('--collections', default=os.path.join(REPO, '.cache', 'collections'))
    parser.add_argument('--extra', default='{}', help='more module arguments, as JSON')
    parser.add_argument('--timeout', type=int, default=3600)
    options = parser.parse_args()
    size = human(options.size)
    mount_point = '/mnt/cmz-many-%d' % os.getpid()
    shm = '/mnt/cmz-many-%d-journal' % os.getpid()
    for path in (mount_point, shm):
        os.mkdir(path, 0o700)
    tmpfs_size = options.files * (size + 8192) * 2 + (64 << 20)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%d,nr_inodes=%d' % (tmpfs_size, options.files * 2 + 1000),
                    'cmz-many', mount_point], check=True)
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1g', 'cmz-many-journal', shm], check=True)
    try:
        data = os.path.join(mount_point, 'many')
        os.mkdir(data)
        write_files(data, options.files, size)
        args = dict({'path': [data], 'recurse': True, 'min_size': options.min_size, 'journal_dir': shm},
                    **json.loads(options.extra))
        seconds, controller_rss, output_bytes, result = run_module(args, options.collections, options.timeout)
        report = {
            'files': options.files, 'size': size, 'min_size': options.min_size, 'seconds': round(seconds, 1),
            'ms_per_file': round(1000.0 * seconds / options.files, 3),
            'controller_peak_rss_mib': round(controller_rss / 1048576.0, 1),
            'module_peak_rss_mib': round(result.get('memory', {}).get('peak_rss', 0) / 1048576.0, 1),
            'output_mib': round(output_bytes / 1048576.0, 2), 'msg': result.get('msg'),
            'listed': len(result.get('files', [])), 'omitted': result.get('files_omitted', {}).get('count'),
        }
        print(json.dumps(report, indent=1))
    finally:
        for path in (mount_point, shm):
            subprocess.run(['umount', path], check=False)
            os.rmdir(path)


if __name__ == '__main__':
    main()
