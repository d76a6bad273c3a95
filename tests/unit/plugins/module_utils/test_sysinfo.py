# SPDX-License-Identifier: GPL-3.0-or-later
import os

from ansible_collections.sre.cmemgzip.plugins.module_utils.mounts import parse_mountinfo
from ansible_collections.sre.cmemgzip.plugins.module_utils.sysinfo import MountTable, memory_available, usable_cpus

MOUNTINFO = """\
22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:25 / /dev/shm rw,nosuid,nodev shared:3 - tmpfs tmpfs rw
41 22 0:40 / /var/log/my\\040logs rw - xfs /dev/sdb1 rw
42 22 0:41 / /data rw - tmpfs tmpfs rw,size=10k
43 22 0:42 / /data rw - btrfs /dev/sdc rw
"""


def test_find_takes_longest_prefix_and_the_top_of_a_stack():
    table = MountTable(parse_mountinfo(MOUNTINFO))
    assert table.find('/var/log/my logs/a.log').fstype == 'xfs'
    assert table.find('/var/log/other').mount_point == '/'
    assert table.find('/data/x').fstype == 'btrfs'
    assert table.find('/dev/shmx').mount_point == '/'
    # a device number that matches a mount on the path wins over the longest prefix
    assert table.find('/data/x', os.makedev(0, 41)).fstype == 'tmpfs'


def test_host_facts_are_sane():
    assert 1 <= usable_cpus() <= os.cpu_count()
    assert memory_available() > 0
