#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: rescue_host
short_description: Rescue a host whose filesystems are full, in one call - measure, compress, measure again, summarize
version_added: 0.1.0
description:
  - Everything the role P(sre.cmemgzip.rescue#role) does on a host, in one module run, so a fleet costs one remote
    call per host.
  - Measures the local filesystems as M(sre.cmemgzip.fs_usage_info) does. A filesystem is full when it reaches
    O(max_used_pct) or O(max_inodes_used_pct).
  - On each full, writable filesystem where deleted files are still held open (C(df) counts them, C(du) does not
    see them), first reclaims them as M(sre.cmemgzip.reclaim_deleted) does, their content saved beside where they
    were (O(deleted_files)). It is the cheapest space there is - one scan of C(/proc), no walk of the disk - and
    nothing else can reach it.
  - Then, on each full filesystem that can be helped (writable, full by space, with one of O(roots) on it),
    compresses the files matching O(patterns) under those roots as M(sre.cmemgzip.cmemgzip) does (recursively,
    without leaving the filesystem, largest first) until O(target_free) is available. A file that a process holds
    open - a runaway log - has its first bytes saved to C(NAME-TIME.gz) and freed while its writer goes on
    (O(live_files)); a file nobody holds becomes its own C(.gz).
  - Measures the full filesystems again and returns a summary of the host (RV(status), RV(msg), what was
    compressed, skipped and why, what failed), not every file; the counts are complete.
  - In check mode nothing changes and RV(status) is V(full) for a host with a full filesystem; the summary lists
    what would be compressed, with sizes estimated as O(estimate) says.
author:
  - sre.cmemgzip developers (@sre)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - sre.cmemgzip.full_disk_action
attributes:
  check_mode:
    support: full
    details: Changes no file and writes no journal; the savings are estimated (O(estimate)).
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux only (C(/proc), C(renameat2), leases).
options:
  max_used_pct:
    description: A filesystem is full when its used space, computed like C(df), is at least this percentage.
    type: float
    default: 90
  max_inodes_used_pct:
    description:
      - A filesystem is full when this percentage of its inodes is used.
      - Compressing a file frees no inode, so a filesystem full by inodes only is reported (note V(inodes_only))
        and left alone.
    type: float
    default: 95
  mounts:
    description: Only consider the filesystems mounted on these mount points (empty means all local filesystems).
    type: list
    elements: path
    default: []
  include_fstypes:
    description: Only measure filesystems of these types (shell patterns); see M(sre.cmemgzip.fs_usage_info).
    type: list
    elements: str
    default: []
  exclude_fstypes:
    description: Filesystem types (shell patterns) never to measure, besides the built-in exclusions.
    type: list
    elements: str
    default: []
  roots:
    description:
      - Directories searched recursively, without leaving their filesystem, for files to compress. Each root is
        used for the full filesystem that holds it; a full filesystem mounted below a root is searched from its
        mount point. Roots that do not exist are ignored.
      - C(/var/tmp) and C(/tmp) are left out on purpose; their files belong to running programs and follow no
        rotation convention.
    type: list
    elements: path
    default: [/var/log, /var/crash, /var/lib/systemd/coredump]
  patterns:
    description:
      - Shell patterns on file names of the files to compress. The default covers rotated logs
        (C(app.log.1), C(app.log.2026-11-26), C(syslog.1), C(syslog.12), C(messages-20261126)), plain logs
        (C(*.log)), core dumps (C(core), C(core.*), C(vmcore)) and kdump's C(dump.*).
    type: list
    elements: str
    default: ["*.log.[0-9]*", "*.[0-9]", "*.[0-9][0-9]", "*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]", "*.log", "core",
              "core.*", "vmcore", "dump.[0-9]*"]
  excludes:
    description:
      - Shell patterns of file names never to compress. The default lists compressed formats (also recognised by
        content) and journald's files, which journald manages itself.
    type: list
    elements: str
    default: ["*.gz", "*.xz", "*.zst", "*.bz2", "*.lz4", "*.zip", "*.lzo", "*.lzma", "*.tgz", "*.7z", "*.journal",
              "*.journal~"]
  min_size:
    description: Smallest file to compress, bytes or a size such as V(1M).
    type: str
    default: 1M
  min_age:
    description:
      - A live file (its name matches O(min_age_patterns)) modified within this time (V(30s), V(10m), V(2h), V(1d))
        is left alone (skip reason C(too_young)); V(0) compresses live files of any age.
      - Files open in a process are always left alone, whatever their age.
    type: str
    default: 10m
  min_age_patterns:
    description:
      - Shell patterns of the names of live files, which a program may still append to by name. Only they wait
        O(min_age); a rotated name (C(access.log.1), C(messages-20261126)) or a core dump is a candidate at once,
        however recently logrotate or the kernel wrote it.
      - Empty means O(min_age) applies to every file.
    type: list
    elements: str
    default: ["*.log"]
  target_free:
    description:
      - Stop compressing on a filesystem once it has this much available space, as a percentage of its size
        (V(15%)) or bytes (V(2G)). Choose it above C(100 - max_used_pct) so that a remediated filesystem is no
        longer full.
    type: str
    default: 15%
  memory_limit:
    description: Most RAM one compressed copy may take (bytes or a size such as V(512M)); overrides O(memory_fraction).
    type: str
  memory_fraction:
    description:
      - Fraction of the memory the module may use on the host (the smaller of C(MemAvailable) and its cgroup's
        headroom) that one compressed copy may take.
    type: float
    default: 0.5
  level:
    description: gzip level.
    type: int
    default: 9
    choices: [1, 2, 3, 4, 5, 6, 7, 8, 9]
  threads:
    description: Compression threads; V(0) uses every CPU the process may use.
    type: int
    default: 0
  journal_dir:
    description: Directory (in RAM) of the crash journal; see M(sre.cmemgzip.cmemgzip).
    type: path
    default: /dev/shm
  spill_dir:
    description: Directory on another filesystem where the journal may spill; see M(sre.cmemgzip.cmemgzip).
    type: path
  estimate:
    description:
      - How check mode tells the size of each C(.gz) (C(files[].compressed_size) of M(sre.cmemgzip.cmemgzip)).
      - V(sample) deflates 8 slices of 128 KiB spread over the file, each primed with the 32 KiB before it, and
        extrapolates (C(estimated=true)); about 1 MiB of work per file, within a few per cent on logs.
        Files up to 2 MiB are compressed whole.
      - V(exact) compresses every file whole, as the real run would, which costs as much CPU as the run itself.
      - Without check mode every file is compressed whole anyway.
    type: str
    default: sample
    choices: [sample, exact]
  max_files:
    description: How many files the summary lists per kind (compressed, would compress, skipped, failures).
    type: int
    default: 50
  live_files:
    description:
      - Handle files that processes hold open (a log being written) with the live method of
        M(sre.cmemgzip.cmemgzip) (C(open_files=live)) - their first bytes go to a new C(NAME-TIME.gz) and are freed
        while the writer keeps appending - whatever their age. V(false) leaves them alone (skip reason C(open)).
      - Only readers and C(O_APPEND) writers are followed; any other holder is named in a C(holder_refused) skip.
    type: bool
    default: true
  live_method:
    description:
      - How live files are freed; see M(sre.cmemgzip.cmemgzip). V(punch_hole) keeps offsets stable for log shippers.
    type: str
    default: auto
    choices: [auto, collapse, punch_hole]
  deleted_files:
    description:
      - Reclaim the deleted-but-open files of each full filesystem first, as M(sre.cmemgzip.reclaim_deleted) does
        (content saved to C(NAME-deleted-pidPID-TIME.gz) where the file was, then its space freed without stopping
        the process). V(false) leaves them alone.
    type: bool
    default: true
notes:
  - The task fails when RV(status) is V(failed) (a file or a run failed, or the host could not be measured); the
    result still has the whole summary.
seealso:
  - module: sre.cmemgzip.cmemgzip
  - module: sre.cmemgzip.fs_usage_info
  - plugin: sre.cmemgzip.rescue_summary
    plugin_type: filter
  - plugin: sre.cmemgzip.fleet_report
    plugin_type: filter
'''

EXAMPLES = r'''
- name: Rescue the host if a filesystem is full (what the role sre.cmemgzip.rescue runs)
  sre.cmemgzip.rescue_host:
    target_free: 20%
  become: true
  register: rescue

- name: Say what happened
  ansible.builtin.debug:
    msg: "{{ rescue.status }}: {{ rescue.msg }}"

- name: Survey only (nothing changes), application logs too
  sre.cmemgzip.rescue_host:
    roots: [/var/log, /srv/app/logs]
  check_mode: true
'''

RETURN = r'''
host:
  description: The inventory name of the host (set by the action plugin).
  returned: always
  type: str
  sample: web1
status:
  description:
    - The state of the host after the run.
    - V(healthy) - no filesystem is full; nothing was done.
    - V(remediated) - every full filesystem has room again.
    - V(full) - check mode, a filesystem is full.
    - V(still_full) - a filesystem is still full (see RV(filesystems[].note) and RV(filesystems[].still_full_reasons)).
    - V(failed) - the host could not be measured, or a file or a run failed (RV(failures)).
  returned: always
  type: str
  choices: [healthy, remediated, full, still_full, failed]
  sample: remediated
msg:
  description: One line for humans.
  returned: always
  type: str
  sample: "/ full before; compressed 3 files, saved 17.69 MB; none still full"
check_mode:
  description: Whether nothing was changed (check mode).
  returned: always
  type: bool
  sample: false
thresholds:
  description: The O(max_used_pct), O(max_inodes_used_pct) and O(target_free) in force.
  returned: always
  type: dict
  sample: {"max_used_pct": 90.0, "max_inodes_used_pct": 95.0, "target_free": "15%"}
memory:
  description: The memory budget.
  returned: always
  type: dict
  contains:
    available:
      description: Memory the module may use (C(MemAvailable), lowered to its cgroup's headroom), in bytes.
      type: int
    limit:
      description: Budget of one compressed copy in bytes (O(memory_limit), else O(memory_fraction) of RV(memory.available)).
      type: int
    mem_total:
      description: C(MemTotal) in bytes.
      type: int
    cgroup:
      description: The tightest cgroup memory limit, V(null) when unlimited; see M(sre.cmemgzip.fs_usage_info).
      type: dict
    shm:
      description: Space of C(/dev/shm), where the journal lives; see M(sre.cmemgzip.fs_usage_info).
      type: dict
measured:
  description: Number of filesystems measured.
  returned: always
  type: int
  sample: 3
full:
  description: Mount points of the filesystems that were full.
  returned: always
  type: list
  elements: str
  sample: ["/"]
still_full:
  description: Mount points of the filesystems still full after the run (empty in check mode).
  returned: always
  type: list
  elements: str
  sample: []
filesystems:
  description: Each full filesystem, before and after.
  returned: always
  type: list
  elements: dict
  contains:
    mount:
      description: Mount point.
      type: str
    device:
      description: Source of the mount.
      type: str
    fstype:
      description: Filesystem type.
      type: str
    full_reasons:
      description: Thresholds it reached, V(used_pct) and/or V(inodes_used_pct).
      type: list
      elements: str
    read_only:
      description: Whether it is mounted read-only.
      type: bool
    roots:
      description: The roots searched on it.
      type: list
      elements: str
    note:
      description:
        - Why it was left alone, V(null) when it was not.
        - V(read_only) - mounted read-only, nothing can be written there.
        - V(inodes_only) - full by inodes only, compressing a file never frees an inode.
        - V(no_roots) - none of the roots lies on it.
      type: str
      choices: [read_only, inodes_only, no_roots]
    before:
      description: C(size), C(free), C(avail) (what C(df) shows as available), C(used_pct), C(inodes), C(inodes_free),
        C(inodes_used_pct) before the run.
      type: dict
    after:
      description: The same after the run, V(null) when it could not be measured again.
      type: dict
    freed:
      description: Available bytes gained (C(after.avail - before.avail)), V(null) without RV(filesystems[].after).
      type: int
    still_full:
      description: Whether it is still full after the run (V(false) in check mode).
      type: bool
    still_full_reasons:
      description: Thresholds it still reaches, or V(not_measured).
      type: list
      elements: str
    actions:
      description: Number of files there per action (C(compressed), C(skipped)... as in M(sre.cmemgzip.cmemgzip)).
      type: dict
    files_compressed:
      description: Files compressed there.
      type: int
    bytes_saved:
      description: Bytes their compression gave back.
      type: int
    would_compress:
      description: Check mode, files that would be compressed there.
      type: int
    would_save:
      description: Check mode, bytes they would give back (estimated).
      type: int
    skipped:
      description: Files skipped there.
      type: int
    failed:
      description: Files that failed there, plus one if its run failed.
      type: int
actions:
  description: Number of files per action on the whole host, as in RV(filesystems[].actions).
  returned: always
  type: dict
  sample: {"compressed": 3, "skipped": 10}
files_compressed:
  description: Files compressed.
  returned: always
  type: int
bytes_saved:
  description: Bytes the filesystems got back.
  returned: always
  type: int
original_size:
  description: Sum of the sizes of the compressed files before compression.
  returned: always
  type: int
compressed_size:
  description: Sum of their compressed sizes.
  returned: always
  type: int
would_compress:
  description: Check mode, files that would be compressed.
  returned: always
  type: int
would_save:
  description: Check mode, bytes that would be given back (estimated).
  returned: always
  type: int
recovered:
  description: Journal entries of interrupted runs that were (or would be) finished or rolled back.
  returned: always
  type: int
compressed:
  description: The first O(max_files) files compressed, with C(path), C(dest), C(original_size), C(compressed_size),
    C(bytes_saved) and C(seconds).
  returned: always
  type: list
  elements: dict
would_compress_files:
  description: Check mode, the first O(max_files) files that would be compressed, with C(path), C(original_size),
    C(bytes_saved) and C(estimated).
  returned: always
  type: list
  elements: dict
skips:
  description: The files left alone.
  returned: always
  type: dict
  contains:
    count:
      description: How many.
      type: int
    reasons:
      description: How many per skip reason (the C(reason) codes of M(sre.cmemgzip.cmemgzip)).
      type: dict
      sample: {"too_small": 7, "target_free_reached": 2}
    files:
      description: The first O(max_files), with C(path), C(reason) and C(detail).
      type: list
      elements: dict
failures:
  description: The first O(max_files) failures, with C(mount), C(path), C(reason) and C(detail).
  returned: always
  type: list
  elements: dict
  contains:
    mount:
      description: The filesystem whose run failed, V(null) otherwise.
      type: str
    path:
      description: The file that failed, V(null) otherwise.
      type: str
    reason:
      description:
        - A file's C(reason) code (see M(sre.cmemgzip.cmemgzip)), or one of
        - V(measure_failed) - the filesystems could not be measured.
        - V(module_failed) - the compression run of a filesystem failed (RV(failures[].mount)).
      type: str
    detail:
      description: What went wrong, in words.
      type: str
failure_count:
  description: Number of failures.
  returned: always
  type: int
live_files:
  description:
    - Files still being written that were cut (O(live_files)) - their first bytes saved to C(NAME-TIME.gz) and freed.
    - C(count) and C(bytes_saved) when done, C(would) and C(would_save) in check mode, and C(files), the first
      O(max_files) of them (C(path), C(dest), C(action), C(original_size), C(compressed_size), C(bytes_saved),
      C(strategy), C(writer_stall)).
  returned: always
  type: dict
  sample: {"count": 1, "bytes_saved": 1069547520, "would": 0, "would_save": 0, "files": []}
deleted_files:
  description:
    - Deleted files still held open that were reclaimed (O(deleted_files)), with the same keys as RV(live_files).
  returned: always
  type: dict
  sample: {"count": 1, "bytes_saved": 2147483648, "would": 0, "would_save": 0, "files": []}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import bytes_to_human, human_to_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes
from ansible_collections.sre.cmemgzip.plugins.module_utils.deleted import ReclaimOptions
from ansible_collections.sre.cmemgzip.plugins.module_utils.module_args import engine_options
from ansible_collections.sre.cmemgzip.plugins.module_utils.rescue import Measure, rescue
from ansible_collections.sre.cmemgzip.plugins.module_utils.payload_cleanup import hold_own

ARGUMENT_SPEC = dict(
    max_used_pct=dict(type='float', default=90),
    max_inodes_used_pct=dict(type='float', default=95),
    mounts=dict(type='list', elements='path', default=[]),
    include_fstypes=dict(type='list', elements='str', default=[]),
    exclude_fstypes=dict(type='list', elements='str', default=[]),
    roots=dict(type='list', elements='path', default=['/var/log', '/var/crash', '/var/lib/systemd/coredump']),
    patterns=dict(type='list', elements='str', default=[
        '*.log.[0-9]*', '*.[0-9]', '*.[0-9][0-9]', '*-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]', '*.log', 'core',
        'core.*', 'vmcore', 'dump.[0-9]*']),
    excludes=dict(type='list', elements='str', default=[
        '*.gz', '*.xz', '*.zst', '*.bz2', '*.lz4', '*.zip', '*.lzo', '*.lzma', '*.tgz', '*.7z', '*.journal',
        '*.journal~']),
    min_size=dict(type='str', default='1M'),
    min_age=dict(type='str', default='10m'),
    min_age_patterns=dict(type='list', elements='str', default=['*.log']),
    target_free=dict(type='str', default='15%'),
    memory_limit=dict(type='str'),
    memory_fraction=dict(type='float', default=0.5),
    level=dict(type='int', default=9, choices=list(range(1, 10))),
    threads=dict(type='int', default=0),
    journal_dir=dict(type='path', default='/dev/shm'),
    spill_dir=dict(type='path'),
    estimate=dict(type='str', default='sample', choices=['sample', 'exact']),
    max_files=dict(type='int', default=50),
    live_files=dict(type='bool', default=True),
    live_method=dict(type='str', default='auto', choices=['auto', 'collapse', 'punch_hole']),
    deleted_files=dict(type='bool', default=True),
)


def create_module():
    return AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


def check_params(params):
    """A message for the first parameter out of range, else None."""
    for name in ('max_used_pct', 'max_inodes_used_pct'):
        if not 0 < params[name] <= 100:
            return '%s must be greater than 0 and at most 100, got %s' % (name, params[name])
    if not 0 < params['memory_fraction'] <= 1:
        return 'memory_fraction must be greater than 0 and at most 1, got %s' % params['memory_fraction']
    if params['max_files'] < 0:
        return 'max_files must not be negative, got %s' % params['max_files']
    return None


def run_module(module):
    params = module.params
    error = check_params(params)
    if error:
        module.fail_json(msg=error)

    def options_for(roots, memory_limit):
        return engine_options(params, module.check_mode, human_to_bytes, paths=roots, recurse=True,
                              one_file_system=True, largest_first=True, follow=False,
                              open_files='live' if params['live_files'] else 'skip',
                              memory_limit=str(memory_limit) if memory_limit is not None else None)

    def reclaim_for(mount, memory_limit):
        return ReclaimOptions(paths=[mount], min_size=human_to_bytes(params['min_size']), save=True,
                              level=params['level'], threads=params['threads'], memory_limit=memory_limit,
                              journal_dir=params['journal_dir'], spill_dir=params['spill_dir'],
                              check_mode=module.check_mode)

    try:
        options_for([], None)  # reject a bad size, age or target_free before anything runs
        memory_limit = human_to_bytes(params['memory_limit']) if params['memory_limit'] else None
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    measure = Measure(params['max_used_pct'], params['max_inodes_used_pct'], params['mounts'],
                      params['include_fstypes'], params['exclude_fstypes'])
    thresholds = dict((name, params[name]) for name in ('max_used_pct', 'max_inodes_used_pct', 'target_free'))
    summary, changed = rescue(measure, params['roots'], options_for, module.check_mode,
                              memory_limit=memory_limit, memory_fraction=params['memory_fraction'],
                              thresholds=thresholds, max_files=params['max_files'], human=bytes_to_human,
                              reclaim_for=reclaim_for if params['deleted_files'] else None)
    if summary['status'] == codes.HOST_FAILED:
        module.fail_json(changed=changed, **summary)
    module.exit_json(changed=changed, **summary)


def main():
    # A later run must see that this run's AnsiballZ payload directory is alive (payload_cleanup).
    hold_own()
    run_module(create_module())


if __name__ == '__main__':
    main()
