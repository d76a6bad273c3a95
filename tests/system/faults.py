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

import json
import os
import subprocess
import sys
import tempfile

from cmzrun import COLLECTIONS, MODULE_PYNAME, _env, ensure_collection_link


def run_injected(args, inject, tmpdir, trace=None, timeout=300):
    """Run the module under ``strace -f -e inject=INJECT``; return (returncode, result or None).

    ``inject`` is strace's syntax, e.g. ``renameat2:signal=SIGKILL:when=1``
    or ``pwrite64:error=EIO:when=2``.
    """
    ensure_collection_link()
    env = _env()
    env['PYTHONPATH'] = str(COLLECTIONS)
    fd, path = tempfile.mkstemp(prefix='cmz-fault-args-', suffix='.json', dir=tmpdir)
    with os.fdopen(fd, 'w') as handle:
        json.dump({'ANSIBLE_MODULE_ARGS': args}, handle)
    syscall = trace or inject.split(':', 1)[0]
    cmd = ['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=%s' % syscall, '-e', 'inject=%s' % inject,
           sys.executable, '-m', MODULE_PYNAME, path]
    done = subprocess.run(cmd, env=env, cwd='/', capture_output=True, timeout=timeout, check=False)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = None
    return done.returncode, result


def _losetup(*args):
    return subprocess.run(['losetup'] + list(args), check=True, capture_output=True, text=True).stdout.strip()


def renumber(fs):
    """Unmount ``fs``, attach its image to a *different* loop device, mount it again."""
    subprocess.run(['umount', str(fs.mnt)], check=True)
    fs.mounted = False
    old = fs.dev
    _losetup('-d', old)
    fs.dev = None
    # Hold the old number with a placeholder so that --find picks another.
    placeholders = []
    try:
        while _losetup('--find') == old:
            fd, image = tempfile.mkstemp(prefix='cmz-it-placeholder-', dir='/var/tmp')
            os.close(fd)
            os.truncate(image, 1 << 20)
            placeholders.append((_losetup('--find', '--show', image), image))
        fs.dev = _losetup('--find', '--show', str(fs.image))
    finally:
        for device, image in placeholders:
            _losetup('-d', device)
            os.unlink(image)
    assert fs.dev != old, (old, fs.dev)
    subprocess.run(['mount', '-t', fs.kind, fs.dev, str(fs.mnt)], check=True)
    fs.mounted = True
    return old, fs.dev
