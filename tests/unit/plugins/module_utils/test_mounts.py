# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of plugins/module_utils/mounts.py (mountinfo parsing, classification, statvfs)."""

from __future__ import absolute_import, division, print_function

import os
import textwrap

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils import mounts
from ansible_collections.sre.cmemgzip.plugins.module_utils.results import printable


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


def by_mount(entries):
    return dict((e.mount_point, e) for e in entries)


# --------------------------------------------------------------------------- parsing

def test_parse_line_fields():
    e = mounts.parse_mountinfo_line(
        '36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue\n')
    assert (e.mount_id, e.parent_id, e.major, e.minor) == (36, 35, 98, 0)
    assert e.dev == '98:0'
    assert e.root == '/mnt1'
    assert e.mount_point == '/mnt2'
    assert e.mount_options == ('rw', 'noatime')
    assert e.optional == ('master:1', 'shared:7')
    assert e.fstype == 'ext3'
    assert e.source == '/dev/root'
    assert e.super_options == ('rw', 'errors=continue')
    assert not e.read_only


def test_parse_line_without_optional_fields_and_bytes():
    e = mounts.parse_mountinfo_line(b'27 1 254:0 / / ro,relatime - ext4 /dev/vda rw')
    assert e.optional == ()
    assert e.mount_point == '/'
    assert e.read_only  # per-mount ro


def test_parse_escaped_space_tab_newline_backslash():
    line = r'50 27 0:40 /a\040b /mnt/my\040logs\011tab\012nl\134bs rw - tmpfs my\040src rw'
    e = mounts.parse_mountinfo_line(line)
    assert e.root == '/a b'
    assert e.mount_point == '/mnt/my logs\ttab\nnl\\bs'
    assert e.source == 'my src'


def test_parse_undecodable_bytes_roundtrip():
    e = mounts.parse_mountinfo_line(b'51 27 0:41 / /mnt/caf\xe9 rw - tmpfs tmpfs rw')
    # Surrogate-escaped: usable with os functions, printable() gives JSON-safe text.
    assert os.fsencode(e.mount_point) == b'/mnt/caf\xe9'
    assert printable(e.mount_point) == '/mnt/caf\\xe9'


def test_parse_super_options_ro():
    e = mounts.parse_mountinfo_line('52 27 8:1 / /x rw - ext4 /dev/sda1 ro,errors=remount-ro')
    assert e.read_only


@pytest.mark.parametrize('line', [
    '',
    '1 2 3:4 / /x rw ext4 /dev/x rw',     # no separator
    '1 2 3:4 / /x rw -',                   # nothing after the separator
    'a 2 3:4 / /x rw - ext4 /dev/x rw',    # mount id not a number
])
def test_parse_malformed_line(line):
    with pytest.raises(ValueError):
        mounts.parse_mountinfo_line(line)


def test_parse_whole_table_skips_blank_lines():
    entries = mounts.parse_mountinfo(MOUNTINFO + '\n\n')
    assert len(entries) == 22
    assert entries[7].mount_point == '/srv/app logs'
    assert entries[7].root == '/apps'


# --------------------------------------------------------------------------- classification

def reasons(include=None, exclude=None):
    entries = mounts.parse_mountinfo(MOUNTINFO)
    groups, excluded = mounts.classify(entries, include, exclude)
    kept = dict((g[0].mount_point, [m.mount_point for m in g[1:]]) for g in groups)
    why = dict((e.mount_point + '#%d' % e.mount_id, r) for e, r in excluded)
    return kept, why


def test_classification_defaults():
    kept, why = reasons()
    assert why['/proc#22'] == 'pseudo'
    assert why['/sys#23'] == 'pseudo'
    assert why['/dev#24'] == 'pseudo'            # devtmpfs
    assert why['/dev/pts#26'] == 'pseudo'
    assert why['/dev/mqueue#43'] == 'pseudo'
    assert why['/sys/fs/cgroup#31'] == 'kernel_path'  # a tmpfs, but a kernel interface
    assert why['/sys/fs/cgroup/memory#32'] == 'pseudo'
    assert why['/home/nfs#34'] == 'network'
    assert why['/mnt/remote#35'] == 'network'     # fuse.sshfs
    assert why['/snap/core/1#36'] == 'readonly_image'
    assert why['/mnt/data#40'] == 'overmounted'
    assert why['/dev/shm#25'] == 'overmounted'
    assert set(kept) == {
        '/', '/var/log', '/tmp', '/var/lib/docker/overlay2/abc/merged', '/media/usb', '/boot',
        '/mnt/data', '/dev/shm',
    }


def test_bind_mounts_are_grouped_under_the_root_mount():
    kept = reasons()[0]
    # Same device 253:2: the root mount /var/log wins over /mnt/logcopy (longer) and
    # /srv/app logs (a sub-directory of the filesystem).
    assert sorted(kept['/var/log']) == ['/mnt/logcopy', '/srv/app logs']


def test_bind_mount_primary_is_shortest_when_no_root_mount():
    entries = mounts.parse_mountinfo(textwrap.dedent('''\
        1 0 8:1 / / rw - ext4 /dev/sda1 rw
        2 1 8:2 /sub /srv/longer/path rw - ext4 /dev/sda2 rw
        3 1 8:2 /sub /data rw - ext4 /dev/sda2 rw
    '''))
    groups = mounts.classify(entries)[0]
    assert [[m.mount_point for m in g] for g in groups] == [['/'], ['/data', '/srv/longer/path']]


def test_overmounted_children_are_hidden():
    entries = mounts.parse_mountinfo(textwrap.dedent('''\
        1 0 8:1 / / rw - ext4 /dev/sda1 rw
        2 1 0:40 / /mnt rw - tmpfs a rw
        3 2 0:41 / /mnt/inner rw - tmpfs b rw
        4 1 0:42 / /mnt rw - tmpfs c rw
    '''))
    hidden = mounts.hidden_mount_ids(entries)
    assert hidden == {2, 3}


def test_include_fstypes_overrides_builtin_exclusions():
    kept, why = reasons(include=['nfs*', 'xfs'])
    assert set(kept) == {'/home/nfs', '/var/log'}
    assert why['/#27'] == 'not_included_fstype'


def test_exclude_fstypes():
    kept, why = reasons(exclude=['tmpfs', 'fuse*'])
    assert '/tmp' not in kept and '/dev/shm' not in kept and '/media/usb' not in kept
    assert why['/tmp#33'] == 'excluded_fstype'
    assert '/' in kept
