# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A tiny FUSE filesystem for the dead-mount tests: one directory, files in RAM.

Run by Debian's python3 (package python3-fusepy, module ``fusepy``) as
``/usr/bin/python3 fuse_server.py MOUNTPOINT``; it serves in the foreground
until unmounted.  Attribute and entry caches are off, so every stat() of a
file on it reaches this process: stopped with SIGSTOP, it is a dead network
server, and any stat() of its files blocks until SIGCONT.
"""

import errno
import stat
import sys
import time

try:
    from fusepy import FUSE, FuseOSError, Operations
except ImportError:  # fusepy from PyPI names its module fuse
    from fuse import FUSE, FuseOSError, Operations


class RamFiles(Operations):
    use_ns = True

    def __init__(self):
        self.files = {}
        self.now = int(time.time() * 1e9)

    def getattr(self, path, fh=None):
        if path == '/':
            return {'st_mode': stat.S_IFDIR | 0o755, 'st_nlink': 2, 'st_ctime': self.now,
                    'st_mtime': self.now, 'st_atime': self.now}
        if path not in self.files:
            raise FuseOSError(errno.ENOENT)
        return {'st_mode': stat.S_IFREG | 0o644, 'st_nlink': 1, 'st_size': len(self.files[path]),
                'st_ctime': self.now, 'st_mtime': self.now, 'st_atime': self.now}

    def readdir(self, path, fh):
        return ['.', '..'] + [name[1:] for name in self.files]

    def create(self, path, mode, fi=None):
        self.files[path] = bytearray()
        return 0

    def open(self, path, flags):
        if path not in self.files:
            raise FuseOSError(errno.ENOENT)
        return 0

    def read(self, path, size, offset, fh):
        return bytes(self.files[path][offset:offset + size])

    def write(self, path, data, offset, fh):
        buf = self.files[path]
        buf[offset:offset + len(data)] = data
        return len(data)

    def truncate(self, path, length, fh=None):
        del self.files[path][length:]

    def utimens(self, path, times=None):
        return 0


if __name__ == '__main__':
    # fstype fuse.cmzdead: like sshfs or s3fs, a network filesystem to whoever looks.
    FUSE(RamFiles(), sys.argv[1], foreground=True, nothreads=True, attr_timeout=0, entry_timeout=0,
         negative_timeout=0, fsname='cmzdead', subtype='cmzdead')
