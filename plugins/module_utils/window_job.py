# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The window strategy inside a run: when to use it, its commit and checkpoints, its end.

``plan`` decides per file: the window is used on request (``strategy:
window``) and, with ``strategy: auto``, whenever the journal cannot be sure
to hold the whole compressed copy (its cap is below the file's size).  The
journal then holds only a checkpoint (window_format.WindowState) under the
usual key, as a manifest of kind ``window``.

The commit is the last moment to give up: the file is checked unchanged,
not reopened, NAME.gz absent; the first checkpoint is published; the file is
renamed to NAME.gz (never replacing a name) and the directory synced; only
then is the first byte written.  A rename refused for lack of space (btrfs
metadata, a full directory block) leaves the name as it is until the end,
and the checkpoint says so (``current``).

This is a private module_utils file of sre.cmemgzip: it may change without
notice.
"""

from __future__ import annotations

import errno
import os
import time
import zlib
from typing import TYPE_CHECKING, Any, Callable

from . import codes
from .gzip_member import BLOCK_SIZE, Cancelled
from .identity import capture, entry_key, filesystem_id
from .journal import MANIFEST_VERSION
from .journal_set import JOURNAL_HEADROOM, JournalChoice, JournalSet
from .rewrite import ReplaceIncomplete, file_metadata
from .safe_fs import FileBusy, WriteLease, fsync_dir, rename_noreplace, stat_nofollow
from .window import NotCommitted, WindowCompressor, finish
from .window_format import KIND, PROOF_SPAN, WindowState, window_header
from .window_fs import unsuitable
from .window_salvage import SalvageError, read_checkpoint

if TYPE_CHECKING:
    from .discovery import Candidate
    from .file_job import FileCompressor, Skip
    from .journal import Journal, JournalEntry
    from .safe_fs import OpenFile

WINDOW = 'window'
STRATEGY_AUTO = 'auto'
STRATEGY_COPY = 'copy'
STRATEGY_WINDOW = 'window'
STRATEGIES = (STRATEGY_AUTO, STRATEGY_COPY, STRATEGY_WINDOW)
MAX_INTERVAL_BLOCKS = 8
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _skip(reason: str, detail: str, **extra: Any) -> Skip:
    from .file_job import Skip  # file_job calls into this module: import when needed
    return Skip(reason, detail, **extra)


class WindowPlan(object):
    """The journal a window run checkpoints into, and its bounds."""

    __slots__ = ('journal', 'interval_blocks', 'precommit_limit')

    def __init__(self, journal: Journal, interval_blocks: int, precommit_limit: int) -> None:
        self.journal = journal
        self.interval_blocks = interval_blocks
        self.precommit_limit = precommit_limit


def plan(compressor: FileCompressor, filesystem: dict[str, Any], st: os.stat_result, fd: int,
         choice: JournalChoice | None) -> WindowPlan | None:
    """A WindowPlan when this file goes through the window, None for the copy strategies."""
    option = getattr(compressor.options, 'strategy', STRATEGY_AUTO) or STRATEGY_AUTO
    if option == STRATEGY_COPY or choice is None and option == STRATEGY_AUTO:
        return None
    if option == STRATEGY_AUTO and choice.cap >= st.st_size - 1:
        return None  # the journal holds any copy this file can compress to
    why = unsuitable(fd, st, filesystem, compressor.journals.mounts)
    if why:
        if option == STRATEGY_WINDOW:
            raise _skip(codes.WINDOW_UNSUPPORTED, why)
        return None
    # RAM: the blocks in flight (input, output, checks) and the checkpoint window.
    ram = (3 * compressor.threads + MAX_INTERVAL_BLOCKS) * BLOCK_SIZE
    if compressor.memory_limit < ram + BLOCK_SIZE:
        if option == STRATEGY_WINDOW:
            raise _skip(codes.MEMORY_BUDGET, 'the window needs about %d MiB of RAM, more than memory_limit (%d bytes)'
                        % (ram // BLOCK_SIZE + 1, compressor.memory_limit))
        return None
    journal = choice.journal if choice is not None else None
    room = JournalSet._room(journal, same_fs=journal.device == st.st_dev) if journal is not None else 0
    # A checkpoint is at most interval blocks of output, base64 (4/3), and
    # the old one stays until the new one is renamed over it.
    interval = min(MAX_INTERVAL_BLOCKS, room * 3 // (8 * BLOCK_SIZE))
    if interval < 2:
        if option == STRATEGY_AUTO:
            return None  # the copy may still fit where checkpoints do not
        raise _skip(codes.NO_JOURNAL_SPACE, 'the window needs about %d MiB free in a journal off this filesystem '
                    '(its checkpoints, beside the %d MiB left to others); %s'
                    % ((JOURNAL_HEADROOM * 3 + 16 * BLOCK_SIZE) // (3 * BLOCK_SIZE) + 1, JOURNAL_HEADROOM // BLOCK_SIZE,
                       compressor.journals.no_space_detail()))
    # Before the first write, the stream waits in RAM and then in the first checkpoint.
    precommit = min(room * 3 // 8 - interval * BLOCK_SIZE, compressor.memory_limit - ram)
    return WindowPlan(choice.journal, interval, max(precommit, BLOCK_SIZE))


def measure(compressor: FileCompressor, candidate: Candidate, filesystem: dict[str, Any], st: os.stat_result,
            fd: int) -> dict[str, Any]:
    """Check mode: the real compressed size, as the copy strategies measure it; no journal cap applies."""
    result = compressor._measure(candidate, filesystem, st, fd, JournalChoice(None, st.st_size - 1, codes.NOT_SMALLER))
    result['strategy'] = WINDOW
    return result


def lease_cancelled(lease: WriteLease | None) -> Callable[[], bool] | None:
    if lease is not None and lease.held:
        return lambda: lease.broken
    return None


class _Checkpoints(object):
    """Publishes the window's state as the manifest of its journal entry."""

    def __init__(self, entry: JournalEntry, fd: int, static: dict[str, Any] | None) -> None:
        self.entry = entry
        self.fd = fd
        self.static = static
        self.peak_bytes = 0
        self._last_bytes = 0

    def publish(self, state: WindowState, **changes: Any) -> None:
        fields = state.as_manifest()
        fields['proof_crc32'] = zlib.crc32(os.pread(self.fd, PROOF_SPAN, state.read))
        fields.update(changes)
        if self.static is not None:
            # The first checkpoint commits the entry (data file synced, manifest atomic).
            manifest, self.static = self.static, None
            manifest.update(fields)
            self.entry.commit(manifest)
        else:
            self.entry.update(**fields)
        size = os.stat(self.entry.journal.path + '/' + self.entry.key + '.json').st_size
        # The previous checkpoint exists until the new one replaces it.
        self.peak_bytes = max(self.peak_bytes, size + self._last_bytes)
        self._last_bytes = size


class _Commit(object):
    """The last checks, the first checkpoint and the rename: called once, just before the first write."""

    def __init__(self, candidate: Candidate, st: os.stat_result, dir_fd: int, fd: int, lease: WriteLease | None,
                 checkpoints: _Checkpoints) -> None:
        self.candidate = candidate
        self.st = st
        self.dir_fd = dir_fd
        self.fd = fd
        self.lease = lease
        self.checkpoints = checkpoints
        self.done = False
        self.current = candidate.dest_name

    def __call__(self, state: WindowState) -> None:
        candidate = self.candidate
        st = self.st
        now = os.fstat(self.fd)
        if (now.st_size, now.st_mtime_ns, now.st_ino) != (st.st_size, st.st_mtime_ns, st.st_ino):
            raise _skip(codes.CHANGED_WHILE_READING, 'the file changed while it was read')
        if self.lease is not None and self.lease.broken:
            raise _skip(codes.OPEN, 'another process opened the file while it was compressed')
        if stat_nofollow(self.dir_fd, candidate.dest_name) is not None:
            raise _skip(codes.DEST_EXISTS, '%s appeared while compressing' % candidate.dest)
        self.checkpoints.publish(state)
        try:
            rename_noreplace(self.dir_fd, candidate.name, self.dir_fd, candidate.dest_name)
        except OSError as exc:
            if exc.errno not in _NO_SPACE:
                if exc.errno == errno.EEXIST:
                    raise _skip(codes.DEST_EXISTS, '%s appeared just before the rename' % candidate.dest)
                raise
            # No room for the new name: compress under the old one, rename at the end.
            self.current = candidate.name
            self.checkpoints.publish(state, current=candidate.name)
        fsync_dir(self.dir_fd)
        self.done = True


def _static_manifest(candidate: Candidate, st: os.stat_result, fd: int, level: int) -> dict[str, Any]:
    # The whole original's CRC-32 is known only at the end: the content
    # proofs are the checkpoint's own (window_recovery.prove).
    manifest = capture(fd, st, None)
    manifest.update({
        'version': MANIFEST_VERSION, 'kind': KIND, 'strategy': WINDOW, 'dir': os.path.realpath(candidate.dir_path),
        'name': candidate.name, 'dest': candidate.dest_name, 'current': candidate.dest_name,
        'allocated': st.st_blocks * 512, 'atime_ns': st.st_atime_ns, 'level': level, 'block_size': BLOCK_SIZE,
        'created': time.time(), 'pid': os.getpid(), 'metadata': file_metadata(fd),
    })
    return manifest


def compress(compressor: FileCompressor, candidate: Candidate, st: os.stat_result, dir_fd: int, original: OpenFile,
             window_plan: WindowPlan, lease: WriteLease | None) -> dict[str, Any]:
    """Compress the open file into itself; returns the result fields."""
    fd = original.fd
    options = compressor.options
    entry = window_plan.journal.create(entry_key(filesystem_id(fd), st.st_ino))
    checkpoints = _Checkpoints(entry, fd, _static_manifest(candidate, st, fd, options.level))
    commit = _Commit(candidate, st, dir_fd, fd, lease, checkpoints)
    header = window_header(os.fsencode(candidate.name), int(st.st_mtime), options.level, st.st_size, st.st_ino)
    state = WindowState(pending=header)
    engine = WindowCompressor(fd, st.st_size, state, options.level, compressor.threads, checkpoints.publish,
                              commit=commit, cancelled=lease_cancelled(lease),
                              precommit_limit=window_plan.precommit_limit,
                              interval_blocks=window_plan.interval_blocks)
    try:
        engine.run()
        finish(fd, state, st.st_size, st.st_atime_ns, st.st_mtime_ns)
        if commit.current != candidate.dest_name:
            rename_noreplace(dir_fd, commit.current, dir_fd, candidate.dest_name)
            fsync_dir(dir_fd)
    except NotCommitted as exc:
        entry.discard()
        raise _skip(exc.reason, exc.detail)
    except Cancelled:
        entry.discard()
        raise _skip(codes.OPEN, 'another process opened the file while it was compressed')
    except BaseException as exc:
        if not commit.done:
            # Nothing was written: drop the entry.
            entry.discard()
            raise
        if not isinstance(exc, Exception) or getattr(exc, 'reason', None):
            raise
        raise ReplaceIncomplete('the in-place compression stopped at input offset %d (%s); its checkpoint %s '
                                'lets a rerun finish it' % (state.read, exc, entry.data_path[:-3] + '.json'))
    if getattr(window_plan.journal, 'ram_backed', True):
        compressor.peak_journal = max(compressor.peak_journal, checkpoints.peak_bytes)
    entry.discard()
    after = os.fstat(fd)
    return {'action': codes.COMPRESSED, 'compressed_size': state.written,
            'bytes_saved': st.st_blocks * 512 - after.st_blocks * 512, 'strategy': WINDOW}


def salvage(compressor: FileCompressor, candidate: Candidate, st: os.stat_result, dir_fd: int,
            original: OpenFile) -> dict[str, Any] | None:
    """Finish a window file whose journal is gone, from the file alone; None if it is not one."""
    fd = original.fd
    try:
        salvaged = read_checkpoint(fd)
    except SalvageError as exc:
        return {'action': codes.FAILED, 'reason': codes.ERROR, 'strategy': WINDOW,
                'detail': 'an in-place compression was interrupted and its journal is lost: %s' % exc}
    if salvaged is None or salvaged.complete and st.st_size == salvaged.state.written:
        return None  # not ours, or a finished .gz
    action = codes.WOULD_RECOVER if compressor.options.check_mode else codes.RECOVERED
    result = {'action': action, 'reason': codes.SALVAGED, 'strategy': WINDOW,
              'detail': 'an in-place compression had been interrupted and its journal lost; finished from '
                        'the file itself (input offset %d of %d)' % (salvaged.state.read, salvaged.info.size)}
    if compressor.options.check_mode:
        return result
    try:
        lease = WriteLease(original)
    except FileBusy:
        raise _skip(codes.OPEN, 'opened by another process (the kernel refused a write lease)')
    try:
        state = salvaged.state
        if not salvaged.complete:
            # No journal: the file alone stays salvageable at every instant.
            WindowCompressor(fd, salvaged.info.size, state, compressor.options.level, compressor.threads,
                             lambda _state: None).run()
        mtime_ns = salvaged.info.mtime * 10 ** 9
        finish(fd, state, salvaged.info.size, mtime_ns, mtime_ns)
    finally:
        lease.release()
    after = os.fstat(fd)
    result.update(compressed_size=state.written, original_size=salvaged.info.size,
                  bytes_saved=max(0, st.st_blocks * 512 - after.st_blocks * 512))
    return result
