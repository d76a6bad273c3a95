#!/usr/bin/env bash
# Quality gates of the sre.cmemgzip collection.
#
# Usage:  bash .ci/gates.sh [--fail-fast] [GATE ...]
#   GATE is one of: sanity units integration lint vermin build changelog ee   (default: all, in this order)
#   --fail-fast   stop at the first failing gate (default: run every gate, fail at the end)
#
# Needs: root (a bind mount inside `unshare --mount`), git, util-linux, and
#        `pip install -r tests/requirements-ci.txt`. shellcheck is installed with apt-get
#        when it is missing: without it ansible-test skips its shellcheck test silently.
# Env:   GATES_PYTHON          Python version ansible-test uses for its environments (default 3.11)
#        GATES_SANITY_TIMEOUT  seconds before the sanity gate is killed (default 900)
#        GATES_UNITS_TIMEOUT   seconds before the units gate is killed (default 600)
#
# Gates:
#   sanity     ansible-test sanity --venv, every test, tests/sanity/ignore-*.txt absent or empty
#   units      ansible-test units --venv (tests/unit)
#   integration ansible-test integration --local on this machine (tests/integration/targets;
#              they mount and fill small filesystems: root, destructive)
#   lint       ansible-lint --profile production (config: .ansible-lint)
#   vermin     Python 3.8 floor for plugins/modules and plugins/module_utils
#   build      ansible-galaxy collection build + offline install into a temporary path,
#              tarball content check, ansible-doc of every module and role from that path only
#   changelog  antsibull-changelog lint (fragments and changelogs/changelog.yaml)
#   ee         ansible-builder create: renders execution-environment.yml's build context
#              (schema check, the collection tarball it names exists) without a container engine
#
# ansible-test needs the collection's real path to end in ansible_collections/sre/cmemgzip.
# When the checkout lives elsewhere (CI clones anywhere), the sanity and units gates run
# inside `unshare --mount --propagation private` with the checkout bind-mounted onto
# <tmp>/ansible_collections/sre/cmemgzip; the mount disappears with that namespace.
# ansible-test only looks at files git knows about (`git ls-files --cached --others
# --exclude-standard`), so git-ignored paths (.cache/, tests/output/, benchmarks/data/...)
# are never sanity-tested.
set -euo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
readonly REPO
readonly NAMESPACE=sre COLLECTION=cmemgzip
readonly FQ="${NAMESPACE}.${COLLECTION}"
readonly PYV="${GATES_PYTHON:-3.11}"
readonly SANITY_TIMEOUT="${GATES_SANITY_TIMEOUT:-900}"
readonly UNITS_TIMEOUT="${GATES_UNITS_TIMEOUT:-600}"
readonly ALL_GATES=(sanity units integration lint vermin build changelog ee)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/cmemgzip-gates.XXXXXX")
readonly WORK

cleanup() {
    # Bind mounts only ever exist inside the unshare'd namespaces, which are gone by now;
    # --one-file-system is a second guard against ever descending into the checkout.
    rm -rf --one-file-system -- "$WORK"
}
trap cleanup EXIT

export ANSIBLE_NOCOLOR=1 NO_COLOR=1 PY_COLORS=0 ANSIBLE_FORCE_COLOR=0

log() { printf '%s\n' "$*"; }
err() { printf 'ERROR: %s\n' "$*" >&2; }

header() {
    printf '\n==============================================================================\n'
    printf '== gate: %s\n' "$*"
    printf '==============================================================================\n'
}

need() {
    local tool
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            err "'$tool' not found: pip install -r tests/requirements-ci.txt (and see the header of $0)"
            return 1
        fi
    done
}

# Python that runs ansible-test / ansible-galaxy (for the small helpers below).
ansible_python() {
    local py
    for py in python3 "python${PYV}" python; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import ansible_test, ansible' 2>/dev/null; then
            command -v "$py"
            return 0
        fi
    done
    err "no Python with ansible-core (ansible_test) importable: pip install -r tests/requirements-ci.txt"
    return 1
}

# ---------------------------------------------------------------------------------------
# Environment helpers
# ---------------------------------------------------------------------------------------

ensure_shellcheck() {
    command -v shellcheck >/dev/null 2>&1 && return 0
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        log "shellcheck missing: installing it with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q shellcheck >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null && apt-get install -y -q shellcheck >/dev/null; }
    fi
    need shellcheck
}

# ansible-test bootstraps pip in each of its virtual environments with get-pip.py, which it
# downloads from a host that may be unreachable; it first looks for a cached copy at
# ~/.ansible/test/cache/get_pip_<version>.py. Write a stand-in there: bootstrap pip with the
# interpreter's bundled ensurepip, then `pip install` the requested packages (pip==<version>)
# from the index configured for this machine, like get-pip.py does.
ensure_get_pip_standin() {
    local py version cache
    py=$(ansible_python)
    version=$("$py" - <<'EOF' 2>/dev/null || true
import types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version="3"))["pip"])
EOF
)
    if [[ -z $version ]]; then
        # Fallback: the default pin in ansible-test's source (e.g. pip='24.2').
        version=$("$py" - <<'EOF'
import pathlib, re, ansible_test
src = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
m = re.search(r"pip=['\"]([0-9][0-9.]*)['\"]", src.read_text())
print(m.group(1) if m else "")
EOF
)
    fi
    if [[ -z $version ]]; then
        err "cannot tell which pip version ansible-test bootstraps"
        return 1
    fi
    cache="${HOME}/.ansible/test/cache/get_pip_${version//./_}.py"
    if [[ -f $cache ]] && ! grep -q 'sre.cmemgzip get-pip stand-in' "$cache"; then
        log "using existing $cache"
        return 0
    fi
    mkdir -p -- "$(dirname -- "$cache")"
    cat >"$cache.tmp" <<'EOF'
"""sre.cmemgzip get-pip stand-in (written by .ci/gates.sh).

ansible-test runs get-pip.py as `python get-pip.py [pip options] PACKAGE==VERSION ...
[--no-setuptools] [--no-wheel]` inside a fresh virtual environment without pip.
Bootstrap pip from the interpreter's bundled wheels (ensurepip), then let that pip
install the requested packages from the configured index, as get-pip.py would.
"""
import importlib
import site
import subprocess
import sys


def main():
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    importlib.invalidate_caches()
    for path in site.getsitepackages():
        if path not in sys.path:
            sys.path.append(path)
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    from pip._internal.cli.main import main as pip_main  # pylint: disable=import-outside-toplevel

    return pip_main(["install", "--upgrade"] + args)


if __name__ == "__main__":
    sys.exit(main())
EOF
    mv -f -- "$cache.tmp" "$cache"
    log "wrote get-pip stand-in $cache"
}

# in_collection_tree SECONDS COMMAND...: run COMMAND with the working directory's real path
# ending in ansible_collections/sre/cmemgzip (bind mount in a private mount namespace if
# needed), killed with its whole process group after SECONDS (a hanging test must not eat
# CI's time).
in_collection_tree() {
    local limit=$1
    shift
    need timeout
    if [[ $REPO == */ansible_collections/"$NAMESPACE"/"$COLLECTION" ]]; then
        (cd -- "$REPO" && timeout --kill-after=30 "$limit" "$@") || timed_out $? "$limit"
        return
    fi
    need unshare mount
    if [[ $(id -u) -ne 0 ]]; then
        err "the checkout is not under ansible_collections/$NAMESPACE/$COLLECTION and a bind mount needs root"
        return 1
    fi
    local tree="$WORK/tree/ansible_collections/$NAMESPACE/$COLLECTION"
    mkdir -p -- "$tree"
    # shellcheck disable=SC2016 # expanded by the inner bash, on purpose
    timeout --kill-after=30 "$limit" unshare --mount --propagation private -- \
        bash -c 'set -e; mount --bind -- "$1" "$2"; cd -- "$2"; shift 2; exec "$@"' \
        in-collection-tree "$REPO" "$tree" "$@" || timed_out $? "$limit"
}

# Pass a command's failure on, saying so when `timeout` killed it.
timed_out() {
    if [[ $1 -eq 124 || $1 -eq 137 ]]; then
        err "killed after $2 s (timeout): something hangs (with pytest -v, a hanging test is one never reported PASSED or FAILED above)"
    fi
    return "$1"
}

list_modules() {
    local f name
    for f in "$REPO"/plugins/modules/*.py; do
        [[ -e $f ]] || continue
        name=$(basename -- "$f" .py)
        [[ $name == __init__ ]] && continue
        printf '%s\n' "$name"
    done
}

list_roles() {
    local d
    for d in "$REPO"/roles/*/; do
        [[ -d $d ]] || continue
        basename -- "$d"
    done
}

# ---------------------------------------------------------------------------------------
# Gates
# ---------------------------------------------------------------------------------------

gate_sanity() {
    need ansible-test git
    local f bad=0
    for f in "$REPO"/tests/sanity/ignore-*.txt; do
        [[ -e $f ]] || continue
        if grep -qv '^[[:space:]]*$' "$f"; then
            err "${f#"$REPO"/} is not empty: fix the findings instead of ignoring them"
            bad=1
        fi
    done
    [[ $bad -eq 0 ]] || return 1
    ensure_shellcheck
    ensure_get_pip_standin
    in_collection_tree "$SANITY_TIMEOUT" ansible-test sanity --venv --python "$PYV" --color no
}

gate_units() {
    need ansible-test git
    if ! find "$REPO/tests/unit" -name 'test_*.py' -print 2>/dev/null | grep -q .; then
        err "no unit tests (tests/unit/**/test_*.py) found"
        return 1
    fi
    ensure_get_pip_standin
    # -v: pytest names every test, so a hang or failure is easy to place.
    in_collection_tree "$UNITS_TIMEOUT" ansible-test units -v --venv --python "$PYV" --color no
}

gate_integration() {
    need ansible-test git
    in_collection_tree "$UNITS_TIMEOUT" ansible-test integration --local --allow-destructive --allow-root \
        --python "$PYV" --color no
}

gate_lint() {
    need ansible-lint
    # Offline (no Galaxy, no version check), ansible-lint does not install the collection it
    # lints, so FQCNs such as sre.cmemgzip.fs_usage would not resolve on a fresh machine:
    # give it a collections path where sre.cmemgzip is this checkout.
    local cpath="$WORK/lint-collections"
    mkdir -p -- "$cpath/ansible_collections/$NAMESPACE"
    ln -sfn -- "$REPO" "$cpath/ansible_collections/$NAMESPACE/$COLLECTION"
    (
        cd -- "$REPO"
        ANSIBLE_COLLECTIONS_PATH="$cpath" ANSIBLE_HOME="$WORK/lint-ansible-home" \
            ansible-lint --profile production --offline --nocolor
    )
}

gate_vermin() {
    need vermin
    local -a files=() lazy=()
    local f
    while IFS= read -r -d '' f; do
        files+=("$f")
    done < <(find "$REPO/plugins/modules" "$REPO/plugins/module_utils" -name '*.py' -type f -print0 2>/dev/null | sort -z)
    if [[ ${#files[@]} -eq 0 ]]; then
        log "no Python files under plugins/modules or plugins/module_utils"
        return 0
    fi
    log "checking ${#files[@]} files for Python 3.8"
    vermin -t=3.8- --no-tips --violations -- "${files[@]}"
    # vermin does not evaluate annotations by default; without
    # `from __future__ import annotations` they run at import time, so check them too.
    for f in "${files[@]}"; do
        grep -q '^from __future__ import .*annotations' "$f" || lazy+=("$f")
    done
    if [[ ${#lazy[@]} -gt 0 ]]; then
        log "files whose annotations are evaluated at import time: ${#lazy[@]}"
        vermin -t=3.8- --no-tips --violations --eval-annotations -- "${lazy[@]}"
    fi
    # Grammar check with the 3.8 parser rules (best effort of ast's feature_version).
    "$(ansible_python)" - "${files[@]}" <<'EOF'
import ast, sys
bad = 0
for path in sys.argv[1:]:
    try:
        ast.parse(open(path, "rb").read(), filename=path, feature_version=(3, 8))
    except SyntaxError as exc:
        print("%s:%s: not Python 3.8 syntax: %s" % (path, exc.lineno, exc.msg))
        bad = 1
sys.exit(bad)
EOF
}

# Build the collection tarball into $WORK/dist and set TARBALL (build and ee gates; each
# gate runs in its own subshell, so each builds its own, about a second).
TARBALL=
build_tarball() {
    need ansible-galaxy
    rm -rf -- "$WORK/dist"
    mkdir -p -- "$WORK/dist"
    ansible-galaxy collection build --output-path "$WORK/dist" -- "$REPO"
    local -a built=("$WORK"/dist/"$NAMESPACE"-"$COLLECTION"-*.tar.gz)
    if [[ ${#built[@]} -ne 1 || ! -f ${built[0]} ]]; then
        err "expected one ${NAMESPACE}-${COLLECTION}-*.tar.gz in $WORK/dist"
        return 1
    fi
    TARBALL=${built[0]}
}

gate_build() {
    need ansible-galaxy ansible-doc tar
    build_tarball
    log "built $(basename -- "$TARBALL") ($(du -h -- "$TARBALL" | cut -f1))"

    # 1. Content of the artifact.
    local listing="$WORK/tarball.txt" bad=0 name
    tar -tzf "$TARBALL" | sed 's#^\./##' >"$listing"
    if grep -nE '(^|/)(tests/output|\.cache|\.ansible|\.git|\.pytest_cache|\.tox|__pycache__|benchmarks/(data|results))(/|$)|\.pyc$|\.tar\.gz$|(^|/)changelogs/\.plugin-cache\.yaml$' "$listing"; then
        err "the tarball contains generated or private files (listed above): extend build_ignore in galaxy.yml"
        bad=1
    fi
    local readme
    readme=$(sed -n 's/^readme:[[:space:]]*//p' "$REPO/galaxy.yml" | tr -d "\"'")
    for name in MANIFEST.json FILES.json meta/runtime.yml ${readme:+"$readme"}; do
        grep -qx -- "$name" "$listing" || { err "tarball lacks $name"; bad=1; }
    done
    while IFS= read -r name; do
        grep -qx -- "plugins/modules/$name.py" "$listing" || { err "tarball lacks plugins/modules/$name.py"; bad=1; }
    done < <(list_modules)
    while IFS= read -r name; do
        grep -q -- "^roles/$name/" "$listing" || { err "tarball lacks roles/$name/"; bad=1; }
    done < <(list_roles)
    for name in "$REPO"/playbooks/*.yml "$REPO"/playbooks/*.yaml; do
        [[ -e $name ]] || continue
        grep -qx -- "playbooks/$(basename -- "$name")" "$listing" || { err "tarball lacks playbooks/$(basename -- "$name")"; bad=1; }
    done
    log "tarball: $(wc -l <"$listing") entries checked"

    # 2. Offline install into a private collections path, then ansible-doc against it only.
    local cpath="$WORK/collections"
    rm -rf -- "$cpath" "$WORK/ansible-home"
    mkdir -p -- "$cpath" "$WORK/ansible-home"
    : >"$WORK/ansible.cfg"
    (
        cd -- "$WORK"
        export ANSIBLE_CONFIG="$WORK/ansible.cfg" ANSIBLE_HOME="$WORK/ansible-home" \
            ANSIBLE_COLLECTIONS_PATH="$cpath" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
        ansible-galaxy collection install --offline -p "$cpath" -- "$TARBALL" || exit 1
        [[ -f $cpath/ansible_collections/$NAMESPACE/$COLLECTION/MANIFEST.json ]] ||
            { err "the collection did not install into $cpath"; exit 1; }
        check_docs
    ) || bad=1
    return "$bad"
}

# ansible-doc of every module and role, from the installed artifact only (runs in a subshell
# of gate_build with ANSIBLE_COLLECTIONS_PATH set).
check_docs() {
    local bad=0 name kind out="$WORK/doc.json" errf="$WORK/doc.err" py
    py=$(ansible_python)
    local -a modules roles
    mapfile -t modules < <(list_modules)
    mapfile -t roles < <(list_roles)
    log "documenting ${#modules[@]} module(s) and ${#roles[@]} role(s) from the installed tarball"
    for kind in module role; do
        local -a names=()
        if [[ $kind == module ]]; then names=("${modules[@]}"); else names=("${roles[@]}"); fi
        for name in "${names[@]}"; do
            local fqcn="$FQ.$name" status=ok
            if ! ansible-doc -t "$kind" --json -- "$fqcn" >"$out" 2>"$errf"; then
                status="ansible-doc --json failed"
            elif ! "$py" - "$kind" "$fqcn" "$out" <<'EOF'
import json, sys
kind, fqcn, path = sys.argv[1:]
try:
    data = json.load(open(path))
except ValueError as exc:
    sys.exit("%s: ansible-doc printed no JSON: %s" % (fqcn, exc))
entry = data.get(fqcn)
if not entry:
    sys.exit("%s: no documentation found" % fqcn)
problems = []
if kind == "module":
    doc = entry.get("doc") or {}
    for key in ("short_description", "description", "author"):
        if not doc.get(key):
            problems.append("DOCUMENTATION lacks %s" % key)
    if not (entry.get("examples") or "").strip():
        problems.append("EXAMPLES missing or empty")
    if entry.get("return") is None:
        problems.append("RETURN missing")
else:
    eps = entry.get("entry_points") or {}
    if "main" not in eps:
        problems.append("meta/argument_specs.yml has no 'main' entry point")
    for ep, spec in eps.items():
        if not spec.get("short_description"):
            problems.append("entry point %s lacks short_description" % ep)
if problems:
    sys.exit("%s: %s" % (fqcn, "; ".join(problems)))
EOF
            then
                status="documentation incomplete"
            elif ! ansible-doc -t "$kind" -- "$fqcn" >/dev/null 2>>"$errf"; then
                status="ansible-doc text rendering failed"
            elif grep -qE '\[(ERROR|WARNING)\]|^ERROR' "$errf"; then
                status="ansible-doc warned"
            fi
            if [[ $status == ok ]]; then
                log "  ok    $kind $fqcn"
            else
                log "  FAIL  $kind $fqcn: $status"
                sed 's/^/        /' "$errf" >&2
                bad=1
            fi
        done
    done
    # Everything documented in the artifact is what the tree has (nothing stale, nothing lost).
    local listed
    listed=$(ansible-doc -t module -l "$FQ" 2>/dev/null | awk '{print $1}' | sed "s/^$FQ\\.//" | sort)
    if [[ $listed != "$(printf '%s\n' "${modules[@]}" | sed '/^$/d' | sort)" ]]; then
        err "ansible-doc -l $FQ lists [$(echo "$listed" | tr '\n' ' ')] but plugins/modules has [${modules[*]}]"
        bad=1
    fi
    return "$bad"
}

gate_changelog() {
    need antsibull-changelog
    (
        cd -- "$REPO"
        antsibull-changelog lint
        if [[ -f changelogs/changelog.yaml ]]; then
            antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml
        fi
    )
    log "changelog: config, fragments and changelogs/changelog.yaml are valid"
}

gate_ee() {
    need ansible-builder
    local def="$REPO/execution-environment.yml" ee="$WORK/ee"
    [[ -f $def ]] || { err "execution-environment.yml is missing"; return 1; }
    build_tarball
    # Render the build context from a copy of the definition next to a copy of the tarball
    # (the definition names the tarball relative to itself), so the checkout is not touched.
    rm -rf -- "$ee"
    mkdir -p -- "$ee"
    cp -- "$def" "$ee/execution-environment.yml"
    cp -- "$TARBALL" "$ee/"
    (cd -- "$ee" && ansible-builder create -f execution-environment.yml -c context --output-filename Containerfile -v 2)
    "$(ansible_python)" - "$ee/context/_build" <<'EOF'
import os, sys, yaml
build = sys.argv[1]
req = yaml.safe_load(open(os.path.join(build, "requirements.yml")))
found = False
for coll in (req or {}).get("collections", []):
    if isinstance(coll, dict) and coll.get("type") == "file":
        path = os.path.join(build, coll["name"])
        if not os.path.isfile(path):
            sys.exit("execution-environment.yml installs %s, which is not in the build context "
                     "(does its file name match galaxy.yml's version?)" % coll["name"])
        print("ee: the build context installs %s" % coll["name"])
        found = True
if not found:
    sys.exit("execution-environment.yml does not install the collection tarball")
EOF
    grep -q 'ansible-core>=2.19,<2.20' "$ee/context/Containerfile" ||
        { err "the EE does not pin ansible-core 2.19"; return 1; }
}

# ---------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------

main() {
    local fail_fast=0 gate
    local -a gates=()
    for gate in "$@"; do
        case $gate in
            --fail-fast) fail_fast=1 ;;
            -h | --help)
                sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
                return 0
                ;;
            sanity | units | integration | lint | vermin | build | changelog | ee) gates+=("$gate") ;;
            *)
                err "unknown gate '$gate' (known: ${ALL_GATES[*]})"
                return 2
                ;;
        esac
    done
    [[ ${#gates[@]} -gt 0 ]] || gates=("${ALL_GATES[@]}")

    log "sre.cmemgzip quality gates: ${gates[*]}"
    log "checkout: $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
    log "tools: $(ansible --version 2>/dev/null | sed -n 1p)"

    local -a summary=()
    local rc=0 start end status secs
    local total_start=$EPOCHREALTIME
    for gate in "${gates[@]}"; do
        header "$gate"
        start=$EPOCHREALTIME
        # The gate runs in a subshell with errexit on, so any failing command fails the gate
        # (not as an `if` condition: bash ignores errexit there, even in a subshell).
        set +e
        (
            set -euo pipefail
            "gate_$gate"
        )
        status=$?
        set -e
        if [[ $status -eq 0 ]]; then status=PASS; else status=FAIL; rc=1; fi
        end=$EPOCHREALTIME
        secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
        log "== gate $gate: $status in ${secs}s"
        summary+=("$(printf '%-10s %-5s %8ss' "$gate" "$status" "$secs")")
        if [[ $status == FAIL && $fail_fast -eq 1 ]]; then
            break
        fi
    done
    secs=$(awk -v a="$total_start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

    printf '\n==============================================================================\n'
    printf '== summary\n'
    printf '%s\n' "${summary[@]}"
    printf '%-10s %-5s %8ss\n' total "$([[ $rc -eq 0 ]] && echo PASS || echo FAIL)" "$secs"
    return "$rc"
}

main "$@"
