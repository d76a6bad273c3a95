# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures of the system tests (real filesystems, real processes, real SSH hosts).

The shared test library lives in tests/lib (fullfs.py: real full filesystems,
cmzrun.py: ways to run the module); the SSH fleet in tests/fleet.
"""

import os
import sys

# The helpers (fullfs.py, cmzrun.py) are imported by their bare names; this
# also works under --import-mode=importlib, which does not touch sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
_LIB = os.path.join(_HERE, os.pardir, 'lib')
for _path in (_HERE, _LIB):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from fullfs import fullfs, fullfs_module, journal_dir  # noqa: E402,F401  (pytest fixtures)

# Real SSH hosts whose whole root filesystem is full (tests/fleet).
sys.path.insert(0, os.path.join(_HERE, os.pardir, 'fleet'))
from pytest_fleet import full_ssh_host  # noqa: E402,F401  (pytest fixture)

import importlib  # noqa: E402

import pytest  # noqa: E402

import worktree  # noqa: E402


@pytest.fixture(scope='session')
def engine():
    """The engine module, imported in-process from the working tree."""
    worktree.use_in_process()
    return importlib.import_module('ansible_collections.sre.cmemgzip.plugins.module_utils.engine')


# Re-exported so that pytest finds these fixtures in this conftest.
__all__ = ['fullfs', 'fullfs_module', 'journal_dir', 'full_ssh_host', 'engine']
