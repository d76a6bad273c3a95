# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Turn the user's paths, globs and directories into candidate files.

Only ``lstat`` is used here: nothing is opened, so a FIFO or a device is
never touched.  Checks that need the file's content (magic bytes) or other
processes (open files) come later.
"""

from __future__ import annotations

import errno
import fnmatch
import glob
import os
import stat
import time
from typing import TYPE_CHECKING, Any, Iterator

from . import codes

if TYPE_CHECKING:
    from .engine import Options

GZ_SUFFIX = '.gz'


class Candidate(object):
    """A file to compress, or a skip with its reason."""

    __slots__ = ('path', 'dir_path', 'name', 'st', 'reason', 'detail', 'pids')

    def __init__(self, path: str, dir_path: str | None = None, name: str | None = None,
                 st: os.stat_result | None = None, reason: str | None = None, detail: str | None = None) -> None:
        self.path = path
        self.dir_path = dir_path
        self.name = name
        self.st = st
        self.reason = reason
        self.detail = detail
        self.pids: list[dict[str, Any]] | None = None

    @property
    def dest_name(self) -> str:
        return self.name + GZ_SUFFIX

    @property
    def dest(self) -> str | None:
        return os.path.join(self.dir_path, self.dest_name) if self.dir_path else None

    def skip(self, reason: str | None, detail: str | None = None) -> Candidate:
        self.reason = reason
        self.detail = detail
        return self


# The kernel's limits (Linux): a name of at most NAME_MAX bytes, a path
# shorter than PATH_MAX bytes.  Past them every call fails with ENAMETOOLONG.
NAME_MAX = 255
PATH_MAX = 4096


def _too_long(path: str) -> bool:
    return len(os.fsencode(path)) >= PATH_MAX


class Discovery(object):
    """Walks the given paths with the user's filters."""

    def __init__(self, options: Options, now: float | None = None) -> None:
        self.options = options
        self.now = time.time() if now is None else now

    def candidates(self) -> list[Candidate]:
        """Every file found, in the order found, each inode once."""
        seen = set()
        found = []
        for given in self.options.paths:
            for candidate in self._expand(given):
                if candidate.st is not None and not candidate.reason:
                    identity = (candidate.st.st_dev, candidate.st.st_ino)
                    if identity in seen:
                        continue
                    seen.add(identity)
                found.append(candidate)
        return found

    def _expand(self, given: str) -> Iterator[Candidate]:
        given = os.path.abspath(os.path.expanduser(given))
        # A path that exists is the file the user named, even when its name
        # contains glob characters ("app[1].log"); only a path that does not
        # exist is expanded as a glob.
        if os.path.lexists(given) or not glob.has_magic(given):
            matches = [given]
        else:
            matches = sorted(glob.glob(given))
            if not matches:
                yield Candidate(given).skip(codes.NOT_FOUND, 'no file matches')
        for path in matches:
            try:
                st = os.lstat(path)
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    yield Candidate(path).skip(codes.NAME_TOO_LONG, 'longer than PATH_MAX (%d bytes)' % PATH_MAX)
                else:
                    yield Candidate(path).skip(codes.NOT_FOUND, exc.strerror)
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._walk(path, st.st_dev)
            else:
                yield self._check(path, st, explicit=True)

    def _walk(self, top: str, top_dev: int) -> Iterator[Candidate]:
        """Files below ``top``, depth first, without recursion (any depth)."""
        options = self.options
        pending = [top]
        while pending:
            dir_path = pending.pop()
            if _too_long(dir_path):
                yield Candidate(dir_path).skip(
                    codes.NAME_TOO_LONG, 'a directory whose path is longer than PATH_MAX (%d bytes): '
                    'its files were not searched' % PATH_MAX)
                continue
            try:
                with os.scandir(dir_path) as listing:
                    found = sorted(listing, key=lambda item: item.name)
            except OSError as exc:
                if dir_path != top and exc.errno in (errno.ENOENT, errno.ENOTDIR):
                    continue  # vanished while walking
                yield Candidate(dir_path).skip(codes.ERROR, 'cannot list the directory: %s' % exc.strerror)
                continue
            subdirs = []
            for item in found:
                try:
                    if item.is_dir(follow_symlinks=False):
                        # Too long a path cannot even be stat'ed: reported when its turn comes.
                        if options.recurse and (not options.one_file_system or _too_long(item.path)
                                                or item.stat(follow_symlinks=False).st_dev == top_dev):
                            subdirs.append(item.path)
                        continue
                    if not self._matches_patterns(item.name):
                        continue
                    st = item.stat(follow_symlinks=False)
                except OSError:
                    continue  # vanished while walking
                yield self._check(item.path, st, explicit=False)
            pending.extend(reversed(subdirs))

    def _matches_patterns(self, name: str) -> bool:
        patterns = self.options.patterns
        return not patterns or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

    def _waits_for_min_age(self, name: str) -> bool:
        """min_age applies to live names only, when the user listed them."""
        patterns = self.options.min_age_patterns
        return not patterns or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

    def _check(self, path: str, st: os.stat_result, explicit: bool) -> Candidate:
        """Everything that lstat alone can decide."""
        options = self.options
        name = os.path.basename(path)
        candidate = Candidate(path, os.path.dirname(path), name, st)
        if any(fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(path, pattern)
               for pattern in options.excludes):
            return candidate.skip(codes.EXCLUDED, 'matches excludes')
        if explicit and options.patterns and not self._matches_patterns(name):
            return candidate.skip(codes.EXCLUDED, 'does not match patterns')
        if stat.S_ISLNK(st.st_mode):
            if not options.follow:
                return candidate.skip(codes.SYMLINK, 'a symbolic link; set follow to compress its target')
            target = os.path.realpath(path)
            try:
                st = os.lstat(target)
            except OSError as exc:
                return candidate.skip(codes.NOT_FOUND, 'symlink target: %s' % exc.strerror)
            candidate = Candidate(path, os.path.dirname(target), os.path.basename(target), st)
        if not stat.S_ISREG(st.st_mode):
            return candidate.skip(codes.NOT_REGULAR, 'not a regular file')
        if st.st_size < options.min_size:
            return candidate.skip(codes.TOO_SMALL, 'smaller than min_size (%d bytes)' % options.min_size)
        if options.min_age and self.now - st.st_mtime < options.min_age and self._waits_for_min_age(candidate.name):
            return candidate.skip(codes.TOO_YOUNG, 'modified less than min_age (%d s) ago' % options.min_age)
        if st.st_nlink > 1:
            return candidate.skip(codes.HARDLINKED, '%d hard links: compressing would free nothing' % st.st_nlink)
        if len(os.fsencode(candidate.dest_name)) > NAME_MAX:
            return candidate.skip(codes.NAME_TOO_LONG, '%s would be longer than %d bytes, the longest name '
                                  'the kernel accepts' % (candidate.dest_name, NAME_MAX))
        if _too_long(candidate.dest):
            return candidate.skip(codes.NAME_TOO_LONG, 'the path of %s would be longer than PATH_MAX (%d bytes)'
                                  % (candidate.dest_name, PATH_MAX))
        if os.path.lexists(candidate.dest):
            return candidate.skip(codes.DEST_EXISTS, '%s already exists' % candidate.dest)
        return candidate
