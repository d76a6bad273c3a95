# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every action and reason code that sre.cmemgzip reports, defined once.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  The engine, recovery, the filters and the tests import these names;
a unit test checks that the modules' RETURN documents exactly these codes.
"""

from __future__ import annotations

# -- what happened to a file (files[].action) ---------------------------------

COMPRESSED = 'compressed'
SKIPPED = 'skipped'
FAILED = 'failed'
RECOVERED = 'recovered'
WOULD_COMPRESS = 'would_compress'
WOULD_RECOVER = 'would_recover'
LIVE_COMPRESSED = 'live_compressed'
WOULD_LIVE_COMPRESS = 'would_live_compress'
RECLAIMED = 'reclaimed'
WOULD_RECLAIM = 'would_reclaim'

ACTIONS = {
    COMPRESSED: 'the file was replaced by its verified compressed copy',
    SKIPPED: 'left as it was, for the reason in RV(files[].reason)',
    FAILED: 'something went wrong; RV(files[].detail) says what and where the verified copy is',
    RECOVERED: 'an interrupted run was finished or rolled back from the journal',
    WOULD_COMPRESS: 'check mode: would be compressed',
    WOULD_RECOVER: 'check mode: an interrupted run would be finished or rolled back',
    LIVE_COMPRESSED: 'a file still being written (O(open_files=live)): its first bytes went to a new '
                     'C(NAME-TIME.gz) beside it and their space was freed while the writer went on',
    WOULD_LIVE_COMPRESS: 'check mode: the first bytes of a file still being written would be compressed and freed',
    RECLAIMED: 'a deleted file that processes still held: its content went to a new C(NAME-deleted-pidPID-TIME.gz) '
               '(unless O(save=false)) and its space was freed through C(/proc/PID/fd/N)',
    WOULD_RECLAIM: 'check mode: a deleted file that processes still hold would be saved and its space freed',
}

# Actions that count in the totals of bytes freed.
FREEING_ACTIONS = frozenset((COMPRESSED, WOULD_COMPRESS, RECOVERED, LIVE_COMPRESSED, WOULD_LIVE_COMPRESS, RECLAIMED,
                             WOULD_RECLAIM))
# Actions that make the task changed (in check mode: would change).
CHANGING_ACTIONS = frozenset((COMPRESSED, RECOVERED, WOULD_COMPRESS, WOULD_RECOVER, LIVE_COMPRESSED,
                              WOULD_LIVE_COMPRESS, RECLAIMED, WOULD_RECLAIM))

# -- why a file was skipped or failed (files[].reason) ------------------------

NOT_FOUND = 'not_found'
NOT_REGULAR = 'not_regular'
SYMLINK = 'symlink'
HARDLINKED = 'hardlinked'
ALREADY_COMPRESSED = 'already_compressed'
NOT_SMALLER = 'not_smaller'
OPEN = 'open'
DEST_EXISTS = 'dest_exists'
MEMORY_BUDGET = 'memory_budget'
NO_JOURNAL_SPACE = 'no_journal_space'
TOO_SMALL = 'too_small'
TOO_YOUNG = 'too_young'
EXCLUDED = 'excluded'
TARGET_FREE_REACHED = 'target_free_reached'
CHANGED_WHILE_READING = 'changed_while_reading'
RENAMED = 'renamed'
SHARED_EXTENTS = 'shared_extents'
JOURNAL_PENDING = 'journal_pending'
HOLDER_REFUSED = 'holder_refused'
LIVE_UNSUPPORTED = 'live_unsupported'
OUTPUT_PENDING = 'output_pending'
NAME_TOO_LONG = 'name_too_long'
JOURNAL_UNSAFE = 'journal_unsafe'
NO_SAVE_DIR = 'no_save_dir'
WINDOW_UNSUPPORTED = 'window_unsupported'
ERROR = 'error'

SKIP_REASONS = {
    NOT_FOUND: 'the path does not exist, or vanished before it was opened',
    NOT_REGULAR: 'not a regular file (directory, FIFO, socket, device)',
    SYMLINK: 'a symbolic link, or became one (set O(follow) to compress the target)',
    HARDLINKED: 'more than one hard link: compressing one name frees nothing',
    ALREADY_COMPRESSED: 'already compressed data, recognised by its magic bytes',
    NOT_SMALLER: 'the compressed copy would free no filesystem block',
    OPEN: 'another process holds the file open or opened it meanwhile',
    DEST_EXISTS: 'C(NAME.gz) exists already; nothing is ever overwritten',
    MEMORY_BUDGET: 'the compressed copy would exceed the memory budget (O(memory_limit))',
    NO_JOURNAL_SPACE: 'no journal directory can hold the verified copy',
    TOO_SMALL: 'smaller than O(min_size)',
    TOO_YOUNG: 'modified less than O(min_age) ago',
    EXCLUDED: 'matches O(excludes), or a given file does not match O(patterns)',
    TARGET_FREE_REACHED: 'its filesystem already has O(target_free) available',
    CHANGED_WHILE_READING: 'the file changed while it was compressed; it was left untouched',
    RENAMED: 'renamed, replaced or linked by someone else while it was being replaced; the step was undone and '
             'no name holds the wrong kind of data (RV(files[].detail) says where the file is)',
    SHARED_EXTENTS: 'its blocks are shared with a snapshot or a reflinked copy: freeing them first would free '
                    'nothing and leave the only copy in the journal',
    JOURNAL_PENDING: 'an earlier run left a journal entry for this file that recovery could not settle; '
                     'the file is left alone until a human has looked',
    HOLDER_REFUSED: 'a process holds the file in a way the live method cannot follow (writes without O_APPEND, '
                    'a writable shared map, a byte-range lock or lease, or it could not be inspected); '
                    'RV(files[].detail) names the pid, command and why',
    LIVE_UNSUPPORTED: 'the filesystem can neither collapse nor punch a range of a file',
    OUTPUT_PENDING: 'the space was freed but the C(.gz) could not be written yet; the journal keeps the verified '
                    'copy and the next run writes it',
    NAME_TOO_LONG: 'C(NAME.gz) would exceed the longest name (255 bytes) or path (4096 bytes) the kernel accepts',
    JOURNAL_UNSAFE: 'the journal directory belongs to another user (planted); RV(files[].detail) names it and '
                    'its owner',
    NO_SAVE_DIR: 'the directory a deleted file was in does not exist here (or its holder runs in another mount '
                 'namespace); set O(save_dir)',
    WINDOW_UNSUPPORTED: 'O(strategy=window) cannot be used for this file (copy-on-write filesystem, sparse file, '
                        'shared blocks)',
    ERROR: 'an error; RV(files[].detail) has the message',
}

# -- what recovery found (files[].reason with action recovered/failed) --------

ROLLED_BACK = 'rolled_back'
FINISHED = 'finished'
JOURNAL_ORPHANED = 'journal_orphaned'
JOURNAL_CORRUPT = 'journal_corrupt'
JOURNAL_UNREADABLE = 'journal_unreadable'
NOT_OURS = 'not_ours'
FILESYSTEM_GONE = 'filesystem_gone'
READ_ONLY = 'read_only'
REWRITE_INCOMPLETE = 'rewrite_incomplete'
JOURNAL_LOST = 'journal_lost'
SALVAGED = 'salvaged'

RECOVERY_REASONS = {
    ROLLED_BACK: 'an interrupted run had changed nothing; its journal copy was dropped',
    FINISHED: 'an interrupted run was finished from its verified journal copy',
    JOURNAL_ORPHANED: 'the file of a journal entry is gone or changed; the copy is kept for a human',
    JOURNAL_CORRUPT: 'a journal copy does not match its manifest; nothing was written',
    JOURNAL_UNREADABLE: 'a journal manifest cannot be read; everything was kept',
    NOT_OURS: 'the file holds data that is neither the untouched original nor an interrupted rewrite of ours '
              '(appended, replaced, inode reused): nothing was written, the journal copy is kept for a human',
    FILESYSTEM_GONE: 'the filesystem of a journal entry is not mounted at its directory any more: the copy is kept '
                     'for a human; reported once as a skip, later runs list it in RV(journal.notes)',
    READ_ONLY: 'the filesystem is read-only: an interrupted run cannot be finished now; RV(files[].detail) names '
               'the file and the verified copy',
    REWRITE_INCOMPLETE: 'the original is gone and writing its compressed copy back could not finish: the only '
                        'complete copy is the journal\'s (RV(files[].detail) says where; in RAM it does not '
                        'survive a reboot)',
    JOURNAL_LOST: 'the file carries the marker of a rewrite that was interrupted and whose journal copy is gone '
                  '(a reboot emptied a RAM journal): the file may be incomplete, check it with gzip -t',
    SALVAGED: 'an in-place (window) compression whose journal was lost was finished from the file itself',
}

# Recovery reasons that leave data waiting for a human: the entry is kept,
# and a fresh run leaves the file alone (JOURNAL_PENDING).
NEEDS_HUMAN = frozenset((NOT_OURS, JOURNAL_ORPHANED, JOURNAL_CORRUPT, JOURNAL_UNREADABLE, FILESYSTEM_GONE,
                         JOURNAL_LOST))

REASONS = dict(SKIP_REASONS)
REASONS.update(RECOVERY_REASONS)

# -- why a filesystem is full (filesystems[].full_reasons) ---------------------

USED_PCT = 'used_pct'
INODES_USED_PCT = 'inodes_used_pct'
NOT_MEASURED = 'not_measured'

FULL_REASONS = {
    USED_PCT: 'its used space reached O(max_used_pct)',
    INODES_USED_PCT: 'its used inodes reached O(max_inodes_used_pct)',
    NOT_MEASURED: 'it could not be measured again after the run, so it counts as still full',
}

# -- a full filesystem that is left alone (filesystems[].note) ----------------

READ_ONLY = 'read_only'
INODES_ONLY = 'inodes_only'
NO_ROOTS = 'no_roots'

FILESYSTEM_NOTES = {
    READ_ONLY: 'mounted read-only: nothing can be written there',
    INODES_ONLY: 'full by inodes only: compressing a file never frees an inode',
    NO_ROOTS: 'none of the roots lies on it',
}

# -- the state of a host (rescue_host, the rescue role, the fleet report) ------

HEALTHY = 'healthy'
REMEDIATED = 'remediated'
FULL = 'full'
STILL_FULL = 'still_full'
HOST_FAILED = 'failed'
UNREACHABLE = 'unreachable'
NO_RESULT = 'no_result'

HOST_STATUSES = {
    HEALTHY: 'no full filesystem',
    REMEDIATED: 'every full filesystem has room again',
    FULL: 'check mode: a filesystem is full (nothing was changed)',
    STILL_FULL: 'a filesystem is still full after the run',
    HOST_FAILED: 'the host could not be measured, or a file or run failed',
    UNREACHABLE: 'the host could not be reached',
    NO_RESULT: 'the host has no summary: the role did not complete there',
}

# -- what went wrong on a host besides a file (failures[].reason) -------------

MEASURE_FAILED = 'measure_failed'
RUN_FAILED = 'module_failed'

TASK_FAILURES = {
    UNREACHABLE: 'the host could not be reached',
    MEASURE_FAILED: 'its filesystems could not be measured',
    RUN_FAILED: 'the compression run of a filesystem failed',
}
