# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Recovery of the prefix protocol (kinds ``live`` and ``deleted``, prefix.py).

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

The manifest's ``phase`` says how far the run got; the file's content
proves the rest:

==========  ====================================================  =====================================
phase       evidence checked                                      what recovery does
==========  ====================================================  =====================================
prepared    none needed: nothing was freed yet                    remove the empty .gz, drop the copy
freeing     collapse: CRC-32 of the bytes at ``start`` equals     not freed: as ``prepared``;
            the recorded head of the prefix -> not freed          freed: as ``freed``
freeing     punch: every block of the range holds zeros or the    punch the range again (holes are
            journal copy's bytes                                  idempotent), then as ``freed``;
                                                                  other bytes: keep for a human
freeing     truncate: size >= end and head as recorded            not freed: as ``prepared``
freeing     the file cannot be found (renamed, its process        as ``freed``: the .gz may repeat
            ended)                                                bytes still in a renamed file, never
                                                                  lose them
freed       the .gz, when present, is a prefix of the journal     write the .gz from the journal (a new
            copy (ours, cut short)                                name when it is someone else's),
                                                                  verify, fsync, drop the copy
==========  ====================================================  =====================================
"""

from __future__ import annotations

import errno
import os
import stat
import zlib
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import codes, falloc, gz_output
from .identity import crc_range, same_inode
from .prefix import PHASE_FREED, PHASE_FREEING, PHASE_PREPARED, remove_empty_output, write_output
from .recovery_common import locate
from .results import FileResult
from .safe_fs import open_dir_nofollow, open_regular

if TYPE_CHECKING:
    from .journal import JournalEntry
    from .recovery_common import RecoveryContext

_CHUNK = 1024 * 1024


def _paths(manifest: dict[str, Any]) -> tuple[str | None, str]:
    if manifest.get('kind') == 'deleted':
        path = manifest.get('former_path')
    else:
        path = os.path.join(manifest.get('dir', '?'), manifest.get('name', '?'))
    return path, os.path.join(manifest.get('out_dir', '?'), manifest.get('dest', '?'))


def _result(entry: JournalEntry, action: str, reason: str | None, detail: str | None, **extra: Any) -> FileResult:
    manifest = entry.manifest
    path, dest = _paths(manifest)
    return FileResult(path, dest, action=action, reason=reason, detail=detail, strategy=manifest.get('method'),
                      original_size=manifest.get('end', 0) - manifest.get('start', 0),
                      compressed_size=manifest.get('compressed_size'), seconds=0.0).update(**extra)


def _keep(entry: JournalEntry, reason: str, why: str) -> FileResult:
    return _result(entry, codes.FAILED, reason, '%s; nothing was written, the verified compressed copy is kept '
                   'at %s (its manifest, %s, says which bytes of which file it holds)'
                   % (why, entry.data_path, entry.data_path[:-3] + '.json'))


def recover(entry: JournalEntry, context: RecoveryContext) -> FileResult | None:
    """Finish or roll back one prefix-protocol entry (recovery.py's handler interface)."""
    try:
        return _recover(entry, context)
    except (OSError, gz_output.OutputIncomplete) as exc:
        return _keep(entry, codes.ERROR, str(exc))


def _recover(entry: JournalEntry, context: RecoveryContext) -> FileResult | None:
    manifest = entry.manifest
    if entry.stored_crc() != (manifest['compressed_crc32'], manifest['compressed_size']):
        return _keep(entry, codes.JOURNAL_CORRUPT, 'the journal copy does not match its manifest')
    phase = manifest.get('phase')
    if phase == PHASE_PREPARED and manifest.get('kind') == 'deleted' and not _still_held(manifest):
        # Its last holder ended: the file is gone, the journal has the only
        # copy of what reclaim_deleted was asked to save.
        return _write(entry, context, 'the deleted file\'s last holder ended before it was freed; its content was '
                      'saved from the journal')
    if phase == PHASE_PREPARED:
        return _roll_back(entry, context, 'an interrupted run had freed nothing yet')
    if phase == PHASE_FREEING:
        fd = _open_file(manifest)
        if fd is None:
            return _write(entry, context, 'the file could not be found to check whether its first bytes were '
                          'freed; the .gz may repeat bytes still in it')
        try:
            freed = _freed(fd, entry, context.check_mode)
        finally:
            os.close(fd)
        if freed is None:
            return _keep(entry, codes.NOT_OURS, 'the range to free holds bytes that are neither the saved '
                         'ones nor zeros')
        if not freed:
            return _roll_back(entry, context, 'an interrupted run had not freed the range yet')
        if not context.check_mode:
            entry.update(phase=PHASE_FREED)
        return _write(entry, context, 'finished an interrupted run: the range was freed, the .gz written')
    if phase == PHASE_FREED:
        return _write(entry, context, 'finished an interrupted run: the .gz was written from the journal')
    return _keep(entry, codes.JOURNAL_UNREADABLE, 'unknown phase %r' % phase)


def _roll_back(entry: JournalEntry, context: RecoveryContext, why: str) -> FileResult:
    manifest = entry.manifest
    if context.check_mode:
        return _result(entry, codes.WOULD_RECOVER, codes.ROLLED_BACK, why)
    try:
        dir_fd = open_dir_nofollow(manifest['out_dir'])
    except OSError:
        dir_fd = None
    if dir_fd is not None:
        try:
            remove_empty_output(dir_fd, manifest['dest'])
        finally:
            os.close(dir_fd)
    entry.discard()
    return _result(entry, codes.RECOVERED, codes.ROLLED_BACK, why + '; dropped its journal copy')


def _open_file(manifest: dict[str, Any]) -> int | None:
    """The manifest's inode, open read-write, or None when it cannot be found."""
    for opener in _openers(manifest):
        try:
            fd = opener()
        except OSError:
            continue
        if stat.S_ISREG(os.fstat(fd).st_mode) and same_inode(fd, manifest):
            return fd
        os.close(fd)
    return None


def _still_held(manifest: dict[str, Any]) -> bool:
    fd = _open_file(manifest)
    if fd is None:
        return False
    os.close(fd)
    return True


def _openers(manifest: dict[str, Any]) -> Iterator[Callable[[], int]]:
    if manifest.get('kind') == 'deleted':
        for holder in manifest.get('holders', ()):
            yield lambda h=holder: os.open('/proc/%d/fd/%d' % (h['pid'], h['fd']), os.O_RDWR | os.O_CLOEXEC)
        return

    def by_name() -> int:
        dir_fd = open_dir_nofollow(manifest['dir'])
        try:
            return open_regular(dir_fd, manifest['name'], writable=True)
        finally:
            os.close(dir_fd)
    yield by_name


def _freed(fd: int, entry: JournalEntry, check_mode: bool) -> bool | None:
    """True (freed), False (untouched) or None (someone else's bytes) for a run cut in ``freeing``."""
    manifest = entry.manifest
    start, end, span = manifest['start'], manifest['end'], manifest['evidence_span']
    head_intact = crc_range(fd, start, span) == (manifest['head_crc32'], span)
    method = manifest['method']
    if method == falloc.COLLAPSE:
        return not head_intact
    if method == falloc.TRUNCATE:
        if os.fstat(fd).st_size >= end and head_intact:
            return False
        return True
    if not _zeros_or_ours(fd, entry):
        return None
    if not check_mode:
        falloc.punch_hole(fd, start, end - start)
        os.fsync(fd)
    return True


def _zeros_or_ours(fd: int, entry: JournalEntry) -> bool:
    """Whether every block of [start, end) holds zeros or the journal copy's bytes at that offset."""
    manifest = entry.manifest
    offset = manifest['start']
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    source = entry.open_data()
    pending = b''
    try:
        while True:
            chunk = os.read(source, _CHUNK)
            pending += inflater.decompress(chunk) if chunk else inflater.flush()
            while len(pending) >= _CHUNK or (not chunk and pending):
                piece, pending = pending[:_CHUNK], pending[_CHUNK:]
                have = os.pread(fd, len(piece), offset)
                if have != piece and have.count(0) != len(have):
                    return False
                offset += len(piece)
            if not chunk:
                return offset == manifest['end']
    finally:
        os.close(source)


def _write(entry: JournalEntry, context: RecoveryContext, detail: str) -> FileResult | None:
    manifest = entry.manifest
    if context.check_mode:
        return _result(entry, codes.WOULD_RECOVER, codes.FINISHED, 'would write %s from the journal' % manifest['dest'])
    if manifest.get('kind') == 'live':
        # The .gz goes beside the file: its filesystem may be gone (not mounted).
        located = locate(entry, context)
        if located.outcome is not None or located.dir_fd is None:
            return located.outcome
        dir_fd = located.dir_fd
    else:
        try:
            dir_fd = open_dir_nofollow(manifest['out_dir'])
        except OSError as exc:
            return _keep(entry, codes.JOURNAL_ORPHANED, 'the directory %s for the .gz cannot be opened: %s'
                         % (manifest['out_dir'], exc.strerror))
    out_fd = None
    try:
        out_fd = _output(dir_fd, entry)
        write_output(out_fd, dir_fd, entry)
        saved = os.fstat(out_fd).st_blocks * 512
    except (OSError, gz_output.OutputIncomplete) as exc:
        return _result(entry, codes.FAILED, codes.OUTPUT_PENDING,
                       'the .gz %s could not be written (%s); the verified copy stays at %s, the next run writes it'
                       % (manifest['dest'], exc, entry.data_path))
    finally:
        if out_fd is not None:
            os.close(out_fd)
        os.close(dir_fd)
    entry.discard()
    freed = manifest['end'] - manifest['start']
    return _result(entry, codes.RECOVERED, codes.FINISHED, detail, bytes_saved=max(0, freed - saved))


def _output(dir_fd: int, entry: JournalEntry) -> int:
    """The .gz to write: ours cut short, or a new one (a new name when the recorded one is taken)."""
    name = entry.manifest['dest']
    try:
        fd = gz_output.open_ours(dir_fd, name)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return gz_output.create(dir_fd, name)
        if exc.errno != errno.ELOOP:
            raise
    else:
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and gz_output.holds_prefix_of(fd, entry):
            return fd
        os.close(fd)
    entry.update(dest=gz_output.free_name(dir_fd, name))
    return gz_output.create(dir_fd, entry.manifest['dest'])
