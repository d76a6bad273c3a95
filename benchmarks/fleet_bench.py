"""Fleet benchmark: what the survey and remediate playbooks cost per host.

    python3 benchmarks/fleet_bench.py                   # N = 1, 4, 8, 16 hosts, 1 run each
    python3 benchmarks/fleet_bench.py --hosts 1,4 --runs 3
    python3 benchmarks/fleet_bench.py --scenarios ping,remediate

For each N it starts N SSH hosts with tests/fleet/fleet.py (kinds cycled:
container, vm, inodes, roomy; addresses 127.0.6.x, ports 36601.. by default),
then runs on the same hosts, one after the other:

  ping       ansible fleet -m ansible.builtin.ping (pipelining, TMPDIR=/dev/shm
             through the interpreter, since / and /tmp are full)
  survey     ansible-playbook sre.cmemgzip.survey (check mode)
  remediate  ansible-playbook sre.cmemgzip.remediate (changes the hosts: the
             fleet is made again before the next run)

and reports wall time and the controller's CPU time (user + system of
ansible and every process it started, ssh ControlPersist masters included:
this script's measuring child is a subreaper that reaps them), in total
and per host, and the cost of one extra host (least-squares slope over N).
The hosts' own work (the module on the host, under its sshd) is not
controller CPU.  Needs root.  Standard library only.
"""

import argparse
import ctypes
import datetime
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
FLEET_PY = os.path.join(REPO, "tests", "fleet", "fleet.py")
sys.path.insert(0, os.path.join(REPO, "tests", "lib"))
import worktree  # noqa: E402  (the one collection link)
RESULTS = os.path.join(HERE, "results")
KINDS = ("container", "vm", "inodes", "roomy")
SCENARIOS = ("ping", "survey", "remediate")
PR_SET_CHILD_SUBREAPER = 36


def log(msg):
    sys.stderr.write("[fleet-bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# -- measuring one command ----------------------------------------------------

def _children_of(pid):
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        # ppid is the 2nd field after the parenthesised comm
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(name))
    return found


def measure_main(argv):
    """`fleet_bench.py _measure OUT -- CMD...`: run CMD, reap its orphans, write rusage to OUT.

    This process is a child subreaper: ssh ControlPersist masters that CMD
    leaves behind (detached, they would go to init and their CPU time would
    never be counted) become its children.  Once CMD has exited they are
    asked to stop (SIGTERM, by pid) and reaped, so RUSAGE_CHILDREN holds
    everything the controller spent.
    """
    out_path, cmd = argv[0], argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    started = time.monotonic()
    proc = subprocess.Popen(cmd)
    rc = proc.wait()
    wall = time.monotonic() - started
    for _attempt in range(50):
        orphans = _children_of(os.getpid())
        if not orphans:
            break
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in orphans:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "w", encoding="utf-8") as fh:
        json.dump({"rc": rc, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
                   "user": usage.ru_utime, "system": usage.ru_stime}, fh)
    return 0


def measure(cmd, env, log_path):
    """Run cmd under the subreaper child; return its measures."""
    rusage_path = log_path + ".rusage.json"
    with open(log_path, "wb") as out:
        subprocess.run([sys.executable, os.path.abspath(__file__), "_measure", rusage_path, "--"] + cmd,
                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, check=False)
    with open(rusage_path, encoding="utf-8") as fh:
        return json.load(fh)


# -- the fleet ----------------------------------------------------------------

class Fleet(object):
    """N hosts made by tests/fleet/fleet.py in a state directory of their own."""

    def __init__(self, state_dir, count, subnet, first_port):
        self.state_dir = state_dir
        self.specs = ["b%02d-%s:%s:%s.%d:%d" % (i, KINDS[i % len(KINDS)], KINDS[i % len(KINDS)], subnet, 21 + i,
                                                first_port + i)
                      for i in range(count)]
        self.inventory = os.path.join(state_dir, "inventory.yml")

    def shm_python(self):
        """An interpreter that runs Python with TMPDIR=/dev/shm (seen by the hosts through their lower layer).

        An ad-hoc command has no `environment`: this is how ping gets a writable
        TMPDIR for AnsiballZ on hosts whose /tmp and ~ are full.
        """
        path = os.path.join(self.state_dir, "python-shm")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("#!/bin/sh\nTMPDIR=/dev/shm exec /usr/bin/python3 \"$@\"\n")
        os.chmod(path, 0o755)
        return path

    def up(self):
        cmd = [sys.executable, FLEET_PY, "up", "--state-dir", self.state_dir]
        for spec in self.specs:
            cmd += ["--host", spec]
        started = time.monotonic()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        return time.monotonic() - started

    def down(self):
        subprocess.run([sys.executable, FLEET_PY, "down", "--state-dir", self.state_dir], check=False,
                       stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)


def ansible_env():
    worktree.link_collection()
    return worktree.ansible_env(dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="0", ANSIBLE_NOCOLOR="1",
                                     ANSIBLE_RETRY_FILES_ENABLED="0"))


def scenario_command(name, fleet, forks, report_dir):
    if name == "ping":
        # The full hosts have no free byte in ~ or /tmp: ping needs pipelining and a
        # writable TMPDIR for AnsiballZ, as the collection's action plugins arrange.
        return ["ansible", "-i", fleet.inventory, "fleet", "-f", str(forks), "-m", "ansible.builtin.ping",
                "-e", json.dumps({"ansible_pipelining": True, "ansible_python_interpreter": fleet.shm_python()})]
    return ["ansible-playbook", "-i", fleet.inventory, "-f", str(forks), "sre.cmemgzip.%s" % name,
            "-e", json.dumps({"cmemgzip_report_dir": report_dir, "rescue_report_dir": report_dir, "cmemgzip_fail_on": [], "rescue_fail_on": []})]


# -- the run ------------------------------------------------------------------

def slope(points):
    """Least-squares slope of (x, y) points (None with fewer than 2 distinct x)."""
    xs = [x for x, _y in points]
    if len(set(xs)) < 2:
        return None
    mx = statistics.mean(xs)
    my = statistics.mean(y for _x, y in points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)


def run_bench(args):
    env = ansible_env()
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    work = os.path.join(args.state_root, stamp)
    os.makedirs(work, exist_ok=True)
    rows = []
    for count in args.hosts:
        for run in range(args.runs):
            fleet = Fleet(os.path.join(work, "n%d-r%d" % (count, run)), count, args.subnet, args.first_port)
            try:
                up_seconds = fleet.up()
                log("N=%d run %d: fleet up in %.1f s" % (count, run + 1, up_seconds))
                for name in args.scenarios:
                    load = os.getloadavg()[0]
                    log_path = os.path.join(fleet.state_dir, "%s.log" % name)
                    result = measure(scenario_command(name, fleet, args.forks, fleet.state_dir), env, log_path)
                    result.update(hosts=count, run=run, scenario=name, load_before=load, log=log_path)
                    rows.append(result)
                    log("N=%d %-9s rc=%d wall %.2f s, controller CPU %.2f s (load %.1f)"
                        % (count, name, result["rc"], result["wall"], result["cpu"], load))
            finally:
                fleet.down()
    return rows


def summarize(rows, scenarios, counts):
    table = []
    for name in scenarios:
        points_wall, points_cpu = [], []
        for count in counts:
            mine = [r for r in rows if r["scenario"] == name and r["hosts"] == count]
            if not mine:
                continue
            wall = statistics.median(r["wall"] for r in mine)
            cpu = statistics.median(r["cpu"] for r in mine)
            points_wall.append((count, wall))
            points_cpu.append((count, cpu))
            table.append({"scenario": name, "hosts": count, "runs": len(mine), "wall": wall, "cpu": cpu,
                          "wall_per_host": wall / count, "cpu_per_host": cpu / count,
                          "rc": sorted(set(r["rc"] for r in mine)),
                          "load_before": statistics.median(r["load_before"] for r in mine)})
        table.append({"scenario": name, "hosts": "per extra host", "wall_per_host": slope(points_wall),
                      "cpu_per_host": slope(points_cpu)})
    ping_cpu = {t["hosts"]: t["cpu_per_host"] for t in table if t["scenario"] == "ping"}
    for t in table:
        base = ping_cpu.get(t["hosts"])
        t["cpu_vs_ping"] = t["cpu_per_host"] / base if base and t["cpu_per_host"] is not None else None
    return table


def markdown(table, meta):
    def num(value, fmt="%.2f"):
        return "" if value is None else fmt % value
    lines = ["# Fleet benchmark %s" % meta["date"], "",
             "commit %s, %d CPUs, forks %d, kinds cycled %s; controller CPU = user + system of ansible and every "
             "process it started (ssh masters included); hosts' own work excluded." % (
                 meta["commit"], os.cpu_count(), meta["forks"], ", ".join(KINDS)), "",
             "| scenario | hosts | wall s | controller CPU s | wall s / host | CPU s / host | CPU / host vs ping "
             "| load before | rc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for t in table:
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            t["scenario"], t["hosts"], num(t.get("wall")), num(t.get("cpu")), num(t["wall_per_host"]),
            num(t["cpu_per_host"]), num(t["cpu_vs_ping"], "%.2fx"), num(t.get("load_before"), "%.1f"),
            ",".join(str(rc) for rc in t.get("rc", []))))
    return "\n".join(lines) + "\n"


def git_head():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    ap.add_argument("--hosts", default="1,4,8,16", help="fleet sizes, comma separated (default 1,4,8,16)")
    ap.add_argument("--runs", type=int, default=1, help="runs per size (medians; default 1)")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help="ping,survey,remediate (run order)")
    ap.add_argument("--forks", type=int, default=5, help="ansible forks (default 5, ansible's default)")
    ap.add_argument("--subnet", default="127.0.6", help="first three octets of the hosts' addresses")
    ap.add_argument("--first-port", type=int, default=36601, help="port of the first host")
    ap.add_argument("--state-root", default="/mnt/cmz-fleet-bench", help="where the fleets live")
    args = ap.parse_args(argv)
    args.hosts = [int(n) for n in args.hosts.split(",")]
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        ap.error("unknown scenario(s): %s" % ", ".join(sorted(unknown)))
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_measure"]:
        return measure_main(argv[1:])
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("needs root (tests/fleet/fleet.py mounts and namespaces)")
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": git_head(),
            "forks": args.forks, "hosts": args.hosts, "runs": args.runs}
    rows = run_bench(args)
    table = summarize(rows, args.scenarios, args.hosts)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    with open(os.path.join(RESULTS, "fleet-%s.json" % stamp), "w", encoding="utf-8") as fh:
        json.dump({"meta": meta, "runs": rows, "table": table}, fh, indent=1)
    text = markdown(table, meta)
    with open(os.path.join(RESULTS, "fleet-latest.md"), "w", encoding="utf-8") as fh:
        fh.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
