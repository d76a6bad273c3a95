# shellcheck shell=bash
# Source me: Ansible settings that make it use this working tree.
_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ANSIBLE_COLLECTIONS_PATH="$_repo/.cache/collections"
export ANSIBLE_HOME="$_repo/.cache/ansible-home"
export ANSIBLE_LOCAL_TEMP="$_repo/.cache/ansible-home/tmp"
unset _repo
