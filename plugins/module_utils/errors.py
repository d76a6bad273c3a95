# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The base of every exception the engine raises on purpose.

This is a private module_utils file of sre.cmemgzip: it may change without
notice.  The modules catch ``CmemgzipError`` (and ``OSError``, for what
nothing expected) around the engine, so that a problem becomes a clear
``fail_json`` message and never a traceback.
"""

from __future__ import annotations


class CmemgzipError(Exception):
    """Something the engine understood and can say in one sentence."""


class AnotherRunActive(CmemgzipError):
    """Another sre.cmemgzip run holds the journal lock on this host."""
