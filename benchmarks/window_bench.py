"""Benchmark of issue 11: the window strategy against the copy strategy.

    python3 benchmarks/window_bench.py                    # 1 GiB access log, tmpfs and ext4, 3 runs
    python3 benchmarks/window_bench.py --size 256M --runs 1 --fs tmpfs    # quick

The same generated log (tests/lib/loggen.py) is compressed by the engine
(``engine.run``, as the module calls it, in a process of its own) with
``strategy: copy`` and a journal big enough for the whole copy (today's
path), and with ``strategy: window`` and a 64 MiB journal (a container's
/dev/shm).  Runs alternate between the two.  Per run: wall time of the
process, its peak RSS (VmHWM, the engine's ``memory.peak_rss``), the peak
journal use (``memory.peak_journal``: the compressed copy for ``copy``,
the largest checkpoint plus the one it replaces for ``window``), output
size; the first run of each is checked with ``gzip -dc | sha256sum``.

Needs root (tmpfs and loop mounts under /mnt/cmz-wbench-PID, images in
/var/tmp).  Results: benchmarks/results/window-<timestamp>.json and
window-latest.md.  Standard library only.
"""

import argparse
import datetime
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import loggen  # noqa: E402  (the one log generator)
import worktree  # noqa: E402  (the one collection link)

MiB = 1 << 20
RESULTS = os.path.join(HERE, "results")
STRATEGIES = ("copy", "window")
WINDOW_JOURNAL = 64 * MiB

CHILD = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.sre.cmemgzip.plugins.module_utils import engine
args = json.loads(sys.argv[2])
started = time.monotonic()
result = engine.run(engine.Options(**args))
result['wall'] = time.monotonic() - started
print(json.dumps(result))
'''


def log(msg):
    sys.stderr.write("[window-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Mounts(object):
    """Mount points and loop devices of this benchmark, undone in reverse order."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="cmz-wbench-%d-" % os.getpid(), dir="/mnt")
        self.undo = []

    def tmpfs(self, name, size):
        path = os.path.join(self.base, name)
        os.mkdir(path)
        run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % size, "cmz-wbench", path])
        self.undo.append(["umount", path])
        return path

    def ext4(self, name, size):
        path = os.path.join(self.base, name)
        os.mkdir(path)
        fd, image = tempfile.mkstemp(prefix="cmz-wbench-", suffix=".img", dir="/var/tmp")
        os.close(fd)
        self.undo.append(["rm", "-f", image])
        os.truncate(image, size)
        run(["mkfs.ext4", "-q", "-F", "-m", "0", image])
        dev = run(["losetup", "--find", "--show", image]).stdout.strip()
        self.undo.append(["losetup", "-d", dev])
        run(["mount", dev, path])
        self.undo.append(["umount", path])
        return path

    def close(self):
        for cmd in reversed(self.undo):
            subprocess.run(cmd, check=False, capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def zcat_sha256(path):
    digest = hashlib.sha256()
    with subprocess.Popen(["gzip", "-dc", path], stdout=subprocess.PIPE) as proc:
        for chunk in iter(lambda: proc.stdout.read(4 * MiB), b""):
            digest.update(chunk)
    return digest.hexdigest() if proc.returncode == 0 else None


def one_run(strategy, source, workdir, journal, level, threads, verify_sha):
    target = os.path.join(workdir, "access.log")
    shutil.copyfile(source, target)
    st = os.stat(source)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.sync()
    args = {"paths": [target], "min_size": 0, "level": level, "threads": threads, "journal_dir": journal,
            "strategy": strategy}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD, worktree.COLLECTIONS, json.dumps(args)],
                          check=False, capture_output=True, text=True)
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise RuntimeError("engine failed: %s" % proc.stderr[-2000:])
    result = json.loads(proc.stdout)
    entry = result["files"][0]
    row = {"strategy": strategy, "action": entry["action"], "used": entry["strategy"], "wall": round(wall, 2),
           "engine_seconds": entry["seconds"], "peak_rss": result["memory"]["peak_rss"],
           "peak_journal": result["memory"]["peak_journal"], "output": entry["compressed_size"],
           "saved": entry["bytes_saved"], "detail": entry["detail"]}
    if verify_sha is not None:
        row["verified"] = zcat_sha256(target + ".gz") == verify_sha
    for leftover in (target, target + ".gz"):
        if os.path.exists(leftover):
            os.unlink(leftover)
    return row


def summarize(rows):
    out = {}
    for strategy in STRATEGIES:
        mine = [r for r in rows if r["strategy"] == strategy and r["action"] == "compressed"]
        if not mine:
            continue
        out[strategy] = {
            "runs": len(mine), "used": sorted(set(r["used"] for r in mine)),
            "wall_median": round(statistics.median(r["wall"] for r in mine), 2),
            "wall_min": round(min(r["wall"] for r in mine), 2),
            "peak_rss_max": max(r["peak_rss"] for r in mine),
            "peak_journal_max": max(r["peak_journal"] for r in mine),
            "output": mine[0]["output"],
            "verified": all(r.get("verified", True) for r in mine),
        }
    return out


def table(results, size):
    lines = ["| filesystem | strategy (journal) | input | wall s (median) | vs copy | peak RSS MiB | "
             "peak journal MiB | output MiB | verified |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for fs, summary in results.items():
        base = summary.get("copy", {}).get("wall_median")
        for strategy in STRATEGIES:
            s = summary.get(strategy)
            if not s:
                continue
            journal = "64 MiB" if strategy == "window" else "whole copy"
            ratio = "%.2fx" % (s["wall_median"] / base) if base else ""
            lines.append("| %s | %s (%s) | %d MiB | %.2f | %s | %.1f | %.1f | %.1f | %s |" % (
                fs, "/".join(s["used"]), journal, size // MiB, s["wall_median"], ratio, s["peak_rss_max"] / MiB,
                s["peak_journal_max"] / MiB, s["output"] / MiB, "yes" if s["verified"] else "NO"))
    return "\n".join(lines)


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--fs", default="tmpfs,ext4")
    ap.add_argument("--level", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args(argv)


def main(argv=None):
    a = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("window_bench.py needs root (mounts)")
    worktree.use_in_process()
    size = loggen.parse_size(a.size)
    mounts = Mounts()
    results = {}
    rows = []
    try:
        source_dir = mounts.tmpfs("source", size + 16 * MiB)
        source = os.path.join(source_dir, "access.log")
        sha = loggen.write_log(source, size, a.seed, "access")
        os.utime(source, (time.time() - 3600, time.time() - 3600))
        log("input %s (%d MiB), sha256 %s" % (source, size // MiB, sha[:16]))
        big_journal = mounts.tmpfs("journal-copy", size // 2 + 64 * MiB)
        small_journal = mounts.tmpfs("journal-window", WINDOW_JOURNAL)
        journals = {"copy": big_journal, "window": small_journal}
        for fs in [k for k in a.fs.split(",") if k]:
            workdir = mounts.tmpfs("data-tmpfs", size + 64 * MiB) if fs == "tmpfs" \
                else mounts.ext4("data-ext4", size + 256 * MiB)
            for index in range(a.runs):
                for strategy in STRATEGIES:
                    row = one_run(strategy, source, workdir, journals[strategy], a.level, a.threads,
                                  sha if index == 0 else None)
                    row.update(fs=fs, run=index + 1)
                    rows.append(row)
                    log("%s %s run %d: %s in %.2f s, RSS %.1f MiB, journal %.1f MiB" % (
                        fs, strategy, index + 1, row["used"], row["wall"], row["peak_rss"] / MiB,
                        row["peak_journal"] / MiB))
            results[fs] = summarize([r for r in rows if r["fs"] == fs])
    finally:
        mounts.close()
    text = table(results, size)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "window-%s.json" % stamp), "w") as handle:
        json.dump({"size": size, "level": a.level, "runs": rows, "summary": results,
                   "load": os.getloadavg()}, handle, indent=1)
    with open(os.path.join(RESULTS, "window-latest.md"), "w") as handle:
        handle.write(text + "\n")
    print(text)
    return 0 if all(s.get("verified") for r in results.values() for s in r.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
