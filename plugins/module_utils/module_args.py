# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Module parameters in the engine's units: one conversion for every module.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  Standard library only: the modules pass Ansible's ``human_to_bytes``
in as ``to_bytes``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from .engine import Options
from .estimate import SAMPLE
from .gzip_member import MAX_THREADS
from .result_cap import DEFAULT_MAX_FILE_RESULTS
from .sysinfo import DEFAULT_MEMORY_FRACTION

_AGE_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}


def parse_age(text: str | None) -> int:
    """Seconds from '90', '30s', '10m', '2h', '1d' or '1w'."""
    match = re.match(r'^\s*(\d+)\s*([smhdw]?)\s*$', text or '0')
    if not match:
        raise ValueError('min_age must be seconds or a number with s, m, h, d or w: %r' % text)
    return int(match.group(1)) * _AGE_UNITS.get(match.group(2) or 's')


def parse_target_free(text: str | None, to_bytes: Callable[[str], int]) -> tuple[int | None, float | None]:
    """(bytes, percent): one of them set, from '2G', '1048576' or '15%'."""
    if text is None:
        return None, None
    text = text.strip()
    if text.endswith('%'):
        percent = float(text[:-1])
        if not 0 <= percent <= 100:
            raise ValueError('target_free percentage must be between 0 and 100: %r' % text)
        return None, percent
    return to_bytes(text), None


def check_threads(threads: int) -> int:
    if not 0 <= threads <= MAX_THREADS:
        raise ValueError('threads must be between 0 (every usable CPU) and %d, not %d' % (MAX_THREADS, threads))
    return threads


def check_max_file_results(count: int) -> int:
    if count < 0:
        raise ValueError('max_file_results must be 0 (no limit) or more, not %d' % count)
    return count


def engine_options(params: Mapping[str, Any], check_mode: bool, to_bytes: Callable[[str], int],
                   **overrides: Any) -> Options:
    """engine.Options from a module's parameters (those it does not have keep the engine's default).

    ``overrides`` (``paths``, ``recurse``...) win over ``params``.
    """
    merged = dict(params)
    merged.update(overrides)
    target_bytes, target_percent = parse_target_free(merged.get('target_free'), to_bytes)
    memory_limit = merged.get('memory_limit')
    return Options(
        paths=merged.get('paths', merged.get('path')),
        recurse=merged.get('recurse', False),
        one_file_system=merged.get('one_file_system', True),
        patterns=merged.get('patterns') or (),
        excludes=merged.get('excludes') or (),
        min_size=to_bytes(merged.get('min_size') or '1M'),
        min_age=parse_age(merged.get('min_age') or '0'),
        level=merged.get('level', 9),
        threads=check_threads(merged.get('threads', 0)),
        memory_limit=to_bytes(memory_limit) if memory_limit else None,
        memory_fraction=merged.get('memory_fraction') or DEFAULT_MEMORY_FRACTION,
        largest_first=merged.get('largest_first', True),
        target_free_bytes=target_bytes,
        target_free_percent=target_percent,
        follow=merged.get('follow', False),
        open_files=merged.get('open_files', 'skip'),
        live_method=merged.get('live_method', 'auto'),
        journal_dir=merged.get('journal_dir') or '/dev/shm',
        spill_dir=merged.get('spill_dir'),
        check_mode=check_mode,
        estimate=merged.get('estimate') or SAMPLE,
        min_age_patterns=merged.get('min_age_patterns') or (),
        max_file_results=check_max_file_results(merged.get('max_file_results', DEFAULT_MAX_FILE_RESULTS)),
        strategy=merged.get('strategy') or 'auto',
    )
