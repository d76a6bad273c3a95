# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the host can give us: CPUs, memory, filesystems."""

from __future__ import absolute_import, division, print_function

import os
import resource

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


def _meminfo_bytes(field):
    for line in (_read_text('/proc/meminfo') or '').splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_memory_headroom():
    """Bytes the process's cgroup can still charge, or None when unlimited."""
    cgroup_dir = _own_cgroup_v2_dir()
    candidates = []
    if cgroup_dir:
        candidates.append((os.path.join(cgroup_dir, 'memory.max'), os.path.join(cgroup_dir, 'memory.current')))
    candidates.append(('/sys/fs/cgroup/memory/memory.limit_in_bytes', '/sys/fs/cgroup/memory/memory.usage_in_bytes'))
    for limit_path, usage_path in candidates:
        limit = (_read_text(limit_path) or '').strip()
        usage = (_read_text(usage_path) or '').strip()
        if not limit or not usage or limit == 'max':
            continue
        limit = int(limit)
        if limit >= 1 << 60:  # cgroup v1 spells "unlimited" as a huge number
            continue
        return max(0, limit - int(usage))
    return None


def memory_available():
    """MemAvailable, lowered to the cgroup's headroom when that is smaller."""
    available = _meminfo_bytes('MemAvailable')
    if available is None:
        available = (_meminfo_bytes('MemFree') or 0) + (_meminfo_bytes('Cached') or 0)
    headroom = _cgroup_memory_headroom()
    if headroom is not None:
        available = min(available, headroom)
    return available


def peak_rss():
    """The process's peak resident set size in bytes (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _unescape_mountinfo(field):
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if '\\' not in field:
        return field
    out = []
    index = 0
    while index < len(field):
        if field[index] == '\\' and field[index + 1:index + 4].isdigit():
            out.append(chr(int(field[index + 1:index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return ''.join(out)


class Mount(object):
    __slots__ = ('mount_point', 'device_number', 'fstype', 'source')

    def __init__(self, mount_point, device_number, fstype, source):
        self.mount_point = mount_point
        self.device_number = device_number
        self.fstype = fstype
        self.source = source


def parse_mountinfo(text):
    """Mounts from /proc/PID/mountinfo text, in mount order."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(' - ')
        if not sep:
            continue
        fields = left.split()
        rest = right.split()
        if len(fields) < 5 or len(rest) < 2:
            continue
        major, minor = fields[2].split(':', 1)
        mounts.append(Mount(_unescape_mountinfo(fields[4]), os.makedev(int(major), int(minor)),
                            rest[0], _unescape_mountinfo(rest[1])))
    return mounts


class MountTable(object):
    """Find the mount a path lives on."""

    def __init__(self, mounts=None):
        if mounts is None:
            mounts = parse_mountinfo(_read_text('/proc/self/mountinfo') or '')
        self._mounts = mounts

    def find(self, path, device_number=None):
        """The mount of ``path``: the longest mount point containing it.

        When several mounts stack on one point, the last one is visible.
        ``device_number`` prefers a mount of that device (btrfs subvolumes
        report anonymous device numbers, hence the path fallback).
        """
        path = os.path.realpath(path)
        best = None
        for mount in self._mounts:
            point = mount.mount_point
            inside = path == point or path.startswith(point.rstrip('/') + '/')
            if inside and (best is None or len(point) >= len(best.mount_point)):
                best = mount
        if device_number is not None and best is not None and best.device_number != device_number:
            for mount in reversed(self._mounts):
                if mount.device_number == device_number and (
                        path == mount.mount_point or path.startswith(mount.mount_point.rstrip('/') + '/')):
                    return mount
        return best


def filesystem_usage(path):
    """statvfs of ``path`` in bytes and inodes."""
    stats = os.statvfs(path)
    return {
        'size': stats.f_blocks * stats.f_frsize,
        'free': stats.f_bfree * stats.f_frsize,
        'avail': stats.f_bavail * stats.f_frsize,
        'inodes': stats.f_files,
        'inodes_free': stats.f_ffree,
    }
