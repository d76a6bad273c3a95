# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A dead network mount for the tests: a FUSE filesystem whose server is stopped.

``dead_fuse`` (pytest fixture) mounts fuse_server.py (Debian's python3 with
python3-fusepy; fuse3 for /dev/fuse and fusermount) on a fresh
``/mnt/cmz-it-fuse-*``, lets a process hold a file there, and stops the
server with SIGSTOP: from then on any stat() of that file, including through
``/proc/PID/fd/N`` of the holder, blocks until SIGCONT.  Teardown resumes the
server, ends the processes it started (by pid), unmounts exactly that mount
point and removes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

FUSE_PYTHON = '/usr/bin/python3'   # Debian's: python3-fusepy installs there
SERVER = Path(__file__).with_name('fuse_server.py')


def _fusepy_available():
    if not os.path.exists('/dev/fuse') or not os.path.exists(FUSE_PYTHON):
        return False
    probe = subprocess.run([FUSE_PYTHON, '-c', 'import fusepy'], capture_output=True, check=False)
    return probe.returncode == 0


def blocks(function, seconds=1.0):
    """Whether ``function()`` is still running after ``seconds`` (it is left behind, daemonised)."""
    done = threading.Event()

    def target():
        try:
            function()
        except OSError:
            pass
        done.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return not done.wait(seconds)


class DeadFuse(object):
    def __init__(self):
        self.mnt = Path(tempfile.mkdtemp(prefix='cmz-it-fuse-', dir='/mnt'))
        self.server = None
        self.processes = []
        self.mounted = False
        self.stopped = False

    def start(self):
        self.server = subprocess.Popen([FUSE_PYTHON, str(SERVER), str(self.mnt)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _attempt in range(100):
            if os.path.ismount(self.mnt):
                self.mounted = True
                return self
            if self.server.poll() is not None:
                raise AssertionError('the FUSE server ended: %s' % self.server.stderr.read())
            time.sleep(0.05)
        raise AssertionError('%s was not mounted' % self.mnt)

    def hold(self, name, data=b'held\n'):
        """A process (sleep) holding ``name`` on the mount, opened for appending."""
        path = self.mnt / name
        path.write_bytes(data)
        with open(path, 'ab') as handle:
            process = subprocess.Popen(['sleep', '600'], stdout=handle, stdin=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def start_process(self, args, **kwargs):
        process = subprocess.Popen(args, **kwargs)
        self.processes.append(process)
        return process

    def stop(self):
        """SIGSTOP the server and prove that a stat() of its files now blocks."""
        os.kill(self.server.pid, signal.SIGSTOP)
        self.stopped = True
        probe = self.mnt / ('probe-%d' % os.getpid())
        assert blocks(lambda: os.stat(probe)), 'a stat() on the stopped FUSE mount did not block'

    def cleanup(self):
        if self.server is not None and self.stopped:
            os.kill(self.server.pid, signal.SIGCONT)
            self.stopped = False
        for process in self.processes:
            process.kill()
            process.wait()
        if self.mounted:
            for _attempt in range(50):
                if subprocess.run(['umount', str(self.mnt)], capture_output=True, check=False).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(['umount', '-l', str(self.mnt)], capture_output=True, check=False)
            self.mounted = False
        if self.server is not None:
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        try:
            self.mnt.rmdir()
        except OSError:
            pass


@pytest.fixture
def dead_fuse():
    if os.geteuid() != 0:
        pytest.skip('needs root (mount)')
    if not _fusepy_available():
        pytest.skip('needs /dev/fuse and Debian python3-fusepy (fuse3)')
    fuse = DeadFuse()
    try:
        yield fuse.start()
    finally:
        fuse.cleanup()
