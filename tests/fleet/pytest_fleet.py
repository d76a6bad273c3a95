# -*- coding: utf-8 -*-
# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""pytest fixture ``full_ssh_host``: real SSH hosts whose root filesystem is full.

Brings up, once per session, one ``container`` host (overlay root on a full
tmpfs) and one ``vm`` host (overlay root on a full ext4 loop image) with
``tests/fleet/fleet.py`` in a temporary state dir, and stops them at the end
by their own mount namespace.  Skipped when not root or when a needed tool is
missing.

Load it from a conftest.py (the directory must be importable)::

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "fleet"))
    from pytest_fleet import full_ssh_host  # noqa: F401,E402  (pytest fixture)

or ``pytest -p pytest_fleet`` with ``tests/fleet`` on ``PYTHONPATH``.

Addresses/ports default to 127.0.0.17:2217 (container) and 127.0.0.18:2218
(vm), beside the molecule scenario's .11-.14; override with
``CMZ_FLEET_FIXTURE_HOSTS="NAME:KIND:ADDR:PORT,..."``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet  # noqa: E402

DEFAULT_HOSTS = "fx-container:container:127.0.0.17:2217,fx-vm:vm:127.0.0.18:2218"


@dataclasses.dataclass
class FleetHosts:
    """What the fixture yields."""

    state_dir: str
    inventory: str  # Ansible inventory (groups fleet, full, container, vm)
    ssh_key: str
    manifests: dict  # name -> manifest.json content (logs with sha256/uid/gid/mode/mtime, fs_before, kind...)

    @property
    def names(self) -> list:
        return sorted(self.manifests)

    def by_kind(self, kind: str) -> str:
        return next(n for n, m in self.manifests.items() if m["kind"] == kind)

    @property
    def manifest(self) -> dict:
        """Alias: all manifests by host name."""
        return self.manifests

    def ssh_argv(self, name: str, command: str) -> list:
        m = self.manifests[name]
        return ["ssh", "-i", self.ssh_key, "-p", str(m["port"]), "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                f"root@{m['addr']}", command]

    def ssh(self, name: str, command: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a shell command on a host; returns the CompletedProcess (text)."""
        return subprocess.run(self.ssh_argv(name, command), capture_output=True, text=True,
                              check=check, timeout=timeout, stdin=subprocess.DEVNULL)

    def fs_now(self, name: str) -> dict:
        """statvfs of the host's root right now (read from the controller through /proc/PID/root)."""
        return fleet.statvfs_dict(f"/proc/{self.manifests[name]['pid']}/root/")

    def ansible_env(self) -> dict:
        """Environment for ansible(-playbook) against these hosts: settings that let modules start
        on a full disk (pipelining; TMPDIR=/dev/shm must still be set in the task environment)."""
        return {"ANSIBLE_PIPELINING": "1", "ANSIBLE_HOST_KEY_CHECKING": "0"}


def _hosts_from_env() -> list:
    spec = os.environ.get("CMZ_FLEET_FIXTURE_HOSTS", DEFAULT_HOSTS)
    return [fleet.parse_host(h.strip()) for h in spec.split(",") if h.strip()]


@pytest.fixture(scope="session")
def full_ssh_host(tmp_path_factory):
    """Session-scoped: one ``container`` and one ``vm`` SSH host whose ``/`` is at 0 bytes free."""
    if os.geteuid() != 0:
        pytest.skip("full_ssh_host needs root (mount namespaces, loop devices)")
    for tool in ("unshare", "mount", "mkfs.ext4", "ssh-keygen", "ssh"):
        if not shutil.which(tool):
            pytest.skip(f"full_ssh_host needs {tool}")
    if not os.path.exists("/usr/sbin/sshd"):
        pytest.skip("full_ssh_host needs openssh-server (/usr/sbin/sshd)")
    state_dir = str(tmp_path_factory.mktemp("cmz-fleet"))
    hosts = _hosts_from_env()
    try:
        res = fleet.up(state_dir, hosts)
    except fleet.FleetError as exc:
        pytest.fail(f"fleet up failed: {exc}")
    try:
        yield FleetHosts(state_dir=state_dir, inventory=res["inventory"],
                         ssh_key=os.path.join(state_dir, "id_ed25519"), manifests=res["hosts"])
    finally:
        fleet.down(state_dir, [h["name"] for h in hosts])
