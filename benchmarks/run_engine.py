"""Run the collection's compression engine on one file, in its own process.

    run_engine.py --input FILE --output /dev/shm/x.gz [--level 9] [--threads 0]
                  [--max-output BYTES] [--profile [N]]

Imports plugins/module_utils/gzip_member.py of this repository (the
``plugins`` directory goes on sys.path, so ``module_utils`` is imported as a
package and its relative imports work) and calls

    compress_stream(read_fd, write, level, threads, max_output, name, mtime)

writing the member into --output (bench.py puts it under /dev/shm, as the
module does with its journal).  Prints one JSON object on stdout:
input_size, output_size, crc32, seconds.  Exit status 3 when the engine
cannot be imported (bench.py then reports "n/a").

--profile runs the call under cProfile and prints the top N (default 20)
functions by cumulative time on stderr.  cProfile only sees the calling
thread: the deflate work done in the pool's worker threads shows up as time
spent waiting in Future.result().
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGINS = os.path.join(os.path.dirname(HERE), "plugins")


def load_engine():
    sys.path.insert(0, PLUGINS)
    from module_utils.gzip_member import compress_stream  # noqa: E402
    return compress_stream


def main(argv=None):
    ap = argparse.ArgumentParser(description="run gzip_member.compress_stream on one file")
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--level", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--max-output", type=int, default=None)
    ap.add_argument("--profile", type=int, nargs="?", const=20, default=0,
                    help="cProfile the call; print the top N by cumulative time")
    a = ap.parse_args(argv)

    try:
        compress_stream = load_engine()
    except Exception as exc:  # the engine is not there (yet)
        print(json.dumps({"error": "cannot import engine: %s: %s" % (type(exc).__name__, exc)}))
        return 3

    fd = os.open(a.input, os.O_RDONLY)
    st = os.fstat(fd)
    out = open(a.output, "wb", buffering=0)

    def write(data):
        view = memoryview(data)
        while view:
            n = out.write(view)
            view = view[n:]

    def call():
        return compress_stream(fd, write, level=a.level, threads=a.threads,
                               max_output=a.max_output,
                               name=os.path.basename(a.input).encode(),
                               mtime=int(st.st_mtime))

    t0 = time.monotonic()
    if a.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        stats = prof.runcall(call)
        seconds = time.monotonic() - t0
        ps = pstats.Stats(prof, stream=sys.stderr)
        ps.sort_stats("cumulative").print_stats(a.profile)
    else:
        stats = call()
        seconds = time.monotonic() - t0
    out.close()
    os.close(fd)
    print(json.dumps({
        "input_size": stats.input_size,
        "output_size": stats.output_size,
        "crc32": stats.crc32,
        "seconds": round(seconds, 4),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
