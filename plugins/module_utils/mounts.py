# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The mount table of this process, and what kind of filesystem each mount is.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  Standard library only (no Ansible imports), Python >= 3.8.

``/proc/self/mountinfo`` (proc(5)) has one line per mount, as seen from this
process's mount namespace and root::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)     (10)        (11)

mount id, parent id, major:minor, root of the mount inside its filesystem,
mount point, per-mount options, optional fields, ``-``, fstype, source,
super-block options.  Space, tab, newline and backslash in (4), (5) and (10)
are escaped as ``\\040``, ``\\011``, ``\\012`` and ``\\134``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from typing import Iterable, Sequence


MOUNTINFO = '/proc/self/mountinfo'
SCRATCH_MOUNT = '/dev/shm'

# Kernel interfaces and other filesystems without user data.
PSEUDO_FSTYPES = frozenset((
    'proc', 'sysfs', 'cgroup', 'cgroup2', 'devpts', 'mqueue', 'debugfs',
    'tracefs', 'securityfs', 'pstore', 'bpf', 'configfs', 'fusectl',
    'hugetlbfs', 'autofs', 'binfmt_misc', 'nsfs', 'rpc_pipefs', 'selinuxfs',
    'efivarfs', 'devtmpfs', 'ramfs', 'nfsd', 'sockfs', 'pipefs', 'anon_inodefs',
    'rootfs', 'fuse.lxcfs', 'fuse.portal', 'fuse.gvfsd-fuse', 'fuse.snapfuse',
    'overlayfs_pseudo', 'kernfs', 'zonefs', 'smackfs', 'apparmorfs',
))

# Read-only images: always 100 % used, nothing to free there.
IMAGE_FSTYPES = frozenset((
    'squashfs', 'iso9660', 'udf', 'erofs', 'cramfs', 'romfs',
))

# Network and cluster filesystems: not this host's disk, and shared with others.
NETWORK_FSTYPES = frozenset((
    'nfs', 'nfs4', 'cifs', 'smb3', 'smbfs', 'sshfs', 'fuse.sshfs', '9p',
    'ceph', 'fuse.ceph', 'glusterfs', 'fuse.glusterfs', 'lustre', 'gpfs',
    'beegfs', 'afs', 'ocfs2', 'gfs2', 'virtiofs', 'davfs', 'fuse.davfs',
    'ncpfs', 'coda', 'fuse.s3fs', 'fuse.rclone', 'fuse.juicefs', 'orangefs',
))

# Shell-style patterns for families of the above (nfs3, fuse.whatever...).
# Every FUSE filesystem, with a subtype or without: its server is a process,
# and a stopped one blocks statvfs() like a dead NFS server.
NETWORK_PATTERNS = ('nfs*', 'fuse', 'fuse.*')

RAM_FSTYPES = frozenset(('tmpfs', 'ramfs'))
# Filesystems that never overwrite a block in place: rewriting a file there
# needs new blocks, so the replace protocol frees the old ones first.
COPY_ON_WRITE_FSTYPES = frozenset(('btrfs', 'zfs', 'bcachefs', 'nilfs2'))
# Mount points below these paths are kernel interfaces (e.g. the tmpfs that
# holds cgroup v1 hierarchies at /sys/fs/cgroup).
KERNEL_PATH_PREFIXES = ('/proc', '/sys')


_ESCAPE_RE = re.compile(rb'\\([0-7]{3})')


def unescape(field: str | bytes) -> str:
    """Decode one mountinfo field: ``\\040`` and friends become bytes again.

    Returns a ``str`` decoded with the filesystem encoding (undecodable bytes
    become surrogates, so the path still works with ``os`` functions).
    """
    if isinstance(field, str):
        field = os.fsencode(field)
    raw = _ESCAPE_RE.sub(lambda m: bytes((int(m.group(1), 8),)), field)
    return os.fsdecode(raw)


class MountEntry(object):
    """One line of /proc/self/mountinfo."""

    __slots__ = ('mount_id', 'parent_id', 'major', 'minor', 'root', 'mount_point',
                 'mount_options', 'optional', 'fstype', 'source', 'super_options')

    def __init__(self, mount_id: int, parent_id: int, major: int, minor: int, root: str, mount_point: str,
                 mount_options: tuple[str, ...], optional: tuple[str, ...], fstype: str, source: str,
                 super_options: tuple[str, ...]) -> None:
        self.mount_id = mount_id
        self.parent_id = parent_id
        self.major = major
        self.minor = minor
        self.root = root
        self.mount_point = mount_point
        self.mount_options = mount_options
        self.optional = optional
        self.fstype = fstype
        self.source = source
        self.super_options = super_options

    @property
    def dev(self) -> str:
        return '%d:%d' % (self.major, self.minor)

    @property
    def read_only(self) -> bool:
        return 'ro' in self.mount_options or 'ro' in self.super_options

    def __repr__(self) -> str:
        return 'MountEntry(%d, %r, %s, %r)' % (self.mount_id, self.mount_point, self.fstype, self.dev)


def parse_mountinfo_line(line: str | bytes) -> MountEntry:
    """Parse one mountinfo line (str or bytes) into a MountEntry.

    Raises ValueError on a malformed line.
    """
    if isinstance(line, str):
        line = os.fsencode(line)
    fields = line.rstrip(b'\n').split(b' ')
    try:
        sep = fields.index(b'-', 6)
    except ValueError:
        raise ValueError('no separator in mountinfo line: %r' % (line,))
    if len(fields) < sep + 3 or sep < 6:
        raise ValueError('short mountinfo line: %r' % (line,))
    major, minor = fields[2].split(b':')
    super_options = fields[sep + 3] if len(fields) > sep + 3 else b''
    return MountEntry(
        mount_id=int(fields[0]),
        parent_id=int(fields[1]),
        major=int(major),
        minor=int(minor),
        root=unescape(fields[3]),
        mount_point=unescape(fields[4]),
        mount_options=tuple(os.fsdecode(fields[5]).split(',')),
        optional=tuple(os.fsdecode(f) for f in fields[6:sep]),
        fstype=unescape(fields[sep + 1]),
        source=unescape(fields[sep + 2]),
        super_options=tuple(os.fsdecode(super_options).split(',')) if super_options else (),
    )


def parse_mountinfo(text: str | bytes) -> list[MountEntry]:
    """Parse the whole of mountinfo (str or bytes); blank lines are ignored."""
    if isinstance(text, str):
        text = os.fsencode(text)
    return [parse_mountinfo_line(line) for line in text.split(b'\n') if line.strip()]


def read_mountinfo(path: str = MOUNTINFO) -> list[MountEntry]:
    with open(path, 'rb') as f:
        return parse_mountinfo(f.read())


def _match_any(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip('/') + '/')


def exclusion_reason(entry: MountEntry, include_fstypes: Sequence[str] | None = None,
                     exclude_fstypes: Sequence[str] | None = None) -> str | None:
    """Why a mount is not measured (a short code), or None to keep it.

    ``include_fstypes`` (shell patterns), when given, keeps only those types
    and overrides the built-in exclusions (so ``[nfs4]`` measures NFS).
    ``exclude_fstypes`` (shell patterns) always excludes.
    """
    fstype = entry.fstype
    if exclude_fstypes and _match_any(fstype, exclude_fstypes):
        return 'excluded_fstype'
    if include_fstypes:
        if _match_any(fstype, include_fstypes):
            return None
        return 'not_included_fstype'
    if fstype in PSEUDO_FSTYPES:
        return 'pseudo'
    if any(is_under(entry.mount_point, p) for p in KERNEL_PATH_PREFIXES):
        return 'kernel_path'
    if fstype in IMAGE_FSTYPES:
        return 'readonly_image'
    if fstype == 'fuseblk':  # ntfs-3g, exfat-fuse: a local block device
        return None
    if fstype in NETWORK_FSTYPES or _match_any(fstype, NETWORK_PATTERNS):
        return 'network'
    return None


def hidden_mount_ids(entries: list[MountEntry]) -> set[int]:
    """Ids of mounts that cannot be reached by path (over-mounted).

    A mount is hidden when another mount sits on the same mount point on top of
    it (its parent is the hidden mount, or it comes later in the table), or when
    its parent is hidden.
    """
    by_id = dict((e.mount_id, e) for e in entries)
    hidden = set()
    last_at = {}
    for e in entries:
        last_at[e.mount_point] = e.mount_id
    for e in entries:
        if last_at[e.mount_point] != e.mount_id:
            hidden.add(e.mount_id)
    for e in entries:
        parent = by_id.get(e.parent_id)
        if parent is not None and parent is not e and parent.mount_point == e.mount_point:
            hidden.add(parent.mount_id)
    # Children of hidden mounts are hidden as well (walk until stable).
    changed = True
    while changed:
        changed = False
        for e in entries:
            if e.mount_id not in hidden and e.parent_id in hidden and e.parent_id != e.mount_id:
                parent = by_id.get(e.parent_id)
                if parent is not None and parent.mount_point != e.mount_point:
                    hidden.add(e.mount_id)
                    changed = True
    return hidden


def _primary_sort_key(entry: MountEntry) -> tuple[bool, int, str, int]:
    # Prefer the mount of the whole filesystem, then the shortest path.
    return (entry.root != '/', len(entry.mount_point), entry.mount_point, entry.mount_id)


def classify(
        entries: list[MountEntry], include_fstypes: Sequence[str] | None = None,
        exclude_fstypes: Sequence[str] | None = None) -> tuple[list[list[MountEntry]], list[tuple[MountEntry, str]]]:
    """Split mounts into measured filesystems and excluded mounts.

    Returns ``(groups, excluded)``: ``groups`` is a list of lists of visible
    MountEntry sharing one device number (bind mounts, btrfs subvolumes: same
    super block, same statvfs), the primary mount first; ``excluded`` is a
    list of ``(entry, reason)``.
    """
    hidden = hidden_mount_ids(entries)
    excluded = []
    groups = {}
    order = []
    for e in entries:
        reason = exclusion_reason(e, include_fstypes, exclude_fstypes)
        if reason is None and e.mount_id in hidden:
            reason = 'overmounted'
        if reason is not None:
            excluded.append((e, reason))
            continue
        key = (e.major, e.minor)
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(e)
    result = []
    for key in order:
        members = sorted(groups[key], key=_primary_sort_key)
        result.append(members)
    return result, excluded


def mount_of_path(path: str, entries: list[MountEntry], hidden: set[int] | None = None) -> MountEntry | None:
    """The visible MountEntry that holds ``path`` (longest mount-point prefix).

    ``hidden`` is ``hidden_mount_ids(entries)`` when the caller has it already.
    """
    if hidden is None:
        hidden = hidden_mount_ids(entries)
    best = None
    for e in entries:
        if e.mount_id in hidden:
            continue
        if is_under(path, e.mount_point) or e.mount_point == '/':
            if best is None or len(e.mount_point) >= len(best.mount_point):
                best = e
    return best


class MountTable(object):
    """The mount table, read once, and the mount a path lives on."""

    def __init__(self, entries: list[MountEntry] | None = None) -> None:
        self.entries = read_mountinfo() if entries is None else entries
        self._hidden = hidden_mount_ids(self.entries)
        self._found = {}

    def find(self, path: str, device_number: int | None = None) -> MountEntry | None:
        """The visible mount holding ``path`` (a MountEntry), or None.

        ``device_number`` prefers a mount of that device: btrfs subvolumes
        report anonymous device numbers, hence the path is the fallback.
        Answers are remembered: the table is one snapshot, and a run asks
        about the same directory once per file in it.
        """
        key = (path, device_number)
        if key not in self._found:
            self._found[key] = self._find(path, device_number)
        return self._found[key]

    def _find(self, path: str, device_number: int | None) -> MountEntry | None:
        path = os.path.realpath(path)
        best = mount_of_path(path, self.entries, self._hidden)
        if device_number is None or best is None or os.makedev(best.major, best.minor) == device_number:
            return best
        for entry in reversed(self.entries):
            if os.makedev(entry.major, entry.minor) == device_number and is_under(path, entry.mount_point):
                return entry
        return best
