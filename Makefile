.PHONY: check lint format typecheck test bench sample

PY ?= python

# Everything CI checks besides the README's test command: ruff, ruff format, the import layers (import-linter),
# mypy --strict on the whole package.
check: lint typecheck test

lint:
	ruff check .
	ruff format --check .
	lint-imports

format:
	ruff format .
	ruff check --fix .

typecheck:
	mypy --strict flowtui

test:
	$(PY) -m pytest -q

bench:
	$(PY) bench/bench_load.py
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_rbm.py
	$(PY) bench/bench_recommend.py

sample:
	$(PY) -m flowtui data synth --users 200 --seed 2017 --out data/sample
