# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of plugins/module_utils/usage.py (statvfs, thresholds, paths), one on a real tmpfs."""

from __future__ import absolute_import, division, print_function

import errno
import os
import subprocess
import textwrap

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils import mounts, usage


MOUNTINFO = textwrap.dedent('''\
    22 27 0:21 / /proc rw,relatime shared:5 - proc proc rw
    23 27 0:22 / /sys rw,relatime shared:6 - sysfs sysfs rw
    24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k,mode=755
    25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=65536k
    26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
    27 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw,errors=remount-ro
    28 27 253:2 / /var/log rw,noatime shared:2 - xfs /dev/mapper/vg-log rw,attr2,inode64
    29 27 253:2 /apps /srv/app\\040logs rw,noatime shared:2 - xfs /dev/mapper/vg-log rw,attr2,inode64
    30 27 253:2 / /mnt/logcopy rw,noatime shared:2 - xfs /dev/mapper/vg-log rw,attr2,inode64
    31 23 0:28 / /sys/fs/cgroup rw,nosuid master:7 - tmpfs tmpfs ro,mode=755
    32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
    33 27 0:30 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw,size=1048576k
    34 27 0:31 / /home/nfs rw,relatime - nfs4 server:/export/home rw,vers=4.2
    35 27 0:32 / /mnt/remote rw - fuse.sshfs user@host:/ rw,user_id=0
    36 27 7:0 / /snap/core/1 ro,nodev - squashfs /dev/loop0 ro
    37 27 0:33 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
    38 27 8:17 / /media/usb rw - fuseblk /dev/sdb1 rw,user_id=0
    39 27 8:33 / /boot ro,relatime - ext2 /dev/sdc1 rw
    40 27 0:34 / /mnt/data rw - tmpfs first rw,size=1k
    41 40 0:35 / /mnt/data rw - tmpfs second rw,size=2k
    42 25 0:36 / /dev/shm rw - tmpfs shm2 rw,size=4k
    43 24 0:37 / /dev/mqueue rw - mqueue mqueue rw
''')


# --------------------------------------------------------------------------- measuring

def fake_statvfs(table):
    def statvfs(path):
        if path not in table:
            raise OSError(errno.EACCES, 'Permission denied')
        size, free, avail, inodes, ifree = table[path]
        used = size - free
        iused = inodes - ifree
        return {
            'size': size, 'used': used, 'free': free, 'avail': avail,
            'used_pct': usage._pct(used, used + avail),
            'inodes': inodes, 'inodes_used': iused, 'inodes_free': ifree, 'inodes_avail': ifree,
            'inodes_used_pct': usage._pct(iused, inodes), 'block_size': 4096,
            'statvfs_read_only': False,
        }
    return statvfs


STATS = {
    '/': (1000, 50, 0, 100, 90),              # 100 % (reserved blocks count as used)
    '/var/log': (1000, 200, 200, 100, 2),     # 80 % used, 98 % inodes
    '/tmp': (1000, 0, 0, 100, 1),             # tmpfs full, 99 % inodes
    '/var/lib/docker/overlay2/abc/merged': (1000, 900, 900, 100, 90),
    '/media/usb': (1000, 500, 500, 0, 0),     # no inode accounting
    '/boot': (1000, 100, 100, 10, 5),         # exactly 90 %
    '/mnt/data': (1000, 1000, 1000, 10, 10),
    '/dev/shm': (1000, 1000, 1000, 10, 10),
}


def measure(**kwargs):
    entries = mounts.parse_mountinfo(MOUNTINFO)
    return usage.measure(entries, statvfs=fake_statvfs(STATS), **kwargs)


def test_measure_full_reasons_and_flags():
    filesystems, excluded, missing = measure()
    fs = dict((f['mount'], f) for f in filesystems)
    assert fs['/']['full_reasons'] == ['used_pct'] and fs['/']['used_pct'] == 100.0
    assert fs['/var/log']['full_reasons'] == ['inodes_used_pct']
    assert fs['/var/log']['bind_mounts'] == ['/mnt/logcopy', '/srv/app logs']
    assert fs['/tmp']['full'] and fs['/tmp']['full_reasons'] == ['used_pct', 'inodes_used_pct']
    assert fs['/tmp']['ram_backed'] and not fs['/tmp']['scratch']
    assert not fs['/var/lib/docker/overlay2/abc/merged']['full']
    assert fs['/media/usb']['inodes_used_pct'] == 0.0 and not fs['/media/usb']['full']
    assert fs['/boot']['full_reasons'] == ['used_pct']  # thresholds are inclusive
    assert fs['/boot']['read_only']
    assert fs['/dev/shm']['scratch'] and fs['/dev/shm']['device'] == 'shm2'
    assert fs['/mnt/data']['device'] == 'second'        # the visible one
    assert fs['/']['device'] == '/dev/mapper/vg-root' and fs['/']['dev'] == '253:1'
    assert missing == []
    assert {'mount': '/proc', 'fstype': 'proc', 'reason': 'pseudo'} in excluded


def test_measure_thresholds():
    filesystems = measure(max_used_pct=100, max_inodes_used_pct=99)[0]
    full = sorted(f['mount'] for f in filesystems if f['full'])
    assert full == ['/', '/tmp']


def test_measure_mounts_filter_accepts_bind_mount_points():
    filesystems, dummy, missing = measure(mounts=['/mnt/logcopy', '/tmp/', '/nope'])
    assert sorted(f['mount'] for f in filesystems) == ['/tmp', '/var/log']
    assert missing == ['/nope']


def test_measure_statvfs_failure_falls_back_to_bind_mount():
    table = dict(STATS)
    table['/mnt/logcopy'] = table.pop('/var/log')
    entries = mounts.parse_mountinfo(MOUNTINFO)
    filesystems, excluded = usage.measure(entries, statvfs=fake_statvfs(table))[:2]
    fs = dict((f['mount'], f) for f in filesystems)
    assert '/mnt/logcopy' in fs and '/var/log' in fs['/mnt/logcopy']['bind_mounts']
    table.pop('/mnt/data')
    filesystems, excluded = usage.measure(entries, statvfs=fake_statvfs(table))[:2]
    failed = [e for e in excluded if e['reason'] == 'statvfs_failed']
    assert [e['mount'] for e in failed] == ['/mnt/data']


def test_locate_paths(tmp_path):
    root = str(tmp_path)
    os.makedirs(os.path.join(root, 'data', 'logs'))
    os.makedirs(os.path.join(root, 'other'))
    os.symlink(os.path.join(root, 'data', 'logs'), os.path.join(root, 'link'))
    entries = mounts.parse_mountinfo(textwrap.dedent('''\
        1 0 8:1 / / rw - ext4 /dev/sda1 rw
        2 1 8:2 / {root}/data rw - xfs /dev/sda2 rw
        3 1 8:2 / {root}/other rw - xfs /dev/sda2 rw
        4 1 0:50 / {root}/nfs rw - nfs4 srv:/x rw
    ''').format(root=root))
    filesystems = usage.measure(entries, statvfs=fake_statvfs({'/': STATS['/'], root + '/data': STATS['/']}))[0]
    found = usage.locate_paths(
        [root + '/link', root + '/other', root + '/missing', root + '/d*', root + '/nfs'], entries, filesystems)
    by_path = dict((f['path'], f) for f in found)
    assert by_path[root + '/link']['resolved'] == root + '/data/logs'
    assert by_path[root + '/link']['mount'] == root + '/data'
    assert by_path[root + '/other']['mount'] == root + '/data'   # a bind mount: primary reported
    assert by_path[root + '/missing'] == {
        'path': root + '/missing', 'resolved': None, 'exists': False, 'is_dir': False,
        'mount': None, 'fstype': None, 'measured': False}
    assert by_path[root + '/data']['is_dir']                     # glob match
    assert by_path[root + '/nfs']['exists'] is False             # not created


# --------------------------------------------------------------------------- a real tmpfs

@pytest.fixture
def full_tmpfs():
    """A 1 MiB tmpfs with 64 inodes, mounted on a path with a space, filled to 0 bytes free."""
    if os.geteuid() != 0:
        pytest.skip('mounting a tmpfs needs root')
    point = '/mnt/cmz-role-unit %d' % os.getpid()
    os.makedirs(point)
    try:
        subprocess.check_call(['mount', '-t', 'tmpfs', '-o', 'size=1m,nr_inodes=64', 'cmz-unit', point])
    except (OSError, subprocess.CalledProcessError) as e:
        os.rmdir(point)
        pytest.skip('cannot mount a tmpfs: %s' % e)
    try:
        yield point
    finally:
        subprocess.call(['umount', point])
        os.rmdir(point)


def _fill(point):
    chunk = b'x' * 65536
    with open(os.path.join(point, 'fill.log'), 'wb') as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    # Finish the last partial block byte by byte.
    with open(os.path.join(point, 'fill.log'), 'ab', buffering=0) as f:
        try:
            while True:
                f.write(b'x')
        except OSError as e:
            assert e.errno == errno.ENOSPC


def test_real_tmpfs_statvfs_and_survey(full_tmpfs):
    measured = usage.statvfs_usage(full_tmpfs)
    assert measured['size'] == 1024 * 1024
    assert measured['inodes'] == 64
    assert measured['used_pct'] < 1

    _fill(full_tmpfs)
    measured = usage.statvfs_usage(full_tmpfs)
    assert measured['free'] == 0 and measured['avail'] == 0
    assert measured['used'] == measured['size'] == 1024 * 1024
    assert measured['used_pct'] == 100.0

    result = usage.survey(mounts=[full_tmpfs], paths=[full_tmpfs + '/fill.log'])
    assert [fs['mount'] for fs in result['filesystems']] == [full_tmpfs]  # escaped \040 read back
    fs = result['filesystems'][0]
    assert fs['fstype'] == 'tmpfs' and fs['device'] == 'cmz-unit' and fs['ram_backed']
    assert fs['full'] and fs['full_reasons'] == ['used_pct']
    assert result['full'] == [full_tmpfs]
    assert result['paths'][0]['mount'] == full_tmpfs and result['paths'][0]['measured']


def test_real_tmpfs_inodes_exhausted(full_tmpfs):
    n = 0
    try:
        while True:
            open(os.path.join(full_tmpfs, 'f%d' % n), 'w').close()
            n += 1
    except OSError as e:
        assert e.errno == errno.ENOSPC
    result = usage.survey(mounts=[full_tmpfs])
    fs = result['filesystems'][0]
    assert fs['inodes_free'] == 0 and fs['inodes_used_pct'] == 100.0
    assert fs['full_reasons'] == ['inodes_used_pct']
