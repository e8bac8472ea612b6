#!/usr/bin/env bash
# Trains the default model and its draft on a CUDA host and computes everything that goes with them, in
# one command that finishes within about 9 minutes (the budget is enforced inside, not by the caller):
#   tools/train/train_default.sh PACK_DIR RESULT_DIR
# PACK_DIR holds corpus.txt.xz and corpus.sources.txt.xz (tools/corpus/build_corpus.sh writes them to
# build/corpus/pack). RESULT_DIR receives a repository-shaped tree:
#   models/ember-tiny, models/ember-tiny-draft          the exported checkpoints (save_pretrained, bf16)
#   src/test/resources/fixtures/ember-tiny, src/test/resources/tokenizers/ember-tiny
#                                                        HF references (tools/fixtures/make_fixtures.py)
#   train/                                               summary.json (metrics), loss curves, logs
# Needs python3 with torch, transformers 5, tokenizers, safetensors and matplotlib; no network.
# Environment: TRAIN_SECONDS (default 330), TOTAL_SECONDS (default 560: everything ends by then).
set -euo pipefail
export PYTHONUNBUFFERED=1
start=$(date +%s)
total=${TOTAL_SECONDS:-560}
finish_by=$((start + total))
repo=$(cd "$(dirname "$0")/../.." && pwd)
pack=$(cd "$1" && pwd)
mkdir -p "$2/train"
result=$(cd "$2" && pwd)
texts="$repo/tools/fixtures/tokenizer_texts.json"
work=$(mktemp -d)
log="$result/train/pipeline.log"

say() { echo "[$(date +%H:%M:%S) +$(( $(date +%s) - start ))s] $*" | tee -a "$log"; }

say "host: $(nvidia-smi -L 2>/dev/null | head -1 || echo 'no nvidia-smi')"
python3 -c 'import torch, transformers, tokenizers, safetensors; print("torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tee -a "$log"

xz -d -T0 -c "$pack/corpus.txt.xz" > "$work/corpus.txt"
xz -d -c "$pack/corpus.sources.txt.xz" > "$work/corpus.sources.txt"
(cd "$work" && sha256sum corpus.txt corpus.sources.txt) | tee -a "$log"
say "corpus: $(stat -c %s "$work/corpus.txt") bytes"

status=0
timeout $(( finish_by - $(date +%s) - 60 )) python3 "$repo/tools/train/train_default.py" \
    --corpus "$work/corpus.txt" --out "$result" --texts "$texts" --old-model "$repo/models/ember-tiny" \
    --train-seconds "${TRAIN_SECONDS:-330}" --finish-by "$((finish_by - 60))" --device "${TRAIN_DEVICE:-cuda}" \
    2>&1 | tee "$result/train/train.log" || status=$?
say "train_default.py exit status $status"

# HF references for the tests, computed on the CPU from the exported files, as for every fixture.
if [ -f "$result/models/ember-tiny/model.safetensors" ]; then
    left=$(( finish_by - $(date +%s) ))
    if [ "$left" -gt 20 ]; then
        timeout "$left" python3 "$repo/tools/fixtures/make_fixtures.py" --parts ember-tiny --threads 16 \
            --out "$result" --texts "$texts" --models "$result/models" 2>&1 | tee "$result/train/fixtures.log" \
            || { s=$?; say "make_fixtures.py exit status $s"; status=$((status ? status : s)); }
    else
        say "no time left for the fixtures ($left s)"
        status=1
    fi
fi
rm -rf "$work"
(cd "$result" && find . -type f -printf '%10s %p\n' | sort -k2) | tee -a "$log"
say "done, status $status"
exit "$status"
