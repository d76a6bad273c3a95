# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Compress files on really full filesystems, through Ansible, and prove
that no byte, owner, mode, time, ACL or xattr was lost, that the space came
back, and that a second run changes nothing."""

from __future__ import annotations

import os
import subprocess

import pytest

from cmzrun import assert_contract_keys, entries, entry, run_ansible, short
from fullfs import (MiB, gunzip_sha256, gzip_members, log_bytes, require_tool, sha256_bytes,
                    sha256_file, tree_state)

UID, GID = 1234, 2345
MTIME_NS = 1_600_000_000_123_456_789
ATIME_NS = 1_600_000_100_987_654_321
MTIME2_NS = 1_650_000_000_000_000_001

# How far "free space grew" (statvfs f_bfree * f_frsize, after syncfs, before
# vs after) may differ from the sum of bytes_saved reported by the module.
# tmpfs accounts pages exactly.  ext4 and xfs may also free/keep extent-tree
# blocks and the tail block; btrfs is copy-on-write, frees space only at
# transaction commit and rounds its metadata, so a larger slack is allowed.
# Observed on Linux 6.18: a difference of 0 on every kind (syncfs first;
# ``btrfs filesystem sync`` for btrfs).
FREE_TOLERANCE = {
    'tmpfs': 0,
    'tmpfs_inodes': 0,
    'ext4': 16 * 4096,
    'xfs': 32 * 4096,
    'btrfs': 1 * MiB,
    'btrfs_mixed': 1 * MiB,
}

KINDS = {
    # kind: (fs type, size, nr_inodes, how to fill, mkfs args)
    'tmpfs': ('tmpfs', 48 * MiB, None, 'blocks', ()),
    'tmpfs_inodes': ('tmpfs', 48 * MiB, 64, 'inodes', ()),
    'ext4': ('ext4', 64 * MiB, None, 'blocks', ()),
    'xfs': ('xfs', 300 * MiB, None, 'blocks', ()),
    'btrfs': ('btrfs', 128 * MiB, None, 'blocks', ()),
    # Data and metadata in the same chunks: metadata is full as well.
    'btrfs_mixed': ('btrfs', 128 * MiB, None, 'blocks', ('--mixed',)),
}


def assert_no_byte_lost(path, data):
    """Exactly one of NAME / NAME.gz exists and holds the original bytes."""
    gz = f'{path}.gz'
    assert os.path.lexists(path) != os.path.lexists(gz), f'{path}: NAME and NAME.gz both or neither exist'
    if os.path.lexists(gz):
        assert gunzip_sha256(gz) == sha256_bytes(data), f'{gz}: content differs from the original'
    else:
        assert sha256_file(path) == sha256_bytes(data), f'{path}: content changed'


def _acl_and_xattr(path):
    """Set an ACL and a user xattr; returns the raw values, or None if unsupported."""
    got = {}
    r = subprocess.run(['setfacl', '-m', f'u:{UID}:r', str(path)], capture_output=True, text=True, check=False)
    if r.returncode == 0:
        got['acl'] = os.getxattr(path, 'system.posix_acl_access')
    r = subprocess.run(['setfattr', '-n', 'user.test', '-v', 'x', str(path)], capture_output=True, text=True,
                       check=False)
    if r.returncode == 0:
        got['xattr'] = os.getxattr(path, 'user.test')
    return got


@pytest.mark.parametrize('kind', list(KINDS))
def test_compress_on_full_fs(kind, fullfs, journal_dir):
    require_tool('gzip', 'setfacl', 'setfattr')
    fstype, size, nr_inodes, how, mkfs_args = KINDS[kind]
    fs = fullfs(fstype, size=size, nr_inodes=nr_inodes, mkfs_args=mkfs_args)

    # The files under test, before the filesystem is filled.
    data1 = log_bytes(4 * MiB, seed=11)
    data2 = log_bytes(2 * MiB + 12345, seed=12)
    f1 = fs.write_file('app.log', data1, mode=0o640)
    f2 = fs.write_file('sub/second.log', data2, mode=0o644)
    os.chown(f1, UID, GID)
    extras = _acl_and_xattr(f1)
    os.utime(f1, ns=(ATIME_NS, MTIME_NS))
    os.utime(f2, ns=(MTIME2_NS, MTIME2_NS))
    st1, st2 = os.stat(f1), os.stat(f2)     # no read after this: atime stays

    if how == 'inodes':
        fs.fill_inodes()
    else:
        fs.fill()
    free_before = fs.free_bytes()

    result = run_ansible({'path': [str(f1), str(f2)], 'journal_dir': journal_dir})
    # Stat before any read (atime), then, whatever happened: no byte lost.
    post = {p: os.stat(f'{p}.gz') for p in (f1, f2) if os.path.lexists(f'{p}.gz')}
    for path, data in ((f1, data1), (f2, data2)):
        assert_no_byte_lost(path, data)
    # Journal left clean: no copies or manifests linger.
    jfiles = [n for walked in os.walk(journal_dir) for n in walked[2]]
    assert not jfiles, f'journal not cleaned: {jfiles}'
    assert result['_status'] == 'CHANGED', short(result)
    assert result['changed'] is True
    assert not result.get('failed'), short(result)
    assert_contract_keys(result)

    saved = 0
    for path, data, st in ((f1, data1, st1), (f2, data2, st2)):
        e = entry(result, path)
        gz = f'{path}.gz'
        assert e['action'] == 'compressed', short(result)
        assert e['reason'] is None
        assert e['dest'] == gz
        assert not os.path.lexists(path), f'{path} still exists'
        new = post[path]
        assert gunzip_sha256(gz) == sha256_bytes(data), f'{gz}: content differs'
        assert subprocess.run(['gzip', '-t', gz], check=False).returncode == 0
        assert gzip_members(gz) == 1
        if e['strategy'] == 'recreate':
            # btrfs with its metadata exhausted cannot change a file at all: the .gz is
            # a new inode created with the original's owner, mode, xattrs and times.
            assert kind == 'btrfs_mixed', e
        else:
            assert new.st_ino == st.st_ino, 'not the same inode'
        assert (new.st_uid, new.st_gid) == (st.st_uid, st.st_gid)
        assert new.st_mode == st.st_mode
        assert new.st_mtime_ns == st.st_mtime_ns, 'mtime not restored'
        assert new.st_atime_ns == st.st_atime_ns, 'atime not restored'
        assert new.st_nlink == 1
        assert e['original_size'] == len(data)
        assert e['compressed_size'] == new.st_size
        assert 0 < new.st_size < len(data)
        assert e['estimated'] is False
        if kind == 'btrfs_mixed':
            assert e['strategy'] in ('truncate_first', 'recreate'), e
        elif fstype == 'btrfs':
            assert e['strategy'] == 'truncate_first', e
        else:
            assert e['strategy'] in ('inplace', 'truncate_first'), e
        # bytes_saved is allocated bytes: compare with st_blocks.
        alloc_freed = (st.st_blocks - new.st_blocks) * 512
        assert abs(e['bytes_saved'] - alloc_freed) <= max(FREE_TOLERANCE[kind], 4096 if fstype == 'btrfs' else 0), (
            f'bytes_saved={e["bytes_saved"]} but st_blocks freed {alloc_freed}')
        saved += e['bytes_saved']

    # Owner/ACL/xattr of the chowned file.
    assert os.stat(f'{f1}.gz').st_uid == UID
    if 'acl' in extras:
        assert os.getxattr(f'{f1}.gz', 'system.posix_acl_access') == extras['acl']
    if 'xattr' in extras:
        assert os.getxattr(f'{f1}.gz', 'user.test') == extras['xattr']

    assert result['totals']['compressed'] == 2
    assert result['totals']['bytes_saved'] == saved
    mounts = [m['mount'] for m in result['filesystems']]
    assert str(fs.mnt) in mounts, mounts

    # The filesystem really got the space back.
    free_after = fs.free_bytes()
    grown = free_after - free_before
    print(f'{kind}: free space grew by {grown}, bytes_saved {saved}, difference {grown - saved}')
    assert abs(grown - saved) <= FREE_TOLERANCE[kind], (
        f'{kind}: free space grew by {grown}, bytes_saved says {saved} '
        f'(tolerance {FREE_TOLERANCE[kind]})')

    # Idempotence: a second run over the whole directory changes nothing.
    before = tree_state(fs.data)
    again = run_ansible({'path': [str(fs.data)], 'recurse': True, 'min_size': 0,
                         'journal_dir': journal_dir})
    assert again['changed'] is False, short(again)
    assert not again.get('failed'), short(again)
    assert not entries(again, action='compressed') and not entries(again, action='failed'), short(again)
    for e in entries(again):
        if e['path'].endswith('.gz'):
            assert e['reason'] == 'already_compressed', e
    assert tree_state(fs.data) == before
