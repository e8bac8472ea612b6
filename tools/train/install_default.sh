#!/usr/bin/env bash
# Puts what tools/train/train_default.sh wrote into the repository:
#   tools/train/install_default.sh RESULT_DIR
# models/ember-tiny and models/ember-tiny-draft (weights, config, generation config, tokenizer files; each
# model card README.md stays and is to be brought up to date by hand from RESULT_DIR/train/summary.json),
# the HF references of the tests (src/test/resources/fixtures/ember-tiny,
# src/test/resources/tokenizers/ember-tiny) and the training record (tools/train/results/). Then run the
# tests: ./run-tests (or mvn test).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
result=$(cd "$1" && pwd)

model_files=(config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json)
for model in ember-tiny ember-tiny-draft; do
    for file in "${model_files[@]}"; do
        [ -f "$result/models/$model/$file" ] || { echo "missing: $result/models/$model/$file" >&2; exit 1; }
    done
done
for file in fixtures/ember-tiny/reference.json fixtures/ember-tiny/reference.safetensors \
            tokenizers/ember-tiny/hf_reference.json; do
    [ -f "$result/src/test/resources/$file" ] || { echo "missing: $result/src/test/resources/$file" >&2; exit 1; }
done
[ -f "$result/train/summary.json" ] || { echo "missing: $result/train/summary.json" >&2; exit 1; }

for model in ember-tiny ember-tiny-draft; do
    for file in "${model_files[@]}"; do
        cp "$result/models/$model/$file" "$repo/models/$model/$file"
    done
done
cp "$result/src/test/resources/fixtures/ember-tiny/reference.json" \
   "$result/src/test/resources/fixtures/ember-tiny/reference.safetensors" "$repo/src/test/resources/fixtures/ember-tiny/"
cp "$result/src/test/resources/tokenizers/ember-tiny/hf_reference.json" "$repo/src/test/resources/tokenizers/ember-tiny/"

results="$repo/tools/train/results"
rm -rf "$results"
mkdir -p "$results/logs"
cp "$result/train/summary.json" "$results/"
for model in ember-tiny ember-tiny-draft; do
    [ -f "$result/train/$model/loss.csv" ] && cp "$result/train/$model/loss.csv" "$results/$model-loss.csv"
done
[ -f "$result/train/loss_curve.png" ] && cp "$result/train/loss_curve.png" "$results/"
for logfile in "$result"/train/*.log; do
    [ -f "$logfile" ] && cp "$logfile" "$results/logs/"
done

du -b "$repo"/models/ember-tiny/model.safetensors "$repo"/models/ember-tiny-draft/model.safetensors
du -sh "$repo/models"
python3 - "$results/summary.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
for name in ("ember-tiny", "ember-tiny-draft"):
    m = s.get(name, {})
    print(f"{name}: {m.get('parameters')} parameters, {m.get('steps')} steps, kept step {m.get('kept_step')} "
          f"(validation {m.get('kept_val_loss')})")
for label, score in s.get("held_out", {}).items():
    t = score["total"]
    print(f"held-out {label}: {t['bits_per_byte']:.4f} bits/byte, {t['perplexity_per_token']:.2f} per-token perplexity")
for gamma, a in s.get("acceptance", {}).get("by_gamma", {}).items():
    print(f"draft acceptance, gamma {gamma}: {a['acceptance_rate']:.3f} ({a['tokens_per_main_pass']:.2f} tokens a main pass)")
print("failures:", len(s.get("failures", [])))
EOF
echo "installed; the model cards (models/*/README.md) and docs/default-model.md still describe the figures by hand"
