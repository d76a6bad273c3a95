# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Measurements and file results as the host returns them, for the rescue plan and summary tests."""

from __future__ import absolute_import, division, print_function

MiB = 1 << 20


def filesystem(mount, size=100 * MiB, avail=0, full_reasons=('used_pct',), read_only=False, bind_mounts=(),
               inodes_free=1000, fstype='ext4'):
    used = size - avail
    return {'mount': mount, 'device': '/dev/x' + mount.replace('/', '_'), 'fstype': fstype, 'size': size,
            'free': avail, 'avail': avail, 'used': used, 'used_pct': round(100.0 * used / size, 2),
            'inodes': 5000, 'inodes_free': inodes_free, 'inodes_used_pct': 80.0, 'read_only': read_only,
            'bind_mounts': list(bind_mounts), 'full': bool(full_reasons), 'full_reasons': list(full_reasons)}


def located(path, mount, resolved=None):
    return {'path': path, 'resolved': resolved or path, 'exists': True, 'is_dir': True, 'mount': mount,
            'fstype': 'ext4', 'measured': True}


def missing(path):
    return {'path': path, 'resolved': None, 'exists': False, 'is_dir': False, 'mount': None, 'fstype': None,
            'measured': False}


def measurement(filesystems, paths=(), available=1000 * MiB):
    return {'filesystems': list(filesystems), 'paths': list(paths),
            'full': [fs['mount'] for fs in filesystems if fs['full']],
            'memory': {'available': available, 'mem_total': 4000 * MiB, 'cgroup': None, 'shm': None}}


def file_result(path, action, reason=None, size=4 * MiB, saved=0, compressed=None, detail=None, estimated=False):
    return {'path': path, 'dest': path + '.gz', 'action': action, 'reason': reason, 'detail': detail,
            'original_size': size, 'compressed_size': compressed, 'bytes_saved': saved, 'seconds': 0.1,
            'estimated': estimated}
