# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Every action and reason code that sre.cmemgzip reports, defined once.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  The engine, recovery, the filters and the tests import these names;
a unit test checks that the modules' RETURN documents exactly these codes.
"""

from __future__ import absolute_import, division, print_function

# -- what happened to a file (files[].action) ---------------------------------

COMPRESSED = 'compressed'
SKIPPED = 'skipped'
FAILED = 'failed'
RECOVERED = 'recovered'
WOULD_COMPRESS = 'would_compress'
WOULD_RECOVER = 'would_recover'

ACTIONS = {
    COMPRESSED: 'the file was replaced by its verified compressed copy',
    SKIPPED: 'left as it was, for the reason in RV(files[].reason)',
    FAILED: 'something went wrong; RV(files[].detail) says what and where the verified copy is',
    RECOVERED: 'an interrupted run was finished or rolled back from the journal',
    WOULD_COMPRESS: 'check mode: would be compressed',
    WOULD_RECOVER: 'check mode: an interrupted run would be finished or rolled back',
}

# Actions that count in the totals of bytes freed.
FREEING_ACTIONS = frozenset((COMPRESSED, WOULD_COMPRESS, RECOVERED))
# Actions that make the task changed (in check mode: would change).
CHANGING_ACTIONS = frozenset((COMPRESSED, RECOVERED, WOULD_COMPRESS, WOULD_RECOVER))

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
    ERROR: 'an error; RV(files[].detail) has the message',
}

# -- what recovery found (files[].reason with action recovered/failed) --------

ROLLED_BACK = 'rolled_back'
FINISHED = 'finished'
JOURNAL_ORPHANED = 'journal_orphaned'
JOURNAL_CORRUPT = 'journal_corrupt'
JOURNAL_UNREADABLE = 'journal_unreadable'

RECOVERY_REASONS = {
    ROLLED_BACK: 'an interrupted run had changed nothing; its journal copy was dropped',
    FINISHED: 'an interrupted run was finished from its verified journal copy',
    JOURNAL_ORPHANED: 'the file of a journal entry is gone or changed; the copy is kept for a human',
    JOURNAL_CORRUPT: 'a journal copy does not match its manifest; nothing was written',
    JOURNAL_UNREADABLE: 'a journal manifest cannot be read; everything was kept',
}

REASONS = dict(SKIP_REASONS)
REASONS.update(RECOVERY_REASONS)
