# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""``open_files: live``: a file that processes hold open, saved and freed without stopping them.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.

Who may hold the file (``refusals``): readers, and writers that opened it
with ``O_APPEND`` - every write of theirs lands at the end, never inside the
prefix being saved, and after a collapse at the new end.  A writer without
``O_APPEND`` writes at its own offset (into the prefix, or past a collapsed
end, leaving a hole); a memory map sees a collapse as moved bytes and a
punch as zeros (a shared writable one writes anywhere); a byte-range lock or
a lease means offsets matter to someone; a process the scan could not read
in time might be any of these.  Each refusal names pid, command
and why.  The protocol itself is prefix.py.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from . import codes, falloc, gz_output
from .file_job import Skip, open_candidate
from .formats import LONGEST_MAGIC, compressed_format
from .open_files import ProcScan, command_name, read_locks
from .prefix import PrefixSaver, Target, record_outcome
from .results import FileResult
from .safe_fs import open_dir_nofollow

if TYPE_CHECKING:
    from .discovery import Candidate
    from .engine import Options
    from .journal_set import JournalSet
    from .mounts import MountTable
    from .open_files import Holder

KIND_LIVE = 'live'
AUTO = 'auto'


def refusals(holders: Iterable[Holder], locks: Iterable[tuple[str, str, int, str, str]] = (),
             unknown: Iterable[tuple[int, str | None]] = ()) -> list[str]:
    """Why the live method cannot follow these holders: a list of sentences (empty: it can)."""
    why = []
    for holder in holders:
        who = 'pid %d (%s)' % (holder.pid, holder.comm)
        if holder.fd is None:
            # A map sees a collapse as moved bytes (SIGBUS past the new end),
            # a punch as zeros; a shared writable one writes anywhere.
            if holder.shared_writable_map:
                why.append('%s maps it shared and writable' % who)
            else:
                why.append('%s maps it (%s)' % (who, holder.map_perms))
        elif holder.writes and not holder.append:
            why.append('%s writes without O_APPEND (fd %d, flags 0%o)' % (who, holder.fd, holder.flags))
    for kind, mode, pid, start, end in locks:
        if kind in ('LEASE', 'DELEG') or (start, end) != ('0', 'EOF'):
            why.append('pid %d (%s) holds a %s %s lock on bytes %s-%s' % (pid, command_name(pid), kind, mode, start, end))
    for pid, comm in unknown:
        why.append('pid %d (%s) could not be inspected in time' % (pid, comm))
    return why


class LiveCompressor(object):
    """``process(candidate, filesystem, holders, scan)`` -> FileResult for a held file."""

    def __init__(self, options: Options, threads: int, journals: JournalSet, mounts: MountTable) -> None:
        self.options = options
        self.mounts = mounts
        self.saver = PrefixSaver(journals, options.level, threads)

    @property
    def peak_journal(self) -> int:
        return self.saver.peak_journal

    def process(self, candidate: Candidate, filesystem: dict[str, Any], holders: Sequence[Holder],
                scan: ProcScan) -> FileResult:
        started = time.monotonic()
        result = FileResult(candidate.path, None, original_size=candidate.st.st_size,
                            pids=[h.as_dict() for h in holders])
        record_outcome(result, lambda: self._live(candidate, filesystem, holders, scan))
        result.seconds = round(time.monotonic() - started, 3)
        return result

    def _live(self, candidate: Candidate, filesystem: dict[str, Any], holders: Sequence[Holder],
              scan: ProcScan) -> dict[str, Any]:
        identity = (candidate.st.st_dev, candidate.st.st_ino)
        device = _mount_device(self.mounts, candidate)
        self._check_holders(identity, device, holders, scan)
        dir_path = os.path.realpath(candidate.dir_path)
        dir_fd = open_dir_nofollow(dir_path)
        try:
            fd = _open_same(dir_fd, candidate, writable=not self.options.check_mode)
            try:
                target = Target(
                    fd, dir_fd, dir_path, gz_output.rotation_name(candidate.name), candidate.name,
                    falloc.methods_to_try(filesystem['fstype'], self.options.live_method),
                    {'kind': KIND_LIVE, 'dir': dir_path, 'name': candidate.name},
                    recheck=lambda: self._check_holders(identity, device, None, None))
                if self.options.check_mode:
                    fields = self.saver.measure(target)
                    fields.update(action=codes.WOULD_LIVE_COMPRESS,
                                  dest=os.path.join(dir_path, gz_output.rotation_name(candidate.name)))
                    return fields
                fields = self.saver.run(target)
                fields['action'] = codes.LIVE_COMPRESSED
                return fields
            finally:
                os.close(fd)
        finally:
            os.close(dir_fd)

    def _check_holders(self, identity: tuple[int, int], device: int, holders: Sequence[Holder] | None,
                       scan: ProcScan | None) -> None:
        if scan is None:
            scan = ProcScan(self.mounts)
            holders = scan.holders([(identity, device)]).get(identity, [])
        locks = read_locks([identity], {device: identity[0]}).get(identity, [])
        unknown = [(entry['pid'], entry['comm']) for entry in scan.skipped]
        why = refusals(holders, locks, unknown)
        if why:
            raise Skip(codes.HOLDER_REFUSED, '; '.join(why), pids=[h.as_dict() for h in holders])


def _mount_device(mounts: MountTable, candidate: Candidate) -> int:
    mount = mounts.find(candidate.dir_path, candidate.st.st_dev)
    return os.makedev(mount.major, mount.minor) if mount else candidate.st.st_dev


def _open_same(dir_fd: int, candidate: Candidate, writable: bool) -> int:
    """The candidate's inode, opened again without following links; Skip when it changed."""
    fd = open_candidate(dir_fd, candidate.name, writable)
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != (candidate.st.st_dev, candidate.st.st_ino):
            raise Skip(codes.CHANGED_WHILE_READING, 'replaced by another file since it was found')
        if st.st_nlink > 1:
            raise Skip(codes.HARDLINKED, '%d hard links' % st.st_nlink)
        found = compressed_format(os.pread(fd, LONGEST_MAGIC, falloc.first_data(fd, st.st_size)))
        if found:
            raise Skip(codes.ALREADY_COMPRESSED, 'already %s data' % found)
    except BaseException:
        os.close(fd)
        raise
    return fd
