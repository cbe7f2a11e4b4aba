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

.PHONY: install demo test bench lock clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/uvd sample-data $(DEMO)/sample
	$(BIN)/uvd build --source images:$(DEMO)/sample/images --source videos:$(DEMO)/sample/videos \
	    --config infra/build/demo.toml --out $(DEMO)/shards --overwrite
	$(BIN)/uvd train $(DEMO)/shards --model debug --steps 40 --seq-len 1024 --batch-size 2 --lr 3e-3 \
	    --warmup-steps 5 --out $(DEMO)/checkpoint
	$(BIN)/uvd show $(DEMO)/shards --source videos --index 0 --out $(DEMO)/sentence.png
	@echo
	@echo "demo outputs:"
	@echo "  shards + manifest  $(DEMO)/shards"
	@echo "  checkpoint         $(DEMO)/checkpoint"
	@echo "  sentence PNG       $(DEMO)/sentence.png"

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Speed targets: side-by-side ratios in one run; results go to docs/benchmarks.md by hand.
TOKENIZER ?= random:small
bench: $(STAMP)
	mkdir -p out/bench
	$(BIN)/python benchmarks/tokenizer_bench.py --tokenizer $(TOKENIZER) --batch-sizes 1,8,32,128 \
	    --json out/bench/tokenizer.json

lock: $(STAMP)
	{ echo "# Pinned versions for reproducible installs (make install). Regenerate with: make lock"; \
	  $(BIN)/python -m pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > constraints.txt

clean:
	rm -rf $(VENV) out
