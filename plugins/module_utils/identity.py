# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Proof that a file is the one a journal entry was made for.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

A journal entry names its file by **filesystem identity + inode number +
inode generation**, never by device number alone: a reboot may renumber
loop and device-mapper devices, and an inode number is reused as soon as
its file is deleted.  Before recovery writes a byte, the *content* must
prove the rest: ``classify`` tells the untouched original (CRC-32 of the
first and last ``EVIDENCE_SPAN`` bytes, then of the whole file) from a
rewrite of ours cut short (every page holds the journal copy's bytes or the
original's bytes at that offset) from anything else.

The filesystem identity (``filesystem_id``), in order of preference:

1. ``uuid:HEX``: the UUID in the superblock of the mounted block device
   (ext2/3/4, xfs; btrfs with ``:ROOT`` appended, the subvolume's tree id,
   because btrfs inode numbers are per subvolume).
2. ``fsid:HEX``: statvfs ``f_fsid`` where the kernel derives it from the
   filesystem UUID (ext2/3/4, btrfs per subvolume, tmpfs since 6.x), for a
   device that cannot be read (not root, no device node in a container).
   xfs's ``f_fsid`` is only its device number and is not used; btrfs gives
   a mounted clone of a filesystem it already knows a random temporary fsid
   (Linux 6.7+), which is why the superblock comes first.
3. ``dev:HEX``: the device number, when neither is available.  A reboot
   that renumbers the device then makes the entry's filesystem look gone:
   it is reported ``filesystem_gone`` and kept for a human, never written
   blindly.

Recovery accepts any of the names the filesystem has now
(``filesystem_ids``), so an entry recorded by a root run is still found
when only ``f_fsid`` can be read, and the other way round.
"""

from __future__ import annotations

import array
import fcntl
import os
import stat
import struct
import zlib
from typing import Any, Callable

EVIDENCE_SPAN = 64 * 1024
_CHUNK = 1024 * 1024
_PAGE = 4096
_FS_IOC_GETVERSION = 0x80087601 if array.array('l').itemsize == 8 else 0x80047601
_MOUNTINFO = '/proc/self/mountinfo'
_BTRFS_SUPER = 64 * 1024
_BTRFS_FSID_AT = 0x20
_BTRFS_MAGIC_AT = 0x40
_BTRFS_MAGIC = b'_BHRfS_M'
_BTRFS_FIRST_FREE_OBJECTID = 256
_BTRFS_IOC_INO_LOOKUP = 0xD0009412
# (superblock offset, magic offset, magic, uuid offset) inside the superblock.
_SUPERBLOCKS = (
    (0, 0, b'XFSB', 32),              # xfs
    (1024, 0x38, b'\x53\xef', 0x68),  # ext2/3/4
)

# What classify() found.
ORIGINAL = 'original'          # the untouched original, byte for byte
GROWN = 'grown'                # the untouched original, with data appended after it
COMPLETE = 'complete'          # exactly the journal copy (our rewrite finished)
REWRITE = 'rewrite'            # our rewrite cut short: journal-copy and original bytes
FOREIGN = 'foreign'            # anything else: someone else's data
OURS = frozenset((COMPLETE, REWRITE))
UNTOUCHED = frozenset((ORIGINAL, GROWN))


def filesystem_id(fd: int) -> str:
    """The preferred name of the filesystem holding ``fd`` (see above)."""
    return filesystem_ids(fd)[0]


def filesystem_ids(fd: int) -> list[str]:
    """Every name the filesystem holding ``fd`` has, preferred first.

    Not cached: a device number names another filesystem after an unmount,
    and these are a few cheap system calls.
    """
    st = os.fstat(fd)
    names = [name for name in (_superblock_uuid(fd, st.st_dev), _stable_fsid(fd, st)) if name]
    return names + ['dev:%x' % st.st_dev]


def same_filesystem(fd: int, recorded: str) -> bool:
    return recorded in filesystem_ids(fd)


def _stable_fsid(fd: int, st: os.stat_result) -> str | None:
    try:
        fsid = os.fstatvfs(fd).f_fsid
    except (OSError, AttributeError):
        return None
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    encodings = (st.st_dev, (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12), (major << 20) | minor)
    if not fsid or fsid in encodings:
        return None  # 0, or only the device number (xfs)
    return 'fsid:%016x' % fsid


def _mount_source(fd: int) -> str | None:
    """The source (device path) of the mount ``fd`` lives on, by its mnt_id in /proc/self/fdinfo."""
    try:
        with open('/proc/self/fdinfo/%d' % fd, 'rb') as handle:
            mount_id = [line.split()[1] for line in handle if line.startswith(b'mnt_id:')][0]
        with open(_MOUNTINFO, 'rb') as handle:
            for line in handle:
                fields = line.split()
                if fields and fields[0] == mount_id and b' - ' in line:
                    after = line.split(b' - ', 1)[1].split()
                    return os.fsdecode(after[1]) if len(after) > 1 else None
    except (IOError, OSError, IndexError):
        pass
    return None


def _superblock_uuid(fd: int, st_dev: int) -> str | None:
    """The UUID in the superblock of the mounted block device (ext*, xfs, btrfs), or None."""
    source = _mount_source(fd)
    if not source or not source.startswith('/dev/'):
        return None
    try:
        device = os.open(source, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return None
    try:
        st = os.fstat(device)
        if not stat.S_ISBLK(st.st_mode):
            return None
        if st.st_rdev == st_dev:
            for base, magic_at, magic, uuid_at in _SUPERBLOCKS:
                block = os.pread(device, 2048, base)
                if block[magic_at:magic_at + len(magic)] == magic:
                    return _uuid_name(block[uuid_at:uuid_at + 16])
            return None
        # btrfs: the mount's device number is an anonymous one.
        block = os.pread(device, 4096, _BTRFS_SUPER)
        root = _btrfs_root(fd)
        if block[_BTRFS_MAGIC_AT:_BTRFS_MAGIC_AT + 8] == _BTRFS_MAGIC and root is not None:
            name = _uuid_name(block[_BTRFS_FSID_AT:_BTRFS_FSID_AT + 16])
            return name and '%s:%d' % (name, root)
    except OSError:
        return None
    finally:
        os.close(device)
    return None


def _uuid_name(uuid: bytes) -> str | None:
    return 'uuid:' + uuid.hex() if len(uuid) == 16 and uuid.strip(b'\0') else None


def _btrfs_root(fd: int) -> int | None:
    """The tree id of the btrfs subvolume holding ``fd`` (BTRFS_IOC_INO_LOOKUP), or None."""
    args = bytearray(struct.pack('=QQ', 0, _BTRFS_FIRST_FREE_OBJECTID) + b'\0' * 4080)
    try:
        fcntl.ioctl(fd, _BTRFS_IOC_INO_LOOKUP, args, True)
    except (OSError, IOError):
        return None
    return struct.unpack_from('=Q', args, 0)[0]


def entry_key(fs_id: str, ino: int) -> str:
    """The journal key of an inode: one entry per inode at a time, whatever its kind."""
    token = ''.join(c if c.isalnum() else '-' for c in fs_id)
    return '%s-%d' % (token, ino)


def inode_generation(fd: int) -> int | None:
    """The inode's generation number (changes when an inode number is reused), or None."""
    buf = array.array('l', [0])
    try:
        fcntl.ioctl(fd, _FS_IOC_GETVERSION, buf, True)
    except (OSError, IOError):
        return None
    return buf[0] & 0xffffffff


def crc_range(fd: int, offset: int, length: int) -> tuple[int, int]:
    """CRC-32 of ``length`` bytes at ``offset`` and how many could be read."""
    crc = 0
    done = 0
    while done < length:
        chunk = os.pread(fd, min(_CHUNK, length - done), offset + done)
        if not chunk:
            break
        crc = zlib.crc32(chunk, crc)
        done += len(chunk)
    return crc, done


def capture(fd: int, st: os.stat_result, crc32: int) -> dict[str, Any]:
    """The evidence a manifest records about an original (``crc32`` of its whole content)."""
    span = min(EVIDENCE_SPAN, st.st_size)
    return {
        'fs_id': filesystem_id(fd), 'ino': st.st_ino, 'generation': inode_generation(fd), 'dev': st.st_dev,
        'size': st.st_size, 'mtime_ns': st.st_mtime_ns, 'nlink': st.st_nlink, 'crc32': crc32,
        'evidence_span': span, 'head_crc32': crc_range(fd, 0, span)[0],
        'tail_crc32': crc_range(fd, st.st_size - span, span)[0],
    }


def same_inode(fd: int, manifest: dict[str, Any]) -> bool:
    """Whether ``fd`` is the inode ``manifest`` was made for (filesystem, number, generation)."""
    st = os.fstat(fd)
    if st.st_ino != manifest['ino']:
        return False
    if 'fs_id' in manifest:
        if not same_filesystem(fd, manifest['fs_id']):
            return False
    elif st.st_dev != manifest.get('dev'):  # a version 1 manifest
        return False
    recorded = manifest.get('generation')
    return recorded is None or inode_generation(fd) in (None, recorded)


def holds_original(fd: int, manifest: dict[str, Any]) -> str | None:
    """ORIGINAL, GROWN or None: is the recorded original, untouched, at the start of ``fd``?"""
    size = manifest['size']
    have = os.fstat(fd).st_size
    if have < size:
        return None
    span = manifest.get('evidence_span')
    if span is not None:
        if crc_range(fd, 0, span) != (manifest['head_crc32'], span):
            return None
        if crc_range(fd, size - span, span) != (manifest['tail_crc32'], span):
            return None
    if crc_range(fd, 0, size) != (manifest['crc32'], size):
        return None
    return ORIGINAL if have == size else GROWN


def classify(fd: int, manifest: dict[str, Any], open_copy: Callable[[], int], zeros_allowed: bool = False) -> str:
    """What ``fd`` holds compared to the entry: one of ORIGINAL .. FOREIGN.

    ``open_copy()`` opens the journal copy (a descriptor the caller need not
    close).  ``zeros_allowed``: pages of zeros count as ours, for strategies
    that truncated first (after a power cut their blocks may read as zeros).
    """
    untouched = holds_original(fd, manifest)
    if untouched:
        return untouched
    size = os.fstat(fd).st_size
    compressed_size = manifest['compressed_size']
    if size == compressed_size and crc_range(fd, 0, size) == (manifest['compressed_crc32'], size):
        return COMPLETE
    if size > max(manifest['size'], compressed_size):
        return FOREIGN
    source = open_copy()
    try:
        return REWRITE if _pages_are_ours(fd, size, source, manifest, zeros_allowed) else FOREIGN
    finally:
        os.close(source)


def _pages_are_ours(fd: int, size: int, source: int, manifest: dict[str, Any], zeros_allowed: bool) -> bool:
    """Each byte equals the copy's or the original's byte at that offset (or is a zero page)."""
    original = _Inflated(source, manifest['compressed_size'])
    offset = 0
    while offset < size:
        length = min(_CHUNK, size - offset)
        have = os.pread(fd, length, offset)
        if len(have) != length:
            return False
        copy = os.pread(source, length, offset) if offset < manifest['compressed_size'] else b''
        plain = original.read(offset, length)
        if have != copy and have != plain and not all(
                _page_is_ours(have[i:i + _PAGE], copy[i:i + _PAGE], plain[i:i + _PAGE], zeros_allowed)
                for i in range(0, length, _PAGE)):
            return False
        offset += length
    return True


def _page_is_ours(have: bytes, copy: bytes, plain: bytes, zeros_allowed: bool) -> bool:
    if have in (copy, plain) or (zeros_allowed and not have.strip(b'\0')):
        return True
    # A write cut short inside a page: byte by byte.
    for i, byte in enumerate(have):
        if not ((i < len(copy) and copy[i] == byte) or (i < len(plain) and plain[i] == byte)):
            return False
    return True


class _Inflated(object):
    """The original's bytes, inflated from the journal copy as they are asked for (in order)."""

    def __init__(self, source: int, compressed_size: int) -> None:
        self._source = source
        self._end = compressed_size
        self._read_at = 0
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b''
        self._buffer = b''
        self._buffer_at = 0

    def read(self, offset: int, length: int) -> bytes:
        self._drop_before(offset)
        while self._buffer_at + len(self._buffer) < offset + length:
            if not self._pending:
                if self._read_at >= self._end:
                    break
                self._pending = os.pread(self._source, min(_CHUNK, self._end - self._read_at), self._read_at)
                if not self._pending:
                    break
                self._read_at += len(self._pending)
            try:
                out = self._inflater.decompress(self._pending, _CHUNK)
            except zlib.error:
                break
            self._pending = self._inflater.unconsumed_tail
            self._buffer += out
            self._drop_before(offset)
        start = offset - self._buffer_at
        return self._buffer[start:start + length]

    def _drop_before(self, offset: int) -> None:
        cut = min(len(self._buffer), max(0, offset - self._buffer_at))
        if cut:
            self._buffer = self._buffer[cut:]
            self._buffer_at += cut
