# sre.cmemgzip: the demo, the tests, the quality gates and the benchmark.  Each target installs
# what it needs (tests/install-deps.sh: apt packages, the virtual environment .cache/venv) and
# runs with tests/env.sh sourced (the venv's tools first on PATH, Ansible on this working tree).
SHELL := /bin/bash
ENV := source tests/env.sh &&

.PHONY: deps ci-deps demo test unit system molecule gates bench bench-quick bench-fleet bench-window

deps:
	bash tests/install-deps.sh

ci-deps:
	bash tests/install-deps.sh --ci

demo: deps
	bash tests/demo/run_demo.sh

test: deps
	bash tests/run-tests.sh

unit: deps
	$(ENV) python3 -m pytest tests/unit

system: deps
	$(ENV) python3 -m pytest tests/system

molecule: deps
	$(ENV) molecule test -s default

gates: ci-deps
	bash .ci/gates.sh

bench: deps
	$(ENV) python3 benchmarks/bench.py --sizes 256M,1G --levels 6,9 --runs 3
	$(ENV) python3 benchmarks/live_bench.py --fs ext4 --size 1G --rate 10000
	$(ENV) python3 benchmarks/window_bench.py --size 1G --runs 3 --fs tmpfs,ext4

bench-quick: deps
	$(ENV) python3 benchmarks/bench.py --quick

bench-fleet: deps
	$(ENV) python3 benchmarks/fleet_bench.py

bench-window: deps
	$(ENV) python3 benchmarks/window_bench.py --size 1G --runs 3 --fs tmpfs,ext4
