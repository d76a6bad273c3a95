#!/usr/bin/env bash
# The demo: a real SSH host whose whole root filesystem (/, /tmp, /var/tmp, /root,
# /var/log) has 0 bytes free, rescued by one plain ad-hoc call of sre.cmemgzip.cmemgzip.
# Needs root (mount namespaces, loop devices); cleans up what it starts.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/env.sh
. tests/env.sh

state=$(mktemp -d /tmp/cmemgzip-demo.XXXXXX)
host=demo-vm
cleanup() { tests/fleet/fleet.py down --state-dir "$state" >/dev/null 2>&1 || true; rm -rf "$state"; }
trap cleanup EXIT

echo "== starting $host: an SSH host whose root filesystem is an ext4 image at 0 bytes free"
tests/fleet/fleet.py up --state-dir "$state" --host "$host:vm:127.0.0.19:2219" >/dev/null
remote() {
    ssh -q -i "$state/id_ed25519" -p 2219 -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.19 "$@"
}

echo "== before: df on $host"
remote 'df -h / /tmp /var/tmp /root; echo; ls -l /var/log/app'

echo
echo "== ansible -i INVENTORY $host -m sre.cmemgzip.cmemgzip -a 'path=/var/log/app recurse=true'"
ANSIBLE_HOST_KEY_CHECKING=0 ANSIBLE_NOCOLOR=1 \
    ansible -i "$state/inventory.yml" "$host" -m sre.cmemgzip.cmemgzip -a 'path=/var/log/app recurse=true' \
    | tee "$state/result.txt" | python3 -c '
import json, re, sys
text = sys.stdin.read()
match = re.search(r"=> (\{.*\})\s*$", text, re.S)
if not match:
    sys.exit(text)
result = json.loads(match.group(1))
print(result["msg"])
print("%-32s %-10s %-19s %12s %12s %12s  %s" % ("file", "action", "reason", "original", "compressed", "saved", "strategy"))
for f in result["files"]:
    print("%-32s %-10s %-19s %12s %12s %12s  %s" % (f["path"], f["action"], f["reason"] or "", f["original_size"],
          f["compressed_size"] or "", f["bytes_saved"], f["strategy"] or ""))
for fs in result["filesystems"]:
    # avail (f_bavail) is what df shows as available; free (f_bfree) also counts blocks reserved for root
    print("filesystem %s (%s): available %d -> %d bytes" % (fs["mount"], fs["fstype"], fs["before"]["avail"], fs["after"]["avail"]))
print("memory budget %d bytes, peak RSS %d bytes, largest copy held in RAM %d bytes" % (
    result["memory"]["limit"], result["memory"]["peak_rss"], result["memory"]["peak_journal"]))
'

echo
echo "== after: df on $host, and the logs as gunzip sees them"
remote 'df -h /; echo; ls -l /var/log/app; gzip -t /var/log/app/*.gz && echo "gzip -t: all OK"'
python3 - "$state/$host/manifest.json" <<'PY' | remote 'bash -s'
import json, sys
for log in json.load(open(sys.argv[1]))["logs"]:
    if log["expect"] == "compress" and log["path"].startswith("/var/log/app/"):
        print('test "$(zcat %s.gz | sha256sum | cut -d" " -f1)" = %s && echo "sha256 of zcat %s.gz equals the original" || echo "MISMATCH %s"'
              % (log["path"], log["sha256"], log["path"], log["path"]))
PY
