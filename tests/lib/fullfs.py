# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Real full filesystems for the integration tests of sre.cmemgzip.

Every filesystem gets its own mount point ``/mnt/cmz-it-*`` (a fresh
``mkdtemp``) and, for ext4/xfs/btrfs, its own loop device attached with
``losetup --find --show`` by the fixture itself.  Teardown unmounts exactly
that mount point, detaches exactly that loop device and removes the image,
whether the test passed or not.  Nothing here ever unmounts or detaches by
pattern.

Typical use::

    def test_x(fullfs):
        fs = fullfs('ext4')                    # empty, mounted
        f = fs.write_log('app.log', 4 << 20)   # the test files first
        fs.fill()                              # then ENOSPC, f_bavail == 0
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import random
import select
import shutil
import stat
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loggen import log_bytes  # the one log generator (the tests import it from here too)

MiB = 1 << 20
KiB = 1 << 10

MNT_PARENT = '/mnt'
MNT_PREFIX = 'cmz-it-'
# Loop images live on the machine's disk (sparse), not in RAM.
IMAGE_PARENT = '/var/tmp'

# Size of each filesystem kind (bytes).  xfs refuses images below 300 MiB
# (xfsprogs 6.x).  btrfs-progs 6.2 accepts 110 MiB without --mixed (of a
# 128 MiB image about 47 MiB are data, the rest DUP metadata/system) and
# 16 MiB with --mixed (data and metadata share chunks: when it is full, even a
# rename fails with ENOSPC).
DEFAULT_SIZES = {
    'tmpfs': 48 * MiB,
    'ext4': 64 * MiB,
    'xfs': 300 * MiB,
    'btrfs': 128 * MiB,
}

# What "full" means per kind: f_bavail * f_frsize after filling until ENOSPC
# (measured on Linux 6.18, xfsprogs 6.1, btrfs-progs 6.2).  tmpfs and ext4
# reach f_bavail == 0 (ext4 keeps its s_resv_clusters, <= 2 %, in f_bfree
# only).  xfs shows a few blocks it never hands out for data (each
# allocation also reserves blocks for btree splits).  btrfs reaches 0 with
# separate data chunks; with --mixed it keeps about 1.6 MiB of f_bavail it
# will not allocate (metadata/global reserve).
# In every case fill() also proves that a 4 KiB write fails with ENOSPC.
FULL_AVAIL_TOLERANCE = {
    'tmpfs': 0,
    'ext4': 0,
    'xfs': 16 * 4096,
    'btrfs': 0,
    'btrfs-mixed': 4 * MiB,
}

MKFS = {
    'ext4': ['mkfs.ext4', '-q', '-F', '-m', '0', '-b', '4096'],
    'xfs': ['mkfs.xfs', '-q', '-f'],
    'btrfs': ['mkfs.btrfs', '-q', '-f'],
}

_libc = ctypes.CDLL(None, use_errno=True)


def require_root():
    if os.geteuid() != 0:
        pytest.skip('needs root (mount, losetup, chown)')


def require_tool(*names):
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f'{name} is not installed')


def _run(cmd, check=True, **kw):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


# --------------------------------------------------------------------------
# Deterministic test data
# --------------------------------------------------------------------------

def random_bytes(size, seed=2):
    return random.Random(seed).randbytes(size)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(4 * MiB), b''):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def gunzip_sha256(path):
    """sha256 of ``gzip -dc path`` (the real gzip binary, not Python's)."""
    h = hashlib.sha256()
    with subprocess.Popen(['gzip', '-dc', '--', str(path)], stdout=subprocess.PIPE) as p:
        for chunk in iter(lambda: p.stdout.read(4 * MiB), b''):
            h.update(chunk)
    assert p.returncode == 0, f'gzip -dc {path} failed with {p.returncode}'
    return h.hexdigest()


def gzip_members(path):
    """Number of gzip members in ``path``; raises if there is trailing garbage."""
    with open(path, 'rb') as f:
        data = f.read()
    members = 0
    while data:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not d.eof:
            chunk = data[:4 * MiB]
            data = data[4 * MiB:]
            if not chunk and not d.unconsumed_tail:
                raise AssertionError(f'{path}: truncated gzip member')
            d.decompress(d.unconsumed_tail + chunk, 0)
        members += 1
        data = d.unused_data + data
    return members


# --------------------------------------------------------------------------
# File snapshots (to prove that nothing was touched)
# --------------------------------------------------------------------------

def file_state(path):
    """What must not change for a skipped file: type, inode, size, times, content."""
    st = os.lstat(path)
    state = {
        'mode': st.st_mode, 'ino': st.st_ino, 'size': st.st_size, 'nlink': st.st_nlink,
        'uid': st.st_uid, 'gid': st.st_gid, 'mtime_ns': st.st_mtime_ns,
    }
    if stat.S_ISREG(st.st_mode):
        state['sha256'] = sha256_file(path)
    elif stat.S_ISLNK(st.st_mode):
        state['target'] = os.readlink(path)
    return state


def tree_state(root, skip=('filler', 'inodes')):
    """{relative path: file_state} for everything under root (filler excluded)."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root)
        if rel_dir == Path('.'):
            dirnames[:] = [d for d in dirnames if d not in skip and d != 'lost+found']
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = file_state(p)
    return out


# --------------------------------------------------------------------------
# inotify (watch journals, prove a file was never opened)
# --------------------------------------------------------------------------

IN_ACCESS, IN_MODIFY, IN_OPEN = 0x1, 0x2, 0x20
IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x8, 0x80, 0x100
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000


class Inotify(object):
    """Minimal inotify (ctypes): one watch, ``names(timeout)`` -> names of events."""

    def __init__(self, path, mask):
        self.fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), 'inotify_init1')
        if _libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            e = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(e, f'inotify_add_watch {path}')

    def names(self, timeout):
        r = select.select([self.fd], [], [], timeout)[0]
        if not r:
            return []
        try:
            buf = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return []
            raise
        out, i = [], 0
        while i < len(buf):
            _wd, _mask, _cookie, n = struct.unpack_from('iIII', buf, i)
            out.append(buf[i + 16:i + 16 + n].rstrip(b'\0').decode())
            i += 16 + n
        return out

    def close(self):
        os.close(self.fd)


# --------------------------------------------------------------------------
# The filesystems
# --------------------------------------------------------------------------

@dataclass
class FullFS:
    kind: str
    mnt: Path
    size: int
    dev: str | None = None
    image: Path | None = None
    mounted: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def data(self):
        """Directory for the files under test (created before filling)."""
        return self.mnt / 'data'

    @property
    def filler_dir(self):
        return self.mnt / 'filler'

    # -- measurements ------------------------------------------------------
    def syncfs(self):
        fd = os.open(self.mnt, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _libc.syncfs(fd) != 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
        finally:
            os.close(fd)
        if self.kind == 'btrfs':
            # Freed extents return to the free pool only once the
            # transaction that freed them commits (and the one after).
            _run(['btrfs', 'filesystem', 'sync', str(self.mnt)], check=False)

    def statvfs(self, sync=True):
        if sync:
            self.syncfs()
        return os.statvfs(self.mnt)

    def free_bytes(self, sync=True):
        st = self.statvfs(sync)
        return st.f_bfree * st.f_frsize

    def avail_bytes(self, sync=True):
        st = self.statvfs(sync)
        return st.f_bavail * st.f_frsize

    # -- content -----------------------------------------------------------
    def write_file(self, name, data, mode=0o644, mtime_ns=None):
        path = self.data / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(path, mode)
        if mtime_ns is not None:
            os.utime(path, ns=(mtime_ns, mtime_ns))
        return path

    def write_log(self, name, size, seed=1, kind='access', **kw):
        """A deterministic log file (``loggen.log_bytes(size, seed, kind)``)."""
        return self.write_file(name, log_bytes(size, seed, kind), **kw)

    # -- filling -----------------------------------------------------------
    def fill(self, max_rounds=6):
        """Fill the free blocks with incompressible data until ENOSPC.

        Repeats after a syncfs because xfs trims speculative preallocation
        and btrfs returns reservations at commit.  Asserts f_bavail == 0 (or
        within FULL_AVAIL_TOLERANCE) and that a 4 KiB write fails."""
        self.filler_dir.mkdir(exist_ok=True)
        block = random_bytes(MiB, seed=0xF111)
        n = 0
        for _round in range(max_rounds):
            chunk = MiB
            path = self.filler_dir / f'filler{n:04d}'
            n += 1
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                fd = None
            if fd is not None:
                written = 0
                try:
                    while chunk >= 1:
                        try:
                            k = os.write(fd, memoryview(block)[:chunk])
                            written += k
                            if written >= 256 * MiB:   # keep the filler files moderate
                                break
                        except OSError as e:
                            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                                raise
                            chunk //= 2
                    try:
                        os.fsync(fd)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                finally:
                    os.close(fd)
                if written >= 256 * MiB:
                    continue
            st = self.statvfs()
            if st.f_bavail == 0:
                break
        st = self.statvfs()
        mixed = '--mixed' in self.extra.get('mkfs_args', ())
        limit = FULL_AVAIL_TOLERANCE[self.kind + ('-mixed' if mixed else '')]
        assert st.f_bavail * st.f_frsize <= limit, (
            f'{self.kind} {self.mnt}: f_bavail={st.f_bavail} x {st.f_frsize} after filling')
        if self.kind == 'tmpfs':
            assert st.f_bfree == 0, f'{self.mnt}: f_bfree={st.f_bfree} after filling'
        self.assert_no_room()
        return st

    def assert_no_room(self):
        """Prove the filesystem is full: 4 KiB into a new file fails with ENOSPC."""
        probe = self.filler_dir / 'probe'
        fd = None
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b'p' * 4096)
            os.fsync(fd)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
        else:
            raise AssertionError(f'{self.kind} {self.mnt}: a 4 KiB write still succeeds')
        finally:
            if fd is not None:
                os.close(fd)
                probe.unlink()

    def fill_inodes(self):
        """Use up every free inode with empty files; asserts f_ffree == 0."""
        d = self.mnt / 'inodes'
        d.mkdir(exist_ok=True)
        i = 0
        while True:
            try:
                os.close(os.open(d / f'i{i:06d}', os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            i += 1
            if i > 1_000_000:
                raise AssertionError('inodes do not run out')
        st = os.statvfs(self.mnt)
        assert st.f_ffree == 0, f'{self.mnt}: f_ffree={st.f_ffree} after filling inodes'
        return st

    # -- teardown ----------------------------------------------------------
    def cleanup(self):
        errors = []
        if self.mounted:
            for attempt in range(20):
                r = _run(['umount', str(self.mnt)], check=False)
                if r.returncode == 0:
                    break
                time.sleep(0.1)
            else:
                # Still busy (a stray process of this test): detach lazily.
                r = _run(['umount', '-l', str(self.mnt)], check=False)
                if r.returncode != 0:
                    errors.append(f'umount -l {self.mnt}: {r.stderr.strip()}')
            self.mounted = False
        if self.dev:
            r = _run(['losetup', '-d', self.dev], check=False)
            if r.returncode != 0:
                errors.append(f'losetup -d {self.dev}: {r.stderr.strip()}')
            self.dev = None
        if self.image is not None:
            try:
                self.image.unlink()
            except FileNotFoundError:
                pass
            self.image = None
        try:
            self.mnt.rmdir()
        except OSError as e:
            errors.append(f'rmdir {self.mnt}: {e}')
        return errors


def make_fs(kind, size=None, nr_inodes=None, registry=None, mkfs_args=()):
    """Create and mount an empty filesystem; register it for cleanup first."""
    require_root()
    size = size or DEFAULT_SIZES[kind]
    if kind != 'tmpfs':
        require_tool(MKFS[kind][0], 'losetup')
    mnt = Path(tempfile.mkdtemp(prefix=MNT_PREFIX, dir=MNT_PARENT))
    fs = FullFS(kind=kind, mnt=mnt, size=size, extra={'mkfs_args': tuple(mkfs_args)})
    if registry is not None:
        registry.append(fs)
    if kind == 'tmpfs':
        opts = f'size={size},mode=0755'
        if nr_inodes:
            opts += f',nr_inodes={nr_inodes}'
        _run(['mount', '-t', 'tmpfs', '-o', opts, 'cmz-it', str(mnt)])
        fs.mounted = True
    else:
        fd, img = tempfile.mkstemp(prefix=f'cmz-it-{kind}-', suffix='.img', dir=IMAGE_PARENT)
        os.close(fd)
        fs.image = Path(img)
        os.truncate(img, size)
        cmd = list(MKFS[kind]) + list(mkfs_args)
        if kind == 'ext4' and nr_inodes:
            cmd += ['-N', str(nr_inodes)]
        r = _run(cmd + [img], check=False)
        if r.returncode != 0:
            pytest.fail(f'{" ".join(cmd)} failed: {r.stderr.strip()}')
        fs.dev = _run(['losetup', '--find', '--show', img]).stdout.strip()
        _run(['mount', '-t', kind, fs.dev, str(mnt)])
        fs.mounted = True
    fs.data.mkdir()
    fs.filler_dir.mkdir()
    return fs


def _factory_fixture():
    made = []

    def factory(kind, size=None, nr_inodes=None, mkfs_args=()):
        return make_fs(kind, size=size, nr_inodes=nr_inodes, registry=made, mkfs_args=mkfs_args)

    yield factory
    errors = []
    for fs in reversed(made):
        errors += fs.cleanup()
    assert not errors, errors


@pytest.fixture
def fullfs():
    """Factory: ``fullfs(kind, size=None, nr_inodes=None, mkfs_args=())`` -> FullFS
    (empty, mounted).

    ``kind`` is tmpfs, ext4, xfs or btrfs; ``mkfs_args`` are added to the
    mkfs command (e.g. ``['--mixed']`` for btrfs).  ``nr_inodes`` is tmpfs's
    option, or ``mkfs.ext4 -N``.  Everything made through it is
    unmounted/detached at teardown, in reverse order, even when the test
    failed."""
    yield from _factory_fixture()


@pytest.fixture(scope='module')
def fullfs_module():
    """The same factory, for filesystems shared by the tests of one module."""
    yield from _factory_fixture()


@pytest.fixture
def journal_dir(fullfs):
    """A private journal directory on its own roomy tmpfs (size is a limit, not RAM)."""
    fs = fullfs('tmpfs', size=1024 * MiB)
    path = fs.mnt / 'journal'
    path.mkdir(mode=0o700)
    return str(path)
