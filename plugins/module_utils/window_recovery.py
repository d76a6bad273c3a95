# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Roll an interrupted window run forward from its checkpoint.

Once the first compressed byte is written over the original, the bytes it
replaced exist only as compressed data: there is no copy to roll back to,
and the only way out is forward.  The checkpoint says where: the file holds
the stream in [0, written) and the original from ``read`` on.  Before
anything is written the file must prove it is that file: same device and
inode, the recorded size, the CRC-32 of the stream prefix it holds and of
the original bytes just after ``read``.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import absolute_import, division, print_function

import os
import zlib

from . import codes
from .gzip_member import VerificationError
from .replace import ReplaceIncomplete
from .results import FileResult
from .safe_fs import (
    FileBusy, OpenFile, WriteLease, fsync_dir, open_dir_nofollow, open_regular, rename_noreplace, stat_nofollow,
)
from .sysinfo import usable_cpus
from .window import WindowCompressor, finish
from .window_format import PHASE_COMPLETE, PROOF_SPAN, WindowState

_CHUNK = 4 * 1024 * 1024


def _result(manifest, action, reason, detail, **extra):
    path = os.path.join(manifest.get('dir', '?'), manifest.get('name', '?'))
    return FileResult(path, os.path.join(manifest.get('dir', '?'), manifest.get('dest', '?')), action=action,
                      reason=reason, detail=detail, original_size=manifest.get('size'), seconds=0.0,
                      strategy='window').update(**extra)


def _prefix_crc(fd, size):
    crc = 0
    offset = 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            return None
        crc = zlib.crc32(chunk, crc)
        offset += len(chunk)
    return crc


def prove(fd, manifest, state):
    """Why ``fd`` is not the file the checkpoint describes, or None when it is."""
    st = os.fstat(fd)
    if (st.st_dev, st.st_ino) != (manifest['dev'], manifest['ino']):
        return 'another inode'
    sizes = (manifest['size'], state.written) if state.phase == PHASE_COMPLETE else (manifest['size'],)
    if st.st_size not in sizes:
        return 'its size is %d, the checkpoint expects %s' % (st.st_size, ' or '.join(str(s) for s in sizes))
    if _prefix_crc(fd, state.written) != state.output_crc32:
        return 'its first %d bytes are not the compressed stream the checkpoint recorded' % state.written
    if state.phase != PHASE_COMPLETE and \
            zlib.crc32(os.pread(fd, PROOF_SPAN, state.read)) != manifest['proof_crc32']:
        return 'its bytes at offset %d are not the original bytes the checkpoint recorded' % state.read
    return None


def _locate(dir_fd, manifest):
    """The name under which the checkpoint's inode is now, and its stat."""
    for name in (manifest.get('current'), manifest['dest'], manifest['name']):
        st = stat_nofollow(dir_fd, name) if name else None
        if st is not None and (st.st_dev, st.st_ino) == (manifest['dev'], manifest['ino']):
            return name, st
    return None, None


def recover_window(entry, check_mode, mounts=None):
    """Finish (or, if nothing was written, drop) one window checkpoint; a FileResult."""
    manifest = entry.manifest
    try:
        state = WindowState.from_manifest(manifest)
        dir_fd = open_dir_nofollow(manifest['dir'])
    except (KeyError, TypeError, ValueError) as exc:
        return _result(manifest, codes.FAILED, codes.JOURNAL_UNREADABLE,
                       'a window checkpoint without %s; kept at %s' % (exc, entry.journal.path))
    except OSError as exc:
        return _orphaned(entry, 'its directory cannot be opened: %s' % exc.strerror)
    try:
        name, st = _locate(dir_fd, manifest)
        if name is None:
            return _orphaned(entry, 'the file is neither at its name nor at its .gz name')
        if name == manifest['name'] and manifest.get('current') == manifest['dest']:
            # The rename comes before the first write: it never happened.
            if not check_mode:
                entry.discard()
            return _result(manifest, codes.WOULD_RECOVER if check_mode else codes.RECOVERED, codes.ROLLED_BACK,
                           'an interrupted in-place compression had not changed the file; dropped its checkpoint')
        if check_mode:
            return _result(manifest, codes.WOULD_RECOVER, codes.FINISHED,
                           'an interrupted in-place compression would be finished from its checkpoint')
        return _roll_forward(entry, state, dir_fd, name)
    finally:
        os.close(dir_fd)


def _orphaned(entry, why):
    return _result(entry.manifest, codes.FAILED, codes.JOURNAL_ORPHANED,
                   '%s; the checkpoint of the in-place compression is kept at %s' % (why, entry.journal.path))


def _roll_forward(entry, state, dir_fd, name):
    manifest = entry.manifest
    try:
        original = OpenFile(open_regular(dir_fd, name, writable=True))
    except OSError as exc:
        return _result(manifest, codes.FAILED, codes.ERROR, 'cannot open %s: %s' % (name, exc.strerror))
    try:
        fd = original.fd
        why = prove(fd, manifest, state)
        if why:
            return _orphaned(entry, '%s is not the file being compressed (%s)' % (name, why))
        try:
            lease = WriteLease(original)
        except FileBusy:
            return _result(manifest, codes.FAILED, codes.ERROR, '%s is open in another process; a later run '
                           'finishes it from the checkpoint at %s' % (name, entry.journal.path))
        try:
            _finish_from(entry, state, fd)
        finally:
            lease.release()
        if name != manifest['dest']:
            rename_noreplace(dir_fd, name, dir_fd, manifest['dest'])
        fsync_dir(dir_fd)
        after = os.fstat(fd)
    except (OSError, VerificationError, ReplaceIncomplete) as exc:
        return _result(manifest, codes.FAILED, codes.ERROR, 'finishing the in-place compression failed: %s; '
                       'the checkpoint stays at %s' % (exc, entry.journal.path))
    finally:
        original.close()
    entry.discard()
    return _result(manifest, codes.RECOVERED, codes.FINISHED,
                   'finished the in-place compression an interrupted run had started, from its checkpoint at '
                   'input offset %d' % state.read, compressed_size=state.written,
                   bytes_saved=max(0, manifest.get('allocated', 0) - after.st_blocks * 512))


def _finish_from(entry, state, fd):
    manifest = entry.manifest

    def checkpoint(current):
        fields = dict(current.as_manifest())
        fields['proof_crc32'] = zlib.crc32(os.pread(fd, PROOF_SPAN, current.read))
        entry.update(**fields)

    if state.phase != PHASE_COMPLETE:
        WindowCompressor(fd, manifest['size'], state, manifest.get('level', 9), usable_cpus(), checkpoint).run()
    finish(fd, state, manifest['size'], manifest['atime_ns'], manifest['mtime_ns'])
