# SPDX-License-Identifier: GPL-3.0-or-later
import os

from ansible_collections.sre.cmemgzip.plugins.module_utils.sysinfo import (
    MountTable, memory_available, parse_mountinfo, usable_cpus,
)

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
41 22 0:40 / /var/log/my\\040logs rw - xfs /dev/sdb1 rw
42 22 0:41 / /data rw - tmpfs tmpfs rw,size=10k
43 22 0:42 / /data rw - btrfs /dev/sdc rw
"""


def test_parse_mountinfo_unescapes_and_keeps_order():
    mounts = parse_mountinfo(MOUNTINFO)
    assert [m.mount_point for m in mounts] == ['/', '/dev/shm', '/var/log/my logs', '/data', '/data']
    assert mounts[2].fstype == 'xfs' and mounts[2].source == '/dev/sdb1'
    assert mounts[1].device_number == os.makedev(0, 25)


def test_find_takes_longest_prefix_and_the_top_of_a_stack():
    table = MountTable(parse_mountinfo(MOUNTINFO))
    assert table.find('/var/log/my logs/a.log').fstype == 'xfs'
    assert table.find('/var/log/other').mount_point == '/'
    assert table.find('/data/x').fstype == 'btrfs'
    assert table.find('/dev/shmx').mount_point == '/'


def test_host_facts_are_sane():
    assert 1 <= usable_cpus() <= os.cpu_count()
    assert memory_available() > 0
