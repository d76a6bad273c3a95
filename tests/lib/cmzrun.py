# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Ways to run sre.cmemgzip.cmemgzip from the integration tests, and the
assertions shared by them.

* ``run_ansible(args, check=False)``: the real path, ``ansible localhost -c
  local -m sre.cmemgzip.cmemgzip -a JSON`` against the working tree; the
  host result is parsed from the default callback's ``host | STATUS => {json}``
  line (ansible-core 2.19 ships no json stdout callback: that one lives in
  ansible.posix, and ``--tree`` is deprecated).
* ``run_direct(args)`` / ``spawn_direct(args)``: the module file run by
  Python with an args file, as AnsiballZ would, so that a test can SIGKILL
  the very process doing the work.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import worktree
from ansible_collections.sre.cmemgzip.plugins.module_utils import codes

REPO = Path(worktree.REPO)
COLLECTIONS = Path(worktree.COLLECTIONS)
ANSIBLE_HOME = Path(worktree.ANSIBLE_HOME)
MODULE_FQCN = 'sre.cmemgzip.cmemgzip'
MODULE_PYNAME = 'ansible_collections.sre.cmemgzip.plugins.modules.cmemgzip'

RESULT_KEYS = ('changed', 'msg', 'files', 'totals', 'filesystems', 'memory', 'journal')
FILE_KEYS = ('path', 'dest', 'action', 'reason', 'detail', 'original_size', 'compressed_size',
             'bytes_saved', 'ratio', 'seconds', 'strategy', 'estimated')
TOTALS_KEYS = ('candidates', 'compressed', 'skipped', 'failed', 'recovered', 'would_compress',
               'original_size', 'compressed_size', 'bytes_saved')
FS_KEYS = ('mount', 'device', 'fstype', 'before', 'after')
FS_STAT_KEYS = ('size', 'free', 'avail', 'inodes', 'inodes_free')
MEMORY_KEYS = ('limit', 'available', 'peak_rss', 'peak_journal')
JOURNAL_KEYS = ('dir', 'spill_dir', 'ram_backed')
# The codes come from the collection itself: defined once (plugins/module_utils/codes.py).
ACTIONS = tuple(codes.ACTIONS)
REASONS = tuple(codes.SKIP_REASONS)


def ensure_collection_link():
    """The collection link of this working tree (tests/lib/worktree.py)."""
    worktree.link_collection()


def _env():
    env = worktree.ansible_env()
    env.update({
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_CALLBACK_RESULT_FORMAT': 'json',
        'ANSIBLE_STDOUT_CALLBACK': 'default',
        'ANSIBLE_DEPRECATION_WARNINGS': '0',
        'ANSIBLE_LOCALHOST_WARNING': '0',
        'ANSIBLE_INVENTORY_UNPARSED_WARNING': '0',
        'ANSIBLE_RETRY_FILES_ENABLED': '0',
        # The modules run from the working tree, not from a stale build.
        'PYTHONDONTWRITEBYTECODE': '1',
    })
    return env


_HOST_LINE = re.compile(r'^localhost \| ([A-Z!]+)(?: \| rc=-?\d+)? => ', re.M)


def parse_adhoc(stdout):
    m = _HOST_LINE.search(stdout)
    if not m:
        raise AssertionError(f'no host result in ansible output:\n{stdout[-4000:]}')
    result = json.JSONDecoder().raw_decode(stdout[m.end():])[0]
    result['_status'] = m.group(1)
    return result


def run_ansible(args, check=False, timeout=180, diff=False, module=MODULE_FQCN):
    """Run the module through Ansible; return the host's result dict.

    ``_status`` (SUCCESS/CHANGED/FAILED!) and ``_stderr`` are added for
    diagnostics.  A hang (e.g. a FIFO opened for reading) fails the test
    through ``subprocess.TimeoutExpired``."""
    ensure_collection_link()
    cmd = ['ansible', 'localhost', '-i', 'localhost,', '-c', 'local', '-m', module,
           '-a', json.dumps(args), '-e', f'ansible_python_interpreter={sys.executable}']
    if check:
        cmd.append('--check')
    if diff:
        cmd.append('--diff')
    p = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=timeout,
                       check=False)
    result = parse_adhoc(p.stdout)
    result['_stderr'] = p.stderr[-4000:]
    result['_rc'] = p.returncode
    return result


def _args_file(args, check, tmpdir):
    payload = dict(args)
    if check:
        payload['_ansible_check_mode'] = True
    fd, path = tempfile.mkstemp(prefix='cmz-it-args-', suffix='.json', dir=tmpdir)
    with os.fdopen(fd, 'w') as f:
        json.dump({'ANSIBLE_MODULE_ARGS': payload}, f)
    return path


def spawn_direct(args, tmpdir, check=False, module=MODULE_PYNAME):
    """Start the module as its own Python process (own session); returns Popen."""
    ensure_collection_link()
    env = _env()
    env['PYTHONPATH'] = str(COLLECTIONS)
    path = _args_file(args, check, tmpdir)
    return subprocess.Popen([sys.executable, '-m', module, path], env=env, cwd='/',
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def run_direct(args, tmpdir, check=False, timeout=300, module=MODULE_PYNAME):
    p = spawn_direct(args, tmpdir, check=check, module=module)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise
    try:
        result = json.loads(out)
    except ValueError:
        raise AssertionError(f'module printed no JSON (rc={p.returncode}):\n{out[-3000:]!r}\n{err[-3000:]!r}')
    result['_rc'] = p.returncode
    result['_stderr'] = err.decode(errors='replace')[-4000:]
    return result


# --------------------------------------------------------------------------
# Result helpers
# --------------------------------------------------------------------------

JOURNAL_SUBDIR = 'sre.cmemgzip'  # the module's directory inside journal_dir or spill_dir


def journal_names(journal_dir):
    """The names in the module's journal directory, sorted; [] when it does not exist."""
    try:
        return sorted(os.listdir(os.path.join(journal_dir, JOURNAL_SUBDIR)))
    except FileNotFoundError:
        return []


def module_args(path, journal_dir, **extra):
    """The cmemgzip arguments of the system tests: one path, level 1, no minimum size."""
    args = {'path': [str(path)], 'journal_dir': journal_dir, 'min_size': 0, 'level': 1}
    args.update(extra)
    return args


def short(result):
    """A compact rendering of a result for assertion messages."""
    r = {k: v for k, v in result.items() if k not in ('invocation',)}
    return json.dumps(r, indent=1, default=str)[:6000]


def entries(result, path=None, action=None):
    files = result.get('files') or []
    out = []
    for e in files:
        if path is not None and e.get('path') != str(path):
            continue
        if action is not None and e.get('action') != action:
            continue
        out.append(e)
    return out


def entry(result, path):
    """The single files[] entry for ``path``."""
    found = entries(result, path)
    assert len(found) == 1, f'expected one entry for {path}, got {len(found)}:\n{short(result)}'
    return found[0]


def assert_contract_keys(result):
    missing = [k for k in RESULT_KEYS if k not in result]
    assert not missing, f'result lacks {missing}:\n{short(result)}'
    assert isinstance(result['msg'], str) and '\n' not in result['msg'].strip(), result['msg']
    assert not [k for k in TOTALS_KEYS if k not in result['totals']], result['totals']
    assert not [k for k in MEMORY_KEYS if k not in result['memory']], result['memory']
    assert not [k for k in JOURNAL_KEYS if k not in result['journal']], result['journal']
    for fs in result['filesystems']:
        assert not [k for k in FS_KEYS if k not in fs], fs
        for side in ('before', 'after'):
            assert not [k for k in FS_STAT_KEYS if k not in fs[side]], fs
    for e in result['files']:
        miss = [k for k in FILE_KEYS if k not in e]
        assert not miss, f'files[] entry lacks {miss}: {e}'
        assert e['action'] in ACTIONS, e
        if e['action'] == 'compressed':
            assert e['reason'] is None, e
        if e['action'] == 'skipped':
            assert e['reason'] in REASONS, e
    t = result['totals']
    for action in ('compressed', 'skipped', 'failed', 'recovered', 'would_compress'):
        n = len(entries(result, action=action))
        assert t[action] == n, f'totals.{action}={t[action]} but {n} entries:\n{short(result)}'
