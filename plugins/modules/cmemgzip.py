#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: cmemgzip
short_description: Compress files in RAM on a full filesystem and put the C(.gz) in their place
version_added: 0.1.0
description:
  - Compresses files to gzip in memory and replaces each by C(NAME.gz) without needing one free block or inode on its
    filesystem, so it works when a filesystem is at 100 % and C(gzip) or M(community.general.archive) cannot.
  - Each file is streamed through zlib (blocks deflated in parallel, joined into one gzip member), the compressed copy
    is kept in a journal in RAM (O(journal_dir), by default C(/dev/shm)) and verified (CRC-32 and length of the
    decompressed stream) before the original is touched.
  - The original inode itself becomes the C(.gz) file; it is renamed without ever replacing an existing name, overwritten
    with the compressed bytes, truncated and synced. Owner, group, mode, ACLs, extended attributes and SELinux label are
    kept because the inode is the same; access and modification times are restored.
  - A run killed at any instant leaves the verified copy in the journal; the next run finishes or rolls back what it
    finds there and reports it with RV(files[].action=recovered).
  - Files open in any process, hard-linked files, symlinks (unless O(follow)), non-regular files, already compressed data
    (by magic bytes) and files whose compressed copy would free nothing are skipped with a reason.
  - The action plugin of the same name turns pipelining on and points E(TMPDIR) at C(/dev/shm), so the module starts on a
    host whose C(/), C(/tmp), C(/var/tmp) and home directory have no free byte.
author:
  - sre.cmemgzip developers (@sre)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: Compresses into nothing to report the real compressed size; changes no file and writes no journal.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux only (C(/proc), C(renameat2), leases).
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  path:
    description:
      - Files, globs or directories to compress.
      - Directories are searched for files (one level, or all levels with O(recurse)).
    type: list
    elements: path
    required: true
    aliases: [paths]
  recurse:
    description: Search directories given in O(path) recursively.
    type: bool
    default: false
  one_file_system:
    description: When searching a directory, do not descend into other filesystems mounted below it.
    type: bool
    default: true
  patterns:
    description:
      - Shell globs matched against the file name; only matching files are candidates. Empty means every file.
    type: list
    elements: str
    default: []
  excludes:
    description: Shell globs; a file whose name or full path matches one is skipped with reason C(excluded).
    type: list
    elements: str
    default: []
  min_size:
    description: Skip files smaller than this (bytes, or a size such as C(10M)).
    type: str
    default: 1M
  min_age:
    description:
      - Skip files modified less than this long ago. Seconds, or a number with C(s), C(m), C(h), C(d) or C(w).
      - A log modified in the last minutes is most likely still written; a writer that reopens it by name would
        then create a new file beside the C(.gz).
    type: str
    default: '0'
  level:
    description: gzip compression level.
    type: int
    default: 9
    choices: [1, 2, 3, 4, 5, 6, 7, 8, 9]
  threads:
    description: Compression threads; V(0) uses every CPU the process may use (affinity mask and cgroup quota).
    type: int
    default: 0
  memory_limit:
    description:
      - Most RAM a compressed copy may take (bytes, or a size such as V(512M)).
      - A file whose compressed copy would grow beyond it is skipped with reason C(memory_budget), untouched, as soon as
        the stream reaches the limit.
      - Defaults to half of the memory available to the process (C(MemAvailable), lowered to the cgroup's headroom).
    type: str
  largest_first:
    description: Compress the files that occupy the most blocks first.
    type: bool
    default: true
  target_free:
    description:
      - Stop compressing on a filesystem once it has this much space available, as bytes, a size such as V(2G), or a
        percentage of its size such as V(15%). Later files there are skipped with reason C(target_free_reached).
    type: str
  follow:
    description: Compress the target of a symbolic link (the C(.gz) is created beside the target). Otherwise skip links.
    type: bool
    default: false
  open_files:
    description:
      - What to do with a file that a process holds open. V(skip) leaves it alone (compressing it would free nothing
        while the process keeps the old blocks, and its further writes would land in the C(.gz)).
    type: str
    default: skip
    choices: [skip]
  journal_dir:
    description:
      - Directory for the crash journal, on a filesystem other than the files' own, normally RAM. A private
        subdirectory C(sre.cmemgzip) is created there.
      - A directory on another, disk-backed filesystem also keeps the copy across a power loss.
    type: path
    default: /dev/shm
  spill_dir:
    description:
      - Directory on another filesystem for the journal when O(journal_dir) is missing, on the same filesystem, or too
        small for a file. Without it such files are skipped with reason C(no_journal_space).
    type: path
notes:
  - A file is replaced only after its compressed copy was verified; see the collection's docs/how-it-works.md for the
    protocol and its guarantees.
  - Runs on one host exclude each other through a lock on the journal directory.
seealso:
  - module: sre.cmemgzip.fs_usage
  - module: community.general.archive
'''

EXAMPLES = r'''
- name: Compress rotated logs under /var/log, largest first, until 15 % is free
  sre.cmemgzip.cmemgzip:
    path: /var/log
    recurse: true
    patterns: ['*.log.[0-9]*', '*.[0-9]', '*.log']
    min_age: 10m
    target_free: 15%
  become: true

- name: See what would be freed, without changing anything
  sre.cmemgzip.cmemgzip:
    path: /var/log/app/access.log.1
  check_mode: true
  register: survey

- name: A core dump larger than /dev/shm, journal on another disk
  sre.cmemgzip.cmemgzip:
    path: /var/crash/core.12345
    spill_dir: /srv/scratch
    memory_limit: 2G
'''

RETURN = r'''
msg:
  description: One line with the bytes freed and the counts.
  returned: always
  type: str
  sample: 'freed 13266944 bytes: 1 compressed, 0 recovered, 0 would compress, 0 skipped, 0 failed'
files:
  description: One entry per file found or recovered.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    dest:
      description: The C(.gz) it became or would become.
      type: str
    action:
      description: C(compressed), C(skipped), C(failed), C(recovered), C(would_compress) or C(would_recover).
      type: str
    reason:
      description:
        - Why it was skipped, failed or recovered, as a short code; null when compressed.
        - C(not_regular), C(symlink), C(hardlinked), C(already_compressed), C(not_smaller), C(open), C(dest_exists),
          C(memory_budget), C(no_journal_space), C(too_small), C(too_young), C(excluded), C(target_free_reached),
          C(changed_while_reading), C(not_found), C(error), C(rolled_back), C(finished), C(journal_orphaned),
          C(journal_corrupt), C(journal_unreadable).
      type: str
    detail:
      description: The reason in words.
      type: str
    original_size:
      description: Size of the original in bytes.
      type: int
    compressed_size:
      description: Size of the gzip member in bytes (real, also in check mode).
      type: int
    bytes_saved:
      description: Allocated bytes the filesystem got back (in check mode, computed from the block size).
      type: int
    ratio:
      description: original_size / compressed_size.
      type: float
    seconds:
      description: Time spent on this file.
      type: float
    strategy:
      description: C(inplace) (overwrite, then truncate) or C(truncate_first) (copy-on-write filesystems, sparse files).
      type: str
    estimated:
      description: Whether compressed_size is an estimate rather than measured.
      type: bool
    pids:
      description: For reason C(open), the processes holding the file, as C(pid) and C(comm).
      type: list
      elements: dict
      returned: when reason is open
totals:
  description: Counts per action, and sums of original_size, compressed_size and bytes_saved.
  returned: always
  type: dict
filesystems:
  description: Each filesystem a file lives on, with C(mount), C(device), C(fstype), and C(before)/C(after) holding
    C(size), C(free), C(avail), C(inodes), C(inodes_free).
  returned: always
  type: list
  elements: dict
memory:
  description: C(limit) (budget for one compressed copy), C(available), C(peak_rss), C(peak_journal) (largest copy held
    in RAM), C(threads).
  returned: always
  type: dict
journal:
  description: C(dir), C(spill_dir), C(ram_backed), C(usable) journal directories, and C(notes) on what was not usable.
  returned: always
  type: dict
'''

import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.formatters import human_to_bytes

from ansible_collections.sre.cmemgzip.plugins.module_utils.engine import Options, run
from ansible_collections.sre.cmemgzip.plugins.module_utils.errors import CmemgzipError

_AGE_UNITS = {'s': 1, 'm': 60, 'h': 3600, 'd': 86400, 'w': 604800}

ARGUMENT_SPEC = dict(
    path=dict(type='list', elements='path', required=True, aliases=['paths']),
    recurse=dict(type='bool', default=False),
    one_file_system=dict(type='bool', default=True),
    patterns=dict(type='list', elements='str', default=[]),
    excludes=dict(type='list', elements='str', default=[]),
    min_size=dict(type='str', default='1M'),
    min_age=dict(type='str', default='0'),
    level=dict(type='int', default=9, choices=list(range(1, 10))),
    threads=dict(type='int', default=0),
    memory_limit=dict(type='str'),
    largest_first=dict(type='bool', default=True),
    target_free=dict(type='str'),
    follow=dict(type='bool', default=False),
    open_files=dict(type='str', default='skip', choices=['skip']),
    journal_dir=dict(type='path', default='/dev/shm'),
    spill_dir=dict(type='path'),
)


def create_module():
    return AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


def parse_age(text):
    """Seconds from '90', '30s', '10m', '2h', '1d' or '1w'."""
    match = re.match(r'^\s*(\d+)\s*([smhdw]?)\s*$', text or '0')
    if not match:
        raise ValueError('min_age must be seconds or a number with s, m, h, d or w: %r' % text)
    return int(match.group(1)) * _AGE_UNITS.get(match.group(2) or 's')


def parse_target_free(text):
    """(bytes, percent): one of them set, from '2G', '1048576' or '15%'."""
    if text is None:
        return None, None
    text = text.strip()
    if text.endswith('%'):
        percent = float(text[:-1])
        if not 0 <= percent <= 100:
            raise ValueError('target_free percentage must be between 0 and 100: %r' % text)
        return None, percent
    return human_to_bytes(text), None


def build_options(params, check_mode):
    target_bytes, target_percent = parse_target_free(params['target_free'])
    return Options(
        paths=params['path'],
        recurse=params['recurse'],
        one_file_system=params['one_file_system'],
        patterns=params['patterns'],
        excludes=params['excludes'],
        min_size=human_to_bytes(params['min_size']),
        min_age=parse_age(params['min_age']),
        level=params['level'],
        threads=params['threads'],
        memory_limit=human_to_bytes(params['memory_limit']) if params['memory_limit'] else None,
        largest_first=params['largest_first'],
        target_free_bytes=target_bytes,
        target_free_percent=target_percent,
        follow=params['follow'],
        open_files=params['open_files'],
        journal_dir=params['journal_dir'],
        spill_dir=params['spill_dir'],
        check_mode=check_mode,
    )


def main():
    module = create_module()
    try:
        options = build_options(module.params, module.check_mode)
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        result = run(options)
    except CmemgzipError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        # Nothing expected it: say which call failed on which path, without a traceback.
        module.fail_json(msg='unexpected error: %s' % exc)
    if result.pop('failed'):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
