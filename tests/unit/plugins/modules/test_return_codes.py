# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""RETURN documents exactly the action and reason codes of codes.py.

Codes are defined once, in plugins/module_utils/codes.py.  The modules' RETURN
is static text (ansible-doc reads it without importing the module), so it
repeats them: this test fails as soon as the two differ.  When you add a code,
add it to RETURN's ``choices`` and explain it in the ``description`` as
``V(code) - meaning``.
"""

from __future__ import absolute_import, division, print_function

import importlib
import os
import re

import pytest
import yaml

from ansible_collections.sre.cmemgzip.plugins.module_utils import codes

MODULES_DIR = os.path.join(os.path.dirname(os.path.abspath(codes.__file__)), os.pardir, 'modules')
MODULES = sorted(name[:-3] for name in os.listdir(MODULES_DIR) if name.endswith('.py') and name != '__init__.py')
EXPECTED = {'action': set(codes.ACTIONS), 'reason': set(codes.REASONS)}


def documented_file_fields(return_doc):
    """{field: doc} of files[].action / files[].reason, at any depth of RETURN."""
    found = {}

    def walk(node):
        for key, value in (node or {}).items():
            if not isinstance(value, dict):
                continue
            contains = value.get('contains') or {}
            if key == 'files':
                for field in EXPECTED:
                    if field in contains:
                        found[field] = contains[field]
            walk(contains)

    walk(return_doc)
    return found


def return_doc(name):
    module = importlib.import_module('ansible_collections.sre.cmemgzip.plugins.modules.%s' % name)
    return yaml.safe_load(module.RETURN)


def described_codes(doc):
    text = doc['description']
    lines = text if isinstance(text, list) else [text]
    return set(match for line in lines for match in re.findall(r'^V\(([a-z_]+)\) - ', line))


MODULES_WITH_CODES = [name for name in MODULES if documented_file_fields(return_doc(name))]


def test_the_compression_module_documents_its_codes():
    assert 'cmemgzip' in MODULES_WITH_CODES


@pytest.mark.parametrize('name', MODULES_WITH_CODES)
@pytest.mark.parametrize('field', sorted(EXPECTED))
def test_return_choices_are_exactly_the_codes(name, field):
    doc = documented_file_fields(return_doc(name))[field]
    choices = set(doc.get('choices') or ())
    assert choices == EXPECTED[field], (
        'RETURN of %s, files[].%s: missing from choices %s, not in codes.py %s'
        % (name, field, sorted(EXPECTED[field] - choices), sorted(choices - EXPECTED[field])))


@pytest.mark.parametrize('name', MODULES_WITH_CODES)
@pytest.mark.parametrize('field', sorted(EXPECTED))
def test_every_code_is_explained_once(name, field):
    doc = documented_file_fields(return_doc(name))[field]
    described = described_codes(doc)
    assert described == EXPECTED[field], (
        'RETURN of %s, files[].%s: explain %s as "V(code) - meaning"; not codes: %s'
        % (name, field, sorted(EXPECTED[field] - described), sorted(described - EXPECTED[field])))


def test_every_code_has_a_meaning_in_codes_py():
    for table in (codes.ACTIONS, codes.SKIP_REASONS, codes.RECOVERY_REASONS):
        assert all(isinstance(text, str) and text for text in table.values())
    assert not set(codes.SKIP_REASONS) & set(codes.RECOVERY_REASONS)
