#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: reclaim_deleted
short_description: Get back the space of deleted files that processes still hold open, saving their content first
version_added: 0.2.0
description:
  - A log deleted while its process still writes it keeps its blocks until the process closes it; C(df) says 100 %,
    C(du) finds nothing, and the usual remedy is to restart the service. This module gets the space back without
    stopping anything.
  - It finds every regular file that is deleted but still open (C(/proc/PID/fd/N) of an inode with no link left), on
    local filesystems only (never touching a network or FUSE mount), one entry per file whatever the number of
    processes and descriptors that hold it.
  - With O(save=true) (the default) the content is read through C(/proc/PID/fd/N), compressed into the journal
    (C(/dev/shm) by default) and verified like M(sre.cmemgzip.cmemgzip) does; then the space is freed through the same
    descriptor - with the prefix method of C(open_files=live) (collapse on ext4 and xfs, punch a hole elsewhere) when a
    holder still appends, so that its new lines stay in the file, or by truncating it when nobody writes - and the
    content is written to C(NAME-deleted-pidPID-YYYYmmddTHHMMSSZ.gz) in O(save_dir), verified and fsynced. Until then
    the journal keeps the copy and a killed run is finished by the next one.
  - Holders the method cannot follow are left alone with reason C(holder_refused), naming pid, command and why - a
    writer without C(O_APPEND), any memory map (a deleted shared library, for one), a byte-range lock or lease.
  - The action plugin of the same name turns pipelining on and points E(TMPDIR) at C(/dev/shm), so the module starts
    on a host whose disks are full.
author:
  - sre.cmemgzip developers (@sre)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - sre.cmemgzip.full_disk_action
attributes:
  check_mode:
    support: full
    details: Lists what would be reclaimed, with the real compressed size when O(save=true); changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux only (C(/proc), C(fallocate)).
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  paths:
    description:
      - Mount points or directories to limit the search to. A mount point selects the files of its filesystem; a
        directory, those that were in it (or below).
      - Empty means every local filesystem.
    type: list
    elements: path
    default: []
  min_size:
    description: Leave files smaller than this alone (bytes, or a size such as V(10M)).
    type: str
    default: 1M
  pids:
    description: Only files held by one of these processes.
    type: list
    elements: int
    default: []
  process_names:
    description: Only files held by a process whose command name (C(/proc/PID/comm)) matches one of these shell globs.
    type: list
    elements: str
    default: []
  save:
    description:
      - Save the content to a C(.gz) before freeing the space. V(false) only frees it (truncates the file).
    type: bool
    default: true
  save_dir:
    description:
      - Directory for the saved C(.gz) files.
      - Default is the directory the file was in, when it still exists and the holder sees the same filesystem tree
        as the module (not in another mount namespace); otherwise such a file is skipped with reason C(no_save_dir).
      - The C(.gz) may go into the space just freed.
    type: path
  level:
    description: gzip compression level.
    type: int
    default: 6
    choices: [1, 2, 3, 4, 5, 6, 7, 8, 9]
  threads:
    description: Compression threads; V(0) uses every CPU the process may use.
    type: int
    default: 0
  memory_limit:
    description:
      - Most RAM a compressed copy may take (bytes, or a size such as V(512M)); default half of the memory available.
    type: str
  journal_dir:
    description: Directory for the crash journal, normally RAM; see M(sre.cmemgzip.cmemgzip).
    type: path
    default: /dev/shm
  spill_dir:
    description: Journal directory on another filesystem, for copies that do not fit in O(journal_dir).
    type: path
notes:
  - The journal is shared with M(sre.cmemgzip.cmemgzip); each run first finishes or rolls back what interrupted runs of
    either module left, and runs on one host exclude each other.
  - See the collection's docs/how-it-works.md, "Deleted but open files", for the protocol and its guarantees.
seealso:
  - module: sre.cmemgzip.cmemgzip
  - module: sre.cmemgzip.fs_usage_info
'''

EXAMPLES = r'''
- name: The on-call story - df says 100 %, du finds nothing; get the space back, keep the lines
  sre.cmemgzip.reclaim_deleted:
    paths: [/var/log]
  become: true

- name: Only what apache still holds, saved to another disk
  sre.cmemgzip.reclaim_deleted:
    process_names: ['apache2', 'httpd']
    save_dir: /srv/saved-logs
  become: true

- name: What would be reclaimed, and how much
  sre.cmemgzip.reclaim_deleted:
  check_mode: true
  register: deleted
'''

RETURN = r'''
msg:
  description: One line with the bytes freed and the counts.
  returned: always
  type: str
  sample: >-
    freed 1069547520 bytes of deleted but open files: 1 reclaimed, 0 would reclaim, 0 recovered, 0 skipped, 0 failed
files:
  description: One entry per deleted file found, and per interrupted run recovered.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path the file had before it was deleted, as its holder sees it.
      type: str
      sample: /var/log/apache2/access.log
    dest:
      description: The C(.gz) its content went to.
      type: str
      sample: /var/log/apache2/access.log-deleted-pid812-20261201T101500Z.gz
    action:
      description:
        - What happened to the file.
        - V(compressed) - the file was replaced by its verified compressed copy.
        - V(skipped) - left as it was, for the reason in RV(files[].reason).
        - V(failed) - something went wrong; RV(files[].detail) says what and where the verified copy is.
        - V(recovered) - an interrupted run was finished or rolled back from the journal.
        - V(would_compress) - check mode, would be compressed.
        - V(would_recover) - check mode, an interrupted run would be finished or rolled back.
        - V(live_compressed) - M(sre.cmemgzip.cmemgzip) with C(open_files=live), a file still being written had its
          first bytes saved to a new C(NAME-TIME.gz) beside it and their space freed while the writer went on.
        - V(would_live_compress) - check mode, the first bytes of a file still being written would be compressed and
          freed.
        - V(reclaimed) - a deleted file that processes still held was saved to a new
          C(NAME-deleted-pidPID-TIME.gz) and its space freed.
        - V(would_reclaim) - check mode of a deleted file would be saved and freed.
      type: str
      choices: [compressed, skipped, failed, recovered, would_compress, would_recover, live_compressed,
                would_live_compress, reclaimed, would_reclaim]
      sample: reclaimed
    reason:
      description:
        - Why it was skipped, failed or recovered, as a short code; V(null) when compressed.
        - V(not_found) - the path does not exist, or vanished before it was opened.
        - V(not_regular) - not a regular file (directory, FIFO, socket, device).
        - V(symlink) - a symbolic link, or became one (set C(follow) to compress the target).
        - V(hardlinked) - more than one hard link, compressing one name frees nothing.
        - V(already_compressed) - already compressed data, recognised by its magic bytes.
        - V(not_smaller) - the compressed copy would free no filesystem block.
        - V(open) - another process holds the file open or opened it meanwhile (RV(files[].pids)).
        - V(dest_exists) - C(NAME.gz) exists already; nothing is ever overwritten.
        - V(memory_budget) - the compressed copy would exceed the memory budget (C(memory_limit)).
        - V(no_journal_space) - no journal directory can hold the verified copy.
        - V(too_small) - smaller than C(min_size).
        - V(too_young) - modified less than C(min_age) ago.
        - V(excluded) - matches C(excludes), or a given file does not match C(patterns).
        - V(target_free_reached) - its filesystem already has C(target_free) available.
        - V(changed_while_reading) - the file changed while it was compressed; it was left untouched.
        - V(renamed) - renamed, replaced or linked by someone else while it was being replaced; the step was undone
          and no name holds the wrong kind of data.
        - V(shared_extents) - its blocks are shared with a snapshot or a reflinked copy; freeing them first would free
          nothing.
        - V(journal_pending) - an earlier run left a journal entry for this file that recovery could not settle; the
          file is left alone.
        - V(holder_refused) - a process holds the file in a way the live method cannot follow (writes without
          C(O_APPEND), a writable shared map, a byte-range lock or lease, or it could not be inspected);
          RV(files[].detail) names the pid, command and why.
        - V(live_unsupported) - the filesystem can neither collapse nor punch a range of a file.
        - V(output_pending) - the space was freed but the C(.gz) could not be written yet; the journal keeps the
          verified copy and the next run writes it.
        - V(name_too_long) - C(NAME.gz) would exceed the longest name (255 bytes) or path (4096 bytes) the kernel
          accepts.
        - V(journal_unsafe) - the journal directory belongs to another user (planted); RV(files[].detail) names it
          and its owner.
        - V(no_save_dir) - the directory a deleted file was in does not exist here (or
          its holder runs in another mount namespace); set O(save_dir).
        - V(window_unsupported) - M(sre.cmemgzip.cmemgzip) only, O(sre.cmemgzip.cmemgzip#module:strategy=window)
          cannot be used for a file (copy-on-write filesystem, sparse file, blocks shared with another file).
        - V(error) - an error; RV(files[].detail) has the message.
        - V(rolled_back) - recovery, an interrupted run had changed nothing; its journal copy was dropped.
        - V(finished) - recovery, an interrupted run was finished from its verified journal copy.
        - V(journal_orphaned) - recovery, the file of a journal entry is gone or changed; the copy is kept for a human.
        - V(journal_corrupt) - recovery, a journal copy does not match its manifest; nothing was written.
        - V(journal_unreadable) - recovery, a journal manifest cannot be read; everything was kept.
        - V(not_ours) - recovery, the file holds data that is neither the untouched original nor an interrupted
          rewrite of ours (appended, replaced, inode reused); nothing was written, the copy is kept for a human.
        - V(filesystem_gone) - recovery, the filesystem of a journal entry is not mounted there any more; the copy is
          kept; reported once, later runs list it in C(journal.notes).
        - V(read_only) - recovery, the filesystem is read-only; the interrupted run cannot be finished now.
        - V(rewrite_incomplete) - the original is gone and its compressed copy could not be written back; the only
          complete copy is the journal's (RV(files[].detail) says where; in RAM it does not survive a reboot).
        - V(journal_lost) - the file carries the marker of an interrupted rewrite whose journal copy is gone (a reboot
          emptied a RAM journal); check it with gzip -t.
        - V(salvaged) - M(sre.cmemgzip.cmemgzip) only, recovery, an in-place (window) compression whose journal was
          lost was finished from the file itself.
      type: str
      choices: [not_found, not_regular, symlink, hardlinked, already_compressed, not_smaller, open, dest_exists,
                memory_budget, no_journal_space, too_small, too_young, excluded, target_free_reached,
                changed_while_reading, renamed, shared_extents, journal_pending, holder_refused, live_unsupported,
                output_pending, name_too_long, journal_unsafe, no_save_dir, window_unsupported, error, rolled_back,
                finished, journal_orphaned, journal_corrupt, journal_unreadable, not_ours, filesystem_gone, read_only,
                rewrite_incomplete, journal_lost, salvaged]
      sample: holder_refused
    detail:
      description: The reason in words.
      type: str
    original_size:
      description: Bytes saved (the file's size, or the part before the block its writer appends in).
      type: int
    compressed_size:
      description: Size of the saved gzip member in bytes.
      type: int
    bytes_saved:
      description: Allocated bytes the filesystem got back, less the C(.gz).
      type: int
    allocated:
      description: Bytes the file occupied on its filesystem when found.
      type: int
    deleted:
      description: Always V(true) for a deleted file.
      type: bool
    strategy:
      description: How the space was freed, V(collapse), V(punch_hole) or V(truncate).
      type: str
    writer_stall:
      description: The longest time in seconds the freeing held the file's inode lock (a writer's longest wait).
      type: float
    pids:
      description:
        - The processes holding the file, one entry per descriptor, each with C(pid), C(comm), C(fd), C(access)
          (C(read), C(write), C(read_write)), C(flags) (octal) and C(append).
      type: list
      elements: dict
      sample: [{"pid": 812, "comm": "apache2", "fd": 7, "access": "write", "flags": "0102001", "append": true}]
    ratio:
      description: original_size / compressed_size.
      type: float
    seconds:
      description: Time spent on this file.
      type: float
    estimated:
      description: Whether compressed_size is an estimate.
      type: bool
totals:
  description: Counts per action, and sums of original_size, compressed_size, bytes_saved and allocated.
  returned: always
  type: dict
filesystems:
  description: Each filesystem a file was on, with C(mount), C(device), C(fstype) and C(before)/C(after) usage.
  returned: always
  type: list
  elements: dict
memory:
  description: C(limit), C(available), C(peak_rss), C(peak_journal), C(threads).
  returned: always
  type: dict
journal:
  description: C(dir), C(spill_dir), C(ram_backed), C(usable) and C(notes).
  returned: always
  type: dict
open_files_scan:
  description: C(processes) looked at, C(seconds), and C(skipped) (processes that could not be read in time).
  returned: always
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils.deleted import ReclaimOptions, reclaim
from ansible_collections.sre.cmemgzip.plugins.module_utils.errors import CmemgzipError

ARGUMENT_SPEC = dict(
    paths=dict(type='list', elements='path', default=[]),
    min_size=dict(type='str', default='1M'),
    pids=dict(type='list', elements='int', default=[]),
    process_names=dict(type='list', elements='str', default=[]),
    save=dict(type='bool', default=True),
    save_dir=dict(type='path'),
    level=dict(type='int', default=6, choices=list(range(1, 10))),
    threads=dict(type='int', default=0),
    memory_limit=dict(type='str'),
    journal_dir=dict(type='path', default='/dev/shm'),
    spill_dir=dict(type='path'),
)


def create_module():
    return AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


def build_options(params, check_mode):
    return ReclaimOptions(
        paths=params['paths'],
        min_size=human_to_bytes(params['min_size']),
        pids=params['pids'],
        process_names=params['process_names'],
        save=params['save'],
        save_dir=params['save_dir'],
        level=params['level'],
        threads=params['threads'],
        memory_limit=human_to_bytes(params['memory_limit']) if params['memory_limit'] else None,
        journal_dir=params['journal_dir'],
        spill_dir=params['spill_dir'],
        check_mode=check_mode,
    )


def main():
    module = create_module()
    try:
        options = build_options(module.params, module.check_mode)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    if options.save_dir and not module.check_mode and not os.path.isdir(options.save_dir):
        module.fail_json(msg='save_dir %s is not a directory' % options.save_dir)
    try:
        result = reclaim(options)
    except CmemgzipError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg='unexpected error: %s' % exc)
    if result.pop('failed'):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
