# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A container's 64 MiB /dev/shm and a 600 MB log on a full filesystem.

The module runs with default options in its own mount namespace whose
/dev/shm is a fresh 64 MiB tmpfs (Docker's and Kubernetes' default): the
compressed copy (about 150 MB) cannot be held aside, so the log is
compressed into itself.  The log is compressed, sha256 of what it inflates
to is the original's, owner, mode, times, xattrs and inode are kept, and the
module's peak RSS stays under 200 MiB.

``CMZ_IT_CONTAINER_MIB`` (default 600) sets the log's size.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest

from cmzrun import COLLECTIONS, MODULE_PYNAME, _args_file, _env, assert_contract_keys, entry, short
from fullfs import MiB, gunzip_sha256, gzip_members, log_bytes

SIZE = int(os.environ.get('CMZ_IT_CONTAINER_MIB', '600')) * MiB
SHM_SIZE = '64m'
MTIME_NS = 1_650_000_000_123_456_789
RSS_LIMIT = 200 * MiB


def write_big_log(fs, name, size, seed):
    """A log of ``size`` bytes written in 8 MiB pieces (never whole in memory); its sha256."""
    piece = log_bytes(8 * MiB, seed=seed)
    digest = hashlib.sha256()
    path = fs.data / name
    with open(path, 'wb') as handle:
        left = size
        while left:
            chunk = piece[:min(left, len(piece))]
            handle.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, 0o640)
    os.chown(path, 1234, 2345)
    os.setxattr(path, 'user.origin', b'container-test')
    os.utime(path, ns=(MTIME_NS, MTIME_NS))
    return path, digest.hexdigest()


def run_with_small_shm(args, tmpdir, shm_size=SHM_SIZE, timeout=1800):
    """The module as its own process, in a mount namespace whose /dev/shm is ``shm_size``."""
    env = _env()
    env['PYTHONPATH'] = str(COLLECTIONS)
    script = ('mount -t tmpfs -o size=%s,mode=1777 shm /dev/shm && exec "$0" -m %s "$1"'
              % (shm_size, MODULE_PYNAME))
    cmd = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, sys.executable,
           _args_file(args, False, tmpdir)]
    p = subprocess.run(cmd, env=env, cwd='/', capture_output=True, timeout=timeout, check=False)
    try:
        result = json.loads(p.stdout)
    except ValueError:
        raise AssertionError(f'no JSON (rc={p.returncode}):\n{p.stdout[-3000:]!r}\n{p.stderr[-3000:]!r}')
    result['_rc'] = p.returncode
    return result


@pytest.mark.slow
@pytest.mark.parametrize('kind', ['ext4', 'xfs', 'tmpfs'])
def test_log_bigger_than_a_container_shm(kind, fullfs, tmp_path):
    fs = fullfs(kind, size=SIZE + 48 * MiB if kind != 'xfs' else max(SIZE + 200 * MiB, 300 * MiB))
    path, original_sha = write_big_log(fs, 'access.log.1', SIZE, seed=121)
    st = os.stat(path)
    fs.fill()
    free_before = fs.free_bytes()

    result = run_with_small_shm({'path': [str(path)]}, str(tmp_path))
    assert result['_rc'] == 0 and not result.get('failed'), short(result)
    assert_contract_keys(result)
    e = entry(result, path)
    assert (e['action'], e['strategy']) == ('compressed', 'window'), short(result)
    assert result['journal']['dir'] == '/dev/shm'
    gz = f'{path}.gz'
    assert not os.path.lexists(path)
    assert gunzip_sha256(gz) == original_sha, 'bytes lost'
    assert gzip_members(gz) == 1
    new = os.stat(gz)
    assert (new.st_ino, new.st_uid, new.st_gid, new.st_mode, new.st_mtime_ns, new.st_nlink) == (
        st.st_ino, 1234, 2345, st.st_mode, MTIME_NS, 1)
    assert os.getxattr(gz, 'user.origin') == b'container-test'
    assert fs.free_bytes() - free_before == e['bytes_saved'] > SIZE // 2
    memory = result['memory']
    assert memory['peak_rss'] < RSS_LIMIT, memory
    assert 0 < memory['peak_journal'] < 64 * MiB, memory
    assert subprocess.run(['gzip', '-t', gz], check=False).returncode == 0
