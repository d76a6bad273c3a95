#!/usr/bin/env bash
# The whole test suite: unit and system tests (pytest, real full filesystems and real SSH
# hosts), then the molecule scenario (a fleet of four SSH hosts).  Run as root, after
# tests/install-deps.sh (`make test` does both).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/env.sh
. tests/env.sh

echo "== pytest: unit and system ($(command -v python3))"
python3 -m pytest tests/unit tests/system

echo "== molecule test -s default"
molecule test -s default
