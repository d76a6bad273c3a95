# Copyright (c) sre.cmemgzip contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# /// script
# dependencies = ["nox>=2025.02.09", "antsibull-nox>=1.10,<2"]
# ///

"""Quality checks of sre.cmemgzip: antsibull-nox's sessions (antsibull-nox.toml) and these.

    nox            every default session, each in its own virtual environment under .nox/
    nox -l         the list
    nox -e ansible-test-sanity -- --test pep8

Added here, for machines without a container engine (antsibull-nox's own ansible-test
sessions run in ansible-test's containers):

    ansible-test-sanity   ansible-test sanity --local, every test; tests/sanity/ignore-*.txt stay empty
    ansible-test-units    ansible-test units --local --requirements
    ansible-test-integration-local
                          ansible-test integration --local on this machine: root, destructive
                          (not a default session: .ci/gates.sh runs it after the others)
    python-floor          modules and module_utils parse and run on Python 3.8 (tests/config.yml)
    tarball-contents      the built collection holds what it should and nothing else (build_ignore)
    ee-context            execution-environment.yml renders into a build context (ansible-builder create)

Root-only checks on real filesystems and SSH hosts: `make test` (pytest, molecule) and
the integration session.
"""

import ast
import fnmatch
import glob
import os
import re
import sys
import tarfile
from pathlib import Path

import nox

try:
    import antsibull_nox
    import antsibull_nox.sessions
except ImportError:
    print("You need to install antsibull-nox in the same Python environment as nox (tests/install-deps.sh --ci).")
    sys.exit(1)

antsibull_nox.load_antsibull_nox_toml()
nox.options.reuse_venv = "yes"  # a second run reuses .nox/<session> (the installs then only check versions)

ANSIBLE_CORE = "ansible-core>=2.19,<2.20"  # as tests/requirements.txt
PYTHON = "%d.%d" % sys.version_info[:2]  # the controller Python: the one running nox
TARGET_PYTHON = (3, 8)  # tests/config.yml: modules and module_utils
ROOT = Path(__file__).resolve().parent


def _collection_tree(session):
    """A copy of the collection at ansible_collections/sre/cmemgzip, as ansible-test wants it."""
    setup = antsibull_nox.sessions.prepare_collections(session, install_in_site_packages=False, install_out_of_tree=True)
    if setup is None:
        session.error("could not set up the ansible_collections tree")
    return setup.current_path


# ansible-test bootstraps pip in each sanity test's virtual environment with get-pip.py, which it
# downloads from a host these machines cannot reach; it then names the file to save by hand.
# This stand-in, saved there, does the same with the interpreter's own ensurepip and the pip
# index configured for the machine.
GET_PIP_STANDIN = '''"""get-pip.py stand-in written by sre.cmemgzip's noxfile.py: ensurepip, then pip install."""
import importlib
import site
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
importlib.invalidate_caches()
sys.path.extend(p for p in site.getsitepackages() if p not in sys.path)
from pip._internal.cli.main import main  # noqa: E402

sys.exit(main(["install", "--upgrade"] + [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]))
'''
GET_PIP_WANTED = re.compile(r"manually downloaded and saved to: (\S+/get_pip_[0-9_]+\.py)")


def _ensure_get_pip(session, ansible_test):
    probe = session.run(*ansible_test, "--test", "runtime-metadata", silent=True, success_codes=[0, 1])
    wanted = GET_PIP_WANTED.search(probe or "")
    if wanted:
        path = Path(wanted.group(1))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(GET_PIP_STANDIN)
        session.log("ansible-test could not download get-pip.py: wrote a stand-in at %s" % path)


@nox.session(name="ansible-test-sanity", default=True)
@antsibull_nox.sessions.install_packages(packages=[ANSIBLE_CORE])
def ansible_test_sanity(session):
    """Run ansible-test sanity --local: every test, no ignore file."""
    ignored = [path for path in glob.glob("tests/sanity/ignore-*.txt") if Path(path).read_text().strip()]
    if ignored:
        session.error("fix the findings instead of ignoring them: %s" % ", ".join(ignored))
    ansible_test = ["ansible-test", "sanity", "--local", "--python", PYTHON, "--color", "no"]
    with session.chdir(_collection_tree(session)):
        _ensure_get_pip(session, ansible_test)
        session.run(*ansible_test, "-v", *session.posargs)


@nox.session(name="ansible-test-units", default=True)
@antsibull_nox.sessions.install_packages(packages=[ANSIBLE_CORE])
def ansible_test_units(session):
    """Run ansible-test units --local --requirements (tests/unit)."""
    with session.chdir(_collection_tree(session)):
        session.run("ansible-test", "units", "--local", "--requirements", "--python", PYTHON, "--color", "no", "-v",
                    *session.posargs)


@nox.session(name="ansible-test-integration-local", default=False)
@antsibull_nox.sessions.install_packages(packages=[ANSIBLE_CORE])
def ansible_test_integration_local(session):
    """Run ansible-test integration --local (tests/integration/targets mount and fill filesystems: root)."""
    if os.geteuid() != 0:
        session.skip("needs root: the targets mount and fill small filesystems")
    with session.chdir(_collection_tree(session)):
        session.run("ansible-test", "integration", "--local", "--allow-destructive", "--allow-root",
                    "--python", PYTHON, "--color", "no", "-v", *session.posargs)


@nox.session(name="python-floor", default=True)
@antsibull_nox.sessions.install_packages(packages=["vermin>=1.6,<2"])
def python_floor(session):
    """Check that modules and module_utils need nothing newer than Python 3.8."""
    files = sorted(glob.glob("plugins/modules/*.py") + glob.glob("plugins/module_utils/**/*.py", recursive=True))
    target = "-t=%d.%d-" % TARGET_PYTHON
    session.run("vermin", target, "--no-tips", "--violations", *files)
    # Annotations are evaluated at import time unless postponed: check them too (list[int] is 3.9).
    eager = [f for f in files if not re.search(r"^from __future__ import .*annotations", Path(f).read_text(), re.M)]
    if eager:
        session.run("vermin", target, "--no-tips", "--violations", "--eval-annotations", *eager)
    bad = []
    for path in files:
        try:
            ast.parse(Path(path).read_bytes(), path, feature_version=TARGET_PYTHON)
        except SyntaxError as exc:
            bad.append("%s:%s: %s" % (path, exc.lineno, exc.msg))
    if bad:
        session.error("not Python %d.%d grammar:\n%s" % (TARGET_PYTHON + ("\n".join(bad),)))


# Everything the tarball may hold (fnmatch on member names; `*` spans directories).
TARBALL_ALLOWED = (
    "MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.md", "CHANGELOG.rst", "LICENSE", "COPYING",
    "meta/runtime.yml",
    "plugins/*.py",
    "roles/*/README.md", "roles/*/defaults/*", "roles/*/handlers/*", "roles/*/meta/*", "roles/*/tasks/*",
    "roles/*/templates/*", "roles/*/vars/*", "roles/*/files/*",
    "playbooks/*.yml", "playbooks/templates/*", "playbooks/vars/*",
    "docs/*.md",
    "changelogs/changelog.yaml", "changelogs/config.yaml", "changelogs/fragments/*.yml",
    "tests/config.yml", "tests/unit/*.py", "tests/integration/targets/*", "tests/integration/inventory",
)
TARBALL_REQUIRED = ("MANIFEST.json", "FILES.json", "README.md", "meta/runtime.yml", "changelogs/changelog.yaml")


def _build_tarball(session, dest):
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.tar.gz"):
        old.unlink()
    session.run("ansible-galaxy", "collection", "build", "--output-path", str(dest), str(ROOT), silent=True)
    built = sorted(dest.glob("*.tar.gz"))
    if len(built) != 1:
        session.error("expected one tarball in %s, found %s" % (dest, built))
    return built[0]


@nox.session(name="tarball-contents", default=True)
@antsibull_nox.sessions.install_packages(packages=[ANSIBLE_CORE])
def tarball_contents(session):
    """List the built collection's files: only the collection, nothing build_ignore should keep out."""
    tarball = _build_tarball(session, Path(session.create_tmp()) / "dist")
    with tarfile.open(tarball) as tar:
        names = sorted(m.name[2:] if m.name.startswith("./") else m.name for m in tar.getmembers() if m.isfile())
    wanted = set(TARBALL_REQUIRED)
    wanted.update("plugins/modules/%s" % Path(f).name for f in glob.glob("plugins/modules/*.py"))
    wanted.update(f for f in glob.glob("playbooks/*.yml"))
    wanted.update(f for f in glob.glob("roles/*/meta/argument_specs.yml"))
    unexpected = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in TARBALL_ALLOWED)]
    missing = sorted(wanted - set(names))
    for name in names:
        session.log("  %s" % name)
    if unexpected or missing:
        session.error("%s: unexpected %s (extend build_ignore in galaxy.yml); missing %s" % (
            tarball.name, unexpected, missing))
    session.log("%s: %d files, all expected" % (tarball.name, len(names)))


@nox.session(name="ee-context", default=True)
@antsibull_nox.sessions.install_packages(packages=["ansible-builder>=3.1,<4", ANSIBLE_CORE])
def ee_context(session):
    """Render execution-environment.yml into a build context (building the image needs a container engine)."""
    work = Path(session.create_tmp()) / "ee"
    tarball = _build_tarball(session, work)
    (work / "execution-environment.yml").write_text((ROOT / "execution-environment.yml").read_text())
    with session.chdir(work):
        session.run("ansible-builder", "create", "-f", "execution-environment.yml", "-c", "context",
                    "--output-filename", "Containerfile", "-v", "2", silent=True)
    context = work / "context"
    copied = [p.name for p in context.rglob("*.tar.gz")]
    if tarball.name not in copied:
        session.error("the build context has %s, not the collection tarball %s: does execution-environment.yml "
                      "name galaxy.yml's version?" % (copied, tarball.name))
    if ANSIBLE_CORE not in (context / "Containerfile").read_text():
        session.error("the execution environment does not pin %s" % ANSIBLE_CORE)
    session.log("build context in %s installs %s and %s" % (context, tarball.name, ANSIBLE_CORE))


# Allow running the noxfile with `python noxfile.py` (nox >= 2025.02.09).
if __name__ == "__main__":
    nox.main()
