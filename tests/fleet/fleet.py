#!/usr/bin/env python
"""A test fleet of real SSH hosts whose root filesystems are full.

Every host is one ``sshd`` started by ``unshare --mount --uts --propagation
private`` with its own hostname and its own root filesystem: an overlay whose
lower layer is the machine's ``/`` and whose upper layer sits on a small tmpfs
or loop-mounted ext4 image that is filled to 0 free bytes (or 0 free inodes)
after realistic log files have been written.  All mounts live in the host's
private mount namespace only: when its last process ends, the kernel unmounts
everything and the loop device (auto-clear) is released.

Kinds (upper layer):
  container  tmpfs, 96 MiB, 0 bytes free
  vm         ext4 ``-m 0`` loop image, 128 MiB, 0 bytes free
  inodes     ext4 ``-m 0 -N 256`` loop image, 64 MiB, 0 free inodes (blocks free)
  roomy      ext4 ``-m 0`` loop image, 256 MiB, plenty free (must stay untouched)

Usage (as root)::

  fleet.py up --state-dir DIR --host NAME:KIND:ADDR:PORT [--host ...]
  fleet.py status --state-dir DIR
  fleet.py down --state-dir DIR [--host NAME]

``up`` writes ``DIR/inventory.yml``, ``DIR/id_ed25519`` and
``DIR/NAME/manifest.json`` (logs with sha256/size/uid/gid/mode/mtime, filesystem
usage before, pid and mount namespace).  ``down`` ends every process whose
mount namespace is the host's (ControlPersist sessions included), waits for
the namespace and loop device to go away and removes the image.

Python 3 standard library only; importable (``import fleet``) for pytest.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib"))
import loggen  # noqa: E402  (tests/lib: the one log generator)

MiB = 1024 * 1024

KINDS = {
    # fs: upper layer filesystem; size: bytes; fill: "bytes", "inodes" or None
    "container": {"fs": "tmpfs", "size": 96 * MiB, "fill": "bytes"},
    "vm": {"fs": "ext4", "size": 128 * MiB, "fill": "bytes"},
    "inodes": {"fs": "ext4", "size": 64 * MiB, "fill": "inodes", "inodes": 256},
    "roomy": {"fs": "ext4", "size": 256 * MiB, "fill": None},
    # a container's small /dev/shm and a log whose compressed copy is bigger than it (issue 11)
    "smallshm": {"fs": "ext4", "size": 224 * MiB, "fill": "bytes", "shm": "16m"},
    # Filled by open files (issue 10): a log being written right now, and a log deleted while its
    # process still holds it. The writer (tests/lib/livewriter.py) runs inside the host (its mount
    # namespace and root), writes "burst" bytes at once, then the rest of the disk is filled and
    # it keeps appending "rate" lines/s, retrying on ENOSPC.
    "livelog": {"fs": "ext4", "size": 128 * MiB, "fill": "bytes",
                "writer": {"path": "/var/log/app/runaway.log", "unlink": False, "burst": 40 * MiB, "rate": 200}},
    "deletedlog": {"fs": "tmpfs", "size": 96 * MiB, "fill": "bytes",
                   "writer": {"path": "/var/log/app/deleted.log", "unlink": True, "burst": 40 * MiB, "rate": 200}},
}
FULL_KINDS = ("container", "vm", "inodes", "smallshm", "livelog", "deletedlog")
WRITER_STATUS = "/run/cmz-fleet/writer.json"  # inside each host (its own /run tmpfs)

SHM_SIZE = "256m"  # the host's /dev/shm (fresh tmpfs)
RUN_SIZE = "32m"  # the host's /run (fresh tmpfs: sshd privsep dir, pid file, keys)
HOST_RUN_DIR = "/run/cmz-fleet"  # sshd config and keys, inside each host
FILLER_PATH = "/var/lib/cmz-fleet/filler.bin"  # incompressible ballast, inside each host
INODE_FILL_DIR = "/var/lib/cmz-fleet/inodes"  # empty files eating inodes, inside each host
# Directories that must exist in the upper layer before it is filled: a copy-up
# on a full upper layer fails with EIO instead of ENOSPC.
COPY_UP_DIRS = ("/tmp", "/var/tmp", "/root", "/var/log", "/var/lib", "/etc")

SERVICE_USERS = (
    # (user, primary group, home)
    ("svcapp", "svcapp", "/nonexistent"),
    ("svclog", "adm", "/nonexistent"),
)
# An unprivileged login with passwordless sudo, for "with become" runs. Its home
# lives on the full filesystem of each host, like root's.
OPS_USER = "cmzops"
OPS_HOME = "/home/cmzops"

# The logs written into every host before it is filled (about 36 MiB: compressing
# them frees about 30 MiB, over 25 % of every full kind, so a target_free of 15 %
# is reachable).  Ages are above the rescue role's default active_age (10m).
# expect: "compress" (must become NAME.gz, or be skipped with a documented reason),
# "skip" (must stay as it is; reason: the code of plugins/module_utils/codes.py expected with the
# default options) or "any" (either, but data, owner and mode intact).
LOGS = (
    {"path": "/var/log/app/access.log", "gen": "access", "size": 8 * MiB,
     "user": "svcapp", "group": "svcapp", "mode": 0o640, "age": 1800},
    {"path": "/var/log/app/access.log.1", "gen": "access", "size": 6 * MiB,
     "user": "svcapp", "group": "svcapp", "mode": 0o640, "age": 86400 + 60},
    {"path": "/var/log/app/access.log.2", "gen": "access", "size": 6 * MiB,
     "user": "svcapp", "group": "svcapp", "mode": 0o640, "age": 2 * 86400 + 60},
    {"path": "/var/log/app/error.log", "gen": "error", "size": 4 * MiB,
     "user": "svcapp", "group": "svcapp", "mode": 0o640, "age": 3600},
    # the live syslog: no rotation suffix, so a remediation may rightly leave it alone
    # (the rescue role's default patterns do); if it compresses it, it must do it right
    {"path": "/var/log/syslog-like", "gen": "syslog", "size": 6 * MiB,
     "user": "svclog", "group": "adm", "mode": 0o640, "age": 1200,
     "expect": "any", "note": "live log without rotation suffix"},
    {"path": "/var/log/syslog-like.1", "gen": "syslog", "size": 4 * MiB,
     "user": "svclog", "group": "adm", "mode": 0o640, "age": 86400 + 120},
    {"path": "/var/log/app/small.log", "gen": "access", "size": 256 * 1024,
     "user": "svcapp", "group": "svcapp", "mode": 0o640, "age": 7200,
     "expect": "skip", "reason": "too_small"},
    # an old rotation, gzip -1 of 8 MiB (about 1.3 MB: above the default min_size of 1M)
    {"path": "/var/log/app/access.log.3.gz", "gen": "access-gz", "size": 8 * MiB,
     "user": "svcapp", "group": "svcapp", "mode": 0o640, "age": 3 * 86400 + 60,
     "expect": "skip", "reason": "already_compressed"},
    # only on the hosts of ``kinds``: 128 MiB of access log, about 15 MiB compressed, more than
    # the 16 MiB /dev/shm of a smallshm host can hold beside its 8 MiB of headroom
    {"path": "/var/log/app/huge.log.1", "gen": "access", "size": 128 * MiB,
     "user": "svcapp", "group": "svcapp", "mode": 0o640, "age": 86400 + 180, "kinds": ("smallshm",)},
)
LOG_GEN_VERSION = 4  # bump when the generator (tests/lib/loggen.py) changes: it changes every sha256

SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"


class FleetError(Exception):
    """A fleet operation failed."""


# ---------------------------------------------------------------- helpers

def log(msg: str) -> None:
    print(f"fleet: {msg}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(cmd, check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except subprocess.CalledProcessError as exc:
        raise FleetError(f"{' '.join(cmd)} failed (rc={exc.returncode}): {(exc.stderr or '').strip()}") from exc


def write_json(path: str, data) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def read_json(path: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None


def statvfs_dict(path: str) -> dict:
    st = os.statvfs(path)
    return {
        "size": st.f_blocks * st.f_frsize,
        "free": st.f_bfree * st.f_frsize,
        "avail": st.f_bavail * st.f_frsize,
        "inodes": st.f_files,
        "inodes_free": st.f_ffree,
        "bsize": st.f_frsize,
    }


def proc_starttime(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    return int(data[data.rindex(")") + 2:].split()[19])


def proc_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    return data[data.rindex(")") + 2:].split()[0]


def mnt_ns_of(pid: int | str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def port_open(addr: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((addr, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            try:
                return sock.recv(4).startswith(b"SSH")
            except OSError:
                return True
    except OSError:
        return False


def parse_host(spec: str) -> dict:
    parts = spec.split(":")
    if len(parts) != 4:
        raise FleetError(f"--host {spec!r}: expected NAME:KIND:ADDR:PORT")
    name, kind, addr, port = parts
    if kind not in KINDS:
        raise FleetError(f"--host {spec!r}: unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise FleetError(f"--host {spec!r}: bad name")
    socket.inet_aton(addr)
    return {"name": name, "kind": kind, "addr": addr, "port": int(port)}


def check_state_dir(state_dir: str) -> str:
    state_dir = os.path.abspath(state_dir)
    if any(c in state_dir for c in ",: \t\n"):
        raise FleetError(f"state dir {state_dir!r} must not contain ',', ':' or blanks (overlay options)")
    return state_dir


# ------------------------------------------------------------ log content

def generate_log(gen: str, size: int, seed: str) -> bytes:
    """Deterministic, realistic text of exactly ``size`` bytes (tests/lib/loggen.py).

    ``gen`` is a loggen kind (access, error, syslog, jsonl); ``KIND-gz`` is that text,
    ``size`` bytes of it, as one gzip -1 member (an old rotation already compressed)."""
    if gen.endswith("-gz"):
        text = loggen.log_bytes(size, f"{LOG_GEN_VERSION}:{seed}:plain", gen[:-3])
        return gzip.compress(text, compresslevel=1, mtime=0)
    return loggen.log_bytes(size, f"{LOG_GEN_VERSION}:{seed}", gen)


def log_cache_dir() -> str:
    """Where generated logs are kept between runs (same content every time)."""
    return os.path.join(os.environ.get("CMZ_FLEET_CACHE", "/mnt/cmz-fleet-cache"), f"logsrc-v{LOG_GEN_VERSION}")


def prepare_log_sources() -> tuple[str, list[dict]]:
    """Generate every log once (cached in log_cache_dir(), shared by all hosts and runs)."""
    src_dir = log_cache_dir()
    meta = read_json(os.path.join(src_dir, "meta.json"))
    cached = {e["path"]: e for e in meta["logs"]} if meta and meta.get("version") == LOG_GEN_VERSION else {}
    if not all(spec["path"] in cached and cached[spec["path"]].get("gen") == [spec["gen"], spec["size"]]
               and os.path.isfile(os.path.join(src_dir, cached[spec["path"]]["src"]))
               and os.path.getsize(os.path.join(src_dir, cached[spec["path"]]["src"])) == cached[spec["path"]]["size"]
               for spec in LOGS):
        tmp = f"{src_dir}.tmp{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        cached = {}
        for spec in LOGS:
            data = generate_log(spec["gen"], spec["size"], spec["path"])
            src = spec["path"].strip("/").replace("/", "__")
            with open(os.path.join(tmp, src), "wb") as fh:
                fh.write(data)
            cached[spec["path"]] = {"path": spec["path"], "src": src, "size": len(data),
                                    "sha256": hashlib.sha256(data).hexdigest(), "gen": [spec["gen"], spec["size"]]}
        write_json(os.path.join(tmp, "meta.json"), {"version": LOG_GEN_VERSION, "logs": list(cached.values())})
        shutil.rmtree(src_dir, ignore_errors=True)
        try:
            os.replace(tmp, src_dir)
        except OSError:  # a concurrent run put it there first: same content
            shutil.rmtree(tmp, ignore_errors=True)
    entries = []
    for spec in LOGS:
        c = cached[spec["path"]]
        entries.append({
            "path": spec["path"], "src": c["src"], "size": c["size"], "sha256": c["sha256"],
            "user": spec["user"], "group": spec["group"], "mode": spec["mode"], "age": spec["age"],
            "expect": spec.get("expect", "compress"), "reason": spec.get("reason"), "note": spec.get("note"),
            "kinds": spec.get("kinds"),
        })
    return src_dir, entries


def ensure_service_users() -> None:
    import grp
    import pwd
    for user, group, home in SERVICE_USERS:
        try:
            grp.getgrnam(group)
        except KeyError:
            run(["groupadd", "-r", group])
        try:
            pwd.getpwnam(user)
        except KeyError:
            run(["useradd", "-r", "-g", group, "-d", home, "-M", "-s", "/usr/sbin/nologin", user])
    try:
        pwd.getpwnam(OPS_USER)
    except KeyError:
        # '*': no password, but not locked (sshd refuses locked accounts without PAM)
        run(["useradd", "-r", "-U", "-d", OPS_HOME, "-M", "-s", "/bin/bash", "-p", "*", OPS_USER])


# -------------------------------------------------- inside the namespace

def _sethostname(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    raw = name.encode()
    if libc.sethostname(raw, len(raw)) != 0:
        raise OSError(ctypes.get_errno(), "sethostname")


def _mount(*args: str) -> None:
    run(["mount", *args])


def _fill_bytes(root: str, seed: str) -> int:
    """Write one incompressible file until the filesystem has 0 bytes free."""
    path = root + FILLER_PATH
    os.makedirs(os.path.dirname(path), exist_ok=True)
    block = random.Random(seed).randbytes(4 * MiB)  # gzip window is 32 KiB: repeats stay incompressible
    view = memoryview(block)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    written = 0
    try:
        for _round in range(8):
            chunk = len(block)
            while chunk >= 1:
                try:
                    off = written % len(block)
                    n = os.write(fd, view[off:off + min(chunk, len(block) - off)])
                    written += n
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    chunk //= 16
            os.fsync(fd)
            if os.statvfs(root).f_bavail == 0:
                break
    finally:
        os.close(fd)
    return written


def _fill_inodes(root: str) -> int:
    d = root + INODE_FILL_DIR
    os.makedirs(d, exist_ok=True)
    n = 0
    while True:
        try:
            fd = os.open(f"{d}/i{n:06d}", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                break
            raise
        os.close(fd)
        n += 1
        if n > 10_000_000:
            raise FleetError("inode fill does not end")
    return n


def host_init(state_dir: str, name: str) -> None:
    """Runs as ``unshare --mount --uts ... fleet.py _init``; ends by exec'ing sshd."""
    hdir = os.path.join(state_dir, name)
    spec = read_json(os.path.join(hdir, "spec.json"))
    kind = KINDS[spec["kind"]]
    t0 = time.monotonic()
    mnt_ns = mnt_ns_of("self")
    if mnt_ns == spec["parent_mnt_ns"]:
        raise FleetError("not in a new mount namespace")
    _sethostname(name)
    fsdir, root = os.path.join(hdir, "fs"), os.path.join(hdir, "root")
    os.makedirs(fsdir, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    # make sure nothing propagates back to the machine
    run(["mount", "--make-rprivate", "/"])

    loop_dev = None
    if kind["fs"] == "tmpfs":
        _mount("-t", "tmpfs", "-o", f"size={kind['size']},mode=0755", f"cmz-{name}", fsdir)
    else:
        image = spec["image"]
        _mount("-t", "ext4", "-o", "loop", image, fsdir)
        with open("/proc/self/mountinfo", encoding="utf-8") as fh:
            for line in fh:
                fields = line.split()
                if fields[4] == fsdir:
                    loop_dev = fields[fields.index("-") + 2]
    os.makedirs(f"{fsdir}/upper", mode=0o755)
    os.makedirs(f"{fsdir}/work", mode=0o755)
    _mount("-t", "overlay", "-o", f"lowerdir=/,upperdir={fsdir}/upper,workdir={fsdir}/work",
           "overlay", root)
    _mount("-t", "proc", "proc", f"{root}/proc")
    _mount("--rbind", "/sys", f"{root}/sys")
    _mount("--rbind", "/dev", f"{root}/dev")
    _mount("-t", "tmpfs", "-o", f"size={kind.get('shm', SHM_SIZE)},mode=1777,nosuid,nodev", "shm", f"{root}/dev/shm")
    _mount("-t", "tmpfs", "-o", f"size={RUN_SIZE},mode=0755,nosuid,nodev", "tmpfs", f"{root}/run")
    for d, mode in (("/run/sshd", 0o755), ("/run/lock", 0o1777), (HOST_RUN_DIR, 0o755)):
        os.makedirs(root + d, exist_ok=True)
        os.chmod(root + d, mode)

    # copy the directories we write in up to the upper layer before filling it
    for d in COPY_UP_DIRS:
        probe = f"{root}{d}/.cmz-fleet-copy-up"
        with open(probe, "w", encoding="utf-8"):
            pass
        os.unlink(probe)
    with open(f"{root}/etc/hostname", "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
    # a plain Debian root profile: the machine's own one runs pyenv, which
    # waits for a lock it can never create on a full disk
    for dot in ("bashrc", "profile"):
        shutil.copyfile(f"/usr/share/base-files/dot.{dot}", f"{root}/root/.{dot}")

    # logs, owned by service users, before filling
    import grp
    import pwd
    _add_ops_user(root, pwd.getpwnam(OPS_USER))
    logs = []
    now = int(time.time())
    src_dir = spec["logsrc_dir"]
    for entry in spec["logs"]:
        dest = root + entry["path"]
        parent = os.path.dirname(dest)
        if not os.path.isdir(parent):
            os.makedirs(parent, mode=0o755)
            if entry["path"].startswith("/var/log/app/"):
                os.chown(parent, pwd.getpwnam("svcapp").pw_uid, grp.getgrnam("svcapp").gr_gid)
        shutil.copyfile(os.path.join(src_dir, entry["src"]), dest)
        uid, gid = pwd.getpwnam(entry["user"]).pw_uid, grp.getgrnam(entry["group"]).gr_gid
        os.chown(dest, uid, gid)
        os.chmod(dest, entry["mode"])
        mtime = now - entry["age"]
        os.utime(dest, (mtime, mtime))
        st = os.stat(dest)
        logs.append({
            "path": entry["path"], "sha256": entry["sha256"], "size": st.st_size,
            "uid": st.st_uid, "gid": st.st_gid, "user": entry["user"], "group": entry["group"],
            "mode": f"{stat.S_IMODE(st.st_mode):04o}", "mtime": int(st.st_mtime),
            "expect": entry["expect"], "reason": entry["reason"], "note": entry.get("note"),
        })

    writer = _start_writer(root, kind["writer"]) if "writer" in kind else None
    filled = {"writer_pid": writer} if writer else {}
    if kind["fill"] == "bytes":
        filled["filler_bytes"] = _fill_bytes(root, f"{name}:filler")
        filled["filler_path"] = FILLER_PATH
    elif kind["fill"] == "inodes":
        filled["inode_files"] = _fill_inodes(root)
        filled["inode_dir"] = INODE_FILL_DIR
    os.sync()
    fs_before = statvfs_dict(root)
    if kind["fill"] == "bytes" and fs_before["avail"] != 0:
        raise FleetError(f"{name}: still {fs_before['avail']} bytes free after filling")
    if kind["fill"] == "inodes" and fs_before["inodes_free"] != 0:
        raise FleetError(f"{name}: still {fs_before['inodes_free']} inodes free after filling")

    # sshd: everything it needs lives on the host's own /run tmpfs
    run_dir = root + HOST_RUN_DIR
    shutil.copyfile(os.path.join(hdir, "ssh_host_ed25519_key"), f"{run_dir}/ssh_host_ed25519_key")
    os.chmod(f"{run_dir}/ssh_host_ed25519_key", 0o600)
    # sshd reads authorized_keys as the user logging in: root and the ops user share this one
    shutil.copyfile(os.path.join(state_dir, "id_ed25519.pub"), f"{run_dir}/authorized_keys")
    os.chmod(f"{run_dir}/authorized_keys", 0o644)
    with open(f"{run_dir}/sshd_config", "w", encoding="utf-8") as fh:
        fh.write(sshd_config(spec["addr"], spec["port"]))

    write_json(os.path.join(hdir, "ready.json"), {
        "pid": os.getpid(), "pid_starttime": proc_starttime(os.getpid()), "mnt_ns": mnt_ns,
        "uts_ns": os.readlink("/proc/self/ns/uts"), "loop_dev": loop_dev, "logs": logs,
        "fs_before": fs_before, "init_seconds": round(time.monotonic() - t0, 3), **filled,
    })
    os.chroot(root)
    os.chdir("/")
    os.execv("/usr/sbin/sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", f"{HOST_RUN_DIR}/sshd_config"])


def _start_writer(root: str, spec: dict) -> int:
    """A process appending numbered lines to spec["path"] inside the host (chrooted), after "burst" bytes.

    It runs in the host's mount namespace with the host's root, like the host's own services, so
    that what it holds is seen there as a service's file. Returns its pid once the burst is written.
    """
    writer = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "lib", "livewriter.py")
    argv = [sys.executable, os.path.realpath(writer), spec["path"], WRITER_STATUS, "--rate", str(spec["rate"]),
            "--burst", str(spec["burst"])] + (["--unlink"] if spec["unlink"] else [])
    pid = os.fork()
    if pid == 0:  # the writer: chrooted like sshd will be, detached from the init's output
        try:
            os.chroot(root)
            os.chdir("/")
            os.setsid()
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    status_path = root + WRITER_STATUS
    deadline = time.monotonic() + 120
    while True:
        status = read_json(status_path) or {}
        if status.get("lines", 0) * 64 >= spec["burst"]:
            return pid
        if time.monotonic() > deadline:
            raise FleetError(f"the writer of {spec['path']} did not write its burst: {status}")
        time.sleep(0.1)


def _add_ops_user(root: str, account) -> None:
    """The ops user's home (on the full filesystem) and its sudo rule, in this host only."""
    os.makedirs(root + OPS_HOME, mode=0o750, exist_ok=True)
    os.chown(root + OPS_HOME, account.pw_uid, account.pw_gid)
    for dot in ("bashrc", "profile"):
        shutil.copyfile(f"/usr/share/base-files/dot.{dot}", f"{root}{OPS_HOME}/.{dot}")
    if os.path.isdir(root + "/etc/sudoers.d"):
        rule = f"{root}/etc/sudoers.d/{OPS_USER}"
        with open(rule, "w", encoding="utf-8") as fh:
            fh.write(f"{OPS_USER} ALL=(ALL) NOPASSWD: ALL\n")
        os.chmod(rule, 0o440)


def sshd_config(addr: str, port: int) -> str:
    return f"""# written by tests/fleet/fleet.py
ListenAddress {addr}:{port}
HostKey {HOST_RUN_DIR}/ssh_host_ed25519_key
PidFile {HOST_RUN_DIR}/sshd.pid
AuthorizedKeysFile {HOST_RUN_DIR}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
LogLevel INFO
"""


# ---------------------------------------------------------------- up/down

def ensure_client_key(state_dir: str) -> str:
    key = os.path.join(state_dir, "id_ed25519")
    if not os.path.exists(key):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cmz-fleet", "-f", key])
    return key


def host_dirs(state_dir: str) -> list[str]:
    try:
        names = sorted(os.listdir(state_dir))
    except FileNotFoundError:
        return []
    return [n for n in names if os.path.exists(os.path.join(state_dir, n, "spec.json"))]


def _ns_processes(manifest: dict) -> list[int]:
    """Live pids in the host's mount namespace (checked by the overlay mount too)."""
    ns = manifest.get("mnt_ns")
    if not ns or ns == mnt_ns_of("self") or ns == mnt_ns_of(1):
        return []
    # our overlay, as every process of the namespace sees it (chrooted or not)
    marker = f"upperdir={os.path.dirname(manifest['root'])}/fs/upper,"
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        if mnt_ns_of(entry) != ns:
            continue
        if proc_state(int(entry)) in (None, "Z", "X"):
            continue
        try:
            with open(f"/proc/{entry}/mountinfo", encoding="utf-8") as fh:
                # the namespace is ours only if it holds our overlay root
                if not any(marker in line for line in fh):
                    continue
        except OSError:
            continue
        pids.append(int(entry))
    return pids


def _init_process(manifest: dict) -> list[int]:
    """The pid `up` spawned, if it is still that process (before its namespace was recorded)."""
    pid, start = manifest.get("pid"), manifest.get("pid_starttime")
    if pid and start and proc_starttime(pid) == start and proc_state(pid) not in ("Z", "X", None):
        return [pid]
    return []


def _loop_devices_for(image: str) -> list[str]:
    devs = []
    try:
        real = os.path.realpath(image)
        for dev in os.listdir("/sys/block"):
            bf = f"/sys/block/{dev}/loop/backing_file"
            try:
                with open(bf, encoding="utf-8") as fh:
                    backing = fh.read().strip()
            except OSError:
                continue
            if backing in (image, real) or backing.removesuffix(" (deleted)") in (image, real):
                devs.append(f"/dev/{dev}")
    except FileNotFoundError:
        pass
    return devs


def down_host(state_dir: str, name: str, timeout: float = 15.0) -> dict:
    hdir = os.path.join(state_dir, name)
    manifest = read_json(os.path.join(hdir, "manifest.json")) or read_json(os.path.join(hdir, "spec.json")) or {}
    ready = read_json(os.path.join(hdir, "ready.json")) or {}
    for k in ("mnt_ns", "pid", "pid_starttime"):
        manifest.setdefault(k, ready.get(k))
    manifest.setdefault("root", os.path.join(hdir, "root"))
    killed: set[int] = set()
    deadline = time.monotonic() + timeout
    sig, term_sent_at = signal.SIGTERM, None
    while True:
        pids = sorted(set(_ns_processes(manifest)) | set(_init_process(manifest)))
        if not pids:
            break
        if time.monotonic() > deadline:
            raise FleetError(f"{name}: processes {pids} survive SIGKILL")
        if term_sent_at is not None and time.monotonic() - term_sent_at > 2.0:
            sig = signal.SIGKILL
        for pid in pids:
            try:
                os.kill(pid, sig)
                killed.add(pid)
            except ProcessLookupError:
                pass
        if term_sent_at is None:
            term_sent_at = time.monotonic()
        time.sleep(0.05)
    # the namespace is gone: the kernel unmounts everything and auto-clears the loop device
    image = manifest.get("image")
    detached = []
    if image:
        end = time.monotonic() + 10
        while _loop_devices_for(image) and time.monotonic() < end:
            time.sleep(0.05)
        for dev in _loop_devices_for(image):
            subprocess.run(["losetup", "-d", dev], check=False, capture_output=True)
            detached.append(dev)
        try:
            os.unlink(image)
        except FileNotFoundError:
            pass
    for sub in ("fs", "root"):
        try:
            os.rmdir(os.path.join(hdir, sub))
        except OSError:
            pass
    if os.path.exists(os.path.join(hdir, "manifest.json")):
        m = read_json(os.path.join(hdir, "manifest.json"))
        if m.get("state") != "down":
            m["state"] = "down"
            write_json(os.path.join(hdir, "manifest.json"), m)
    return {"name": name, "killed": sorted(killed), "loop_forced": detached}


def down(state_dir: str, names: list[str] | None = None) -> list[dict]:
    state_dir = check_state_dir(state_dir)
    todo = names or host_dirs(state_dir)
    res = [down_host(state_dir, n) for n in todo if os.path.isdir(os.path.join(state_dir, n))]
    if os.path.exists(os.path.join(state_dir, "inventory.yml")):
        write_inventory(state_dir)  # only the hosts still up
    return res


def write_inventory(state_dir: str) -> str:
    key = os.path.join(state_dir, "id_ed25519")
    hosts = {}
    for n in host_dirs(state_dir):
        m = read_json(os.path.join(state_dir, n, "manifest.json"))
        if m and m.get("state") == "up":
            hosts[n] = m
    q = json.dumps
    lines = ["# written by tests/fleet/fleet.py", "all:", "  children:", "    fleet:", "      vars:",
             "        ansible_user: root",
             f"        ansible_ssh_private_key_file: {q(key)}",
             f"        ansible_ssh_common_args: {q(SSH_COMMON_ARGS)}",
             f"        ansible_python_interpreter: {q(python_in_hosts())}",
             f"        fleet_state_dir: {q(state_dir)}",
             "      hosts:"]
    for n, m in hosts.items():
        lines += [f"        {n}:", f"          ansible_host: {q(m['addr'])}", f"          ansible_port: {m['port']}",
                  f"          fleet_kind: {m['kind']}",
                  f"          fleet_manifest: {q(os.path.join(state_dir, n, 'manifest.json'))}"]
    groups: dict[str, list[str]] = {}
    for n, m in hosts.items():
        groups.setdefault(m["kind"], []).append(n)
        groups.setdefault("full" if m["kind"] in FULL_KINDS else "not_full", []).append(n)
    for g in sorted(groups):
        lines += [f"    {g}:", "      hosts:"] + [f"        {n}:" for n in groups[g]]
    path = os.path.join(state_dir, "inventory.yml")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(path + ".tmp", path)
    return path


def python_in_hosts() -> str:
    # the lower layer is /, so the machine's interpreters exist in every host;
    # prefer the distribution's one, as on a real server
    for cand in ("/usr/bin/python3", sys.executable):
        if cand and os.access(cand, os.X_OK):
            return cand
    return "/usr/bin/python3"


def up(state_dir: str, hosts: list[dict], timeout: float = 120.0) -> dict:
    if os.geteuid() != 0:
        raise FleetError("must run as root")
    state_dir = check_state_dir(state_dir)
    t0 = time.monotonic()
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    seen = set()
    for h in hosts:
        for key in ("name", "port"):
            if h[key] in seen:
                raise FleetError(f"duplicate {key} {h[key]}")
            seen.add(h[key])
    # a host already up under this name is replaced
    for h in hosts:
        if os.path.isdir(os.path.join(state_dir, h["name"])):
            down_host(state_dir, h["name"])
    for h in hosts:
        if port_open(h["addr"], h["port"]):
            raise FleetError(f"{h['addr']}:{h['port']} is already in use")
    ensure_service_users()
    ensure_client_key(state_dir)
    logsrc_dir, logs = prepare_log_sources()
    parent_ns = mnt_ns_of("self")
    procs = {}
    try:
        for h in hosts:
            hdir = os.path.join(state_dir, h["name"])
            shutil.rmtree(hdir, ignore_errors=True)
            os.makedirs(hdir, mode=0o700)
            kind = KINDS[h["kind"]]
            host_logs = [e for e in logs if not e["kinds"] or h["kind"] in e["kinds"]]
            spec = dict(h, root=os.path.join(hdir, "root"), parent_mnt_ns=parent_ns, logs=host_logs,
                        logsrc_dir=logsrc_dir, upper_fs=kind["fs"], upper_size=kind["size"])
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", h["name"],
                 "-f", os.path.join(hdir, "ssh_host_ed25519_key")])
            if kind["fs"] == "ext4":
                image = os.path.join(hdir, "disk.img")
                with open(image, "wb") as fh:
                    fh.truncate(kind["size"])
                cmd = ["mkfs.ext4", "-q", "-F", "-m", "0", "-b", "4096", "-L", h["name"][:16],
                       "-E", "lazy_itable_init=0,lazy_journal_init=0"]
                if "inodes" in kind:
                    cmd += ["-N", str(kind["inodes"])]
                run(cmd + [image])
                spec["image"] = image
            write_json(os.path.join(hdir, "spec.json"), spec)
            out = open(os.path.join(hdir, "sshd.log"), "ab")
            procs[h["name"]] = subprocess.Popen(
                ["unshare", "--mount", "--uts", "--propagation", "private",
                 sys.executable, os.path.abspath(__file__), "_init", "--state-dir", state_dir, "--name", h["name"]],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True)
            out.close()
            spec["pid"] = procs[h["name"]].pid
            spec["pid_starttime"] = proc_starttime(spec["pid"])
            write_json(os.path.join(hdir, "spec.json"), spec)
        pending = {h["name"]: h for h in hosts}
        deadline = time.monotonic() + timeout
        while pending:
            for n, h in list(pending.items()):
                p = procs[n]
                if p.poll() is not None:
                    with open(os.path.join(state_dir, n, "sshd.log"), encoding="utf-8", errors="replace") as fh:
                        tail = fh.read()[-3000:]
                    raise FleetError(f"host {n} exited with {p.returncode}:\n{tail}")
                ready = read_json(os.path.join(state_dir, n, "ready.json"))
                if ready and port_open(h["addr"], h["port"]):
                    spec = read_json(os.path.join(state_dir, n, "spec.json"))
                    spec.pop("logs")
                    manifest = dict(spec, **ready, state="up", hostname=n,
                                    python=python_in_hosts(), ssh_key=os.path.join(state_dir, "id_ed25519"),
                                    created=int(time.time()))
                    write_json(os.path.join(state_dir, n, "manifest.json"), manifest)
                    del pending[n]
            if time.monotonic() > deadline:
                raise FleetError(f"timeout waiting for {', '.join(pending)}")
            time.sleep(0.02)
    except BaseException:
        for n in procs:
            try:
                down_host(state_dir, n)
            except Exception as exc:  # noqa: BLE001 - best effort cleanup, report the first error
                log(f"cleanup of {n} failed: {exc}")
        raise
    inv = write_inventory(state_dir)
    return {"inventory": inv, "seconds": round(time.monotonic() - t0, 2),
            "hosts": {n: read_json(os.path.join(state_dir, n, "manifest.json")) for n in procs}}


def status(state_dir: str) -> dict:
    state_dir = check_state_dir(state_dir)
    out = {"state_dir": state_dir, "inventory": os.path.join(state_dir, "inventory.yml"), "hosts": {}}
    for n in host_dirs(state_dir):
        hdir = os.path.join(state_dir, n)
        m = read_json(os.path.join(hdir, "manifest.json")) or read_json(os.path.join(hdir, "spec.json"))
        m.setdefault("root", os.path.join(hdir, "root"))
        pids = _ns_processes(m)
        alive = bool(_init_process(m))
        entry = {"kind": m["kind"], "addr": m["addr"], "port": m["port"], "state": m.get("state", "starting"),
                 "pid": m.get("pid"), "alive": alive, "mnt_ns": m.get("mnt_ns"), "ns_pids": pids,
                 "port_open": port_open(m["addr"], m["port"]), "loop_dev": m.get("loop_dev"),
                 "fs_before": m.get("fs_before")}
        if alive:
            try:
                entry["fs_now"] = statvfs_dict(f"/proc/{m['pid']}/root/")
            except OSError:
                pass
        out["hosts"][n] = entry
    return out


# -------------------------------------------------------------------- CLI

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_up = sub.add_parser("up", help="start hosts")
    p_up.add_argument("--state-dir", required=True)
    p_up.add_argument("--host", action="append", required=True, metavar="NAME:KIND:ADDR:PORT")
    p_up.add_argument("--timeout", type=float, default=120.0)
    p_down = sub.add_parser("down", help="stop hosts (all, or --host NAME)")
    p_down.add_argument("--state-dir", required=True)
    p_down.add_argument("--host", action="append", metavar="NAME")
    p_st = sub.add_parser("status", help="print JSON status")
    p_st.add_argument("--state-dir", required=True)
    p_init = sub.add_parser("_init", help=argparse.SUPPRESS)
    p_init.add_argument("--state-dir", required=True)
    p_init.add_argument("--name", required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "up":
            res = up(args.state_dir, [parse_host(h) for h in args.host], timeout=args.timeout)
            summary = {n: {"kind": m["kind"], "addr": m["addr"], "port": m["port"], "pid": m["pid"],
                           "fs_before": m["fs_before"], "init_seconds": m["init_seconds"]}
                       for n, m in res["hosts"].items()}
            print(json.dumps({"inventory": res["inventory"], "seconds": res["seconds"], "hosts": summary}, indent=2))
        elif args.cmd == "down":
            print(json.dumps(down(args.state_dir, args.host), indent=2))
        elif args.cmd == "status":
            print(json.dumps(status(args.state_dir), indent=2))
        elif args.cmd == "_init":
            host_init(os.path.abspath(args.state_dir), args.name)
    except FleetError as exc:
        log(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
