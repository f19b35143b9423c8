# One CLI surface: each target is one `python -m ...` call. `make help` lists targets from their ## comments.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
RECIPE ?=
export AXOLOTL_DO_NOT_TRACK := 1
export PYTHONPATH := $(CURDIR)
# Variables given on the command line (make train RECIPE=x) or in the environment reach the commands as they
# are; nothing here exports empty ones (an empty MODEL= breaks llama_cpp.server's settings, for one).

.DEFAULT_GOAL := help
.PHONY: help setup train test test-fast lint recipes show plan check new lock merge gguf push data-check data-split data-convert personas eval judge prefs judge-report leaderboard chat serve ollama study study-report bench gpu-check gpu-carry image cloud-up cloud-status cloud-logs cloud-down runpod-up runpod-status runpod-logs runpod-down runpod-template

help: ## list the targets
	@grep -hE '^[a-z][a-z0-9_-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'
	@echo "  variables: RECIPE=<name> ARGS='--key=value ...' DEVICE=cpu|gpu FORCE=1 OUTPUTS=<dir>"

setup: ## build .venv with the pinned dependency set (idempotent; the other targets run it)
	@bash launch/setup.sh

train: setup ## train RECIPE (default: the embedded CPU recipe smollm2-135m-cpu) into outputs/runs/
	@$(PY) -m launch.train $(RECIPE)

# TEST_WORKERS pytest-xdist processes, a test file per worker at a time (module fixtures built once), the longest
# files first (tests/conftest.py LONGEST_FIRST; xdist's own reordering by test count is off); runs the
# whole session shares (trained once, tests/shared_runs.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
PYTEST_PARALLEL = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: setup lint ## the lint gate, then every test (unit + end-to-end on CPU); prints the 25 slowest
	@$(PY) -m pytest tests $(PYTEST_PARALLEL) --durations=25

test-fast: setup lint ## the lint gate, then only the fast tests (no training): the edit loop
	@$(PY) -m pytest tests -m "not slow" $(PYTEST_PARALLEL) --durations=10

lint: setup ## ruff check + ruff format --check (rules in pyproject.toml); `ruff format .` fixes the format
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .

recipes: setup ## table of every recipe: name, family, params, method, data, suggested GPUs
	@$(PY) -m resolver.table

show: setup ## print the exact axolotl config RECIPE will run with (DEVICE=gpu to see the GPU one)
	@$(PY) -m resolver.show $(RECIPE)

plan: setup ## fits? VRAM/GPU, disk, time, $ and the exact launch command for RECIPE on GPU=<type> GPUS=<n> NODES=<n>
	@$(PY) -m launch.preflight.plan $(RECIPE)

check: setup ## preflight of RECIPE or any axolotl config: model facts, schema, data, end of turn, LoRA targets, lengths, disk
	@$(PY) -m launch.preflight $(RECIPE)

new: setup ## write recipes/RECIPE.yaml from MODEL= and DATA= (METHOD=lora|qlora|full HELDOUT= TEMPLATE=), then check it
	@$(PY) -m launch.new

merge: setup ## merge RUN's adapter (default: LATEST of RECIPE) into <run>/merged, verified against peft
	@$(PY) -m tools.export.merge

gguf: setup ## f16 GGUF + QUANTS (default "Q8_0 Q4_K_M") of RUN's merged model, with a parity report
	@$(PY) -m tools.export.gguf

push: setup ## push RUN's adapter, merged model and GGUF (as built) to REPO, REPO-merged, REPO-GGUF (private; PRIVATE=0 public)
	@$(PY) -m tools.export.push

data-check: setup ## validate DATA (file:line for each bad record) + stats with RECIPE's tokenizer (JSON + PNG)
	@$(PY) -m data.tools.data_check

data-split: setup ## dedup DATA, then a deterministic train/val split (VAL=60 SEED=42)
	@$(PY) -m data.tools.split

data-convert: setup ## convert DATA TO=messages|prompt-completion|sharegpt, or pairs|pairs-messages|pairs-chat|kto (all or nothing)
	@$(PY) -m data.tools.convert

personas: setup ## build a persona dataset from PERSONAS=data/personas/x.yaml (GENERATOR=template|endpoint)
	@$(PY) -m data.tools.personas

eval: setup ## lm-eval held-out task (EM, Jaccard, ROUGE, BLEU) on RUN and its base; BACKENDS=hf,gguf,base (default: on a CPU gguf,base via parity-checked GGUFs)
	@$(PY) -m eval.lmeval

judge: setup ## blind A/B of RUN vs its base, both orders, JUDGES="gpt-4o,local" (see eval/judges.yaml; local with no JUDGE_URL serves the embedded SmolLM2 GGUF); stats + report
	@$(PY) -m eval.judge

prefs: setup ## preference pairs from RUN's judging: position-consistent verdicts only (JUDGES= AGREE=any|all VAL= FORCE=1)
	@$(PY) -m eval.prefs

judge-report: setup ## re-analyze judged exports FILES (the seeds' format or ours): win rates, CIs, agreement, audit
	@$(PY) -m eval.judge_report

leaderboard: setup ## every evaluated run: markdown tables + PNG plots in outputs/leaderboard/
	@$(PY) -m eval.leaderboard

chat: setup ## multi-turn chat with RUN's model in the terminal (HF; GGUF=Q4_K_M for a GGUF), the recipe's template and sampling
	@$(PY) -m tools.serve.chat

serve: setup ## OpenAI-compatible server on 127.0.0.1:PORT (8080) for RUN's GGUF (GGUF=Q4_K_M), its own chat template
	@$(PY) -m tools.serve.serve

ollama: setup ## Ollama Modelfile beside RUN's GGUFs from the GGUF's chat template (+ ollama create when installed)
	@$(PY) -m tools.serve.ollama

study: setup ## train, evaluate and judge every model of STUDY=studies/x.yaml, then its report (RUNPOD=1 MAX_COST=<USD>: one pod per run)
	@$(PY) -m eval.study.run $(STUDY)

study-report: setup ## re-render STUDY's report (markdown, PNGs, one self-contained HTML page) from what is finished
	@$(PY) -m eval.study.report $(STUDY)

bench: setup ## measure speed/memory/efficiency vs the seed-style baseline -> outputs/bench/<ts>/report.md (not a test)
	@$(PY) -m bench.run

gpu-carry: setup ## build OUT=<dir> (<= 56 MiB) for make gpu-check: the wheels the GPU machine lacks, the Brie data, model configs + tokenizers (needs the package index)
	@$(PY) -m bench.carry $(OUT)

# no `setup` dependency: the GPU machine has Python and torch (bench/gpu_machine.txt), not this repo's .venv
gpu-check: ## on a bare GPU machine: install CARRY=<dir> offline, make train vs the seed-style baseline for the 3B + 8B recipes (DEVICE=cpu: tiny, on CPU)
	@$(or $(GPU_PYTHON),python3) -m bench.gpu_check $(CARRY) $(if $(DEVICE),--device=$(DEVICE))

# pods start from axolotl's public image by default; a pre-built image is the fast option, in the user's registry
image: ## docker build the pre-built RunPod image (IMAGE=<registry/name:tag>, default affinage:<commit>); then IMAGE=... make runpod-up
	@docker build -t "$${IMAGE:-affinage:$$(git rev-parse --short HEAD)}" .

cloud-up: setup ## create a machine on CLOUD (default runpod: a pod, NODES>1 an Instant Cluster) that trains RECIPE on GPU= GPUS= NODES=, sized by make plan, bootstrapped from the pushed commit on axolotl's image (IMAGE= a pre-built one); DRY_RUN=1 prints the request
	@$(PY) -m launch.cloud.commands up

cloud-status: setup ## state, uptime and cost of POD on CLOUD (a pod or cluster id; default: the last one cloud-up created)
	@$(PY) -m launch.cloud.commands status

cloud-logs: setup ## tail POD's run log over SSH on CLOUD (a cluster: its primary; FOLLOW=1 keeps following)
	@$(PY) -m launch.cloud.commands logs

cloud-down: setup ## end POD on CLOUD: terminate a pod, or delete a cluster (its only stop); outputs on the machine's own volume need FORCE=1
	@$(PY) -m launch.cloud.commands down

runpod-up: setup ## make cloud-up CLOUD=runpod
	@$(PY) -m launch.cloud.commands up --cloud runpod

runpod-status: setup ## make cloud-status CLOUD=runpod
	@$(PY) -m launch.cloud.commands status --cloud runpod

runpod-logs: setup ## make cloud-logs CLOUD=runpod
	@$(PY) -m launch.cloud.commands logs --cloud runpod

runpod-down: setup ## make cloud-down CLOUD=runpod
	@$(PY) -m launch.cloud.commands down --cloud runpod

runpod-template: setup ## a RunPod pod template from runpod.toml (axolotl's image + the bootstrap of the pushed commit, or IMAGE=)
	@$(PY) -m launch.cloud.commands template --cloud runpod

lock: setup ## rewrite constraints.txt from the current .venv (after changing requirements.txt)
	@{ head -2 constraints.txt; $(PY) -m pip freeze | grep -viE '^(triton|nvidia-)|@ file' | sed -E 's/^(torch==[^+]*)\+.*/\1/' | sort -f; } > constraints.txt.new && mv constraints.txt.new constraints.txt
