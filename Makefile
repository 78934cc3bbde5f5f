# The two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv on first use (the first install downloads about 2 GB, torch included)
# and reuse it afterwards (re-installing only when pyproject.toml or constraints.txt changed).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ecgaffect-installed
EXTRAS ?= all,dev

.PHONY: venv demo test test-all lint format bench model demo-model recordings clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m ecgaffect demo

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

test-all: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -m "slow or not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks scripts
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# Rebuild the packaged, validated stress model (src/ecgaffect/data/stress_model.safetensors) from
# real data: pretraining on the QT Database through 130 Hz (30 epochs, one thread, ~66 min here;
# resumed if interrupted), then the EEGMAT stress head (~20 s). DATA= a folder holding qtdb/ and
# eegmat/ (from `ecgaffect datasets download`, or the project's shared data). Each step's time goes to runs/pretrain-qtdb/build.json.
model: $(STAMP)
	@test -n "$(DATA)" || { echo "make model: set DATA=/path/to/data (a folder with qtdb/ and eegmat/)"; exit 2; }
	nice $(PY) scripts/build_model.py --data $(DATA) $(MODEL_ARGS)

# Rebuild src/ecgaffect/data/default_model.safetensors (the demo model: synthetic labels) from recordings/ +
# synthetic ECG, deterministically on one CPU thread (about 15 CPU-minutes, 861 CPU-s for the defaults;
# DEMO_MODEL_ARGS passes options, e.g. DEMO_MODEL_ARGS=--torchscript). `make recordings` re-fetches the bundled ECG.
demo-model: $(STAMP)
	nice $(PY) scripts/build_default_model.py --threads 1 $(DEMO_MODEL_ARGS)

recordings: $(STAMP)
	$(PY) scripts/build_recordings.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache

# Only the second step of `make model` (issue 13): LOSO on EEGMAT through 130 Hz, then the final
# head on every subject but the demo recording's. Needs STRESS_DATA=the EEGMAT folder (e.g.
# from `ecgaffect datasets download eegmat`) and STRESS_ENCODER=a pretrained encoder checkpoint.
.PHONY: stress-model
STRESS_ENCODER ?= runs/pretrain-qtdb/checkpoint.pt
stress-model: $(STAMP)
	@test -n "$(STRESS_DATA)" || { echo "make stress-model: set STRESS_DATA=/path/to/eegmat"; exit 2; }
	nice $(PY) scripts/build_stress_model.py --threads 1 --data $(STRESS_DATA) --encoder $(STRESS_ENCODER) --out src/ecgaffect/data/stress_model.safetensors
