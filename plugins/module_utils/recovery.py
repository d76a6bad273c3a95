# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Finish or roll back what interrupted runs left in the journals.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

Every committed journal entry names the protocol that made it in its
manifest's ``kind`` (absent: ``replace``, the original-into-its-own-.gz
protocol of replace.py).  ``recover_entry`` hands the entry to the handler
of that kind.

The handler interface (see also /docs/how-it-works.md, "Recovery")::

    def recover(entry, context):  # -> FileResult, or None (nothing to report)

* ``entry`` is a journal.JournalEntry: ``manifest`` (dict), ``data_path``,
  ``open_data()``, ``stored_crc()``, ``update(**fields)``, ``discard()``.
* ``context`` is a recovery_common.RecoveryContext: ``check_mode``,
  ``mounts``, ``notes``.
* Rules every handler keeps:
  1. Its protocol committed the manifest (journal.JournalEntry.commit)
     before its first destructive step, so a data file without a manifest
     is always an untouched original (deleted here for every kind).
  2. Keys come from identity.entry_key(fs_id, ino): one entry per inode.
  3. It writes nothing before proving identity: recovery_common.locate
     (filesystem), identity.same_inode (inode and generation),
     recovery_common.claim (nobody has it open, as a fresh run checks) and
     a content proof (identity.classify, or its own equivalent).
  4. Anything it cannot prove is someone else's data:
     recovery_common.keep_for_human(entry, codes.NOT_OURS, why) - touch
     nothing, keep the entry, name the copy.
  5. It discards the entry only once the file is complete and durable, or
     untouched (rolled back); never in check mode.
  6. It catches its own OSErrors and returns a result that names the copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from . import codes
from .journal import KIND_REPLACE
from .recovery_common import RecoveryContext, keep_for_human
from .prefix_recovery import recover as recover_prefix
from .recovery_replace import recover as recover_replace
from .window_recovery import recover as recover_window

if TYPE_CHECKING:
    from .journal import Journal, JournalEntry
    from .mounts import MountTable
    from .results import FileResult

# Manifest kind -> handler.  Other protocols add their line here.
HANDLERS = {
    KIND_REPLACE: recover_replace,
    'live': recover_prefix,
    'deleted': recover_prefix,
    'window': recover_window,
}


def recover_entry(entry: JournalEntry, context: RecoveryContext) -> FileResult | None:
    """Handle one committed journal entry; return a FileResult or None."""
    manifest = entry.manifest
    if 'error' in manifest:
        return keep_for_human(entry, codes.JOURNAL_UNREADABLE, manifest['error'])
    handler = HANDLERS.get(manifest.get('kind', KIND_REPLACE))
    if handler is None:
        return keep_for_human(entry, codes.JOURNAL_UNREADABLE,
                              'a journal entry of kind %r, which this version cannot recover' % manifest.get('kind'))
    return handler(entry, context)


def recover_journals(journals: Iterable[Journal], check_mode: bool, mounts: MountTable,
                     notes: list[str]) -> tuple[list[FileResult], set[str]]:
    """Recover every entry of every opened journal; return (results, pending keys).

    ``pending`` are the keys whose entries are still there afterwards: a
    fresh run leaves their files alone (JOURNAL_PENDING).
    """
    context = RecoveryContext(check_mode, mounts, notes)
    results = []
    pending = set()
    for journal in journals:
        entries, unfinished = journal.entries()
        for entry in entries:
            outcome = recover_entry(entry, context)
            if outcome is not None:
                results.append(outcome)
            settled = outcome is not None and outcome.action == codes.WOULD_RECOVER
            if (check_mode and not settled) or (not check_mode and journal.holds(entry.key)):
                pending.add(entry.key)
        if unfinished and not check_mode:
            for key in unfinished:
                journal.remove(key)
            notes.append('removed %d incomplete copies of interrupted runs that had not changed any file'
                         % len(unfinished))
    return results, pending
