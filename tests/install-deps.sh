#!/usr/bin/env bash
# Install what the demo, the tests and the benchmark need on a fresh Debian or Ubuntu machine
# (as root), and point Ansible at this working tree.  Idempotent and quick when everything is there.
#
#   tests/install-deps.sh        apt packages; the virtual environment .cache/venv with
#                                tests/requirements.txt (ansible-core, molecule, pytest); the link
#                                .cache/collections/ansible_collections/sre/cmemgzip -> this tree
#   tests/install-deps.sh --ci   also tests/requirements-ci.txt (nox, antsibull-nox) and shellcheck,
#                                for the quality gates (.ci/gates.sh)
#
# The Python packages go into .cache/venv, never into the system's Python: Debian 12 and
# Ubuntu 24.04 refuse `pip install` there (PEP 668).  `source tests/env.sh` puts .cache/venv/bin
# first on PATH, so python3, ansible, ansible-playbook, molecule, pytest and nox come from it.
# PYTHON=/path/to/python3 picks the interpreter the environment is made from (default: python3).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
venv=.cache/venv
requirements=(tests/requirements.txt)
extra_apt=()
if [ "${1:-}" = --ci ]; then
    requirements+=(tests/requirements-ci.txt)
    extra_apt+=(shellcheck)  # without it, ansible-test sanity skips its shellcheck test silently
fi

apt_packages=(openssh-server sudo pigz xfsprogs btrfs-progs acl attr e2fsprogs util-linux gzip make fuse3 python3-fusepy)
apt_packages+=(strace time "${extra_apt[@]}")
# `python3 -m venv` needs ensurepip, which Debian and Ubuntu ship apart, in python3-venv.
"$python" -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
missing=()
for package in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! "$venv/bin/python" -c 'import sys' 2>/dev/null; then
    echo "venv: creating $venv from $("$python" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
# One stamp per requirements file: pip runs again only when one of them changed.
changed=()
for file in "${requirements[@]}"; do
    stamp="$venv/.installed-$(basename "$file").sha256"
    sha256sum --status -c "$stamp" 2>/dev/null || changed+=("$file")
done
if [ "${#changed[@]}" -gt 0 ]; then
    echo "pip: installing ${changed[*]} into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "${changed[@]/#/--requirement=}"
    for file in "${changed[@]}"; do
        sha256sum "$file" >"$venv/.installed-$(basename "$file").sha256"
    done
fi
rm -f .cache/requirements.sha256  # the stamp of the system-wide installs this script did before

"$venv/bin/python" tests/lib/worktree.py link >/dev/null
