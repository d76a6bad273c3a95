# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""This working tree as Ansible sees it: the one helper for the collection link.

Ansible loads ``sre.cmemgzip`` from ``.cache/collections``, where
``ansible_collections/sre/cmemgzip`` is a relative symlink back to the
repository root (``../../../..``), so a clone or worktree anywhere works
without building or installing anything.  ``.cache/ansible-home`` keeps what
Ansible writes (``~/.ansible``) inside the tree as well.  ``.cache/venv`` is
the virtual environment of ``tests/install-deps.sh``.

Used by tests/install-deps.sh (``python3 tests/lib/worktree.py link``),
tests/conftest.py, the pytest suites (through tests/lib/cmzrun.py), the fleet
harness and the benchmarks.  Python standard library only.
"""

import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(REPO, '.cache')
COLLECTIONS = os.path.join(CACHE, 'collections')
NAMESPACE, NAME = 'sre', 'cmemgzip'
COLLECTION_LINK = os.path.join(COLLECTIONS, 'ansible_collections', NAMESPACE, NAME)
LINK_TARGET = os.path.join(os.pardir, os.pardir, os.pardir, os.pardir)
ANSIBLE_HOME = os.path.join(CACHE, 'ansible-home')
ANSIBLE_LOCAL_TEMP = os.path.join(ANSIBLE_HOME, 'tmp')
VENV = os.path.join(CACHE, 'venv')


def link_collection():
    """Make ``.cache/collections/ansible_collections/sre/cmemgzip`` lead to this tree; return its path.

    Idempotent and safe against a concurrent run; a link that leads elsewhere
    (a moved tree, a stale absolute link) is replaced."""
    os.makedirs(os.path.dirname(COLLECTION_LINK), exist_ok=True)
    os.makedirs(ANSIBLE_LOCAL_TEMP, exist_ok=True)
    if _leads_here(COLLECTION_LINK):
        return COLLECTION_LINK
    tmp = '%s.tmp%d' % (COLLECTION_LINK, os.getpid())
    os.symlink(LINK_TARGET, tmp)
    os.replace(tmp, COLLECTION_LINK)
    if not _leads_here(COLLECTION_LINK):
        raise RuntimeError('%s does not lead to %s' % (COLLECTION_LINK, REPO))
    return COLLECTION_LINK


def _leads_here(link):
    try:
        return os.path.samefile(link, REPO)
    except OSError:
        return False


def ansible_env(base=None):
    """``base`` (default: os.environ) with Ansible pointed at this working tree."""
    env = dict(os.environ if base is None else base)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': COLLECTIONS,
        'ANSIBLE_HOME': ANSIBLE_HOME,
        'ANSIBLE_LOCAL_TEMP': ANSIBLE_LOCAL_TEMP,
    })
    return env


def use_in_process():
    """Link, and make ``ansible_collections.sre.cmemgzip`` importable in this process."""
    link_collection()
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args != ['link']:
        sys.stderr.write('usage: %s link\n' % os.path.basename(__file__))
        return 2
    print(link_collection())
    return 0


if __name__ == '__main__':
    sys.exit(main())
