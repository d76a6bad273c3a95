# Make ansible_collections.sre.cmemgzip importable from this working tree, the way
# ansible-test does it, for plain pytest runs.
import importlib.util
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(REPO, '.cache', 'collections')


def _link_collection():
    namespace_dir = os.path.join(COLLECTIONS, 'ansible_collections', 'sre')
    link = os.path.join(namespace_dir, 'cmemgzip')
    os.makedirs(namespace_dir, exist_ok=True)
    if not os.path.islink(link):
        os.symlink('../../../..', link)


def _collection_importable():
    """True when ansible_collections.sre.cmemgzip is already importable (ansible-test units)."""
    try:
        return importlib.util.find_spec('ansible_collections.sre.cmemgzip') is not None
    except ImportError:
        return False


if not _collection_importable():
    _link_collection()
    sys.path.insert(0, COLLECTIONS)
    os.environ.setdefault('ANSIBLE_COLLECTIONS_PATH', COLLECTIONS)
    os.environ.setdefault('ANSIBLE_HOME', os.path.join(REPO, '.cache', 'ansible-home'))
