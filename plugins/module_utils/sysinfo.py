# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What this process may use of the host: CPUs and memory.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  Standard library only (no Ansible imports), Python >= 3.8.

Sources: the affinity mask, ``/proc/meminfo``, ``/proc/self/cgroup`` and the
cgroup files found through the mount table (v2 ``cpu.max``, ``memory.max``,
``memory.current``; v1 ``cpu.cfs_quota_us``, ``cpu.cfs_period_us``,
``memory.limit_in_bytes``, ``memory.usage_in_bytes``).  The tightest limit on
the way up from this process's cgroup to the root of its mount applies.
"""

from __future__ import annotations

import os
import resource
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Sequence

from .mounts import is_under, read_mountinfo
from .results import printable

if TYPE_CHECKING:
    from .mounts import MountEntry

MEMINFO = '/proc/meminfo'
PROC_CGROUP = '/proc/self/cgroup'

# The share of the available memory one compressed copy may take by default.
DEFAULT_MEMORY_FRACTION = 0.5

# cgroup v1 uses "no limit" values near 2**63 rounded down to the page size.
_CGROUP_V1_UNLIMITED = 1 << 62


def read_meminfo(path: str = MEMINFO) -> dict[str, int]:
    """``/proc/meminfo`` as a dict of bytes (kB values multiplied out)."""
    info = {}
    with open(path) as f:
        for line in f:
            key, dummy, rest = line.partition(':')
            parts = rest.split()
            if not parts:
                continue
            try:
                value = int(parts[0])
            except ValueError:
                continue
            if len(parts) > 1 and parts[1] == 'kB':
                value *= 1024
            info[key.strip()] = value
    return info


def parse_proc_cgroup(text: str) -> tuple[str | None, dict[str, str]]:
    """``/proc/self/cgroup`` → (v2 path or None, {v1 controller: path})."""
    v2 = None
    v1 = {}
    for line in text.splitlines():
        parts = line.split(':', 2)
        if len(parts) != 3:
            continue
        hid, controllers, path = parts
        if hid == '0' and controllers == '':
            v2 = path
        else:
            for c in controllers.split(','):
                if c:
                    v1[c] = path
    return v2, v1


def _read_value(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except (IOError, OSError):
        return None


def _cgroup_dir(mount: MountEntry, cgroup_path: str) -> str | None:
    """Directory of ``cgroup_path`` in a cgroup filesystem mounted as ``mount``.

    The mount's root may be a sub-tree (cgroup namespaces, bind mounts);
    a cgroup outside of it cannot be reached (None).
    """
    root = mount.root.rstrip('/') or '/'
    if root != '/':
        if not is_under(cgroup_path, root):
            return None
        cgroup_path = cgroup_path[len(root):] or '/'
    return os.path.join(mount.mount_point, cgroup_path.lstrip('/')).rstrip('/') or '/'


def _walk_up(directory: str, top: str) -> Iterator[str]:
    """``directory``, its parent, ..., up to and including ``top``."""
    top = top.rstrip('/') or '/'
    d = directory.rstrip('/') or '/'
    while True:
        yield d
        if d == top or not is_under(d, top):
            return
        parent = os.path.dirname(d)
        if parent == d:
            return
        d = parent


def cgroup_dirs(entries: Sequence[MountEntry], v1_controller: str,
                proc_cgroup: str = PROC_CGROUP) -> list[tuple[str, MountEntry, str]]:
    """Where this process's cgroup lives: ``[(version, mount, directory), ...]``.

    The one resolver for every controller: cgroup v2 first (one unified
    hierarchy), then the v1 hierarchy that carries ``v1_controller``.  Only
    directories that exist are returned.
    """
    text = _read_value(proc_cgroup)
    if text is None:
        return []
    v2_path, v1 = parse_proc_cgroup(text)
    found = []
    if v2_path is not None:
        for mount in entries:
            if mount.fstype == 'cgroup2':
                found.append(('v2', mount, _cgroup_dir(mount, v2_path)))
    if v1_controller in v1:
        for mount in entries:
            if mount.fstype == 'cgroup' and v1_controller in mount.super_options:
                found.append(('v1', mount, _cgroup_dir(mount, v1[v1_controller])))
    return [(version, mount, d) for version, mount, d in found if d is not None and os.path.isdir(d)]


def _limit_ancestors(entries: Sequence[MountEntry], v1_controller: str, files: Mapping[str, tuple[str, ...]],
                     proc_cgroup: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(version, directory, {name: text})`` from this cgroup up to its mount's root."""
    for version, mount, directory in cgroup_dirs(entries, v1_controller, proc_cgroup):
        names = files[version]
        for d in _walk_up(directory, mount.mount_point):
            values = dict((name, _read_value(os.path.join(d, name))) for name in names)
            if all(value is not None for value in values.values()):
                yield version, d, values


def cgroup_memory(entries: Sequence[MountEntry], proc_cgroup: str = PROC_CGROUP) -> dict[str, Any] | None:
    """Memory limit and headroom of this process's cgroup, or None.

    The tightest limit on the way up to the cgroup mount's root wins
    (``headroom`` = limit - usage at that level).  Returns None when no
    memory limit applies or the cgroup files cannot be read.
    """
    files = {'v2': ('memory.max', 'memory.current'), 'v1': ('memory.limit_in_bytes', 'memory.usage_in_bytes')}
    best = None
    best_version = None
    for version, d, values in _limit_ancestors(entries, 'memory', files, proc_cgroup):
        if best_version is not None and version != best_version:
            break  # v2 answered: the v1 hierarchy does not apply as well
        limit_text, usage_text = (values[name] for name in files[version])
        if limit_text == 'max':
            continue
        try:
            limit = int(limit_text)
            usage = int(usage_text)
        except ValueError:
            continue
        if limit >= _CGROUP_V1_UNLIMITED:
            continue
        headroom = max(limit - usage, 0)
        if best is None or headroom < best['headroom']:
            best = {'version': version, 'path': printable(d), 'limit': limit, 'usage': usage, 'headroom': headroom}
            best_version = version
    return best


def cgroup_cpu_quota(entries: Sequence[MountEntry] | None = None, proc_cgroup: str = PROC_CGROUP) -> float | None:
    """CPUs allowed by the tightest cgroup v2 or v1 CPU quota, or None."""
    if entries is None:
        entries = read_mountinfo()
    files = {'v2': ('cpu.max',), 'v1': ('cpu.cfs_quota_us', 'cpu.cfs_period_us')}
    best = None
    for version, _d, values in _limit_ancestors(entries, 'cpu', files, proc_cgroup):
        try:
            if version == 'v2':
                quota, period = (values['cpu.max'].split() + [''])[:2]
                if quota == 'max' or not period:
                    continue
                cpus = float(quota) / float(period)
            else:
                quota = int(values['cpu.cfs_quota_us'])
                if quota <= 0:
                    continue
                cpus = float(quota) / float(values['cpu.cfs_period_us'])
        except ValueError:
            continue
        best = cpus if best is None else min(best, cpus)
    return best


def usable_cpus(entries: Sequence[MountEntry] | None = None) -> int:
    """CPUs this process may really use: affinity mask and cgroup quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota(entries)
    if quota:
        cpus = min(cpus, max(1, int(quota + 0.5)))
    return max(1, cpus)


def memory_status(entries: Sequence[MountEntry], meminfo: str = MEMINFO,
                  proc_cgroup: str = PROC_CGROUP) -> dict[str, Any]:
    """MemTotal, MemAvailable and the cgroup limit if any.

    ``available`` is what this process may still use: the smaller of
    MemAvailable and the cgroup headroom.
    """
    try:
        info = read_meminfo(meminfo)
    except (IOError, OSError):
        info = {}
    available = info.get('MemAvailable', info.get('MemFree'))
    cgroup = cgroup_memory(entries, proc_cgroup)
    effective = available
    if cgroup is not None and (effective is None or cgroup['headroom'] < effective):
        effective = cgroup['headroom']
    return {
        'mem_total': info.get('MemTotal'),
        'mem_available': available,
        'swap_free': info.get('SwapFree'),
        'cgroup': cgroup,
        'available': effective,
    }


def memory_available(mount_entries: Sequence[MountEntry] | None = None) -> int | None:
    """MemAvailable, lowered to the cgroup's headroom when that is smaller."""
    if mount_entries is None:
        mount_entries = read_mountinfo()
    return memory_status(mount_entries)['available']


def memory_budget(available: int | None, limit: int | None = None,
                  fraction: float = DEFAULT_MEMORY_FRACTION) -> int | None:
    """Most bytes one compressed copy may take: ``limit`` when set, else ``fraction`` of ``available``."""
    if limit is not None:
        return limit
    if available is None:
        return None
    return int(available * fraction)


def peak_rss() -> int:
    """The process's peak resident set size in bytes.

    VmHWM of /proc/self/status: ru_maxrss also counts, after an exec, the
    peak of the process image that exec replaced, which for a child started
    with vfork (Python's subprocess, Ansible's) is the whole parent's.
    """
    try:
        with open('/proc/self/status') as handle:
            for line in handle:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) * 1024
    except (IOError, OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
