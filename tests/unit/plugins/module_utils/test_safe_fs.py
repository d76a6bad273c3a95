# SPDX-License-Identifier: GPL-3.0-or-later
import errno
import os

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils.safe_fs import (
    open_dir_nofollow, open_regular, rename_noreplace,
)


def test_rename_noreplace_never_replaces(tmp_path):
    (tmp_path / 'a').write_text('a')
    (tmp_path / 'b').write_text('b')
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as info:
            rename_noreplace(fd, 'a', fd, 'b')
        assert info.value.errno == errno.EEXIST
        rename_noreplace(fd, 'a', fd, 'c')
    finally:
        os.close(fd)
    assert (tmp_path / 'b').read_text() == 'b'
    assert (tmp_path / 'c').read_text() == 'a'
    assert not (tmp_path / 'a').exists()


def test_open_dir_nofollow_refuses_a_symlinked_component(tmp_path):
    (tmp_path / 'real').mkdir()
    (tmp_path / 'link').symlink_to(tmp_path / 'real')
    os.close(open_dir_nofollow(str(tmp_path / 'real')))
    with pytest.raises(OSError) as info:
        open_dir_nofollow(str(tmp_path / 'link'))
    assert info.value.errno in (errno.ELOOP, errno.ENOTDIR)


def test_open_regular_refuses_symlink_and_does_not_block_on_fifo(tmp_path):
    (tmp_path / 'target').write_text('secret')
    (tmp_path / 'link').symlink_to(tmp_path / 'target')
    os.mkfifo(str(tmp_path / 'fifo'))
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as info:
            open_regular(fd, 'link', writable=False)
        assert info.value.errno == errno.ELOOP
        fifo = open_regular(fd, 'fifo', writable=False)  # returns at once
        os.close(fifo)
    finally:
        os.close(fd)
