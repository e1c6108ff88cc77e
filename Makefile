.PHONY: check lint format typecheck test bench sample

PY ?= python

check: lint typecheck test

lint:
	ruff check .
	ruff format --check .

format:
	ruff format .
	ruff check --fix .

typecheck:
	mypy flowtui/core

test:
	$(PY) -m pytest -q

bench:
	$(PY) bench/bench_load.py
	$(PY) bench/bench_pipeline.py
	$(PY) bench/bench_rbm.py
	$(PY) bench/bench_recommend.py

sample:
	$(PY) -m flowtui data synth --users 300 --seed 2017 --out data/sample
