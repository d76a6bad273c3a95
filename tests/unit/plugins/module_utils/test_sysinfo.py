# SPDX-License-Identifier: GPL-3.0-or-later
import os

from ansible_collections.sre.cmemgzip.plugins.module_utils import mounts, sysinfo
from ansible_collections.sre.cmemgzip.plugins.module_utils.mounts import MountTable, parse_mountinfo
from ansible_collections.sre.cmemgzip.plugins.module_utils.sysinfo import memory_available, usable_cpus

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


# --------------------------------------------------------------------------- memory

def test_meminfo(tmp_path):
    p = tmp_path / 'meminfo'
    p.write_text('MemTotal:       1000 kB\nMemAvailable:    500 kB\nHugePages_Total:       0\n')
    info = sysinfo.read_meminfo(str(p))
    assert info == {'MemTotal': 1024000, 'MemAvailable': 512000, 'HugePages_Total': 0}


def test_parse_proc_cgroup():
    v2, v1 = sysinfo.parse_proc_cgroup('12:memory:/user.slice\n4:cpu,cpuacct:/x\n0::/user.slice/s.scope\n')
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
    cg = sysinfo.cgroup_memory(entries, str(tmp_path / 'cgroup'))
    assert cg == {'version': 'v2', 'path': '%s/cg/a' % tmp_path, 'limit': 1000, 'usage': 900, 'headroom': 100}


def test_cgroup_v2_namespace_root(tmp_path):
    # In a container with a cgroup namespace, the mount's root is the container's cgroup.
    _cgroup_tree(tmp_path, {'memory.max': '4096', 'memory.current': '1024'})
    (tmp_path / 'cgroup').write_text('0::/\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:60 / %s/cg rw - cgroup2 cgroup2 rw' % tmp_path)]
    cg = sysinfo.cgroup_memory(entries, str(tmp_path / 'cgroup'))
    assert cg['limit'] == 4096 and cg['headroom'] == 3072


def test_cgroup_v1_unlimited_and_limited(tmp_path):
    _cgroup_tree(tmp_path, {
        'svc/memory.limit_in_bytes': '9223372036854771712', 'svc/memory.usage_in_bytes': '10',
    })
    (tmp_path / 'cgroup').write_text('5:memory:/svc\n0::/\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:61 / %s/cg rw - cgroup cgroup rw,memory' % tmp_path)]
    assert sysinfo.cgroup_memory(entries, str(tmp_path / 'cgroup')) is None
    _cgroup_tree(tmp_path, {'svc/memory.limit_in_bytes': '2048'})
    cg = sysinfo.cgroup_memory(entries, str(tmp_path / 'cgroup'))
    assert cg == {'version': 'v1', 'path': '%s/cg/svc' % tmp_path, 'limit': 2048, 'usage': 10, 'headroom': 2038}


def test_memory_status_uses_smaller_of_meminfo_and_cgroup(tmp_path):
    _cgroup_tree(tmp_path, {'memory.max': '4096', 'memory.current': '1024'})
    (tmp_path / 'cgroup').write_text('0::/\n')
    (tmp_path / 'meminfo').write_text('MemTotal: 100 kB\nMemAvailable: 50 kB\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:60 / %s/cg rw - cgroup2 cgroup2 rw' % tmp_path)]
    status = sysinfo.memory_status(entries, str(tmp_path / 'meminfo'), str(tmp_path / 'cgroup'))
    assert status['mem_total'] == 102400 and status['mem_available'] == 51200
    assert status['available'] == 3072


def test_cpu_quota_v2_tightest_ancestor_and_v1(tmp_path):
    _cgroup_tree(tmp_path, {'cpu.max': 'max 100000', 'a/cpu.max': '150000 100000', 'a/b/cpu.max': '300000 100000'})
    (tmp_path / 'cgroup').write_text('0::/a/b\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:60 / %s/cg rw - cgroup2 cgroup2 rw' % tmp_path)]
    assert sysinfo.cgroup_cpu_quota(entries, str(tmp_path / 'cgroup')) == 1.5
    v1 = tmp_path / 'v1'
    v1.mkdir()
    (v1 / 'cpu.cfs_quota_us').write_text('-1')
    (v1 / 'cpu.cfs_period_us').write_text('100000')
    (tmp_path / 'cgroup1').write_text('4:cpu,cpuacct:/\n')
    entries = [mounts.parse_mountinfo_line('9 1 0:61 / %s rw - cgroup cgroup rw,cpu,cpuacct' % v1)]
    assert sysinfo.cgroup_cpu_quota(entries, str(tmp_path / 'cgroup1')) is None
    (v1 / 'cpu.cfs_quota_us').write_text('50000')
    assert sysinfo.cgroup_cpu_quota(entries, str(tmp_path / 'cgroup1')) == 0.5
