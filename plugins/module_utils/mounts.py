# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Measure the local filesystems of this host, and its memory headroom.

Standard library only (no Ansible imports), Python >= 3.8.  Used by the
``sre.cmemgzip.fs_usage`` module; everything here only reads.

Sources:

* ``/proc/self/mountinfo`` (proc(5)): one line per mount, as seen from this
  process's mount namespace and root::

      36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
      (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)     (10)        (11)

  mount id, parent id, major:minor, root of the mount inside its filesystem,
  mount point, per-mount options, optional fields, ``-``, fstype, source,
  super-block options.  Space, tab, newline and backslash in (4), (5) and
  (10) are escaped as ``\\040``, ``\\011``, ``\\012`` and ``\\134``.
* ``os.statvfs`` of the mount point (never called for excluded filesystems:
  a dead NFS server would hang it).
* ``/proc/meminfo``, ``/proc/self/cgroup`` and the cgroup files (v2
  ``memory.max``/``memory.current``, v1 ``memory.limit_in_bytes``/
  ``memory.usage_in_bytes``) for the memory this process may still use.
"""

from __future__ import absolute_import, division, print_function

import fnmatch
import glob
import os
import re

MOUNTINFO = '/proc/self/mountinfo'
MEMINFO = '/proc/meminfo'
PROC_CGROUP = '/proc/self/cgroup'
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
NETWORK_PATTERNS = ('nfs*', 'fuse.*')
RAM_FSTYPES = frozenset(('tmpfs', 'ramfs'))
# Mount points below these paths are kernel interfaces (e.g. the tmpfs that
# holds cgroup v1 hierarchies at /sys/fs/cgroup).
KERNEL_PATH_PREFIXES = ('/proc', '/sys')

# cgroup v1 uses "no limit" values near 2**63 rounded down to the page size.
_CGROUP_V1_UNLIMITED = 1 << 62

_ESCAPE_RE = re.compile(rb'\\([0-7]{3})')


def unescape(field):
    """Decode one mountinfo field: ``\\040`` and friends become bytes again.

    Returns a ``str`` decoded with the filesystem encoding (undecodable bytes
    become surrogates, so the path still works with ``os`` functions).
    """
    if isinstance(field, str):
        field = os.fsencode(field)
    raw = _ESCAPE_RE.sub(lambda m: bytes((int(m.group(1), 8),)), field)
    return os.fsdecode(raw)


def printable(path):
    """Text safe for JSON: undecodable bytes become ``\\xNN`` escapes."""
    return path.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')


class MountEntry(object):
    """One line of /proc/self/mountinfo."""

    __slots__ = ('mount_id', 'parent_id', 'major', 'minor', 'root', 'mount_point',
                 'mount_options', 'optional', 'fstype', 'source', 'super_options')

    def __init__(self, mount_id, parent_id, major, minor, root, mount_point,
                 mount_options, optional, fstype, source, super_options):
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
    def dev(self):
        return '%d:%d' % (self.major, self.minor)

    @property
    def read_only(self):
        return 'ro' in self.mount_options or 'ro' in self.super_options

    def __repr__(self):
        return 'MountEntry(%d, %r, %s, %r)' % (self.mount_id, self.mount_point, self.fstype, self.dev)


def parse_mountinfo_line(line):
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


def parse_mountinfo(text):
    """Parse the whole of mountinfo (str or bytes); blank lines are ignored."""
    if isinstance(text, str):
        text = os.fsencode(text)
    return [parse_mountinfo_line(line) for line in text.split(b'\n') if line.strip()]


def read_mountinfo(path=MOUNTINFO):
    with open(path, 'rb') as f:
        return parse_mountinfo(f.read())


def _match_any(value, patterns):
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def is_under(path, prefix):
    return path == prefix or path.startswith(prefix.rstrip('/') + '/')


def exclusion_reason(entry, include_fstypes=None, exclude_fstypes=None):
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


def hidden_mount_ids(entries):
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


def _primary_sort_key(entry):
    # Prefer the mount of the whole filesystem, then the shortest path.
    return (entry.root != '/', len(entry.mount_point), entry.mount_point, entry.mount_id)


def classify(entries, include_fstypes=None, exclude_fstypes=None):
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


def _pct(part, whole):
    if whole <= 0:
        return 0.0
    return round(100.0 * part / whole, 2)


def statvfs_usage(path):
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


def full_reasons(usage, max_used_pct, max_inodes_used_pct):
    """Codes of the thresholds a filesystem has reached (inclusive)."""
    reasons = []
    if usage['size'] > 0 and usage['used_pct'] >= max_used_pct:
        reasons.append('used_pct')
    if usage['inodes'] > 0 and usage['inodes_used_pct'] >= max_inodes_used_pct:
        reasons.append('inodes_used_pct')
    return reasons


def measure(entries, max_used_pct=90, max_inodes_used_pct=95, include_fstypes=None,
            exclude_fstypes=None, mounts=None, statvfs=statvfs_usage):
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


def mount_of_path(path, entries):
    """The visible MountEntry that holds ``path`` (longest mount-point prefix)."""
    hidden = hidden_mount_ids(entries)
    best = None
    for e in entries:
        if e.mount_id in hidden:
            continue
        if is_under(path, e.mount_point) or e.mount_point == '/':
            if best is None or len(e.mount_point) >= len(best.mount_point):
                best = e
    return best


def locate_paths(paths, entries, filesystems):
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


# ---------------------------------------------------------------------------
# Memory


def read_meminfo(path=MEMINFO):
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


def parse_proc_cgroup(text):
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


def _read_value(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (IOError, OSError):
        return None


def _cgroup_dir(mount, cgroup_path):
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


def _walk_up(directory, top):
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


def cgroup_memory(entries, proc_cgroup=PROC_CGROUP):
    """Memory limit and headroom of this process's cgroup, or None.

    The tightest limit on the way up to the cgroup mount's root wins
    (``headroom`` = limit - usage at that level).  Returns None when no
    memory limit applies or the cgroup files cannot be read.
    """
    text = _read_value(proc_cgroup)
    if text is None:
        return None
    v2_path, v1 = parse_proc_cgroup(text)
    candidates = []
    if v2_path is not None:
        for m in entries:
            if m.fstype == 'cgroup2':
                d = _cgroup_dir(m, v2_path)
                if d is not None:
                    candidates.append(('v2', m, d, 'memory.max', 'memory.current'))
    if 'memory' in v1:
        for m in entries:
            if m.fstype == 'cgroup' and 'memory' in m.super_options:
                d = _cgroup_dir(m, v1['memory'])
                if d is not None:
                    candidates.append(('v1', m, d, 'memory.limit_in_bytes', 'memory.usage_in_bytes'))
    for version, mount, directory, limit_file, usage_file in candidates:
        if not os.path.isdir(directory):
            continue
        best = None
        for d in _walk_up(directory, mount.mount_point):
            limit = _read_value(os.path.join(d, limit_file))
            usage = _read_value(os.path.join(d, usage_file))
            if limit is None or usage is None or limit == 'max':
                continue
            try:
                limit = int(limit)
                usage = int(usage)
            except ValueError:
                continue
            if limit >= _CGROUP_V1_UNLIMITED:
                continue
            headroom = max(limit - usage, 0)
            if best is None or headroom < best['headroom']:
                best = {'version': version, 'path': printable(d), 'limit': limit,
                        'usage': usage, 'headroom': headroom}
        if best is not None:
            return best
    return None


def memory_status(entries, meminfo=MEMINFO, proc_cgroup=PROC_CGROUP, scratch=SCRATCH_MOUNT):
    """MemTotal, MemAvailable, the cgroup limit if any, and /dev/shm space.

    ``available`` is what this process may still use: the smaller of
    MemAvailable and the cgroup headroom.
    """
    try:
        info = read_meminfo(meminfo)
    except (IOError, OSError):
        info = {}
    total = info.get('MemTotal')
    available = info.get('MemAvailable', info.get('MemFree'))
    cgroup = cgroup_memory(entries, proc_cgroup)
    effective = available
    if cgroup is not None and (effective is None or cgroup['headroom'] < effective):
        effective = cgroup['headroom']
    shm = None
    try:
        u = statvfs_usage(scratch)
        shm = {'mount': scratch, 'size': u['size'], 'free': u['free'], 'avail': u['avail'],
               'inodes_free': u['inodes_free']}
    except OSError:
        pass
    return {
        'mem_total': total,
        'mem_available': available,
        'swap_free': info.get('SwapFree'),
        'cgroup': cgroup,
        'available': effective,
        'shm': shm,
    }


def survey(max_used_pct=90, max_inodes_used_pct=95, include_fstypes=None, exclude_fstypes=None,
           mounts=None, paths=None, mountinfo=MOUNTINFO):
    """Everything the fs_usage module returns, as one dict."""
    entries = read_mountinfo(mountinfo)
    filesystems, excluded, missing = measure(
        entries, max_used_pct=max_used_pct, max_inodes_used_pct=max_inodes_used_pct,
        include_fstypes=include_fstypes, exclude_fstypes=exclude_fstypes, mounts=mounts)
    return {
        'filesystems': filesystems,
        'full': [fs['mount'] for fs in filesystems if fs['full']],
        'excluded': excluded,
        'missing_mounts': missing,
        'paths': locate_paths(paths or [], entries, filesystems),
        'memory': memory_status(entries),
    }
