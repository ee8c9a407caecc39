# Everything a fresh machine with only Python 3.11 and pip needs: `make test`, `make demo`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed-stamp
DEMO_DIR ?= data/demo
# One thread per process: batched linalg fails under MKL with 2 threads here, and Lightning's
# DDP launcher changes the thread count when this is unset.
export OMP_NUM_THREADS ?= 1
# Tests never start W&B; training targets log offline unless you are logged in (noisymss.loggers).
test test-all: export WANDB_MODE ?= disabled

.PHONY: install test test-all demo bench bench-melody bench-refine bench-separate exp-melody exp-refine exp-separate \
	exp-melody-real exp-real-stems release-melody bench-extra clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first: the pinned CPU wheel here; a machine that already has torch keeps its own build.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "torch==$(TORCH_VERSION)"
	$(BIN)/python -m pip install -q -e ".[synth,dev]"
	# tinysoundfont's metadata names pyaudio (live playback only), which does not build headless.
	$(BIN)/python -m pip install -q --no-deps tinysoundfont
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null) \
	      || echo "warning: could not install ffmpeg; museval-based tests will skip"; \
	  else echo "warning: ffmpeg missing and not root; museval-based tests will skip"; fi; }
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m "slow or not slow"

# The main job (teacher-student melody extraction; renders its demo corpus on first run), a look at
# the label-noise corpus, then self-refining: the instrument classifier on noisy labels, its refine
# into a new label version, and a short separator run on the refined catalog, tested on whole songs
# with museval. Each `make demo` has its own run folder and label version, named by the time, so a
# rerun never meets (and is never refused by) an earlier run's checkpoints.
DEMO_RUN := runs/demo_$(shell date +%Y%m%d_%H%M%S)
demo: $(STAMP)
	$(BIN)/noisymss fit --config configs/noisy_student.yaml --trainer.default_root_dir $(DEMO_RUN)/noisy_student
	$(BIN)/noisymss synth --out $(DEMO_DIR) --songs 12 --seconds 20 --seed 0 --label-noise 0.3
	$(BIN)/noisymss preview $(DEMO_DIR)/catalog.csv --batches 2 --batch-size 4 --audio-out $(DEMO_RUN)/preview
	$(BIN)/noisymss fit --config configs/classifier.yaml --trainer.default_root_dir $(DEMO_RUN)/classifier
	$(BIN)/noisymss refine --config configs/classifier.yaml --trainer.default_root_dir $(DEMO_RUN)/classifier \
	  --ckpt_path $(DEMO_RUN)/classifier/checkpoints/last.ckpt --version refined_$(notdir $(DEMO_RUN))
	$(BIN)/noisymss fit --config configs/separator_htdemucs.yaml --trainer.default_root_dir $(DEMO_RUN)/separator \
	  --data.init_args.label_version refined_$(notdir $(DEMO_RUN)) --trainer.max_epochs 1
	$(BIN)/noisymss test --config configs/separator_htdemucs.yaml --trainer.default_root_dir $(DEMO_RUN)/separator \
	  --data.init_args.label_version refined_$(notdir $(DEMO_RUN)) --ckpt_path last

bench: $(STAMP)
	$(BIN)/python benchmarks/data_pipeline.py

# Essentia (Melodia, the untrained peer) where it installs; the melody benchmark and release say when it does not.
bench-extra: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[bench]" || echo "warning: essentia did not install; no Melodia rows"

bench-melody: bench-extra
	$(BIN)/python benchmarks/melody.py

bench-refine: $(STAMP)
	$(BIN)/python benchmarks/refine.py

bench-separate: $(STAMP)
	$(BIN)/python benchmarks/separation.py

# The experiments (noisymss/experiments/runner.py): every run with 3 seeds (--seeds), mean and 95 %
# interval in OUT/results.md; finished runs are kept, so a rerun only does what is missing.
# Supervised vs basic / noisy teacher-student vs noisy student, scored on demo test songs and Bach10
# (about 30 minutes per seed on 2 cores).
exp-melody: $(STAMP)
	$(BIN)/python -m noisymss.experiments.melody --out runs/exp_melody

# Kum et al. 2020 on real singing: MIR-1K split by singer (+ the Jamendo songs as unlabelled audio),
# supervised vs teacher-student setups, k, training scheme, amount and selection of unlabelled clips,
# scored on the held-out singers and Bach10, Melodia beside them (a 30-minute synthetic pretraining
# every run starts from, then about 20 minutes per run and seed).
exp-melody-real: bench-extra
	$(BIN)/python -m noisymss.experiments.melody_real --out runs/exp_melody_real

# Classifiers on noisy, self-refined (1 and 2 rounds, and in one fit) and clean labels, against the
# truth of a demo corpus with 30 % label noise (about 15 minutes per seed on 2 cores).
exp-refine: $(STAMP)
	$(BIN)/python -m noisymss.experiments.refine --out runs/exp_refine

# Separators on clean, noisy, self-refined and clean-refined labels, and noisy + loss truncation,
# scored with museval on held-out songs (runs exp-refine's refines first when they are missing;
# about 35 minutes per seed on 2 cores).
exp-separate: $(STAMP)
	$(BIN)/python -m noisymss.experiments.separate --out runs/exp_separate

# Self-refining on real stems with 30 % injected label noise, the truth kept (MIR-1K: vocals and
# accompaniment, by singer; Bach10: four instruments, by song): classifiers on noisy, clean and
# self-refined labels; X-UMX separators on those and with loss truncation, loss masking and CCOM's
# filter; museval on the test songs.
exp-real-stems: $(STAMP)
	$(BIN)/python -m noisymss.experiments.real_stems --set mir1k --out runs/exp_real_mir1k
	$(BIN)/python -m noisymss.experiments.real_stems --set bach10 --out runs/exp_real_bach10

# The melody model shipped in the package: catalog (MIR-1K by singer + 200 synthetic songs), training
# (resumed if interrupted; about an hour on 2 cores), export, scores and card (docs/melody_model.md).
release-melody: bench-extra
	$(BIN)/python -m noisymss.experiments.release_melody

clean:
	rm -rf $(VENV) .pytest_cache
