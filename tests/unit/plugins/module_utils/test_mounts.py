# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of plugins/module_utils/mounts.py (mountinfo parsing, classification, statvfs)."""

from __future__ import absolute_import, division, print_function

import errno
import os
import subprocess
import textwrap

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils import mounts


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
    assert mounts.printable(e.mount_point) == '/mnt/caf\\xe9'


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
            'used_pct': mounts._pct(used, used + avail),
            'inodes': inodes, 'inodes_used': iused, 'inodes_free': ifree, 'inodes_avail': ifree,
            'inodes_used_pct': mounts._pct(iused, inodes), 'block_size': 4096,
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
    return mounts.measure(entries, statvfs=fake_statvfs(STATS), **kwargs)


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
    filesystems, excluded = mounts.measure(entries, statvfs=fake_statvfs(table))[:2]
    fs = dict((f['mount'], f) for f in filesystems)
    assert '/mnt/logcopy' in fs and '/var/log' in fs['/mnt/logcopy']['bind_mounts']
    table.pop('/mnt/data')
    filesystems, excluded = mounts.measure(entries, statvfs=fake_statvfs(table))[:2]
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
    filesystems = mounts.measure(entries, statvfs=fake_statvfs({'/': STATS['/'], root + '/data': STATS['/']}))[0]
    found = mounts.locate_paths(
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


# --------------------------------------------------------------------------- memory

def test_meminfo(tmp_path):
    p = tmp_path / 'meminfo'
    p.write_text('MemTotal:       1000 kB\nMemAvailable:    500 kB\nHugePages_Total:       0\n')
    info = mounts.read_meminfo(str(p))
    assert info == {'MemTotal': 1024000, 'MemAvailable': 512000, 'HugePages_Total': 0}


def test_parse_proc_cgroup():
    v2, v1 = mounts.parse_proc_cgroup('12:memory:/user.slice\n4:cpu,cpuacct:/x\n0::/user.slice/s.scope\n')
    assert v2 == '/user.slice/s.scope'
    assert v1 == {'memory': '/user.slice', 'cpu': '/x', 'cpuacct': '/x'}


def _cgroup_tree(tmp_path, files):
    for rel, value in files.items():
        p = tmp_path / 'cg' / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(value + '\n')


def test_cgroup_v2_tightest_ancestor(tmp_path):
    _cgroup_tree(tmp_path, {
        'memory.max': 'max', 'memory.current': '0',       # the mount's root: never limited
        'a/memory.max': '1000', 'a/memory.current': '900',
        'a/b/memory.max': 'max', 'a/b/memory.current': '100',
    })
    (tmp_path / 'cgroup').write_text('0::/a/b\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:60 / %s/cg rw - cgroup2 cgroup2 rw' % tmp_path)]
    cg = mounts.cgroup_memory(entries, str(tmp_path / 'cgroup'))
    assert cg == {'version': 'v2', 'path': '%s/cg/a' % tmp_path, 'limit': 1000, 'usage': 900, 'headroom': 100}


def test_cgroup_v2_namespace_root(tmp_path):
    # In a container with a cgroup namespace, the mount's root is the container's cgroup.
    _cgroup_tree(tmp_path, {'memory.max': '4096', 'memory.current': '1024'})
    (tmp_path / 'cgroup').write_text('0::/\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:60 / %s/cg rw - cgroup2 cgroup2 rw' % tmp_path)]
    cg = mounts.cgroup_memory(entries, str(tmp_path / 'cgroup'))
    assert cg['limit'] == 4096 and cg['headroom'] == 3072


def test_cgroup_v1_unlimited_and_limited(tmp_path):
    _cgroup_tree(tmp_path, {
        'svc/memory.limit_in_bytes': '9223372036854771712', 'svc/memory.usage_in_bytes': '10',
    })
    (tmp_path / 'cgroup').write_text('5:memory:/svc\n0::/\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:61 / %s/cg rw - cgroup cgroup rw,memory' % tmp_path)]
    assert mounts.cgroup_memory(entries, str(tmp_path / 'cgroup')) is None
    _cgroup_tree(tmp_path, {'svc/memory.limit_in_bytes': '2048'})
    cg = mounts.cgroup_memory(entries, str(tmp_path / 'cgroup'))
    assert cg == {'version': 'v1', 'path': '%s/cg/svc' % tmp_path, 'limit': 2048, 'usage': 10, 'headroom': 2038}


def test_memory_status_uses_smaller_of_meminfo_and_cgroup(tmp_path):
    _cgroup_tree(tmp_path, {'memory.max': '4096', 'memory.current': '1024'})
    (tmp_path / 'cgroup').write_text('0::/\n')
    (tmp_path / 'meminfo').write_text('MemTotal: 100 kB\nMemAvailable: 50 kB\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:60 / %s/cg rw - cgroup2 cgroup2 rw' % tmp_path)]
    status = mounts.memory_status(entries, str(tmp_path / 'meminfo'), str(tmp_path / 'cgroup'),
                                  scratch=str(tmp_path))
    assert status['mem_total'] == 102400 and status['mem_available'] == 51200
    assert status['available'] == 3072
    assert status['shm']['size'] > 0


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
    usage = mounts.statvfs_usage(full_tmpfs)
    assert usage['size'] == 1024 * 1024
    assert usage['inodes'] == 64
    assert usage['used_pct'] < 1

    _fill(full_tmpfs)
    usage = mounts.statvfs_usage(full_tmpfs)
    assert usage['free'] == 0 and usage['avail'] == 0
    assert usage['used'] == usage['size'] == 1024 * 1024
    assert usage['used_pct'] == 100.0

    result = mounts.survey(mounts=[full_tmpfs], paths=[full_tmpfs + '/fill.log'])
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
    result = mounts.survey(mounts=[full_tmpfs])
    fs = result['filesystems'][0]
    assert fs['inodes_free'] == 0 and fs['inodes_used_pct'] == 100.0
    assert fs['full_reasons'] == ['inodes_used_pct']
