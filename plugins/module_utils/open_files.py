# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which processes hold given files open, from /proc."""

from __future__ import absolute_import, division, print_function

import os


def _command_name(pid):
    try:
        with open('/proc/%s/comm' % pid) as handle:
            return handle.read().strip()
    except (IOError, OSError):
        return None


def holders(identities):
    """Map each (st_dev, st_ino) in ``identities`` to the processes holding it.

    Returns ``{(dev, ino): [{'pid': int, 'comm': str}, ...]}`` for the files
    that are open (by descriptor or memory map) in any process but this one.
    Processes that vanish while we look are ignored.
    """
    wanted = set(identities)
    found = {}
    if not wanted:
        return found
    own = str(os.getpid())
    try:
        pids = [entry for entry in os.listdir('/proc') if entry.isdigit() and entry != own]
    except OSError:
        return found
    for pid in pids:
        hits = set()
        fd_dir = '/proc/%s/fd' % pid
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            fds = []
        for fd in fds:
            try:
                st = os.stat(os.path.join(fd_dir, fd))
            except OSError:
                continue
            identity = (st.st_dev, st.st_ino)
            if identity in wanted:
                hits.add(identity)
        hits.update(_mapped(pid, wanted))
        if hits:
            holder = {'pid': int(pid), 'comm': _command_name(pid)}
            for identity in hits:
                found.setdefault(identity, []).append(holder)
    return found


def _mapped(pid, wanted):
    """Files of ``wanted`` that the process has memory-mapped."""
    hits = set()
    inodes = {ino for _dev, ino in wanted}
    try:
        with open('/proc/%s/maps' % pid) as handle:
            for line in handle:
                fields = line.split(None, 5)
                if len(fields) < 5 or fields[4] == '0' or int(fields[4]) not in inodes:
                    continue
                major, minor = fields[3].split(':', 1)
                identity = (os.makedev(int(major, 16), int(minor, 16)), int(fields[4]))
                if identity in wanted:
                    hits.add(identity)
    except (IOError, OSError, ValueError):
        pass
    return hits
