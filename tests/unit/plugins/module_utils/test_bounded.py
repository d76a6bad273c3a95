# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Unit tests of plugins/module_utils/bounded.py (calls with a time limit)."""

from __future__ import absolute_import, division, print_function

import errno
import threading

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils.bounded import BoundedCaller, TimedOut


def test_value_and_error_come_back():
    caller = BoundedCaller(5)
    assert caller.call(lambda a, b: a + b, 2, 3) == 5

    def fails():
        raise OSError(errno.ENOENT, 'gone')

    with pytest.raises(OSError) as info:
        caller.call(fails)
    assert info.value.errno == errno.ENOENT
    assert caller.abandoned == 0


def test_a_blocked_call_is_abandoned_and_the_next_one_runs():
    caller = BoundedCaller(0.2)
    release = threading.Event()
    with pytest.raises(TimedOut):
        caller.call(release.wait)
    assert caller.abandoned == 1
    # A fresh worker answers while the first one still waits.
    assert caller.call(lambda: 'fresh') == 'fresh'
    release.set()
