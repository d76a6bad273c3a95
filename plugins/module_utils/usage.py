# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Measure the local filesystems of this host: statvfs, thresholds, paths.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  Standard library only (no Ansible imports), Python >= 3.8.
Used by the ``sre.cmemgzip.fs_usage_info`` module and the engine; everything here
only reads.  ``os.statvfs`` is never called for excluded filesystems: a dead
NFS server would hang it.
"""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from . import codes
from .mounts import MOUNTINFO, RAM_FSTYPES, SCRATCH_MOUNT, MountTable, classify, mount_of_path, read_mountinfo
from .open_files import ProcScan
from .results import printable
from .sysinfo import memory_status

if TYPE_CHECKING:
    from .mounts import MountEntry


def _pct(part: float, whole: float) -> float:
    if whole <= 0:
        return 0.0
    return round(100.0 * part / whole, 2)


def statvfs_usage(path: str) -> dict[str, Any]:
    """Usage of the filesystem holding ``path`` in bytes and inodes.

    ``used_pct`` is computed like df(1): used / (used + avail), so the blocks
    reserved for root count as used; ``inodes_used_pct`` is used / total
    (0 where the filesystem does not count inodes, e.g. btrfs).
    """
    st = os.statvfs(path)
    frsize = st.f_frsize or st.f_bsize
    size = st.f_blocks * frsize
    free = st.f_bfree * frsize
    avail = st.f_bavail * frsize
    used = size - free
    inodes = st.f_files
    inodes_free = st.f_ffree
    inodes_used = max(inodes - inodes_free, 0)
    return {
        'size': size,
        'used': used,
        'free': free,
        'avail': avail,
        'used_pct': _pct(used, used + avail),
        'inodes': inodes,
        'inodes_used': inodes_used,
        'inodes_free': inodes_free,
        'inodes_avail': st.f_favail,
        'inodes_used_pct': _pct(inodes_used, inodes),
        'block_size': frsize,
        'statvfs_read_only': bool(st.f_flag & getattr(os, 'ST_RDONLY', 1)),
    }


def full_reasons(usage: dict[str, Any], max_used_pct: float, max_inodes_used_pct: float) -> list[str]:
    """Codes of the thresholds a filesystem has reached (inclusive)."""
    reasons = []
    if usage['size'] > 0 and usage['used_pct'] >= max_used_pct:
        reasons.append(codes.USED_PCT)
    if usage['inodes'] > 0 and usage['inodes_used_pct'] >= max_inodes_used_pct:
        reasons.append(codes.INODES_USED_PCT)
    return reasons


def measure(entries: list[MountEntry], max_used_pct: float = 90, max_inodes_used_pct: float = 95,
            include_fstypes: Sequence[str] | None = None, exclude_fstypes: Sequence[str] | None = None,
            mounts: Iterable[str] | None = None, statvfs: Callable[[str], dict[str, Any]] = statvfs_usage,
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """Measure local filesystems.

    Returns ``(filesystems, excluded, missing)``: a list of dicts (one per
    filesystem), a list of ``{mount, fstype, reason}`` for mounts not measured
    and the entries of ``mounts`` that matched no measured filesystem.
    """
    groups, excluded_entries = classify(entries, include_fstypes, exclude_fstypes)
    excluded = [{'mount': printable(e.mount_point), 'fstype': e.fstype, 'reason': r}
                for e, r in excluded_entries]
    wanted = None
    if mounts:
        wanted = set(os.path.normpath(m) if m != '/' else m for m in mounts)
    seen_wanted = set()
    filesystems = []
    for members in groups:
        points = [m.mount_point for m in members]
        if wanted is not None:
            hit = wanted.intersection(printable(p) for p in points)
            if not hit:
                continue
            seen_wanted.update(hit)
        usage = None
        errors = []
        primary = None
        for m in members:
            try:
                usage = statvfs(m.mount_point)
            except OSError as e:
                errors.append('%s: %s' % (printable(m.mount_point), e.strerror or e))
                continue
            primary = m
            break
        if usage is None:
            for m in members:
                excluded.append({'mount': printable(m.mount_point), 'fstype': m.fstype,
                                 'reason': 'statvfs_failed', 'detail': '; '.join(errors)})
            continue
        statvfs_ro = usage.pop('statvfs_read_only')
        reasons = full_reasons(usage, max_used_pct, max_inodes_used_pct)
        fs = {
            'mount': printable(primary.mount_point),
            'device': printable(primary.source),
            'fstype': primary.fstype,
            'dev': primary.dev,
            'root': printable(primary.root),
            'mount_id': primary.mount_id,
            'bind_mounts': [printable(m.mount_point) for m in members if m is not primary],
            'read_only': primary.read_only or statvfs_ro,
            'ram_backed': primary.fstype in RAM_FSTYPES,
            'scratch': primary.mount_point == SCRATCH_MOUNT,
            'full': bool(reasons),
            'full_reasons': reasons,
        }
        fs.update(usage)
        filesystems.append(fs)
    missing = []
    if wanted is not None:
        missing = sorted(wanted - seen_wanted)
    return filesystems, excluded, missing


def locate_paths(paths: Iterable[str], entries: list[MountEntry],
                 filesystems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where each path (shell globs allowed) lives.

    Returns a list of ``{path, resolved, exists, mount, fstype, measured}``:
    ``mount`` is the reported mount point of the filesystem (the primary one
    for bind mounts), ``measured`` false when that filesystem is excluded.
    A pattern that matches nothing gives one entry with ``exists: false``.
    """
    by_point = {}
    for fs in filesystems:
        by_point[fs['mount']] = fs
        for b in fs['bind_mounts']:
            by_point[b] = fs
    result = []
    for pattern in paths:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
            [pattern] if os.path.lexists(pattern) else [])
        if not matches:
            result.append({'path': pattern, 'resolved': None, 'exists': False, 'is_dir': False,
                           'mount': None, 'fstype': None, 'measured': False})
            continue
        for match in matches:
            resolved = os.path.realpath(match)
            entry = mount_of_path(resolved, entries)
            fs = by_point.get(printable(entry.mount_point)) if entry is not None else None
            result.append({
                'path': printable(match),
                'resolved': printable(resolved),
                'exists': True,
                'is_dir': os.path.isdir(resolved),
                'mount': fs['mount'] if fs else (printable(entry.mount_point) if entry else None),
                'fstype': entry.fstype if entry else None,
                'measured': fs is not None,
            })
    return result


def survey(max_used_pct: float = 90, max_inodes_used_pct: float = 95, include_fstypes: Sequence[str] | None = None,
           exclude_fstypes: Sequence[str] | None = None, mounts: Iterable[str] | None = None,
           paths: Iterable[str] | None = None, mountinfo: str = MOUNTINFO) -> dict[str, Any]:
    """Everything the fs_usage_info module returns, as one dict."""
    entries = read_mountinfo(mountinfo)
    filesystems, excluded, missing = measure(
        entries, max_used_pct=max_used_pct, max_inodes_used_pct=max_inodes_used_pct,
        include_fstypes=include_fstypes, exclude_fstypes=exclude_fstypes, mounts=mounts)
    count_deleted_open(filesystems, entries)
    return {
        'filesystems': filesystems,
        'full': [fs['mount'] for fs in filesystems if fs['full']],
        'excluded': excluded,
        'missing_mounts': missing,
        'paths': locate_paths(paths or [], entries, filesystems),
        'memory': memory_with_scratch(entries),
    }


def count_deleted_open(filesystems: list[dict[str, Any]], entries: list[MountEntry]) -> None:
    """Add ``deleted_open_bytes`` and ``deleted_open_files`` to each measured filesystem.

    One /proc scan (open_files.ProcScan) that looks only at descriptors on
    these filesystems: a dead network mount is never touched.
    """
    by_dev = {}
    for fs in filesystems:
        fs['deleted_open_bytes'] = 0
        fs['deleted_open_files'] = 0
        by_dev[fs['dev']] = fs
    for found in ProcScan(MountTable(entries)).deleted(lambda mount: mount.dev in by_dev):
        fs = by_dev[found.mount.dev]
        fs['deleted_open_bytes'] += found.st.st_blocks * 512
        fs['deleted_open_files'] += 1


def memory_with_scratch(entries: list[MountEntry], scratch: str = SCRATCH_MOUNT) -> dict[str, Any]:
    """sysinfo.memory_status, plus the space of the RAM scratch filesystem (/dev/shm)."""
    status = memory_status(entries)
    status['shm'] = None
    try:
        u = statvfs_usage(scratch)
    except OSError:
        return status
    status['shm'] = {'mount': scratch, 'size': u['size'], 'free': u['free'], 'avail': u['avail'],
                     'inodes_free': u['inodes_free']}
    return status
