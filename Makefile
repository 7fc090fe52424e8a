# LensDB: `make demo` runs the whole job on real data; `make test` runs the tests.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.lensdb-installed
STORE  ?= demo-store
SAMPLES = $$(dirname $$($(BIN)/lensdb samples bikes.mp4))

.PHONY: demo test test-fast typecheck lint bench clean browser

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lensdb models fetch ssd-mobilenet-v2
	$(BIN)/lensdb ingest $(SAMPLES)/bikes.mp4 $(SAMPLES)/carphone_pristine.mp4 \
	    $(SAMPLES)/bigbuckbunny.mp4 --store $(STORE) \
	    --detector ssd-mobilenet-v2 --embedder mobilenet-v2 --detect-every 2
	$(BIN)/lensdb info --store $(STORE)
	$(BIN)/lensdb train-counter --store $(STORE) --classes car,person --split time
	$(BIN)/lensdb query "count(car) >= 2" --gap 1 --store $(STORE)
	$(BIN)/lensdb query "avg(count(car)) BY 2s" --store $(STORE)
	$(BIN)/lensdb query "count(person) >= 1 AND count(car) >= 1 LIMIT 3 GAP 2s" --store $(STORE)
	$(BIN)/lensdb query "count(car) >= 1" --recall 0.9 --budget 80 --store $(STORE)

test: $(STAMP) browser typecheck
	$(BIN)/python -m pytest -q -ra -n 2 --dist loadfile

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser"

# headless Chromium for the web view's browser tests (Debian's; playwright drives it)
browser:
	@test -x /usr/bin/chromium || { SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    $$SUDO apt-get update -q && \
	    $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy with pyproject's [tool.mypy], every module under its installed name (tests/typecheck.py)
typecheck: $(STAMP)
	$(BIN)/python tests/typecheck.py

bench: $(STAMP)
	$(BIN)/lensdb bench compression
	$(BIN)/lensdb bench ingest
	$(BIN)/lensdb bench query
	$(BIN)/lensdb bench accuracy
	$(BIN)/lensdb bench storage

clean:
	rm -rf $(STORE) results .pytest_cache
