#!/usr/bin/env bash
# Install what the demo, the tests and the benchmark need on a fresh Debian machine, and
# point Ansible at this working tree.  Idempotent and quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(openssh-server sudo pigz xfsprogs btrfs-progs acl attr e2fsprogs util-linux gzip make fuse3 python3-fusepy)
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

requirements=tests/requirements.txt
stamp=.cache/requirements.sha256
mkdir -p .cache
if ! sha256sum --status -c "$stamp" 2>/dev/null; then
    echo "pip: installing $requirements"
    python3 -m pip install -q --disable-pip-version-check -r "$requirements"
    sha256sum "$requirements" > "$stamp"
fi

# ansible_collections/sre/cmemgzip -> the repository root, so Ansible loads this tree.
mkdir -p .cache/collections/ansible_collections/sre .cache/ansible-home
ln -sfn ../../../.. .cache/collections/ansible_collections/sre/cmemgzip
