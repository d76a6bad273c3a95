# SPDX-License-Identifier: GPL-3.0-or-later
import bz2
import gzip
import lzma

import pytest

from ansible_collections.sre.cmemgzip.plugins.module_utils.formats import compressed_format


@pytest.mark.parametrize('data, expected', [
    (gzip.compress(b'x', mtime=0), 'gzip'),  # mtime=0: the same test id in every pytest-xdist worker
    (lzma.compress(b'x'), 'xz'),
    (bz2.compress(b'x'), 'bzip2'),
    (b'\x28\xb5\x2f\xfd' + b'rest', 'zstd'),
    (b'PK\x03\x04rest', 'zip'),
    (b'\x04\x22\x4d\x18rest', 'lz4'),
    (b'Nov 26 10:00:00 host sshd[1]: text', None),
    (b'', None),
])
def test_magic(data, expected):
    assert compressed_format(data[:8]) == expected
