.PHONY: run test lint format bench

run:  ## the whole site: venv, Redis, migrations, ASGI server and a worker
	scripts/run.sh

test:  ## lint and the whole test suite
	scripts/test.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

bench:
	.venv/bin/python bench/spectrograms.py
