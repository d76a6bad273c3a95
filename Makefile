# sre.cmemgzip: the demo, the tests and the benchmark.  Each target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3

.PHONY: deps demo test unit system molecule bench bench-quick gates

deps:
	bash tests/install-deps.sh

demo: deps
	bash tests/demo/run_demo.sh

test: deps
	bash tests/run-tests.sh

unit: deps
	$(PYTHON) -m pytest tests/unit

system: deps
	$(PYTHON) -m pytest tests/system

molecule: deps
	source tests/env.sh && molecule test -s default

bench: deps
	$(PYTHON) benchmarks/bench.py --sizes 256M,1G --levels 6,9 --runs 3

bench-quick: deps
	$(PYTHON) benchmarks/bench.py --quick

gates: deps
	bash .ci/gates.sh
