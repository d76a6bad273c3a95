# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the module under strace fault injection, and move a filesystem the
way a reboot does (another loop device number), for the recovery tests.

``run_injected(args, inject, tmpdir)`` runs the module file as its own
Python process (as AnsiballZ would) under ``strace -f -e inject=...``; the
product has no test hooks.  ``renumber(fs)`` unmounts a loop filesystem,
re-attaches its image on another loop device and mounts it at the same
place.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from cmzrun import COLLECTIONS, MODULE_PYNAME, _env, ensure_collection_link


# x86_64 system call numbers, for /proc/PID/syscall.
SYSCALL_NUMBERS = {'pwrite64': 18, 'fsync': 74, 'ftruncate': 77, 'renameat2': 316, 'fallocate': 285}


def spawn_injected(args, inject, tmpdir, check=False):
    """Start the module under ``strace -f -e inject=INJECT`` (one or a list); return the Popen.

    ``inject`` is strace's syntax, e.g. ``renameat2:signal=SIGKILL:when=1``,
    ``pwrite64:error=EIO:when=2`` or ``pwrite64:delay_enter=5000000:when=1``.
    """
    ensure_collection_link()
    env = _env()
    env['PYTHONPATH'] = str(COLLECTIONS)
    payload = dict(args)
    if check:
        payload['_ansible_check_mode'] = True
    fd, path = tempfile.mkstemp(prefix='cmz-fault-args-', suffix='.json', dir=tmpdir)
    with os.fdopen(fd, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': payload}, handle)
    injects = [inject] if isinstance(inject, str) else list(inject)
    syscalls = sorted(set(item.split(':', 1)[0] for item in injects))
    cmd = ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=%s' % ','.join(syscalls)]
    for item in injects:
        cmd += ['-e', 'inject=%s' % item]
    cmd += [sys.executable, '-m', MODULE_PYNAME, path]
    return subprocess.Popen(cmd, env=env, cwd='/', stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def sigkill(process, timeout=30):
    """SIGKILL a process this test started (by its own pid) and reap it."""
    try:
        os.kill(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=timeout)


def finish(process, timeout=300):
    """Wait for a spawn_injected process; return (returncode, result or None)."""
    out, _err = process.communicate(timeout=timeout)
    try:
        return process.returncode, json.loads(out)
    except ValueError:
        return process.returncode, None


def run_injected(args, inject, tmpdir, timeout=300, check=False):
    """Run the module under strace fault injection; return (returncode, result or None)."""
    return finish(spawn_injected(args, inject, tmpdir, check=check), timeout)


def tracee(process, timeout=60):
    """The pid of the module process that strace started.

    strace first forks short-lived copies of itself (to probe ptrace
    features): the tracee is the child that runs Python.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in os.listdir('/proc/%d/task' % process.pid):
            with open('/proc/%d/task/%s/children' % (process.pid, task)) as handle:
                children = handle.read().split()
            for child in children:
                try:
                    if os.readlink('/proc/%s/exe' % child) == os.path.realpath(sys.executable):
                        return int(child)
                except OSError:
                    continue
        time.sleep(0.005)
    raise AssertionError('strace started no module process')


def wait_in_syscall(pid, name, timeout=120):
    """Wait until the main thread of ``pid`` sits in system call ``name`` (an injected delay)."""
    number = str(SYSCALL_NUMBERS[name])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/syscall' % pid) as handle:
                if handle.read().split(' ', 1)[0] == number:
                    return
        except (IOError, OSError) as exc:
            # EAGAIN: the task was running while the kernel looked.
            if not os.path.exists('/proc/%d' % pid):
                raise AssertionError('process %d ended before it reached %s' % (pid, name))
            if exc.errno != errno.EAGAIN:
                raise
        time.sleep(0.005)
    raise AssertionError('process %d never reached %s' % (pid, name))


def _losetup(*args):
    return subprocess.run(['losetup'] + list(args), check=True, capture_output=True, text=True).stdout.strip()


def renumber(fs):
    """Unmount ``fs``, attach its image to a *different* loop device, mount it again.

    The machine is shared: another test may take a loop device between our
    attach and our mount, so a failed mount is retried on a fresh device.
    """
    subprocess.run(['umount', str(fs.mnt)], check=True)
    fs.mounted = False
    old = fs.dev
    _losetup('-d', old)
    fs.dev = None
    for attempt in range(3):
        fs.dev = _attach_elsewhere(fs.image, old)
        done = subprocess.run(['mount', '-t', fs.kind, fs.dev, str(fs.mnt)], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            fs.mounted = True
            return old, fs.dev
        _losetup('-d', fs.dev)
        fs.dev = None
        time.sleep(0.5)
    raise AssertionError('could not mount %s again: %s' % (fs.image, done.stderr))


def _attach_elsewhere(image, old):
    # Hold the old number with placeholders so that --find picks another.
    placeholders = []
    try:
        while _losetup('--find') == old:
            fd, placeholder = tempfile.mkstemp(prefix='cmz-it-placeholder-', dir='/var/tmp')
            os.close(fd)
            os.truncate(placeholder, 1 << 20)
            placeholders.append((_losetup('--find', '--show', placeholder), placeholder))
        device = _losetup('--find', '--show', str(image))
    finally:
        for device_held, placeholder in placeholders:
            _losetup('-d', device_held)
            os.unlink(placeholder)
    assert device != old, (old, device)
    return device
