# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``recreate`` last resort, interrupted: the original inode is already unlinked and the
only copy is the journal's.  A process dies (os._exit, no cleanup) at two points of it; the
next run must write NAME.gz from the journal with the original's owner, mode and times.

The filesystem refusing to change the file (btrfs with its metadata exhausted) is simulated
by making rewrite_inode raise NoSpace; everything else (unlink, journal, recovery) is real.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from cmzrun import COLLECTIONS, short
from fullfs import MiB, gunzip_sha256, log_bytes, sha256_bytes

DIE_IN_RECREATE = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, {collections!r})
    from ansible_collections.sre.cmemgzip.plugins.module_utils import engine, replace, rewrite

    def refuse(fd, entry, strategy, before_shrink=None):
        raise replace.NoSpace('simulated: the filesystem cannot change the file')

    def copy_half_then_die(fd, entry):
        if {point!r} == 'after_unlink':
            os._exit(9)
        source = entry.open_data()
        half = os.read(source, entry.manifest['compressed_size'] // 2)
        os.pwrite(fd, half, 0)
        os._exit(9)

    replace.rewrite_inode = refuse
    rewrite.copy_over = copy_half_then_die
    engine.run(engine.Options(paths=[{path!r}], min_size=0, journal_dir={journal!r}))
''')


@pytest.mark.parametrize('point', ['after_unlink', 'half_written'])
def test_interrupted_recreate_is_finished(point, engine, fullfs, journal_dir):
    fs = fullfs('tmpfs', size=32 * MiB)
    data = log_bytes(3 * MiB, seed=91)
    path = fs.write_file('svc.log', data, mode=0o640, mtime_ns=1_500_000_000_123_456_789)
    os.chown(path, 1234, 2345)
    st = os.stat(path)
    fs.fill()

    script = DIE_IN_RECREATE.format(collections=str(COLLECTIONS), point=point, path=str(path),
                                    journal=journal_dir)
    died = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True, timeout=120, check=False)
    assert died.returncode == 9, died.stderr
    assert not os.path.lexists(path), 'the original should be unlinked at this point'
    journal_files = sorted(os.listdir(os.path.join(journal_dir, 'sre.cmemgzip')))
    assert any(name.endswith('.json') for name in journal_files), journal_files

    result = engine.run(engine.Options(paths=[str(path)], min_size=0, journal_dir=journal_dir))
    recovered = [f for f in result['files'] if f['action'] == 'recovered']
    assert len(recovered) == 1, short(result)
    assert recovered[0]['reason'] == 'finished'
    assert recovered[0]['strategy'] == 'recreate'
    gz = '%s.gz' % path
    assert gunzip_sha256(gz) == sha256_bytes(data)
    new = os.stat(gz)
    assert (new.st_uid, new.st_gid, new.st_mode, new.st_mtime_ns) == (
        st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns)
    assert os.listdir(os.path.join(journal_dir, 'sre.cmemgzip')) == []
    skipped = [f for f in result['files'] if f['action'] == 'skipped']
    assert [f['reason'] for f in skipped] == ['not_found'], short(result)
