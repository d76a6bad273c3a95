# shellcheck shell=bash
# Source me: the virtual environment of tests/install-deps.sh first on PATH (python3, ansible,
# ansible-playbook, molecule, pytest, nox), and Ansible pointed at this working tree
# (.cache/collections: the link is made by tests/lib/worktree.py).
_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -x "$_repo/.cache/venv/bin/python" ]; then
    case ":$PATH:" in
        *":$_repo/.cache/venv/bin:"*) ;;
        *) export PATH="$_repo/.cache/venv/bin:$PATH" ;;
    esac
    export VIRTUAL_ENV="$_repo/.cache/venv"
fi
export ANSIBLE_COLLECTIONS_PATH="$_repo/.cache/collections"
export ANSIBLE_HOME="$_repo/.cache/ansible-home"
export ANSIBLE_LOCAL_TEMP="$_repo/.cache/ansible-home/tmp"
unset _repo
