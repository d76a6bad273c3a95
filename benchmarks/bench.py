"""Benchmark of issue 3: the sre.cmemgzip engine and module against gzip,
pigz and cmemgzip 0.4.4, on the same generated inputs, in the same run.

    python3 benchmarks/bench.py                       # 256M and 1G, levels 6,9, 3 runs
    python3 benchmarks/bench.py --quick               # 64M, 1 run (smoke test)
    python3 benchmarks/bench.py --sizes 256M --levels 6,9 --runs 3 --kinds access
    python3 benchmarks/bench.py --profile             # cProfile of the engine, top 20

Needs root (it mounts a tmpfs of its own under /mnt/cmz-bench-PID), gzip,
pigz, ansible, and optionally cmemgzip 0.4.4.  Standard library only.
See benchmarks/README.md for what each column means.
"""

import argparse
import datetime
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import loggen  # noqa: E402  (the one log generator)
import worktree  # noqa: E402  (the one collection link)

worktree.use_in_process()
from ansible_collections.sre.cmemgzip.plugins.module_utils import sysinfo  # noqa: E402

MiB = 1 << 20
TOOLS = ("engine", "module", "gzip", "pigz", "cmemgzip")
ENGINE_FILE = os.path.join(REPO, "plugins", "module_utils", "gzip_member.py")
MODULE_FILE = os.path.join(REPO, "plugins", "modules", "cmemgzip.py")
RESULTS = os.path.join(HERE, "results")
ENGINE_SLACK = 64 * MiB  # the engine's RAM bound: compressed size + 64 MiB
RUN_TIMEOUT = 3600


class Interrupted(Exception):
    pass


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# --------------------------------------------------------------------------
# environment
# --------------------------------------------------------------------------

def cmd_version(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=60, check=False)
        return p.stdout.decode(errors="replace").strip().splitlines()[0]
    except Exception as exc:
        return "unavailable (%s)" % exc


def cmemgzip_command():
    """The cmemgzip command line prefix, or None.

    The PyPI package 0.4.4 declares no console script; when `cmemgzip` is not
    on PATH it is run as `python3 -m cmemgzip.cmemgzip` (same code).
    """
    exe = shutil.which("cmemgzip")
    if exe:
        return [exe]
    p = subprocess.run([sys.executable, "-c", "import cmemgzip.cmemgzip"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    if p.returncode == 0:
        return [sys.executable, "-m", "cmemgzip.cmemgzip"]
    return None


def cmemgzip_version():
    try:
        from importlib.metadata import version
        return version("cmemgzip")
    except Exception:
        return None


def git_head():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              check=False).stdout.decode().strip() or None
    except OSError:
        return None


def file_sha256(path):
    try:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


# --------------------------------------------------------------------------
# mounts and cleanup
# --------------------------------------------------------------------------

class Workspace:
    """A tmpfs of our own under /mnt/cmz-bench-PID and a dir under /dev/shm."""

    def __init__(self, size_bytes):
        self.mnt = "/mnt/cmz-bench-%d" % os.getpid()
        self.shm = "/dev/shm/cmz-bench-%d" % os.getpid()
        self.size = size_bytes
        self.mounted = False

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%dm,mode=0755" % (self.size // MiB + 1),
                        "cmz-bench", self.mnt], check=True)
        self.mounted = True
        os.makedirs(self.shm, exist_ok=True)
        log("mounted tmpfs %s (%d MiB); journal dir %s" % (self.mnt, self.size // MiB, self.shm))
        return self

    def path(self, *parts):
        return os.path.join(self.mnt, *parts)

    def __exit__(self, *exc):
        shutil.rmtree(self.shm, ignore_errors=True)
        if self.mounted:
            for attempt in range(5):
                p = subprocess.run(["umount", self.mnt], stderr=subprocess.PIPE, check=False)
                if p.returncode == 0:
                    break
                time.sleep(1)
            else:
                log("WARNING: could not umount %s: %s" % (self.mnt, p.stderr.decode().strip()))
                return False
            self.mounted = False
        try:
            os.rmdir(self.mnt)
        except OSError:
            pass
        log("unmounted and removed %s" % self.mnt)
        return False


# --------------------------------------------------------------------------
# running one command and measuring it
# --------------------------------------------------------------------------

CURRENT_CHILD = {"pid": None}


TIME = "/usr/bin/time"


def measure(argv, stdout_path, env=None, stdin_devnull=True, timeout=RUN_TIMEOUT):
    """Run argv under GNU time; return dict(rc, wall, cpu, maxrss, ...).

    One method for every tool: the command runs as the child of
    /usr/bin/time, which reports the child's wait4() rusage (%M: the peak
    RSS of the child and of every descendant it reaped).  It cannot be
    wait4() on a direct child of this script: Linux keeps the RSS
    high-water mark of the address space a process had before execve(), so
    every child forked from this (large) Python process would report at
    least this process's own RSS.  GNU time is small, so its child starts
    clean.  wall is measured here (monotonic clock, includes time's
    negligible fork/exec); cpu is user+system of the tree, from wait4().
    """
    rusage_file = stdout_path + ".time"
    argv = [TIME, "-f", "%M %x", "-o", rusage_file, "--"] + list(argv)
    with open(stdout_path, "wb") as out, open(stdout_path + ".err", "wb") as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL if stdin_devnull else None,
                                env=env, start_new_session=True)
        CURRENT_CHILD["pid"] = proc.pid
        killed = {"v": False}

        def kill():
            killed["v"] = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            status, ru = os.wait4(proc.pid, 0)[1:]
        finally:
            timer.cancel()
            CURRENT_CHILD["pid"] = None
        wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    maxrss = 0  # 0 = unknown (GNU time wrote nothing)
    try:
        words = open(rusage_file).read().split()
        maxrss = int(words[-2]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"rc": proc.returncode, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
            "maxrss": maxrss, "timeout": killed["v"],
            "stderr_tail": tail(stdout_path + ".err")}


def tail(path, n=400):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - n))
            return f.read().decode(errors="replace").strip()
    except OSError:
        return ""


def gzip_test(path):
    p = subprocess.run(["gzip", "-t", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       check=False)
    return p.returncode == 0, p.stderr.decode(errors="replace").strip()


def zcat_sha256(path):
    h = hashlib.sha256()
    n = 0
    p = subprocess.Popen(["zcat", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    for chunk in iter(lambda: p.stdout.read(1 << 20), b""):
        h.update(chunk)
        n += len(chunk)
    p.wait()
    return (h.hexdigest() if p.returncode == 0 else None), n


# --------------------------------------------------------------------------
# the tools
# --------------------------------------------------------------------------

class Bench:
    def __init__(self, args, ws):
        self.a = args
        self.ws = ws
        self.cpus = sysinfo.usable_cpus()
        self.cmemgzip = cmemgzip_command()
        self.runs = []          # every run, raw
        self.verified = set()   # (tool, input, level) whose zcat sha256 was checked
        self.absent = {}        # tool -> reason while it is not there

    # ---- per tool ---------------------------------------------------------

    def availability(self, tool, level):
        if tool == "engine" and not os.path.exists(ENGINE_FILE):
            return "absent: %s does not exist" % os.path.relpath(ENGINE_FILE, REPO)
        if tool == "module" and not os.path.exists(MODULE_FILE):
            return "absent: %s does not exist" % os.path.relpath(MODULE_FILE, REPO)
        if tool == "cmemgzip":
            if not self.cmemgzip:
                return "absent: cmemgzip is not installed"
            if level != 9:
                return "cmemgzip has no level option (always gzip level 9)"
        if tool == "pigz" and not shutil.which("pigz"):
            return "absent: pigz is not installed"
        return None

    def _copy_input(self, inp, tool):
        d = self.ws.path(tool)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        dst = os.path.join(d, os.path.basename(inp["path"]))
        shutil.copyfile(inp["path"], dst)
        os.utime(dst, (time.time() - 3600, time.time() - 3600))  # not "too young"
        return dst

    def run_engine(self, inp, level):
        out = os.path.join(self.ws.shm, "engine.gz")
        stdout = os.path.join(self.ws.shm, "engine.json")
        argv = [sys.executable, os.path.join(HERE, "run_engine.py"), "--input", inp["path"],
                "--output", out, "--level", str(level), "--threads", str(self.a.threads)]
        m = measure(argv, stdout)
        info = {}
        try:
            info = json.loads(open(stdout).read().strip().splitlines()[-1])
        except (ValueError, IndexError, OSError):
            pass
        if m["rc"] == 3:
            m["na"] = info.get("error", "engine cannot be imported")
        elif m["rc"] != 0:
            m["error"] = "exit %d: %s" % (m["rc"], m["stderr_tail"][-300:])
        m["engine"] = info
        return m, out, [out]

    def run_module(self, inp, level):
        src = self._copy_input(inp, "module")
        out = src + ".gz"
        stdout = os.path.join(self.ws.shm, "module.json")
        env = worktree.ansible_env()
        env.update({
            # ansible-core has no 'json' callback (it is ansible.posix.json):
            # 'minimal' prints "localhost | CHANGED => {json}", parsed below.
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_NOCOLOR": "1",
        })
        argv = ["ansible", "localhost", "-c", "local", "-m", "sre.cmemgzip.cmemgzip",
                "-a", "path=%s level=%d" % (src, level)]
        m = measure(argv, stdout, env=env)
        res = None
        raw = open(stdout, "rb").read().decode(errors="replace")
        try:
            start = raw.index("{", raw.index("localhost | "))
            res = json.JSONDecoder().raw_decode(raw[start:])[0]
        except (ValueError, TypeError):
            pass
        m["module_result"] = _slim(res) if res is not None else None
        if res is None:
            m["error"] = "exit %d, no JSON result: %s %s" % (
                m["rc"], raw.strip()[-300:], m["stderr_tail"][-300:])
            both = raw + m["stderr_tail"]
            if "couldn't resolve module" in both or "could not be found" in both or \
                    "was not found" in both:
                m["na"] = "module cannot be resolved: " + raw.strip()[-200:]
                m.pop("error")
        elif res.get("failed") or m["rc"] != 0:
            m["error"] = "module failed: %s" % (res.get("msg") or "")[:400]
        else:
            mem = res.get("memory") or {}
            if mem.get("peak_rss"):
                m["tree_maxrss"] = m["maxrss"]
                m["maxrss"] = int(mem["peak_rss"])  # the module's own report
                m["rss_source"] = "module memory.peak_rss"
            files = res.get("files") or []
            if files and files[0].get("dest"):
                out = files[0]["dest"]
            if os.path.exists(src):
                m["error"] = "original %s still exists after the module ran (action=%s)" % (
                    src, files[0].get("action") if files else None)
        return m, out, [os.path.dirname(src)]

    def run_gzip(self, inp, level):
        out = self.ws.path("gzip.gz")
        m = measure(["gzip", "-%d" % level, "-c", inp["path"]], out)
        if m["rc"] != 0:
            m["error"] = "exit %d: %s" % (m["rc"], m["stderr_tail"])
        return m, out, [out]

    def run_pigz(self, inp, level):
        out = self.ws.path("pigz.gz")
        m = measure(["pigz", "-%d" % level, "-p", str(self.cpus), "-c", inp["path"]], out)
        if m["rc"] != 0:
            m["error"] = "exit %d: %s" % (m["rc"], m["stderr_tail"])
        return m, out, [out]

    def run_cmemgzip(self, inp, level):
        src = self._copy_input(inp, "cmemgzip")
        out = src + ".gz"
        stdout = os.path.join(self.ws.shm, "cmemgzip.txt")
        m = measure(self.cmemgzip + ["-b", src], stdout)  # stdin is /dev/null
        if m["rc"] != 0 or not os.path.exists(out) or os.path.exists(src):
            m["error"] = "exit %d, output %s, original %s: %s" % (
                m["rc"], "present" if os.path.exists(out) else "missing",
                "still there" if os.path.exists(src) else "removed",
                open(stdout, errors="replace").read().strip()[-300:])
        return m, out, [os.path.dirname(src)]

    # ---- one run ----------------------------------------------------------

    def one(self, tool, inp, level, rnd):
        why = self.availability(tool, level)
        rec = {"tool": tool, "level": level, "input": inp["label"], "round": rnd,
               "loadavg": os.getloadavg()[0]}
        if why:
            rec["na"] = why
            if why.startswith("absent"):
                self.absent[tool] = why
            self.runs.append(rec)
            return rec
        m, out, trash = getattr(self, "run_" + tool)(inp, level)
        rec.update(m)
        if "na" in m:
            self.absent[tool] = "absent: " + m["na"]
        elif "error" not in m:
            rec["output_size"] = os.path.getsize(out)
            ok, msg = gzip_test(out)
            rec["gzip_t"] = ok
            if not ok:
                rec["error"] = "gzip -t failed: " + msg
            key = (tool, inp["label"], level)
            if ok and key not in self.verified:
                digest, n = zcat_sha256(out)
                rec["zcat_sha256_ok"] = digest == inp["sha256"]
                if digest != inp["sha256"]:
                    rec["error"] = "zcat output differs from the input (%d bytes, sha256 %s)" % (n, digest)
                self.verified.add(key)
        for t in trash:
            if os.path.isdir(t):
                shutil.rmtree(t, ignore_errors=True)
            elif os.path.exists(t):
                os.unlink(t)
        self.runs.append(rec)
        status = rec.get("na") or rec.get("error") or "ok"
        log("%-8s L%d %-12s run %d: %6.2fs cpu %6.2fs rss %6.1f MiB out %s  %s" % (
            tool, level, inp["label"], rnd + 1, rec.get("wall", 0), rec.get("cpu", 0),
            (rec.get("maxrss") or 0) / MiB, rec.get("output_size", "-"), status[:200]))
        return rec


def _slim(res):
    """Keep the useful parts of the module's result."""
    keep = {}
    for k in ("changed", "failed", "msg", "totals", "memory", "journal", "files"):
        if k in res:
            keep[k] = res[k]
    return keep


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------

def summarize(runs, inputs):
    groups = {}
    for r in runs:
        groups.setdefault((r["input"], r["level"], r["tool"]), []).append(r)
    rows = []
    for (label, level, tool), rs in groups.items():
        ok = [r for r in rs if "na" not in r and "error" not in r]
        row = {"tool": tool, "level": level, "input": label, "runs": len(ok),
               "attempts": len(rs)}
        na = [r["na"] for r in rs if "na" in r]
        errs = [r["error"] for r in rs if "error" in r]
        if na and not ok:
            row["na"] = na[-1]
        if errs:
            row["errors"] = errs
        if ok:
            row["wall"] = statistics.median(r["wall"] for r in ok)
            row["cpu"] = statistics.median(r["cpu"] for r in ok)
            row["maxrss"] = max(r["maxrss"] for r in ok)
            row["output_size"] = statistics.median(r["output_size"] for r in ok)
            row["wall_all"] = [round(r["wall"], 3) for r in ok]
            row["verified"] = any(r.get("zcat_sha256_ok") for r in ok) and \
                all(r.get("gzip_t") for r in ok)
            if tool == "engine":
                row["bound"] = row["output_size"] + ENGINE_SLACK
                row["ram_used"] = row["maxrss"] + row["output_size"]  # RSS + journal on /dev/shm
                row["within_bound"] = row["ram_used"] <= row["bound"]
            own = [r["engine"].get("seconds") if tool == "engine" else
                   ((r.get("module_result") or {}).get("files") or [{}])[0].get("seconds")
                   if tool == "module" else None for r in ok]
            own = [x for x in own if x is not None]
            if own:
                row["own_seconds"] = statistics.median(own)
            if tool == "module":
                row["rss_source"] = ok[-1].get("rss_source", "wait4 (ansible process tree)")
                row["tree_maxrss"] = max(r.get("tree_maxrss", r["maxrss"]) for r in ok)
        rows.append(row)
    # relative columns
    index = {(r["input"], r["level"], r["tool"]): r for r in rows}
    for r in rows:
        pig = index.get((r["input"], r["level"], "pigz"))
        gz = index.get((r["input"], r["level"], "gzip"))
        if "wall" in r and pig and pig.get("wall"):
            r["vs_pigz"] = r["wall"] / pig["wall"]
        if "output_size" in r and gz and gz.get("output_size"):
            r["vs_gzip"] = r["output_size"] / gz["output_size"]
        size = inputs[r["input"]]["size"]
        if r.get("output_size"):
            r["ratio"] = size / r["output_size"]
    order = {t: i for i, t in enumerate(TOOLS)}
    labels = list(inputs)
    rows.sort(key=lambda r: (labels.index(r["input"]), r["level"], order[r["tool"]]))
    return rows


def fmt_mib(n):
    return "%.1f" % (n / MiB)


def table(rows, markdown):
    head = ["tool", "level", "input", "wall s (median)", "vs pigz", "own s", "CPU s",
            "output MiB", "vs gzip", "ratio", "peak RSS MiB", "engine RAM / bound MiB", "verified"]
    lines = []
    for r in rows:
        if "wall" not in r:
            why = r.get("na") or "; ".join(r.get("errors", []))[:80] or "?"
            cells = [r["tool"], str(r["level"]), r["input"], "n/a", "", "", "", "", "", "", "", "",
                     ("n/a: " if "na" in r else "FAILED: ") + why]
        else:
            bound = ""
            if r["tool"] == "engine":
                bound = "%s / %s %s" % (fmt_mib(r["ram_used"]), fmt_mib(r["bound"]),
                                        "ok" if r["within_bound"] else "OVER")
            rss = fmt_mib(r["maxrss"])
            if r["tool"] == "module" and "tree_maxrss" in r and r.get("rss_source", "").startswith("module"):
                rss += " (tree %s)" % fmt_mib(r["tree_maxrss"])
            verified = "yes" if r.get("verified") and not r.get("errors") else \
                "FAILED: " + "; ".join(r.get("errors", ["not verified"]))[:80]
            cells = [r["tool"], str(r["level"]), r["input"],
                     "%.2f" % r["wall"],
                     "%.2fx" % r["vs_pigz"] if "vs_pigz" in r else "",
                     "%.2f" % r["own_seconds"] if "own_seconds" in r else "",
                     "%.2f" % r["cpu"],
                     "%.2f" % (r["output_size"] / MiB),
                     "%.4fx" % r["vs_gzip"] if "vs_gzip" in r else "",
                     "%.2f" % r["ratio"] if "ratio" in r else "",
                     rss, bound, verified]
        lines.append(cells)
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "|".join(
            "---:" if h not in ("tool", "input", "verified") else "---" for h in head) + "|"]
        out += ["| " + " | ".join(c) + " |" for c in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(c[i]) for c in lines)) if lines else len(h)
              for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(c.ljust(w) for c, w in zip(cells, widths)) for cells in lines]
    return "\n".join(out)


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="256M,1G")
    ap.add_argument("--levels", default="6,9")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kinds", default="access", help="comma list of " + ",".join(loggen.KINDS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma list, in run order")
    ap.add_argument("--threads", type=int, default=0,
                    help="engine threads (0 = what it decides: usable CPUs)")
    ap.add_argument("--quick", action="store_true", help="64M, 1 run (smoke test)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the inputs (moved to benchmarks/data/) instead of deleting them")
    ap.add_argument("--profile", type=int, nargs="?", const=20, default=0,
                    help="only cProfile the engine on one input (first kind/size, level 9); top N")
    ap.add_argument("--no-retry", action="store_true",
                    help="do not retry, at the end, tools that were absent during the run")
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes, a.runs = "64M", 1
    a.size_list = [loggen.parse_size(s) for s in a.sizes.split(",") if s]
    a.level_list = [int(x) for x in a.levels.split(",") if x]
    a.kind_list = [k for k in a.kinds.split(",") if k]
    a.tool_list = [t for t in a.tools.split(",") if t]
    for k in a.kind_list:
        if k not in loggen.KINDS:
            ap.error("unknown kind %s" % k)
    for t in a.tool_list:
        if t not in TOOLS:
            ap.error("unknown tool %s" % t)
    return a


def size_label(n):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if n % (1 << shift) == 0:
            return "%d%s" % (n >> shift, unit)
    return str(n)


def on_signal(signum, frame):
    pid = CURRENT_CHILD["pid"]
    if pid:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
    raise Interrupted("signal %d" % signum)


def main(argv=None):
    a = parse_args(argv)
    if not os.access(TIME, os.X_OK):
        sys.exit("bench.py needs GNU time at %s (Debian package 'time') to measure peak RSS" % TIME)
    if os.geteuid() != 0:
        sys.exit("bench.py needs root: it mounts a tmpfs under /mnt/cmz-bench-PID")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if a.profile:
        a.size_list, a.kind_list = a.size_list[:1], a.kind_list[:1]
    started = datetime.datetime.now()
    stamp = started.strftime("%Y%m%d-%H%M%S")
    biggest = max(a.size_list)
    # inputs + one copy + its .gz + gzip/pigz output, with room to spare
    ws_size = sum(a.size_list) * len(a.kind_list) + 2 * biggest + 256 * MiB
    t_start = time.monotonic()
    with Workspace(ws_size) as ws:
        inputs = {}
        for kind in a.kind_list:
            for size in a.size_list:
                label = "%s-%s" % (kind, size_label(size))
                path = ws.path("%s.log" % label)
                t0 = time.monotonic()
                digest = loggen.write_log(path, size, a.seed, kind)
                os.utime(path, (time.time() - 3600, time.time() - 3600))
                log("generated %s (%d bytes, sha256 %s) in %.1fs" % (
                    path, size, digest[:16], time.monotonic() - t0))
                inputs[label] = {"label": label, "kind": kind, "size": size, "seed": a.seed,
                                 "path": path, "sha256": digest}
        if a.profile:
            inp = next(iter(inputs.values()))
            argv = [sys.executable, os.path.join(HERE, "run_engine.py"), "--input", inp["path"],
                    "--output", os.path.join(ws.shm, "profile.gz"), "--level", "9",
                    "--threads", str(a.threads), "--profile", str(a.profile)]
            log("cProfile of the engine on %s, level 9" % inp["label"])
            rc = subprocess.call(argv)
            return rc
        b = Bench(a, ws)
        log("usable CPUs: %d (affinity %d, cgroup quota %s); load average %s" % (
            b.cpus, len(os.sched_getaffinity(0)), sysinfo.cgroup_cpu_quota(), os.getloadavg()))
        try:
            for inp in inputs.values():
                for level in a.level_list:
                    for rnd in range(a.runs):
                        for tool in a.tool_list:
                            b.one(tool, inp, level, rnd)
            # tools that were not there yet: try again now
            if b.absent and not a.no_retry:
                retry = [t for t in a.tool_list if t in b.absent]
                b.absent = {}
                for tool in retry:
                    if b.availability(tool, 9) and b.availability(tool, 9).startswith("absent"):
                        log("retry: %s still absent" % tool)
                        continue
                    log("retry: %s is there now, running it" % tool)
                    b.runs = [r for r in b.runs if not (r["tool"] == tool and "na" in r
                                                        and r["na"].startswith("absent"))]
                    for inp in inputs.values():
                        for level in a.level_list:
                            for rnd in range(a.runs):
                                b.one(tool, inp, level, rnd)
        finally:
            if a.keep:
                dest = os.path.join(HERE, "data", stamp)
                os.makedirs(dest, exist_ok=True)
                for inp in inputs.values():
                    if os.path.exists(inp["path"]):
                        shutil.move(inp["path"], os.path.join(dest, os.path.basename(inp["path"])))
                log("inputs kept in %s" % dest)
        elapsed = time.monotonic() - t_start

    rows = summarize(b.runs, inputs)
    env = {
        "started": started.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "host": os.uname().nodename,
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
        "usable_cpus": b.cpus,
        "affinity_cpus": len(os.sched_getaffinity(0)),
        "cgroup_cpu_quota": sysinfo.cgroup_cpu_quota(),
        "loadavg_end": os.getloadavg(),
        "gzip": cmd_version(["gzip", "--version"]),
        "pigz": cmd_version(["pigz", "--version"]),
        "ansible": cmd_version(["ansible", "--version"]),
        "cmemgzip": cmemgzip_version(),
        "cmemgzip_command": b.cmemgzip,
        "repo_head": git_head(),
        "gzip_member_sha256": file_sha256(ENGINE_FILE),
        "module_sha256": file_sha256(MODULE_FILE),
        "runs_per_cell": a.runs,
        "order": a.tool_list,
        "input_fs": "tmpfs (own mount under /mnt/cmz-bench-PID)",
        "engine_output": "/dev/shm",
    }
    doc = {"environment": env, "inputs": list(inputs.values()), "summary": rows, "runs": b.runs}
    os.makedirs(RESULTS, exist_ok=True)
    jpath = os.path.join(RESULTS, "bench-%s.json" % stamp)
    with open(jpath, "w") as f:
        json.dump(doc, f, indent=1, default=str)
    md = ["# sre.cmemgzip benchmark, %s" % env["started"], "",
          "Inputs: %s (generated by `tests/lib/loggen.py`, seed %d, on tmpfs). %d usable CPUs, "
          "Python %s, %s, %s, cmemgzip %s. Median of %d run(s); load average at the end %s. "
          "Other processes share the CPUs: timings are noisy." % (
              ", ".join("%s (%d bytes)" % (k, v["size"]) for k, v in inputs.items()),
              a.seed, b.cpus, env["python"], env["gzip"], env["pigz"], env["cmemgzip"],
              a.runs, " ".join("%.2f" % x for x in env["loadavg_end"])),
          "", table(rows, markdown=True), ""]
    with open(os.path.join(RESULTS, "latest.md"), "w") as f:
        f.write("\n".join(md))
    print(table(rows, markdown=False))
    print()
    print("results: %s and %s (total %.0fs)" % (jpath, os.path.join(RESULTS, "latest.md"), elapsed))
    bad = [r for r in rows if r.get("errors")]
    return 1 if bad else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Interrupted as exc:
        sys.exit("interrupted (%s); mounts cleaned up" % exc)
