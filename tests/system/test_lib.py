# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The shared test library itself (tests/lib): the one log generator and the one collection link."""

from __future__ import annotations

import gzip
import hashlib
import os
import sys

import pytest

import loggen
import worktree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, 'fleet'))
import fleet  # noqa: E402

MiB = 1 << 20


@pytest.mark.parametrize('kind', loggen.KINDS)
def test_loggen_is_deterministic_exact_and_realistic(kind, tmp_path):
    size = MiB + 12345
    data = loggen.log_bytes(size, 7, kind)
    assert len(data) == size
    assert data.endswith(b'\n')
    assert loggen.log_bytes(size, 7, kind) == data
    assert loggen.log_bytes(size, 8, kind) != data
    digest = loggen.write_log(str(tmp_path / 'x.log'), size, 7, kind)
    assert digest == hashlib.sha256(data).hexdigest()
    assert (tmp_path / 'x.log').read_bytes() == data
    # like a real log: far better than random data, far worse than a repeated text
    ratio = size / len(gzip.compress(data, 6))
    assert 4 < ratio < 20, ratio


def test_loggen_string_seeds_and_tiny_sizes():
    assert loggen.log_bytes(0, 'a') == b''
    assert loggen.log_bytes(1, 'a') == b'\n'
    assert loggen.log_bytes(4096, '/var/log/x') == loggen.log_bytes(4096, '/var/log/x')
    with pytest.raises(ValueError):
        loggen.log_bytes(10, 1, 'no-such-kind')


def test_fleet_logs_come_from_loggen():
    """The fleet's manifests keep their meaning: same content for the same spec, gz variant inflates to it."""
    plain = fleet.generate_log('access', MiB, '/var/log/app/x')
    assert plain == loggen.log_bytes(MiB, f'{fleet.LOG_GEN_VERSION}:/var/log/app/x', 'access')
    packed = fleet.generate_log('access-gz', MiB, '/var/log/app/x')
    assert gzip.decompress(packed) == loggen.log_bytes(MiB, f'{fleet.LOG_GEN_VERSION}:/var/log/app/x:plain', 'access')


def test_worktree_link_leads_to_this_tree():
    link = worktree.link_collection()
    assert os.path.samefile(link, worktree.REPO)
    assert os.readlink(link) == worktree.LINK_TARGET  # relative: the tree may move
    env = worktree.ansible_env({})
    assert env['ANSIBLE_COLLECTIONS_PATH'] == worktree.COLLECTIONS


def test_worktree_replaces_a_stale_link(tmp_path, monkeypatch):
    repo = tmp_path / 'clone'
    link = repo / '.cache' / 'collections' / 'ansible_collections' / 'sre' / 'cmemgzip'
    link.parent.mkdir(parents=True)
    (tmp_path / 'elsewhere').mkdir()
    link.symlink_to(tmp_path / 'elsewhere')
    monkeypatch.setattr(worktree, 'REPO', str(repo))
    monkeypatch.setattr(worktree, 'COLLECTION_LINK', str(link))
    monkeypatch.setattr(worktree, 'ANSIBLE_LOCAL_TEMP', str(repo / '.cache' / 'ansible-home' / 'tmp'))
    assert worktree.link_collection() == str(link)
    assert os.path.samefile(link, repo)
    assert (repo / '.cache' / 'ansible-home' / 'tmp').is_dir()
