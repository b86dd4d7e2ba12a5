# The two commands of the README: `make demo` (the RLHF loop) and `make test` (the tests).
# Both start with `make setup`, which is idempotent and writes only inside this repository.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup test lint demo annotate bench clean

help:
	@echo "make demo     set up, then run the RLHF demo (see README)"
	@echo "make test     set up, then lint and run every test"
	@echo "make setup    create .venv and build ros2_ws (idempotent)"
	@echo "make annotate serve the annotation page on the demo's episodes"
	@echo "make bench    run the benchmarks in bench/"

setup:
	@bash scripts/setup.sh

test: setup
	@bash scripts/run_tests.sh

lint: setup
	@.venv/bin/ruff check .

demo: setup
	@bash scripts/demo.sh

annotate: setup
	@scripts/with_env.sh rlhf annotate serve --demo-dir demo_out

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; scripts/with_env.sh python $$b || exit 1; done

clean:
	rm -rf .venv .stamps ros2_ws/build ros2_ws/install ros2_ws/log ros2_ws/colcon-build.log .ros_log
