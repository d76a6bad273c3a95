# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures of the integration tests.

The full-filesystem fixtures live in fullfs.py (imported here so pytest sees
them); other fixture sets (e.g. SSH hosts) can be added beside this import.
"""

import os
import sys

# The helpers (fullfs.py, cmzrun.py) are imported by their bare names; this
# also works under --import-mode=importlib, which does not touch sys.path.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from fullfs import fullfs, fullfs_module, journal_dir  # noqa: E402,F401  (pytest fixtures)

# Real SSH hosts whose whole root filesystem is full (tests/fleet).
sys.path.insert(0, os.path.join(_HERE, os.pardir, 'fleet'))
from pytest_fleet import full_ssh_host  # noqa: E402,F401  (pytest fixture)

import importlib  # noqa: E402

import pytest  # noqa: E402

from cmzrun import COLLECTIONS, ensure_collection_link  # noqa: E402


@pytest.fixture(scope='session')
def engine():
    """The engine module, imported in-process from the working tree."""
    ensure_collection_link()
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    return importlib.import_module('ansible_collections.sre.cmemgzip.plugins.module_utils.engine')


# Re-exported so that pytest finds these fixtures in this conftest.
__all__ = ['fullfs', 'fullfs_module', 'journal_dir', 'full_ssh_host', 'engine']
