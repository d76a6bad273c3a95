# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Fixtures of the integration tests.

The full-filesystem fixtures live in fullfs.py (imported here so pytest sees
them); other fixture sets (e.g. SSH hosts) can be added beside this import.
"""

from fullfs import fullfs, fullfs_module, journal_dir, procs  # noqa: F401  (pytest fixtures)
