# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Module parameters in the engine's units (module_args.py)."""

from __future__ import absolute_import, division, print_function

import pytest

from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils import module_args, sysinfo


@pytest.mark.parametrize('text, seconds', [('0', 0), ('90', 90), ('30s', 30), ('10m', 600), ('2h', 7200),
                                           ('1d', 86400), ('1w', 604800)])
def test_parse_age(text, seconds):
    assert module_args.parse_age(text) == seconds


def test_parse_age_rejects_garbage():
    with pytest.raises(ValueError):
        module_args.parse_age('soon')


def test_parse_target_free():
    assert module_args.parse_target_free(None, human_to_bytes) == (None, None)
    assert module_args.parse_target_free('15%', human_to_bytes) == (None, 15.0)
    assert module_args.parse_target_free('2K', human_to_bytes) == (2048, None)
    with pytest.raises(ValueError):
        module_args.parse_target_free('150%', human_to_bytes)


def test_engine_options_keep_the_engine_defaults_for_what_a_module_does_not_have():
    options = module_args.engine_options({'patterns': ['*.log']}, False, human_to_bytes,
                                         paths=['/var/log'], recurse=True)
    assert options.paths == ['/var/log'] and options.recurse is True and options.patterns == ['*.log']
    assert options.min_size == 1024 * 1024 and options.min_age == 0 and options.level == 9
    assert options.memory_limit is None and options.memory_fraction == sysinfo.DEFAULT_MEMORY_FRACTION
    assert options.journal_dir == '/dev/shm' and options.check_mode is False


def test_memory_budget_is_the_limit_or_a_fraction_of_what_is_available():
    assert sysinfo.memory_budget(1000) == 500
    assert sysinfo.memory_budget(1000, fraction=0.25) == 250
    assert sysinfo.memory_budget(1000, limit=42) == 42
    assert sysinfo.memory_budget(None) is None
