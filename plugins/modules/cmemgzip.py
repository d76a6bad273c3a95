#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: cmemgzip
short_description: Compress files in RAM on a full filesystem and put the C(.gz) in their place
version_added: 0.1.0
description:
  - Compresses files to gzip in memory and replaces each by C(NAME.gz) without needing one free block or inode on its
    filesystem, so it works when a filesystem is at 100 % and C(gzip) or M(community.general.archive) cannot.
  - Each file is streamed through zlib (blocks deflated in parallel, joined into one gzip member), the compressed copy
    is kept in a journal in RAM (O(journal_dir), by default C(/dev/shm)) and verified (CRC-32 and length of the
    decompressed stream) before the original is touched.
  - The original inode itself becomes the C(.gz) file; it is renamed without ever replacing an existing name, overwritten
    with the compressed bytes, truncated and synced. Owner, group, mode, ACLs, extended attributes and SELinux label are
    kept because the inode is the same; access and modification times are restored.
  - A run killed at any instant leaves the verified copy in the journal; the next run finishes or rolls back what it
    finds there and reports it with RV(files[].action=recovered).
  - Files open in any process, hard-linked files, symlinks (unless O(follow)), non-regular files, already compressed data
    (by magic bytes) and files whose compressed copy would free nothing are skipped with a reason.
  - It starts on a host whose C(/), C(/tmp), C(/var/tmp) and home directory have no free byte.
  - A run that was killed leaves its AnsiballZ payload directory (about 160 KB) in C(/dev/shm). Each run removes those of
    this collection that no living run holds and that did not change for an hour (RV(payload_cleanup)).
author:
  - sre.cmemgzip developers (@sre)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
  - sre.cmemgzip.full_disk_action
attributes:
  check_mode:
    support: full
    details: Changes no file and writes no journal; the compressed sizes are estimated from samples unless O(estimate=exact).
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux only (C(/proc), C(renameat2), leases).
options:
  path:
    description:
      - Files, globs or directories to compress.
      - Directories are searched for files (one level, or all levels with O(recurse)), without a depth limit; a
        directory whose path is longer than C(PATH_MAX) (4096 bytes) is reported with reason C(name_too_long).
      - A path that exists is always taken literally, even when its name contains C(*), C(?) or C([) (for example
        C(app[1].log)). Only a path that does not exist is expanded as a shell glob. To glob for a literal C([)
        write C([[]), for C(*) or C(?) write C([*]) or C([?]) (C(app[[]1].log) matches only C(app[1].log)).
    type: list
    elements: path
    required: true
    aliases: [paths]
  recurse:
    description: Search directories given in O(path) recursively.
    type: bool
    default: false
  one_file_system:
    description: When searching a directory, do not descend into other filesystems mounted below it.
    type: bool
    default: true
  patterns:
    description:
      - Shell globs matched against the file name; only matching files are candidates. Empty means every file.
    type: list
    elements: str
    default: []
  excludes:
    description: Shell globs; a file whose name or full path matches one is skipped with reason C(excluded).
    type: list
    elements: str
    default: []
  min_size:
    description: Skip files smaller than this (bytes, or a size such as C(10M)).
    type: str
    default: 1M
  min_age:
    description:
      - Skip files modified less than this long ago. Seconds, or a number with C(s), C(m), C(h), C(d) or C(w).
      - A log modified in the last minutes is most likely still written; a writer that reopens it by name would
        then create a new file beside the C(.gz).
      - With O(min_age_patterns), only files whose name matches one of them wait.
    type: str
    default: '0'
  min_age_patterns:
    description:
      - Shell globs of live names, matched against the file name (for example V(*.log)). O(min_age) applies only to
        files whose name matches one of them; every other file (a rotated C(access.log.1), a core dump) is a
        candidate at once, however recently it was written.
      - Empty means O(min_age) applies to every file.
      - Files open in a process are skipped whatever their age (O(open_files)).
    type: list
    elements: str
    default: []
  level:
    description: gzip compression level.
    type: int
    default: 9
    choices: [1, 2, 3, 4, 5, 6, 7, 8, 9]
  threads:
    description:
      - Compression threads, from V(0) to V(1024); V(0) uses every CPU the process may use (affinity mask and cgroup
        quota).
      - Each thread keeps up to two 1 MiB blocks and their compressed output in flight (about 4.5 MiB). Fewer threads
        are used when those would not fit in O(memory_limit); RV(memory.threads) says how many ran.
    type: int
    default: 0
  memory_limit:
    description:
      - Most RAM a compressed copy may take (bytes, or a size such as V(512M)).
      - A file whose compressed copy would grow beyond it is skipped with reason C(memory_budget), untouched, as soon as
        the stream reaches the limit.
      - It also bounds the blocks being compressed, O(threads) is lowered until they fit in it.
      - Defaults to half of the memory available to the process (C(MemAvailable), lowered to the cgroup's headroom).
      - A file whose compressed copy may exceed it (one larger than the limit) goes to O(spill_dir) when that has room.
    type: str
  largest_first:
    description: Compress the files that occupy the most blocks first.
    type: bool
    default: true
  target_free:
    description:
      - Stop compressing on a filesystem once it has this much space available, as bytes, a size such as V(2G), or a
        percentage of its size such as V(15%). Later files there are skipped with reason C(target_free_reached).
    type: str
  follow:
    description: Compress the target of a symbolic link (the C(.gz) is created beside the target). Otherwise skip links.
    type: bool
    default: false
  open_files:
    description:
      - What to do with a file that a process holds open.
      - V(skip) leaves it alone (compressing it would free nothing while the process keeps the old blocks, and its
        further writes would land in the C(.gz)).
      - V(live) saves its first bytes, up to the last filesystem block before its current end, to a new
        C(NAME-YYYYmmddTHHMMSSZ.gz) beside it (never overwriting; owner, group, mode and xattrs of the original) and
        frees them while the writer keeps appending; see O(live_method). The C(.gz) followed by the file from that
        point is exactly what the writer wrote. Only readers and writers that opened the file with C(O_APPEND) are
        followed; any other holder (a writer without C(O_APPEND), a writable shared map, a byte-range lock or lease)
        makes the file skipped with reason C(holder_refused), naming the pid, command and why.
      - A file nobody holds is compressed as usual, whatever this option says. A file a process holds is handled by
        the live method whatever its age (O(min_age) is meant to spare files still written) and even when
        C(NAME.gz) exists (the live method writes C(NAME-TIME.gz)).
    type: str
    default: skip
    choices: [skip, live]
  live_method:
    description:
      - How O(open_files=live) frees the saved bytes.
      - V(collapse) removes them (C(FALLOC_FL_COLLAPSE_RANGE), ext4 and xfs); the file then starts at the first byte
        not saved, offsets shift, readers that keep an offset (log shippers, C(tail -f)) see a truncation.
      - V(punch_hole) frees their blocks (C(FALLOC_FL_PUNCH_HOLE)); size and offsets stay, the range reads as zeros;
        what log shippers need. The only method on tmpfs and btrfs.
      - V(auto) collapses where the filesystem can and punches elsewhere.
    type: str
    default: auto
    choices: [auto, collapse, punch_hole]
  journal_dir:
    description:
      - Directory for the crash journal, on a filesystem other than the files' own, normally RAM. A private
        subdirectory is created there, one per user so that root and other users never share one or block each other,
        C(sre.cmemgzip) for root, C(sre.cmemgzip-UID) for any other user.
      - When that subdirectory exists but belongs to another user (planted in the world-writable C(/dev/shm)), it is
        never used; files that no other journal can take are skipped with reason C(journal_unsafe), whose detail
        names the directory and its owner. O(spill_dir) still works.
      - A directory on another, disk-backed filesystem also keeps the copy across a power loss.
    type: path
    default: /dev/shm
  estimate:
    description:
      - How check mode tells the size of each C(.gz) (RV(files[].compressed_size)).
      - V(sample) deflates 8 slices of 128 KiB spread over the file, each primed with the 32 KiB before it, and
        extrapolates (RV(files[].estimated=true)); about 1 MiB of work per file, within a few per cent on logs.
        Files up to 2 MiB are compressed whole.
      - V(exact) compresses every file whole, as the real run would, which costs as much CPU as the run itself.
      - Without check mode every file is compressed whole anyway.
    type: str
    default: sample
    choices: [sample, exact]
  spill_dir:
    description:
      - Directory on another filesystem for the journal when O(journal_dir) is missing, planted, too small for a file,
        or when the file is larger than O(memory_limit) (its copy might not fit in the RAM budget).
      - When neither can hold a copy, the file's own filesystem may, if at least 10 % of it stays available; the
        copy then sits in C(.sre.cmemgzip) (root) or C(.sre.cmemgzip-UID) at the root of that filesystem, like gzip's
        output beside its input, and that directory is removed again when empty. A full filesystem never holds its own
        copy; such files are skipped with reason C(no_journal_space).
    type: path
  max_file_results:
    description:
      - Most entries in RV(files). Beyond it, files are counted by action and reason in RV(files_omitted), so that a
        run over 100,000 files returns a result the controller can hold.
      - Failed, recovered and compressed files are listed first, then skips that need attention, then the others.
      - V(0) lists every file.
    type: int
    default: 1000
  strategy:
    description:
      - How a file becomes its C(.gz).
      - V(copy) keeps the whole verified compressed copy in the journal before the file is touched, then rewrites the
        file from it (RV(files[].strategy) V(inplace), V(truncate_first) or V(recreate)).
      - V(window) compresses the file into itself, behind the read position, through a bounded window; the journal
        holds only a checkpoint of a few MiB, whatever the file's size. Once the first byte is written the run can
        only go forward; a rerun finishes an interrupted one, and a file whose journal was lost finishes from its own
        content when the module is pointed at its C(.gz) (reason V(salvaged)). Not on copy-on-write filesystems,
        or sparse files (reason C(window_unsupported)).
      - V(auto) uses V(copy) when the journal can hold any copy the file can compress to (journal space and
        O(memory_limit) at least the file's size) and V(window) otherwise, so that a host with a small C(/dev/shm)
        (containers have 64 MiB) still frees its space.
      - See the collection's docs/how-it-works.md.
    type: str
    default: auto
    choices: [auto, copy, window]
notes:
  - A file is replaced only after its compressed copy was verified; see the collection's docs/how-it-works.md for the
    protocol and its guarantees.
  - Runs on one host exclude each other through a lock on the journal directory.
seealso:
  - module: sre.cmemgzip.fs_usage_info
  - module: community.general.archive
'''

EXAMPLES = r'''
- name: Compress rotated logs under /var/log, largest first, until 15 % is free
  sre.cmemgzip.cmemgzip:
    path: /var/log
    recurse: true
    patterns: ['*.log.[0-9]*', '*.[0-9]', '*.log']
    min_age: 10m
    min_age_patterns: ['*.log']   # rotated names are taken at once; live *.log files wait 10 minutes
    target_free: 15%
  become: true

- name: A file whose name contains glob characters is taken literally when it exists
  sre.cmemgzip.cmemgzip:
    path: /var/log/app[1].log

- name: See what would be freed, without changing anything
  sre.cmemgzip.cmemgzip:
    path: /var/log/app/access.log.1
  check_mode: true
  register: survey

- name: A core dump larger than /dev/shm, journal on another disk
  sre.cmemgzip.cmemgzip:
    path: /var/crash/core.12345
    spill_dir: /srv/scratch
    memory_limit: 2G
'''

RETURN = r'''
msg:
  description: One line with the bytes freed and the counts.
  returned: always
  type: str
  sample: 'freed 13266944 bytes: 1 compressed, 0 recovered, 0 would compress, 0 skipped, 0 failed'
files:
  description: One entry per file found or recovered, in the order they were handled; at most
    O(max_file_results) (see RV(files_omitted)).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description:
        - The file. Bytes that are not valid UTF-8 appear as C(\xNN) escapes; RV(files[].path_b64) then has the raw name.
      type: str
      sample: /var/log/app/access.log.1
    path_b64:
      description: Base64 of the raw bytes of the name.
      type: str
      returned: when the name is not valid UTF-8
    dest:
      description: The C(.gz) it became or would become.
      type: str
      sample: /var/log/app/access.log.1.gz
    action:
      description:
        - What happened to the file.
        - V(compressed) - the file was replaced by its verified compressed copy.
        - V(skipped) - left as it was, for the reason in RV(files[].reason).
        - V(failed) - something went wrong; RV(files[].detail) says what and where the verified copy is.
        - V(recovered) - an interrupted run was finished or rolled back from the journal.
        - V(would_compress) - check mode, would be compressed.
        - V(would_recover) - check mode, an interrupted run would be finished or rolled back.
        - V(live_compressed) - a file still being written (O(open_files=live)), its first bytes went to a new
          C(NAME-TIME.gz) beside it (RV(files[].dest)) and their space was freed while the writer went on.
        - V(would_live_compress) - check mode, the first bytes of a file still being written would be compressed and
          freed.
        - V(reclaimed) - M(sre.cmemgzip.reclaim_deleted), a deleted file that processes still held was saved to a new
          C(NAME-deleted-pidPID-TIME.gz) and its space freed.
        - V(would_reclaim) - check mode of M(sre.cmemgzip.reclaim_deleted), a deleted file would be saved and freed.
      type: str
      choices: [compressed, skipped, failed, recovered, would_compress, would_recover, live_compressed,
                would_live_compress, reclaimed, would_reclaim]
      sample: compressed
    reason:
      description:
        - Why it was skipped, failed or recovered, as a short code; V(null) when compressed.
        - V(not_found) - the path does not exist, or vanished before it was opened.
        - V(not_regular) - not a regular file (directory, FIFO, socket, device).
        - V(symlink) - a symbolic link, or became one (set O(follow) to compress the target).
        - V(hardlinked) - more than one hard link, compressing one name frees nothing.
        - V(already_compressed) - already compressed data, recognised by its magic bytes.
        - V(not_smaller) - the compressed copy would free no filesystem block.
        - V(open) - another process holds the file open or opened it meanwhile (RV(files[].pids)).
        - V(dest_exists) - C(NAME.gz) exists already; nothing is ever overwritten.
        - V(memory_budget) - the compressed copy would exceed the memory budget (O(memory_limit)).
        - V(no_journal_space) - no journal directory can hold the verified copy.
        - V(too_small) - smaller than O(min_size).
        - V(too_young) - modified less than O(min_age) ago.
        - V(excluded) - matches O(excludes), or a given file does not match O(patterns).
        - V(target_free_reached) - its filesystem already has O(target_free) available.
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
        - V(no_save_dir) - M(sre.cmemgzip.reclaim_deleted), the directory a deleted file was in does not exist here (or
          its holder runs in another mount namespace); set its C(save_dir).
        - V(window_unsupported) - O(strategy=window) cannot be used for this file (copy-on-write filesystem, sparse
          file, blocks shared with another file).
        - V(error) - an error; RV(files[].detail) has the message.
        - V(rolled_back) - recovery, an interrupted run had changed nothing; its journal copy was dropped.
        - V(finished) - recovery, an interrupted run was finished from its verified journal copy.
        - V(journal_orphaned) - recovery, the file of a journal entry is gone or changed; the copy is kept for a human.
        - V(journal_corrupt) - recovery, a journal copy does not match its manifest; nothing was written.
        - V(journal_unreadable) - recovery, a journal manifest cannot be read; everything was kept.
        - V(not_ours) - recovery, the file holds data that is neither the untouched original nor an interrupted
          rewrite of ours (appended, replaced, inode reused); nothing was written, the copy is kept for a human.
        - V(filesystem_gone) - recovery, the filesystem of a journal entry is not mounted there any more; the copy is
          kept; reported once, later runs list it in RV(journal.notes).
        - V(read_only) - recovery, the filesystem is read-only; the interrupted run cannot be finished now.
        - V(rewrite_incomplete) - the original is gone and its compressed copy could not be written back; the only
          complete copy is the journal's (RV(files[].detail) says where; in RAM it does not survive a reboot).
        - V(journal_lost) - the file carries the marker of an interrupted rewrite whose journal copy is gone (a reboot
          emptied a RAM journal); check it with gzip -t.
        - V(salvaged) - recovery, an in-place (window) compression whose journal was lost (power cut with the journal
          in RAM) was finished from the file itself.
      type: str
      choices: [not_found, not_regular, symlink, hardlinked, already_compressed, not_smaller, open, dest_exists,
                memory_budget, no_journal_space, too_small, too_young, excluded, target_free_reached,
                changed_while_reading, renamed, shared_extents, journal_pending, holder_refused, live_unsupported,
                output_pending, name_too_long, journal_unsafe, no_save_dir, window_unsupported, error, rolled_back,
                finished, journal_orphaned, journal_corrupt, journal_unreadable, not_ours, filesystem_gone, read_only,
                rewrite_incomplete, journal_lost, salvaged]
      sample: too_small
    detail:
      description: The reason in words. Bytes of a name that are not UTF-8 appear as C(\\xNN).
      type: str
      sample: smaller than min_size
    original_size:
      description: Size of the original in bytes.
      type: int
      sample: 6291456
    compressed_size:
      description:
        - Size of the gzip member in bytes.
        - In check mode an estimate from samples of the file (RV(files[].estimated=true)) unless O(estimate=exact)
          or the file is small.
      type: int
      sample: 524288
    bytes_saved:
      description:
        - Allocated bytes the filesystem got back.
        - In check mode computed from the block size and RV(files[].compressed_size).
      type: int
      sample: 5767168
    ratio:
      description: RV(files[].original_size) / RV(files[].compressed_size), two decimals; V(null) without both.
      type: float
      sample: 12.0
    seconds:
      description: Time spent on this file.
      type: float
      sample: 0.41
    strategy:
      description:
        - How the inode became its C(.gz). V(inplace) (rewritten from the journal copy from offset 0, then
          truncated), V(truncate_first) (copy-on-write filesystems, sparse files), V(recreate) (a new inode written from
          the journal, where a file cannot be changed at all) or V(window) (compressed into itself through a bounded
          window, see O(strategy)). V(null) when nothing was written.
        - For RV(files[].action=live_compressed), how the saved bytes were freed, V(collapse) or V(punch_hole) (see
          O(live_method)).
      type: str
      sample: inplace
    estimated:
      description: Whether RV(files[].compressed_size) is extrapolated from samples of the file rather than measured.
      type: bool
      sample: false
    pids:
      description:
        - For reason V(open), how each process holds the file, one entry per descriptor or memory map.
        - C(pid), C(comm), C(fd) (V(null) for a map), C(access) (C(read), C(write), C(read_write) or C(map)), and for
          a descriptor C(flags) (octal, as in C(/proc/PID/fdinfo)) and C(append), for a map C(map) (its permissions).
      type: list
      elements: dict
      returned: when reason is open or holder_refused, and for live files
      sample: [{"pid": 812, "comm": "rsyslogd", "fd": 7, "access": "write", "flags": "0102001", "append": true}]
    alert:
      description:
        - The file's original is gone and the journal copy named here is the only complete one (reason
          V(rewrite_incomplete)); the same text follows C(ATTENTION:) in RV(msg). Do not reboot while it is in RAM.
      type: str
      returned: when reason is rewrite_incomplete
      sample: "/var/log/app.log: the original is gone: /var/log/app.log.gz holds an incomplete compressed copy ..."
    prefix_start:
      description: For a live file, the offset of the first byte saved (after holes an earlier punch left).
      type: int
      returned: when action is live_compressed or would_live_compress
      sample: 0
    prefix_end:
      description:
        - For a live file, the offset after the last byte saved (a block boundary before the size at the start).
        - After a V(collapse), the file starts with the byte that was at this offset; after a V(punch_hole), offsets
          are unchanged and the bytes before it read as zeros.
      type: int
      returned: when action is live_compressed or would_live_compress
      sample: 1073737728
    writer_stall:
      description:
        - For a live file, the longest time in seconds that the freeing held the file's inode lock, that is the
          longest a writer's C(write()) could have waited for it.
      type: float
      returned: when action is live_compressed
      sample: 0.011
files_omitted:
  description:
    - The files beyond O(max_file_results), not listed in RV(files). C(count), and C(by_reason), a list of
      C(action), C(reason), C(count), C(original_size), C(compressed_size) and C(bytes_saved) per group.
    - RV(totals) counts every file, listed or not.
  returned: always
  type: dict
  sample:
    count: 99000
    by_reason:
      - {action: skipped, reason: too_small, count: 99000, original_size: 405504000, compressed_size: 0, bytes_saved: 0}
totals:
  description: Counts per action, and sums over the files that freed (or would free) space.
  returned: always
  type: dict
  contains:
    candidates:
      description: Number of files handled, listed in RV(files) or counted in RV(files_omitted).
      type: int
      sample: 13
    compressed:
      description: Files compressed.
      type: int
      sample: 3
    skipped:
      description: Files skipped.
      type: int
      sample: 10
    failed:
      description: Files that failed.
      type: int
      sample: 0
    recovered:
      description: Journal entries of interrupted runs finished or rolled back.
      type: int
      sample: 0
    would_compress:
      description: Check mode, files that would be compressed.
      type: int
      sample: 0
    would_recover:
      description: Check mode, journal entries that would be finished or rolled back.
      type: int
      sample: 0
    original_size:
      description: Sum of RV(files[].original_size) of the compressed, recovered or would-compress files.
      type: int
      sample: 20971520
    compressed_size:
      description: Sum of their RV(files[].compressed_size).
      type: int
      sample: 2411520
    bytes_saved:
      description: Sum of their RV(files[].bytes_saved).
      type: int
      sample: 18550784
filesystems:
  description: Each filesystem a candidate lives on, in mount point order, measured before and after the run.
  returned: always
  type: list
  elements: dict
  contains:
    mount:
      description: Its mount point.
      type: str
      sample: /
    device:
      description: Source of the mount.
      type: str
      sample: /dev/sda3
    fstype:
      description: Filesystem type.
      type: str
      sample: ext4
    before:
      description: C(statvfs) when the first file there was handled.
      type: dict
      contains:
        size:
          description: Size in bytes.
          type: int
        used:
          description: Bytes in use (C(size - free)).
          type: int
        free:
          description: Free bytes including those reserved for root (C(f_bfree)).
          type: int
        avail:
          description: Bytes available to unprivileged users (C(f_bavail)), what C(df) shows as available.
          type: int
        used_pct:
          description: C(100 * used / (used + avail)), like C(df).
          type: float
        inodes:
          description: Total inodes (V(0) when the filesystem does not count them).
          type: int
        inodes_used:
          description: Inodes in use.
          type: int
        inodes_free:
          description: Free inodes.
          type: int
        inodes_avail:
          description: Inodes available to unprivileged users.
          type: int
        inodes_used_pct:
          description: C(100 * inodes_used / inodes).
          type: float
        block_size:
          description: Fragment size of the byte counts.
          type: int
        statvfs_read_only:
          description: C(ST_RDONLY) is set.
          type: bool
    after:
      description: The same measures at the end of the run.
      type: dict
    would_free:
      description: Check mode, bytes the RV(files[].action=would_compress) files there would free.
      type: int
      returned: in check mode, when a file there would be compressed
memory:
  description:
    - The memory budget and what the run used.
    - O(memory_limit) bounds one compressed copy in RAM and, separately, the blocks in flight.
  returned: always
  type: dict
  contains:
    limit:
      description: Budget for one compressed copy, in bytes (O(memory_limit) or its default).
      type: int
      sample: 1073741824
    available:
      description: Memory available to the process (C(MemAvailable), lowered to its cgroup's headroom).
      type: int
      sample: 2147483648
    peak_rss:
      description: Peak resident size of the module's process, in bytes.
      type: int
      sample: 38797312
    peak_journal:
      description: Largest compressed copy held in a RAM journal, in bytes.
      type: int
      sample: 1048576
    threads:
      description: Compression threads used (O(threads), lowered until the blocks in flight fit in O(memory_limit)).
      type: int
      sample: 2
    threads_requested:
      description: O(threads) as given (V(0) for every usable CPU).
      type: int
      sample: 0
journal:
  description: Where the verified copies were kept.
  returned: always
  type: dict
  contains:
    dir:
      description: O(journal_dir).
      type: str
      sample: /dev/shm
    spill_dir:
      description: O(spill_dir), V(null) when unset.
      type: str
    ram_backed:
      description: Whether a usable journal directory is in RAM (C(tmpfs), C(ramfs)).
      type: bool
      sample: true
    usable:
      description: Journal directories that could be used, with those made on the files' own filesystems.
      type: list
      elements: str
      sample: [/dev/shm/sre.cmemgzip]
    notes:
      description: Why a journal directory could not be used (a planted one is named with its owner), and what was
        cleaned up.
      type: list
      elements: str
      sample: []
payload_cleanup:
  description:
    - AnsiballZ payload directories of this collection (C(ansible_sre.cmemgzip.*_payload_*)) that killed runs left in
      C(/dev/shm) or in this run's temporary directory, removed at the start of the run. Only directories of this
      user that no living run holds (each run locks its own) and that did not change for an hour are removed.
    - Housekeeping of the module's own files; it does not make the task changed.
  returned: always
  type: dict
  contains:
    removed:
      description: The directories removed.
      type: list
      elements: str
      returned: unless in check mode
      sample: [/dev/shm/ansible_sre.cmemgzip.cmemgzip_payload_k2j4x9q1]
    would_remove:
      description: Check mode, the directories that would be removed.
      type: list
      elements: str
      returned: in check mode
    bytes_freed:
      description: Bytes the removed directories held.
      type: int
      sample: 163840
    errors:
      description: Directories that could not be removed, with the reason.
      type: list
      elements: str
      sample: []
open_files_scan:
  description: The scan of C(/proc) for processes holding the files; it never touches a descriptor on another mount.
  returned: always
  type: dict
  contains:
    processes:
      description: Processes looked at.
      type: int
      sample: 212
    seconds:
      description: Time the scan took.
      type: float
      sample: 0.08
    skipped:
      description:
        - Processes that could not be read within the time limit (a dead network mount), each as C(pid), C(comm) and
          C(reason).
      type: list
      elements: dict
      sample: []
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils.engine import run
from ansible_collections.sre.cmemgzip.plugins.module_utils.errors import CmemgzipError
from ansible_collections.sre.cmemgzip.plugins.module_utils.module_args import engine_options
from ansible_collections.sre.cmemgzip.plugins.module_utils.payload_cleanup import clean_stale_payloads, hold_own
from ansible_collections.sre.cmemgzip.plugins.module_utils.result_cap import DEFAULT_MAX_FILE_RESULTS

ARGUMENT_SPEC = dict(
    path=dict(type='list', elements='path', required=True, aliases=['paths']),
    recurse=dict(type='bool', default=False),
    one_file_system=dict(type='bool', default=True),
    patterns=dict(type='list', elements='str', default=[]),
    excludes=dict(type='list', elements='str', default=[]),
    min_size=dict(type='str', default='1M'),
    min_age=dict(type='str', default='0'),
    level=dict(type='int', default=9, choices=list(range(1, 10))),
    threads=dict(type='int', default=0),
    min_age_patterns=dict(type='list', elements='str', default=[]),
    max_file_results=dict(type='int', default=DEFAULT_MAX_FILE_RESULTS),
    memory_limit=dict(type='str'),
    largest_first=dict(type='bool', default=True),
    target_free=dict(type='str'),
    follow=dict(type='bool', default=False),
    open_files=dict(type='str', default='skip', choices=['skip', 'live']),
    live_method=dict(type='str', default='auto', choices=['auto', 'collapse', 'punch_hole']),
    journal_dir=dict(type='path', default='/dev/shm'),
    spill_dir=dict(type='path'),
    estimate=dict(type='str', default='sample', choices=['sample', 'exact']),
    strategy=dict(type='str', default='auto', choices=['auto', 'copy', 'window']),
)


def create_module():
    return AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


def build_options(params, check_mode):
    return engine_options(params, check_mode, human_to_bytes)


def main():
    # First: a later run must see that this run's payload directory is alive.
    hold_own()
    module = create_module()
    try:
        options = build_options(module.params, module.check_mode)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    cleanup = clean_stale_payloads(check_mode=module.check_mode)
    try:
        result = run(options)
    except CmemgzipError as exc:
        module.fail_json(msg=str(exc), payload_cleanup=cleanup)
    except OSError as exc:
        # Nothing expected it: say which call failed on which path, without a traceback.
        module.fail_json(msg='unexpected error: %s' % exc, payload_cleanup=cleanup)
    result['payload_cleanup'] = cleanup
    if result.pop('failed'):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
