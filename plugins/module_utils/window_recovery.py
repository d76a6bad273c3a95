# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Recovery of the ``window`` protocol (window_job.py): roll forward from the checkpoint.

Once the first compressed byte is written over the original, the bytes it
replaced exist only as compressed data: there is no copy to roll back to,
and the only way out is forward.  The checkpoint says where: the file holds
the stream in [0, written) and the original from ``read`` on.

=====================  ==============================  ==========================
where                  content                         action
=====================  ==============================  ==========================
NAME, rename pending   the original (head, tail, R)    roll back: drop the entry
NAME.gz (or NAME if    stream prefix + original at R   roll forward, verify,
the rename was                                         rename if needed
refused)
either                 the complete stream             finish (truncate, times,
                       (phase complete)                fsync, read back)
anything else          -                               keep for a human (not_ours)
=====================  ==============================  ==========================

Identity: filesystem, inode number and generation (identity.same_inode);
content: the size, the CRC-32 of the stream prefix [0, written), of the
original bytes after ``read`` and of the original's last 64 KiB (never
written before the end); then the claim a fresh run takes (recovery_common).

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import os
import zlib
from typing import TYPE_CHECKING, Any

from . import codes
from .gzip_member import VerificationError
from .identity import crc_range, same_inode
from .recovery_common import Busy, claim, drop, locate, recovered, result
from .safe_fs import OpenFile, fsync_dir, open_regular, rename_noreplace, stat_nofollow
from .sysinfo import usable_cpus
from .window import WindowCompressor, finish
from .window_format import PHASE_COMPLETE, PROOF_SPAN, WindowState

if TYPE_CHECKING:
    from .journal import JournalEntry
    from .recovery_common import RecoveryContext
    from .results import FileResult


def keep(entry: JournalEntry, reason: str, why: str) -> FileResult:
    """Touch nothing, keep the checkpoint, and say what the file holds."""
    manifest = entry.manifest
    return result(entry, codes.FAILED, reason, '%s; nothing was written. The checkpoint of the in-place compression '
                  'is kept at %s: the file holds the compressed stream in its first %s bytes and the original from '
                  'offset %s on (docs/how-it-works.md, "Window: salvage")'
                  % (why, entry.data_path[:-3] + '.json', manifest.get('written', '?'), manifest.get('read', '?')),
                  strategy='window')


def prove(fd: int, manifest: dict[str, Any], state: WindowState) -> str | None:
    """Why ``fd`` is not the file the checkpoint describes, or None when it is."""
    if not same_inode(fd, manifest):
        return 'another inode (a new file that reused the number, or another filesystem)'
    size = os.fstat(fd).st_size
    complete = state.phase == PHASE_COMPLETE
    sizes = (manifest['size'], state.written) if complete else (manifest['size'],)
    if size not in sizes:
        return 'it is %d bytes, the checkpoint expects %s' % (size, ' or '.join(str(s) for s in sizes))
    if crc_range(fd, 0, state.written) != (state.output_crc32, state.written):
        return 'its first %d bytes are not the compressed stream the checkpoint recorded' % state.written
    if complete:
        return None
    if zlib.crc32(os.pread(fd, PROOF_SPAN, state.read)) != manifest['proof_crc32']:
        return 'its bytes at offset %d are not the original bytes the checkpoint recorded' % state.read
    span = manifest['evidence_span']
    if crc_range(fd, manifest['size'] - span, span) != (manifest['tail_crc32'], span):
        return 'its last %d bytes are not the original\'s' % span
    return None


def _names_of_inode(dir_fd: int, manifest: dict[str, Any]) -> list[str]:
    names = []
    for name in (manifest.get('current'), manifest['dest'], manifest['name']):
        st = stat_nofollow(dir_fd, name) if name else None
        if st is not None and st.st_ino == manifest['ino'] and name not in names:
            names.append(name)
    return names


def recover(entry: JournalEntry, context: RecoveryContext) -> FileResult | None:
    """Roll one window checkpoint forward (or drop it when nothing was written); a FileResult."""
    manifest = entry.manifest
    try:
        state = WindowState.from_manifest(manifest)
    except (KeyError, TypeError, ValueError) as exc:
        return keep(entry, codes.JOURNAL_UNREADABLE, 'the checkpoint lacks or garbles %s' % exc)
    located = locate(entry, context)
    if located.dir_fd is None:
        return located.outcome
    try:
        return _recover_in(entry, context, located.dir_fd, state)
    except OSError as exc:
        return keep(entry, codes.ERROR, str(exc))
    finally:
        located.close()


def _recover_in(entry: JournalEntry, context: RecoveryContext, dir_fd: int, state: WindowState) -> FileResult:
    manifest = entry.manifest
    names = _names_of_inode(dir_fd, manifest)
    if len(names) != 1:
        return keep(entry, codes.JOURNAL_ORPHANED if not names else codes.NOT_OURS,
                    'the file is at neither %s nor %s' % (manifest['name'], manifest['dest']) if not names
                    else 'the inode has several names (%s)' % ', '.join(names))
    name = names[0]
    original = OpenFile(open_regular(dir_fd, name, writable=not context.check_mode))
    try:
        why = prove(original.fd, manifest, state)
        if why:
            return keep(entry, codes.NOT_OURS, '%s is not the file being compressed in place: %s'
                        % (os.path.join(manifest['dir'], name), why))
        if name == manifest['name'] and manifest.get('current') == manifest['dest']:
            # The rename comes before the first write, and it never happened.
            drop(entry, context)
            return recovered(context, entry, codes.ROLLED_BACK, 'an interrupted in-place compression had not changed '
                             'the file yet; dropped its checkpoint', strategy='window')
        if context.check_mode:
            return recovered(context, entry, codes.FINISHED, 'an interrupted in-place compression would be '
                             'finished from its checkpoint at input offset %d' % state.read, strategy='window')
        try:
            lease = claim(original, context.mounts)
        except Busy as exc:
            return keep(entry, codes.OPEN, '%s holds an interrupted in-place compression but is %s; close it and '
                        'rerun' % (os.path.join(manifest['dir'], name), exc.detail))
        try:
            _finish_from(entry, state, original.fd)
        except (OSError, VerificationError) as exc:
            return result(entry, codes.FAILED, codes.ERROR, 'finishing the in-place compression failed: %s; its '
                          'checkpoint stays at %s and a rerun goes on from it'
                          % (exc, entry.data_path[:-3] + '.json'), strategy='window')
        finally:
            lease.release()
        if name != manifest['dest']:
            rename_noreplace(dir_fd, name, dir_fd, manifest['dest'])
        fsync_dir(dir_fd)
        after = os.fstat(original.fd)
    finally:
        original.close()
    drop(entry, context)
    return recovered(context, entry, codes.FINISHED, 'finished the in-place compression an interrupted run had '
                     'started, from its checkpoint at input offset %d' % state.read, strategy='window',
                     compressed_size=state.written,
                     bytes_saved=max(0, manifest.get('allocated', 0) - after.st_blocks * 512))


def _finish_from(entry: JournalEntry, state: WindowState, fd: int) -> None:
    manifest = entry.manifest

    def checkpoint(current: WindowState) -> None:
        fields = current.as_manifest()
        fields['proof_crc32'] = zlib.crc32(os.pread(fd, PROOF_SPAN, current.read))
        entry.update(**fields)

    if state.phase != PHASE_COMPLETE:
        WindowCompressor(fd, manifest['size'], state, manifest.get('level', 9), usable_cpus(), checkpoint).run()
    finish(fd, state, manifest['size'], manifest['atime_ns'], manifest['mtime_ns'])
