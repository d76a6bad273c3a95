#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
---
module: fs_usage_info
short_description: Measure the local filesystems and memory of a host, even when its disks are full
version_added: 0.1.0
description:
  - Reads C(/proc/self/mountinfo) of the managed host, keeps its local filesystems and measures each
    one with C(statvfs) (bytes, inodes, percentages, read-only state, and whether it is past the
    thresholds O(max_used_pct) and O(max_inodes_used_pct)).
  - Overlay roots of containers, C(tmpfs) (including a full C(/tmp)), ext2/3/4, xfs, btrfs, zfs, f2fs,
    vfat and other local filesystems are measured.
  - Pseudo filesystems (proc, sysfs, cgroup, devpts, devtmpfs, debugfs, tracefs, ...), mount points
    below C(/proc) and C(/sys), read-only images (squashfs, iso9660, erofs, ...) and network or cluster
    filesystems (nfs*, cifs, smb3, sshfs, 9p, ceph, glusterfs, fuse.*, ...) are excluded and never
    passed to C(statvfs), so a dead NFS server cannot hang the module. O(include_fstypes) overrides
    these exclusions.
  - Mounts of the same filesystem (bind mounts, btrfs subvolumes; same device number) are reported once,
    under the mount of the filesystem's root or else the shortest mount point; the other mount points are
    listed in RV(filesystems[].bind_mounts). Over-mounted (hidden) mounts are excluded.
  - C(/dev/shm) is reported like any tmpfs, flagged RV(filesystems[].scratch=true), since it is the RAM
    scratch space the C(sre.cmemgzip.cmemgzip) module keeps its journal in.
  - Also returns the memory this process may use (C(MemAvailable), cgroup v2 or v1 memory limit and
    headroom) and the free space of C(/dev/shm).
  - Never changes anything. It starts on a host whose C(/), C(/tmp) and home directory have no free byte,
    without fact gathering.
author:
  - sre.cmemgzip developers (@sre)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - sre.cmemgzip.full_disk_action
attributes:
  check_mode:
    support: full
    details: This module only reads.
  diff_mode:
    support: none
options:
  max_used_pct:
    description:
      - A filesystem is RV(filesystems[].full) when its RV(filesystems[].used_pct) is greater than or equal to
        this percentage.
      - The percentage is computed like C(df) does, C(used / (used + avail)), so blocks reserved for root count
        as used.
    type: float
    default: 90
  max_inodes_used_pct:
    description:
      - A filesystem is RV(filesystems[].full) when its RV(filesystems[].inodes_used_pct) is greater than or
        equal to this percentage.
      - Filesystems that do not count inodes (btrfs reports 0) are never full by inodes.
    type: float
    default: 95
  include_fstypes:
    description:
      - Only measure filesystems of these types (shell patterns such as V(ext*) or V(nfs*)).
      - When set, the built-in exclusion of pseudo, image and network filesystems does not apply, so
        V([nfs4]) measures NFS mounts.
    type: list
    elements: str
    default: []
  exclude_fstypes:
    description:
      - Do not measure filesystems of these types (shell patterns), in addition to the built-in exclusions.
    type: list
    elements: str
    default: []
  mounts:
    description:
      - Only report the filesystems mounted on these mount points (any of their bind mounts counts).
      - Mount points that match no measured filesystem are returned in RV(missing_mounts) with a warning.
    type: list
    elements: path
    default: []
  paths:
    description:
      - Paths (shell globs allowed) to locate. RV(paths) tells for each one whether it exists and which
        reported filesystem holds it. Used by the P(sre.cmemgzip.rescue#role) role to know which of its roots
        lie on a full filesystem.
    type: list
    elements: path
    default: []
notes:
  - Reads only. RV(changed) is always V(false).
  - Runs as the connecting user. Without privileges, C(statvfs) may fail on a mount point the user cannot
    reach; such mounts are returned in RV(excluded) with reason V(statvfs_failed).
seealso:
  - module: sre.cmemgzip.cmemgzip
  - module: ansible.builtin.setup
    description: C(ansible_mounts) needs fact gathering, which needs a writable temporary directory.
'''

EXAMPLES = r'''
- name: Measure every local filesystem
  sre.cmemgzip.fs_usage_info:
  register: usage

- name: Show the full ones
  ansible.builtin.debug:
    msg: "{{ usage.full }}"

- name: Stricter thresholds, only / and /var
  sre.cmemgzip.fs_usage_info:
    max_used_pct: 80
    max_inodes_used_pct: 90
    mounts:
      - /
      - /var

- name: Where do the log directories live?
  sre.cmemgzip.fs_usage_info:
    paths:
      - /var/log
      - /srv/*/logs
  register: usage

- name: Measure NFS mounts too (never done by default)
  sre.cmemgzip.fs_usage_info:
    include_fstypes: [ext*, xfs, overlay, tmpfs, nfs*]
'''

RETURN = r'''
changed:
  description: Always V(false).
  returned: always
  type: bool
  sample: false
check_mode:
  description:
    - Whether the module ran in check mode. Lets a role know it runs as a survey even when check mode comes from
      the C(check_mode) keyword of a play or block, which does not set C(ansible_check_mode).
  returned: always
  type: bool
  sample: false
msg:
  description: "One line, such as C(1 of 3 filesystems full: /)."
  returned: always
  type: str
  sample: "1 of 3 filesystems full: /"
full:
  description: Mount points of the filesystems past a threshold.
  returned: always
  type: list
  elements: str
  sample: ["/", "/var/log"]
filesystems:
  description: One entry per measured filesystem, in mount table order.
  returned: always
  type: list
  elements: dict
  contains:
    mount:
      description: Mount point (the filesystem's root mount, else the shortest one).
      type: str
      sample: /var/log
    device:
      description: Source of the mount (device, V(overlay), V(tmpfs), pool/dataset...).
      type: str
      sample: /dev/sda3
    fstype:
      description: Filesystem type.
      type: str
      sample: ext4
    dev:
      description: C(major:minor) device number from mountinfo.
      type: str
      sample: "8:3"
    root:
      description: Directory of the filesystem mounted at RV(filesystems[].mount).
      type: str
      sample: /
    mount_id:
      description: Mount id from mountinfo.
      type: int
      sample: 27
    bind_mounts:
      description: Other mount points of the same filesystem (bind mounts, subvolumes).
      type: list
      elements: str
      sample: ["/srv/logs"]
    size:
      description: Size in bytes (C(f_blocks * f_frsize)).
      type: int
      sample: 10737418240
    used:
      description: Bytes in use (C(size - free)).
      type: int
      sample: 10200547328
    free:
      description: Free bytes including those reserved for root (C(f_bfree)).
      type: int
      sample: 536870912
    avail:
      description: Bytes available to unprivileged users (C(f_bavail)).
      type: int
      sample: 0
    used_pct:
      description: C(100 * used / (used + avail)), like C(df), two decimals.
      type: float
      sample: 100.0
    inodes:
      description: Total inodes (V(0) when the filesystem does not count them).
      type: int
      sample: 655360
    inodes_used:
      description: Inodes in use.
      type: int
      sample: 120000
    inodes_free:
      description: Free inodes (C(f_ffree)).
      type: int
      sample: 535360
    inodes_avail:
      description: Inodes available to unprivileged users (C(f_favail)).
      type: int
      sample: 535360
    inodes_used_pct:
      description: C(100 * inodes_used / inodes), two decimals.
      type: float
      sample: 18.31
    block_size:
      description: Fragment size used for the byte counts.
      type: int
      sample: 4096
    read_only:
      description: Mounted read-only (mount or super-block option C(ro), or C(ST_RDONLY)).
      type: bool
      sample: false
    ram_backed:
      description: A C(tmpfs) or C(ramfs), whose files live in memory.
      type: bool
      sample: false
    scratch:
      description: This is C(/dev/shm), where the cmemgzip module keeps its journal.
      type: bool
      sample: false
    full:
      description: At or past one of the thresholds.
      type: bool
      sample: true
    full_reasons:
      description: Thresholds reached, V(used_pct) and/or V(inodes_used_pct).
      type: list
      elements: str
      sample: ["used_pct"]
    deleted_open_bytes:
      description:
        - Bytes held by files that are deleted but still open (C(df) counts them, C(du) cannot see them);
          M(sre.cmemgzip.reclaim_deleted) gets them back.
      type: int
      sample: 1073741824
    deleted_open_files:
      description: How many such files.
      type: int
      sample: 1
excluded:
  description: Mounts not measured, with the reason (V(pseudo), V(network), V(readonly_image), V(kernel_path),
    V(overmounted), V(excluded_fstype), V(not_included_fstype), V(statvfs_failed)).
  returned: always
  type: list
  elements: dict
  sample: [{"mount": "/proc", "fstype": "proc", "reason": "pseudo"}]
missing_mounts:
  description: Entries of O(mounts) that matched no measured filesystem.
  returned: always
  type: list
  elements: str
  sample: []
paths:
  description: For each match of O(paths), where it lives.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path (a glob match, or the pattern itself when nothing matched).
      type: str
      sample: /var/log
    resolved:
      description: The path with symlinks resolved, V(null) when it does not exist.
      type: str
      sample: /var/log
    exists:
      description: Whether the path exists.
      type: bool
      sample: true
    is_dir:
      description: Whether the resolved path is a directory (only when it exists).
      type: bool
      sample: true
    mount:
      description: Reported mount point of the filesystem holding it (its primary mount for bind mounts).
      type: str
      sample: /
    fstype:
      description: Type of that filesystem.
      type: str
      sample: overlay
    measured:
      description: Whether that filesystem is in RV(filesystems) (false for excluded ones).
      type: bool
      sample: true
memory:
  description: Memory this process may use.
  returned: always
  type: dict
  contains:
    mem_total:
      description: C(MemTotal) in bytes.
      type: int
      sample: 8254390272
    mem_available:
      description: C(MemAvailable) in bytes.
      type: int
      sample: 5368709120
    swap_free:
      description: C(SwapFree) in bytes.
      type: int
      sample: 0
    cgroup:
      description: Tightest memory limit of this process's cgroup and its ancestors, V(null) when unlimited.
      type: dict
      sample: {"version": "v2", "path": "/sys/fs/cgroup/user.slice", "limit": 2147483648,
               "usage": 1073741824, "headroom": 1073741824}
    available:
      description: The smaller of RV(memory.mem_available) and the cgroup headroom.
      type: int
      sample: 1073741824
    shm:
      description: Space of C(/dev/shm) (V(null) when absent) with keys C(mount), C(size), C(free), C(avail),
        C(inodes_free).
      type: dict
      sample: {"mount": "/dev/shm", "size": 67108864, "free": 67108864, "avail": 67108864, "inodes_free": 1000}
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.sre.cmemgzip.plugins.module_utils import usage as usage_utils
from ansible_collections.sre.cmemgzip.plugins.module_utils.errors import CmemgzipError
from ansible_collections.sre.cmemgzip.plugins.module_utils.payload_cleanup import hold_own

ARGUMENT_SPEC = dict(
    max_used_pct=dict(type='float', default=90),
    max_inodes_used_pct=dict(type='float', default=95),
    include_fstypes=dict(type='list', elements='str', default=[]),
    exclude_fstypes=dict(type='list', elements='str', default=[]),
    mounts=dict(type='list', elements='path', default=[]),
    paths=dict(type='list', elements='path', default=[]),
)


def build_module():
    """The AnsibleModule of this module (unit tests build it through here)."""
    return AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


def run_module(module):
    params = module.params
    for name in ('max_used_pct', 'max_inodes_used_pct'):
        value = params[name]
        if not 0 < value <= 100:
            module.fail_json(msg='%s must be greater than 0 and at most 100, got %s' % (name, value))
    try:
        result = usage_utils.survey(
            max_used_pct=params['max_used_pct'],
            max_inodes_used_pct=params['max_inodes_used_pct'],
            include_fstypes=params['include_fstypes'],
            exclude_fstypes=params['exclude_fstypes'],
            mounts=params['mounts'],
            paths=params['paths'],
        )
    except (CmemgzipError, OSError, ValueError) as e:
        module.fail_json(msg='cannot measure the filesystems: %s' % e)
    for missing in result['missing_mounts']:
        module.warn('%s is not the mount point of a measured filesystem' % missing)
    full = result['full']
    if full:
        msg = '%d of %d filesystems full: %s' % (len(full), len(result['filesystems']), ', '.join(full))
    else:
        msg = 'no full filesystem among %d' % len(result['filesystems'])
    module.exit_json(changed=False, msg=msg, check_mode=module.check_mode, **result)


def main():
    # A later run must see that this run's AnsiballZ payload directory is alive (payload_cleanup).
    hold_own()
    run_module(build_module())


if __name__ == '__main__':
    main()
