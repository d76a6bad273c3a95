# SPDX-License-Identifier: GPL-3.0-or-later
import os

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils.journal import Journal, JournalUnsafe, SUBDIR


def test_commit_publishes_manifest_last(tmp_path):
    journal = Journal(str(tmp_path))
    assert journal.open(create=True)
    assert os.stat(str(tmp_path / SUBDIR)).st_mode & 0o777 == 0o700
    entry = journal.create('k1')
    entry.write(b'data')
    assert journal.entries() == ([], ['k1'])  # no manifest yet: an orphan
    entry.commit({'x': 1})
    entries, orphans = journal.entries()
    assert orphans == [] and entries[0].manifest == {'x': 1}
    assert entries[0].stored_crc()[1] == 4
    entries[0].discard()
    assert journal.entries() == ([], [])
    journal.close()


def test_refuses_a_directory_others_can_write(tmp_path):
    (tmp_path / SUBDIR).mkdir(mode=0o777)
    os.chmod(str(tmp_path / SUBDIR), 0o777)
    with pytest.raises(JournalUnsafe):
        Journal(str(tmp_path)).open(create=True)


def test_refuses_a_symlink_planted_in_its_place(tmp_path):
    (tmp_path / 'elsewhere').mkdir(mode=0o700)
    (tmp_path / SUBDIR).symlink_to(tmp_path / 'elsewhere')
    with pytest.raises(JournalUnsafe):
        Journal(str(tmp_path)).open(create=True)
