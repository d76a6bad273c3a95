# Make ansible_collections.sre.cmemgzip importable from this working tree, the way
# ansible-test does it, for plain pytest runs (tests/lib/worktree.py makes the link).
import importlib.util
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'lib'))
import worktree  # noqa: E402


def _collection_importable():
    """True when ansible_collections.sre.cmemgzip is already importable (ansible-test units)."""
    try:
        return importlib.util.find_spec('ansible_collections.sre.cmemgzip') is not None
    except ImportError:
        return False


if not _collection_importable():
    worktree.use_in_process()
    for _key, _value in worktree.ansible_env({}).items():
        os.environ.setdefault(_key, _value)
