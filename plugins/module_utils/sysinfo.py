# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the host can give us: CPUs, memory, filesystems."""

from __future__ import absolute_import, division, print_function

import os
import resource

from . import mounts

RAM_FSTYPES = frozenset(('tmpfs', 'ramfs'))
# Filesystems that never overwrite a block in place: rewriting a file there
# needs new blocks, so the replace protocol frees the old ones first.
COPY_ON_WRITE_FSTYPES = frozenset(('btrfs', 'zfs', 'bcachefs', 'nilfs2'))


def _read_text(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def _own_cgroup_v2_dir():
    text = _read_text('/proc/self/cgroup')
    for line in (text or '').splitlines():
        if line.startswith('0::'):
            return '/sys/fs/cgroup' + line[3:].strip()
    return None


def _cgroup_cpu_quota():
    """CPUs allowed by a cgroup v2 or v1 CPU quota, or None."""
    cgroup_dir = _own_cgroup_v2_dir()
    if cgroup_dir:
        text = _read_text(os.path.join(cgroup_dir, 'cpu.max'))
        if text:
            quota, period = (text.split() + [''])[:2]
            if quota != 'max' and period:
                return float(quota) / float(period)
    quota = _read_text('/sys/fs/cgroup/cpu/cpu.cfs_quota_us')
    period = _read_text('/sys/fs/cgroup/cpu/cpu.cfs_period_us')
    if quota and period and int(quota) > 0:
        return float(quota) / float(period)
    return None


def usable_cpus():
    """CPUs this process may really use: affinity mask and cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    if quota:
        cpus = min(cpus, max(1, int(quota + 0.5)))
    return max(1, cpus)


def memory_available(mount_entries=None):
    """MemAvailable, lowered to the cgroup's headroom when that is smaller."""
    if mount_entries is None:
        mount_entries = mounts.read_mountinfo()
    return mounts.memory_status(mount_entries)['available']


def peak_rss():
    """The process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MountTable(object):
    """Find the mount a path lives on."""

    def __init__(self, entries=None):
        self.entries = mounts.read_mountinfo() if entries is None else entries

    def find(self, path, device_number=None):
        """The visible mount holding ``path`` (a mounts.MountEntry), or None.

        ``device_number`` prefers a mount of that device: btrfs subvolumes
        report anonymous device numbers, hence the path is the fallback.
        """
        path = os.path.realpath(path)
        best = mounts.mount_of_path(path, self.entries)
        if device_number is None or best is None or os.makedev(best.major, best.minor) == device_number:
            return best
        for entry in reversed(self.entries):
            if os.makedev(entry.major, entry.minor) == device_number and mounts.is_under(path, entry.mount_point):
                return entry
        return best
