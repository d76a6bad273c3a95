#!/usr/bin/env bash
# Quality gates of sre.cmemgzip, after `make test` (run by .ci/run; `make gates` installs the tools
# first: tests/install-deps.sh --ci).  Runs as root.
#
#   1. Every default session of noxfile.py / antsibull-nox.toml, each in its own virtual
#      environment: lint (flake8, yamllint), docs-check (antsibull-docs), extra-checks,
#      build-import-check (galaxy-importer), ansible-lint (production profile), ansible-test
#      sanity and units (--local: no container engine here), python-floor (Python 3.8 for the
#      modules), tarball-contents (build_ignore), ee-context (execution-environment.yml).
#      All of them run; nox's summary lists the failed ones.
#   2. The root-only part: ansible-test integration --local (its targets mount and fill small
#      filesystems on this machine).
#
# Usage: .ci/gates.sh [NOX ARGUMENTS]   e.g. `.ci/gates.sh -e ansible-lint` runs one session only.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/env.sh
. tests/env.sh
export ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0
command -v nox >/dev/null || { echo "gates: nox missing: run tests/install-deps.sh --ci (make gates does)" >&2; exit 1; }

if [ "$#" -gt 0 ]; then
    exec nox --nocolor "$@"
fi
rc=0
# A hung check must not eat CI's time: every session together gets 40 minutes, integration 15.
timeout --kill-after=60 2400 nox --nocolor --no-stop-on-first-error || rc=$?
if [ "$(id -u)" -eq 0 ]; then
    timeout --kill-after=60 900 nox --nocolor -e ansible-test-integration-local || rc=$?
else
    echo "gates: not root: ansible-test integration skipped" >&2
    rc=1
fi
exit "$rc"
