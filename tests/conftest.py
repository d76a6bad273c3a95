# Make ansible_collections.sre.cmemgzip importable from this working tree, the way
# ansible-test does it, for plain pytest runs.
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


try:
    import ansible_collections.sre.cmemgzip  # noqa: F401  (ansible-test units)
except ImportError:
    _link_collection()
    sys.path.insert(0, COLLECTIONS)
    os.environ.setdefault('ANSIBLE_COLLECTIONS_PATH', COLLECTIONS)
    os.environ.setdefault('ANSIBLE_HOME', os.path.join(REPO, '.cache', 'ansible-home'))
