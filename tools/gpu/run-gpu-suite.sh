#!/usr/bin/env bash
# Ember's GPU suite, in two halves, because the GPU host has no JDK, no Maven and no network.
#
#   tools/gpu/run-gpu-suite.sh pack [BUNDLE_DIR]
#       Here (the development machine): builds the jars (with the CUDA kernels) and the test classes, jlinks a
#       Java runtime, and packs runtime + jars + test classes + the JUnit console launcher + the HF script into one
#       xz archive in BUNDLE_DIR (default .gpu/bundle-gpu in the checkout, copied to the GPU machine with the
#       checkout), with this script beside it.
#
#   bash .gpu/bundle-gpu/run-gpu-suite.sh all;  ... all-second;  ... serving
#       On the GPU host, from the repository root (the checkout copied there; the tests read
#       models/ember-tiny and src/test/resources from it): everything, in three calls of about seven, nine and three
#       minutes (one would pass a call's ten). `all`:
#         1. tools/gpu/hf_models.py builds random-weight Llama 3 / Qwen2 / Qwen3 / Mistral models with HF transformers
#            and records their logits on the GPU (/tmp/ember-hf);
#         2. every GPU test (package dev.ember.backend.cuda, GpuMonitorTest, NvtxTest and E2eEventTimingGpuTest), HfGpuComparisonTest
#            pointed at those models;
#         3. `ember generate` on the default model, which must pick the GPU and name it;
#         4. `ember bench p2p` between GPUs 0 and 1, or within GPU 0 where it is alone (p2p.csv).
#       `all-second`: the HF references again, the CUDA tests with EMBER_PDL=0 (programmatic dependent launch off), then
#         `ember bench e2e` for the three target workloads (Llama-3.1-8B shape, random bf16 weights), the decode ones
#         again without overlap and without programmatic dependent launch, and the Llama-3.2-1B shape's batch 1 with CUDA
#         graphs and without (--enforce-eager); then the compiled-PyTorch peer (NO_PEER=1 leaves it out), and the table
#         of Ember / peer.
#       `serving`: below (it reads Llama 3.2's tokenizer, which the tests do not).
#       A short table is printed last and kept as summary.txt under $OUT (or ./gpu-out), beside results.tar.gz with
#       every log and result file.
#
#   bash .gpu/bundle-gpu/run-gpu-suite.sh gpu [TEST_SELECTOR...]
#       The GPU tests alone (selectors such as --select-class=... narrow them); TEST_JAR=/tmp/ember-gpu/app/ember-REV.jar
#       runs them against a candidate build (see ab below) instead of the bundle's.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh bench
#       The three benchmarks alone.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh peer
#       The compiled-PyTorch peer alone (PEER_ARGS passes options, e.g. "--workloads b1-decode --layers 2"); `all`
#       runs it after the benchmarks (NO_PEER=1 skips it) and the summary prints Ember / peer per workload.
#       `bench+peer` runs the benchmarks (BENCH_ONLY="b1-decode prefill-1024 b64-decode" narrows them) and then the
#       peer in one call, for their table without the tests.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh p2p
#       `ember bench p2p` alone (step 5 of `all`).
#   bash .gpu/bundle-gpu/run-gpu-suite.sh layer-stream
#       The one-launch decode step (EMBER_LAYER_STREAM=1): its GPU test, then batch 1 with it and without at three
#       shapes and with one copy in flight, its runs printing where each layer's time goes, then ncu's warp stall
#       reasons for one of its steps (about three minutes).
#   bash .gpu/bundle-gpu/run-gpu-suite.sh serving
#       bench offline (Qwen3-0.6B and Llama-3.1-8B shapes; Qwen3-0.6B again with --no-overlap), bench serve, bench client against ember serve beside the
#       offline run of the same 500 requests (plain, and as 250 requests of two choices with logprobs; client / offline
#       printed for both), bench latency with the GPU monitor and a trace.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh profile
#       bench kernel on the 8B shape at batch 1 and 64, then the device's kernel timeline of the batch-1 and batch-64
#       decode runs (`bench e2e --kernel-timeline`, CUPTI), then every kernel of those runs under nsys (ncu where nsys
#       is missing): time per kernel name; and ncu's memory, occupancy and stall sections of the
#       decode attention at batch 64 of the 8B shape and in bench offline on Qwen3-0.6B's shape, and of the prefill
#       attention of a 1024-token prompt of the 8B shape.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh grammar
#       Structured output: ember generate of 64 prompts held to a JSON object, the mask on the device and on the host,
#       and as free text; tokens/s of each and the outputs checked.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh spec
#       bench spec on the GPU: the shipped pair (with the draft's catch-up and without; at gamma 2 and 4 also with
#       verifications of more than four rows on cuBLASLt, tiny-pair-rows4), n-gram lookup and self:4 on the 8B shape
#       over gamma 1-8, the pair at batches 4 and 16, and n-gram lookup at batches 4-128 (the crossover).
#       SPEC_ONLY="name ..." runs only those entries.
#       (`profile+spec` runs both in one call.)
#   bash .gpu/bundle-gpu/run-gpu-suite.sh round
#       About eight minutes (ROUND_SECONDS): the check's tests and the batch-1 product choices, the bench rows with and
#       without programmatic dependent launch, bench offline Qwen3-0.6B with and without it, then serving and spec.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh check
#       A few minutes: the default model's HF references, the kernel, runner, speculation and streaming tests, the
#       batch-1 and batch-64 decode rows, and streaming.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh streaming
#       bench infer in every weight-streaming mode on a preset written to disk (STREAM_PRESET, STREAM_BUDGET), each
#       swept over batch sizes 1-64 (STREAM_BATCHES), and the chart of decode tokens/s against batch size per mode.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh soak
#       tools/soak/soak.py (1,000 requests at 200 concurrent) against `ember serve` from the bundle on the default model,
#       twice: --backend cuda, then --backend cpu; one JSON per run under soak/ and a table of both (requests, /health
#       p50/p99/max and checks over 100 ms, latency, heap after a full GC through the bundle's jcmd, held or failed).
#   CANDIDATES="REV..." tools/gpu/run-gpu-suite.sh pack;  bash .gpu/bundle-gpu/run-gpu-suite.sh ab
#       A/B of builds in one call: pack also builds ember.jar at each git revision named (a branch, a commit) and
#       carries it as app/ember-REV.jar beside the bundle's own; `ab` runs the same rows (AB_ROWS: offline Qwen3-0.6B,
#       offline Llama-8B, the 8B shape's batch-64 and batch-1 decode by default) with each jar in turn, AB_ROUNDS
#       rounds (default 2), so that drift of the GPU falls on every build alike, and prints one table of medians.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh tests+ab
#       The tests and an A/B in one run: the HF references and the CUDA tests once (TESTS_AB_SELECT="--select-class=..."
#       runs those alone, without the references), then `ab` until TESTS_AB_SECONDS (570) from the start (rows that
#       would start later are left out), one summary of both.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh batch1
#       What bounds batch 1 (issue 12): the tests of the kernels a batch-1 step runs (attention, the per-token kernels,
#       the matrix-vector kernel), the kernel timeline of the 8B shape's batch-1 decode (kernels-b1.csv), then the
#       batch-1 and batch-64 decode rows with each build in the bundle as `ab` rows (pack with CANDIDATES="REV" to
#       compare a change with the revision before it), AB_ROUNDS rounds (2); about five minutes with two builds.
#   bash .gpu/bundle-gpu/run-gpu-suite.sh report
#       ember report on the Llama-3.1-8B shape with the GPU monitor and traces (issue 6's attached report).
#   bash .gpu/bundle-gpu/run-gpu-suite.sh ember ARGS...
#       One ember command (under EMBER_JAVA_WRAPPER when set), e.g. `ember bench offline --backend cuda --preset qwen3-0.6b`.
#
# EMBER_JAVA_WRAPPER runs the test JVM under a tool, e.g.
#   EMBER_JAVA_WRAPPER="ncu --clock-control none --launch-count 200 --csv --log-file $OUT/ncu.csv"
# REQUIRE_GPU=NAME (e.g. H200) makes every mode but pack stop at once, with exit code 3, where GPU 0's name does not
# contain NAME: figures meant for one GPU are not spent on another.
set -euo pipefail

JUNIT_VERSION=6.1.3
# The application runtime of gpu-host.md, plus jdk.zipfs (the JUnit launcher reads jars with it), java.desktop
# (java.beans, which Jinjava -- the tokenizer's chat templates -- needs) and java.sql (java.sql.Timestamp, which
# Jinjava's date filters load), and jdk.jcmd (bin/jcmd, about 0.1 MB in the archive: the soak's full GC, `jcmd PID GC.run`).
MODULES=java.base,jdk.incubator.vector,jdk.httpserver,java.logging,jdk.unsupported,java.management,java.net.http,jdk.zipfs,java.desktop,java.sql,jdk.jcmd
ARCHIVE=ember-gpu.tar.xz
# The workloads of the targets (issue 12), the same with overlap or programmatic dependent launch off, and a small
# model with CUDA graphs and without (where launches weigh most).
# name|environment|arguments of `ember bench e2e`.
BENCHMARKS=(
  "b1-decode||--preset llama-3.1-8b --prompt-len 128 --gen-len 256 --decode-batch 1 --iters 3 --warmup 1"
  "prefill-1024||--preset llama-3.1-8b --prompt-len 1024 --gen-len 8 --chunk-len 1024 --decode-batch 1 --iters 7 --warmup 2"
  "b64-decode||--preset llama-3.1-8b --prompt-len 512 --gen-len 128 --chunk-len 4096 --decode-batch 64 --iters 3 --warmup 1"
  "b1-decode-no-overlap||--preset llama-3.1-8b --prompt-len 128 --gen-len 256 --decode-batch 1 --iters 3 --warmup 1 --no-overlap"
  "b1-decode-no-pdl|EMBER_PDL=0|--preset llama-3.1-8b --prompt-len 128 --gen-len 256 --decode-batch 1 --iters 3 --warmup 1"
  "b64-decode-no-pdl|EMBER_PDL=0|--preset llama-3.1-8b --prompt-len 512 --gen-len 128 --chunk-len 4096 --decode-batch 64 --iters 3 --warmup 1"
  "b1-decode-1b||--preset llama-3.2-1b --prompt-len 128 --gen-len 256 --decode-batch 1 --iters 3 --warmup 1"
  "b1-decode-1b-eager||--preset llama-3.2-1b --prompt-len 128 --gen-len 256 --decode-batch 1 --iters 3 --warmup 1 --enforce-eager"
)

# Rewrites a jar with its entries stored, not deflated: xz then compresses the classes across the whole archive,
# about half the size of the deflated jars. $2 (optional): a command run in the unpacked jar first.
store_jar() {
  local jar="$1" strip="${2:-true}" tmp
  tmp="$(mktemp -d)"
  (cd "$tmp" && unzip -q "$jar" && eval "$strip" && rm -f "$jar" && zip -q -r -0 -X "$jar" .)
  rm -rf "$tmp"
}

pack() {
  local root bundle work jdk
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  bundle="${1:-$root/.gpu/bundle-gpu}"
  mkdir -p "$bundle"
  bundle="$(cd "$bundle" && pwd)"  # absolute: the steps below copy from other directories into it
  work="$(dirname "$bundle")/$(basename "$bundle")-work"
  jdk=/usr/lib/jvm/temurin-25-jdk-amd64
  export JAVA_HOME="$jdk"
  command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "pack: nvcc is needed to build the kernels" >&2; exit 1; }

  echo "[pack] building jars and test classes"
  mvn -B -q -f "$root/pom.xml" -DskipTests package test-compile
  mvn -B -q -f "$root/pom.xml" dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$JUNIT_VERSION" \
      -DoutputDirectory="$work/tools"

  rm -rf "$work/app" && mkdir -p "$work/app/lib" "$work/app/test-classes"
  cp "$root/target/ember.jar" "$work/app/"
  # Classes only: the tests read their data from the repository root, copied to the GPU machine with the bundle.
  (cd "$root/target/test-classes" && find . -name '*.class' -exec cp --parents {} "$work/app/test-classes/" \;)
  cp "$root/config/jvm.options" "$work/app/"
  cp "$root"/target/lib/*.jar "$work/app/lib/"
  cp "$work/tools/junit-platform-console-standalone-$JUNIT_VERSION.jar" "$work/app/"
  # Builds of other revisions for `ab`: each jar alone (the libraries are the bundle's), from a detached worktree.
  local rev tree_dir
  for rev in ${CANDIDATES:-}; do
    tree_dir="$work/candidate-src"
    echo "[pack] building ember.jar at $rev"
    git -C "$root" worktree remove --force "$tree_dir" 2>/dev/null || rm -rf "$tree_dir"
    git -C "$root" worktree add --detach -q "$tree_dir" "$rev"
    mvn -B -q -o -f "$tree_dir/pom.xml" -DskipTests package
    cp "$tree_dir/target/ember.jar" "$work/app/ember-$(echo "$rev" | tr '/' '-').jar"
    git -C "$root" worktree remove --force "$tree_dir"
  done
  # DJL and JNA ship natives for many platforms; the GPU host needs linux-x86_64 only.
  local jar strip
  for jar in "$work"/app/*.jar "$work"/app/lib/*.jar; do
    case "$(basename "$jar")" in
      tokenizers-*) strip="find native/lib -mindepth 1 -maxdepth 1 -type d ! -name linux-x86_64 -exec rm -rf {} +" ;;
      jna-[0-9]*) strip="find com/sun/jna -mindepth 1 -maxdepth 1 -type d -name '*-*' ! -name linux-x86-64 -exec rm -rf {} +" ;;
      *) strip=true ;;
    esac
    store_jar "$jar" "$strip"
  done
  mkdir -p "$work/app/tools/gpu" "$work/app/tools/fixtures"
  cp "$root/tools/gpu/hf_models.py" "$root/tools/gpu/peer_torch.py" "$work/app/tools/gpu/"
  cp "$root/tools/fixtures/make_fixtures.py" "$work/app/tools/fixtures/"
  # The GPU host has no fonts ("Fontconfig head is null"), and charts need one: carry DejaVu Sans from this machine.
  rm -rf "$work/app/fonts"
  mkdir -p "$work/app/fonts"
  for font in DejaVuSans.ttf; do  # bold is drawn from it
    if [ -f "/usr/share/fonts/truetype/dejavu/$font" ]; then cp "/usr/share/fonts/truetype/dejavu/$font" "$work/app/fonts/"; fi
  done

  if [ ! -f "$work/jre/release" ] || ! grep -qx "$MODULES" "$work/jre/.modules" 2>/dev/null; then
    echo "[pack] jlinking a runtime"
    rm -rf "$work/jre"
    # Uncompressed modules: xz below packs them smaller than jlink's own zip-9 followed by xz.
    "$jdk/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress=zip-0 --output "$work/jre"
    echo "$MODULES" > "$work/jre/.modules"
  fi

  mkdir -p "$bundle"
  rm -f "$bundle/$ARCHIVE"
  tar -C "$work" -cf - jre app | xz -T2 -9 > "$bundle/$ARCHIVE"
  cp "${BASH_SOURCE[0]}" "$bundle/run-gpu-suite.sh"
  echo "[pack] $(du -h "$bundle/$ARCHIVE" | cut -f1) in $bundle; on the GPU host: bash .gpu/$(basename "$bundle")/run-gpu-suite.sh all"
  # The copy to the GPU machine takes the tracked tree and the bundle, 64 MiB at most.
  local tree travel
  # (Tracked files left out of this checkout, e.g. fixtures only the CPU tests read, are not counted.)
  tree=$(git -C "$root" ls-files -z | (cd "$root" && xargs -0 du -cb 2>/dev/null || true) | tail -1 | cut -f1)
  travel=$((tree + $(du -cb "$bundle" | tail -1 | cut -f1)))
  echo "[pack] the copy to the GPU machine takes $((travel / 1048576)) MiB (tracked tree $((tree / 1048576)) MiB + bundle) of the 64 MiB allowed"
  # The copy counts more than the files' bytes (61 and 62.6 MiB of them passed, 63.5 did not): 63 MiB is the limit used here.
  local limit=$((63 * 1048576)) spare
  if [ "$travel" -gt "$limit" ]; then
    # What no GPU run reads: the tokenizers' vocabularies (the CPU tokenizer tests) and the recorded results.
    spare=$(cd "$root" && du -cb src/test/resources/tokenizers/*/tokenizer.json.gz docs/results 2>/dev/null | tail -1 | cut -f1)
    if [ $((travel - spare)) -le "$limit" ]; then
      echo "[pack] over the copy's limit with the whole tree: leave out of the checkout for the GPU call what it does not read," \
        "src/test/resources/tokenizers/*/tokenizer.json.gz and docs/results ($((spare / 1048576)) MiB; git checkout --" \
        "src/test/resources/tokenizers docs restores them)" >&2
    else
      # With candidate jars for `ab`: what only some modes read goes too, the fixtures (tests) and the draft (spec).
      spare=$(cd "$root" && du -cb src/test/resources/tokenizers/*/tokenizer.json.gz docs/results src/test/resources/fixtures \
        models/ember-tiny-draft 2>/dev/null | tail -1 | cut -f1)
      if [ $((travel - spare)) -le "$limit" ]; then
        echo "[pack] over the copy's limit even without the tokenizers and docs/results: for modes that run no tests and no" \
          "spec (ab, bench, serving), leave src/test/resources/fixtures and models/ember-tiny-draft out of the checkout" \
          "too (serving reads llama3_2's tokenizer.json.gz: keep that one; git checkout -- src/test/resources models" \
          "docs restores them)" >&2
      else
        echo "[pack] too large to copy to the GPU machine even without the tokenizers, docs/results, the fixtures and the" \
          "draft model: shrink the bundle or the tree" >&2
        exit 1
      fi
    fi
  fi
}

# ---- on the GPU host ---------------------------------------------------------------------------------------

DEST=/tmp/ember-gpu
HF_DIR=/tmp/ember-hf

unpack() {
  local here
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  OUT_DIR="${OUT:-$PWD/gpu-out}"
  ROOT="$PWD"
  mkdir -p "$OUT_DIR" "$DEST"
  if [ ! -x "$DEST/jre/bin/java" ] || [ "$here/$ARCHIVE" -nt "$DEST/.unpacked" ]; then
    rm -rf "$DEST/jre" "$DEST/app"
    xz -dc "$here/$ARCHIVE" | tar -C "$DEST" -xf -
    touch "$DEST/.unpacked"
  fi
  JAVA=("$DEST/jre/bin/java" "@$DEST/app/jvm.options" -Dember.home="$ROOT")
  if compgen -G "$DEST/app/fonts/*.ttf" > /dev/null; then
    # Fontconfig reads the carried fonts through a configuration of their own (the JDK draws text through it).
    printf '<?xml version="1.0"?>\n<fontconfig><dir>%s</dir><cachedir>%s</cachedir></fontconfig>\n' \
      "$DEST/app/fonts" "$DEST/fontconfig-cache" > "$DEST/fonts.conf"
    export FONTCONFIG_FILE="$DEST/fonts.conf"
    # Without libfontconfig (or when it finds no font) the JDK reads a fontconfig.properties instead ("Fontconfig
    # head is null" when there is none): every logical font maps to the carried file.
    {
      echo "version=1"
      for family in serif sansserif monospaced dialog dialoginput; do
        for style in plain bold italic bolditalic; do echo "$family.$style.latin-1=DejaVu Sans"; done
      done
      echo "sequence.allfonts=latin-1"
      echo "filename.DejaVu_Sans=$DEST/app/fonts/DejaVuSans.ttf"
    } > "$DEST/fontconfig.properties"
    JAVA+=(-Dsun.awt.fontconfig="$DEST/fontconfig.properties")
  fi
}

host_info() {
  {
    echo "== host"; nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem --format=csv,noheader || true
    echo "== libraries"; ls -l /usr/lib/libcuda.so.1 /usr/local/cuda*/targets/x86_64-linux/lib/libcublasLt.so.* 2>&1 || true
    # The cuBLASLt ABI that CublasLt.java hard-codes, read off this host's headers.
    echo "== cublasLt.h"
    printf '%s\n' '#include <cublasLt.h>' '#include <stdio.h>' \
      'int main(void) { printf("heuristic result %zu bytes, algo %zu, TRANSA %d TRANSB %d PREF_MAX_WORKSPACE %d COMPUTE_32F %d R_16BF %d R_16F %d R_32F %d\n",' \
      '  sizeof(cublasLtMatmulHeuristicResult_t), sizeof(cublasLtMatmulAlgo_t), CUBLASLT_MATMUL_DESC_TRANSA, CUBLASLT_MATMUL_DESC_TRANSB,' \
      '  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16F, CUDA_R_32F); return 0; }' > /tmp/abi.c
    gcc -I/usr/local/cuda/include -o /tmp/abi /tmp/abi.c && /tmp/abi || echo "(no cuBLASLt headers to check against)"
  } > "$OUT_DIR/host.txt" 2>&1
  cat "$OUT_DIR/host.txt"
}

hf_models() {
  echo "== HF transformers models (tools/gpu/hf_models.py -> $HF_DIR)"
  rm -rf "$HF_DIR"
  set +e
  PYTHONUNBUFFERED=1 timeout 300 python3 "$DEST/app/tools/gpu/hf_models.py" "$HF_DIR" > "$OUT_DIR/hf.log" 2>&1
  echo "hf_models.py exit code: $?" | tee -a "$OUT_DIR/hf.log"
  set -e
  grep '^\[hf\]' "$OUT_DIR/hf.log" || tail -5 "$OUT_DIR/hf.log"
}

# The 8B shape's batch-64 decode as one `ember bench e2e` run (prefill of 64 prompts of 512 tokens, then 32 steps),
# under EMBER_JAVA_WRAPPER (a profiler): its log to $1. Its decode steps are NVTX ranges named decode_step (--nvtx),
# so that a profiler can take them alone and leave out the prefill and the warm-up's timings.
b64_decode_run() {
  # shellcheck disable=SC2086
  ${EMBER_JAVA_WRAPPER:-} timeout 300 "${JAVA[@]}" -jar "$DEST/app/ember.jar" bench e2e --backend cuda --preset llama-3.1-8b \
      --prompt-len 512 --gen-len 32 --chunk-len 4096 --decode-batch 64 --iters 1 --warmup 0 --nvtx > "$1" 2>&1 || true
}

tests() {
  local log="${TESTS_LOG:-$OUT_DIR/tests.log}" selectors=("$@") rc
  [ ${#selectors[@]} -gt 0 ] || selectors=(--select-package=dev.ember.backend.cuda)
  local app="$DEST/app"
  set +e
  ${EMBER_JAVA_WRAPPER:-} timeout 420 "${JAVA[@]}" -Xmx24g -Dember.hf.dir="$HF_DIR" \
      -jar "$app/junit-platform-console-standalone-$JUNIT_VERSION.jar" execute \
      --class-path "${TEST_JAR:-$app/ember.jar}:$(ls "$app"/lib/*.jar | tr '\n' ':')$app/test-classes" \
      --details=tree --disable-banner "${selectors[@]}" > "$log" 2>&1
  rc=$?
  set -e
  echo "junit exit code: $rc" >> "$log"
  return $rc
}

bench() {
  : > "$OUT_DIR/bench.log"
  local header="" entry name environment args
  for entry in "${BENCHMARKS[@]}"; do
    name="${entry%%|*}"; args="${entry#*|}"; environment="${args%%|*}"; args="${args#*|}"
    # BENCH_ONLY="b1-decode b64-decode" runs those rows alone.
    [ -z "${BENCH_ONLY:-}" ] || [[ " $BENCH_ONLY " == *" $name "* ]] || continue
    echo "== $environment ember bench e2e $args" | tee -a "$OUT_DIR/bench.log"
    # shellcheck disable=SC2086
    timeout 240 env $environment "${JAVA[@]}" -jar "$DEST/app/ember.jar" bench e2e $args --csv "/tmp/$name.csv" >> "$OUT_DIR/bench.log" 2>&1 \
      || echo "(bench $name failed: exit $?)" | tee -a "$OUT_DIR/bench.log"
    if [ -f "/tmp/$name.csv" ]; then
      [ -n "$header" ] || { header=1; echo "workload,$(head -1 "/tmp/$name.csv")" > "$OUT_DIR/bench.csv"; }
      echo "$name,$(tail -1 "/tmp/$name.csv")" >> "$OUT_DIR/bench.csv"
    fi
  done
}

generate() {
  echo "== ember generate (default model)" > "$OUT_DIR/generate.log"
  timeout 120 "${JAVA[@]}" -jar "$DEST/app/ember.jar" generate -p "In the beginning God created" -n 32 --temperature 0 \
    >> "$OUT_DIR/generate.log" 2>&1 || echo "(ember generate failed: exit $?)" >> "$OUT_DIR/generate.log"
}

# Issue 5 and 6 on the GPU: bench offline (both target shapes), bench serve, bench client against ember serve and the
# offline run of the same requests, bench latency with the GPU monitor; results under $OUT_DIR/serving/.
serving() {
  local dir="$OUT_DIR/serving" ember=("${JAVA[@]}" -jar "$DEST/app/ember.jar") tok=/tmp/ember-llama3-tokenizer pid
  mkdir -p "$dir" "$tok"
  gunzip -c "$ROOT/src/test/resources/tokenizers/llama3_2/tokenizer.json.gz" > "$tok/tokenizer.json"
  cp "$ROOT/src/test/resources/tokenizers/llama3_2/tokenizer_config.json" "$tok/"
  run_logged() {  # name, then the ember arguments
    local name="$1"; shift
    echo "== ember $*" | tee -a "$dir/serving.log"
    timeout 300 "${ember[@]}" "$@" > "$dir/$name.log" 2>&1 || echo "($name failed: exit $?)" | tee -a "$dir/serving.log"
    { grep -E '^# (floor|Ember)|tok/s|throughput|Output token|^mode|^batch|^single|^[a-z_]+,|error' "$dir/$name.log" || true; } \
      | head -12 | tee -a "$dir/serving.log"
  }
  run_logged offline-qwen3-0.6b bench offline --backend cuda --preset qwen3-0.6b --runs 3 --json "$dir/offline-qwen3-0.6b.json"
  # What the overlap of CPU scheduling with GPU work gains: the same run with each step retired before the next.
  run_logged offline-qwen3-0.6b-no-overlap bench offline --backend cuda --preset qwen3-0.6b --runs 3 --no-overlap \
      --json "$dir/offline-qwen3-0.6b-no-overlap.json"
  run_logged offline-llama-8b bench offline --backend cuda --preset llama-3.1-8b --runs 2 --json "$dir/offline-llama-8b.json"
  run_logged serve-llama-8b bench serve --backend cuda --preset llama-3.1-8b --batch-size 8 --num-req 32 --prompt-len 1024 \
      --gen-len 64 --runs 2 --csv "$dir/serve-llama-8b.csv"
  # The same 500 requests over HTTP and in process: HTTP must not be the bottleneck.
  echo "== ember serve --preset llama-3.1-8b" | tee -a "$dir/serving.log"
  "${ember[@]}" serve --backend cuda --preset llama-3.1-8b --tokenizer "$tok" --port 8000 > "$dir/server.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 90); do curl -sf http://127.0.0.1:8000/health > /dev/null && break; sleep 1; done
  run_logged client-llama-8b bench client --base-url http://127.0.0.1:8000 --num-prompts 500 --random-input-len 512 \
      --random-output-len 128 --random-vocab-size 128000 --request-rate inf --ignore-eos --warmup-requests 8 \
      --monitor --trace "$dir/client-trace.json" --result-file "$dir/client-llama-8b.json"
  # Issue 15's figure: the same 500 sequences as 250 requests of two choices, each token with its top 5 logprobs. Another
  # seed than the run before: its prompts would otherwise still be in the server's prefix cache, and skip their prefill.
  run_logged client-llama-8b-n2-logprobs bench client --base-url http://127.0.0.1:8000 --num-prompts 250 --random-input-len 512 \
      --random-output-len 128 --random-vocab-size 128000 --request-rate inf --ignore-eos --warmup-requests 8 --n 2 --logprobs 5 --seed 1 \
      --result-file "$dir/client-llama-8b-n2-logprobs.json"
  curl -s http://127.0.0.1:8000/metrics > "$dir/server-metrics.txt" || true
  kill -TERM "$pid"; wait "$pid" || true
  run_logged offline-llama-8b-500 bench offline --backend cuda --preset llama-3.1-8b --num-requests 500 --input-len 512:512 \
      --output-len 128:128 --temperature 0 --runs 2 --json "$dir/offline-llama-8b-500.json"
  # The in-process counterpart of the client's --n 2 --logprobs 5 run: the same sequences, the same logprobs.
  run_logged offline-llama-8b-250x2-logprobs bench offline --backend cuda --preset llama-3.1-8b --num-requests 250 --n 2 \
      --logprobs 5 --input-len 512:512 --output-len 128:128 --temperature 0 --runs 1 --json "$dir/offline-llama-8b-250x2-logprobs.json"
  # Issue 15's check: HTTP within 3% of in-process, plain and with two choices and logprobs.
  python3 - "$dir" <<'PY' | tee -a "$dir/serving.log" || true
import json, os, sys
d = sys.argv[1]
pairs = (("client-llama-8b.json", "offline-llama-8b-500.json", "500 requests"),
         ("client-llama-8b-n2-logprobs.json", "offline-llama-8b-250x2-logprobs.json", "250 requests x 2 choices, logprobs 5"))
for client, offline, what in pairs:
    try:
        c = json.load(open(os.path.join(d, client)))["output_throughput"]
        o = json.load(open(os.path.join(d, offline)))["results"][0]["output_tok_s"]
        print(f"client / offline, {what}: {c:.0f} / {o:.0f} output tok/s = {c / o:.3f} (>= 0.97 wanted)")
    except (OSError, KeyError, IndexError, ValueError) as e:
        print(f"client / offline, {what}: not available ({e})")
PY
  run_logged latency-tiny bench latency --backend cuda --model "$ROOT/models/ember-tiny" --prompt-lens 128,512 --max-new-tokens 64 \
      --iters 5 --warmup 2 --monitor --trace "$dir/latency-trace.json" --out-dir "$dir" --out-name latency-tiny
  head -3 "$dir/latency-tiny.csv" | tee -a "$dir/serving.log"
}

# The compiled-PyTorch peer (tools/gpu/peer_torch.py) on the e2e workloads, beside Ember's rows of bench.csv.
peer() {
  echo "== compiled PyTorch peer (tools/gpu/peer_torch.py)" | tee "$OUT_DIR/peer.log"
  set +e
  PYTHONUNBUFFERED=1 timeout "${PEER_TIMEOUT:-420}" python3 "$DEST/app/tools/gpu/peer_torch.py" ${PEER_ARGS:-} \
    > "$OUT_DIR/peer.jsonl" 2>> "$OUT_DIR/peer.log"
  echo "peer_torch.py exit code: $?" | tee -a "$OUT_DIR/peer.log"
  set -e
  cat "$OUT_DIR/peer.jsonl"
}

# Ember / peer for each e2e workload both have: decode rows in tokens/s (higher is better), prefill in ms (lower).
peer_table() {
  [ -f "$OUT_DIR/peer.jsonl" ] && [ -f "$OUT_DIR/bench.csv" ] || return 0
  echo "== Ember beside the compiled-PyTorch peer (same GPU, same run)"
  python3 - "$OUT_DIR/bench.csv" "$OUT_DIR/peer.jsonl" <<'PY'
import csv, json, sys
rows = {r["workload"]: r for r in csv.DictReader(open(sys.argv[1]))}
for line in open(sys.argv[2]):
    p = json.loads(line)
    r = rows.get(p["workload"])
    if r is None:
        continue
    if p["unit"] == "ms":
        ember = float(r["ttft_ms"]); ratio = p["figure"] / ember
        print(f"{p['workload']:14s} ember {ember:9.2f} ms    peer {p['figure']:9.2f} ms    peer/ember {ratio:5.2f}x (>1: Ember faster)")
    else:
        ember = float(r["decode_tok_s"]); ratio = ember / p["figure"]
        print(f"{p['workload']:14s} ember {ember:9.1f} tok/s peer {p['figure']:9.1f} tok/s ember/peer {ratio:5.2f}x")
PY
}

summary() {
  {
    if [ -f "$OUT_DIR/tests.log" ]; then
      echo "== failures (tests.log)"
      grep -E '✘' "$OUT_DIR/tests.log" | head -30 || true
      grep -E '=> |Exception:' "$OUT_DIR/tests.log" | head -20 || true
      echo "== checks"
      grep -h '\[gpu' "$OUT_DIR/tests.log" | sed 's/^[[:space:]│├└─]*//' | sort -u | cut -c1-170 || true
      grep -E 'tests (successful|failed|aborted|skipped|found)' "$OUT_DIR/tests.log" || true
      grep 'junit exit code' "$OUT_DIR/tests.log" || true
    fi
    if [ -f "$OUT_DIR/tests-pdl.log" ]; then
      echo "== the CUDA tests with EMBER_PDL=0, without programmatic dependent launch (tests-pdl.log)"
      grep -E '✘' "$OUT_DIR/tests-pdl.log" | head -10 || true
      grep -E 'tests (successful|failed)|junit exit code' "$OUT_DIR/tests-pdl.log" || true
    fi
    if [ -f "$OUT_DIR/generate.log" ]; then
      echo "== ember generate"
      grep -E 'backend:|error' "$OUT_DIR/generate.log" || tail -3 "$OUT_DIR/generate.log"
    fi
    if [ -f "$OUT_DIR/bench.csv" ] || [ -f "$OUT_DIR/bench.log" ]; then
      echo "== bench e2e (bench.csv, bench.log)"
      [ -f "$OUT_DIR/bench.csv" ] && sed 's/,/  /g' "$OUT_DIR/bench.csv" || echo "(no results)"
      grep -E '^# decode roofline|failed' "$OUT_DIR/bench.log" || true
    fi
    peer_table || true
    if [ -f "$OUT_DIR/serving/serving.log" ]; then echo "== serving (serving/)"; cat "$OUT_DIR/serving/serving.log"; fi
  } > "$OUT_DIR/summary.txt" 2>&1
  cat "$OUT_DIR/summary.txt"
}

# Copies between GPUs 0 and 1 (within GPU 0 where it is the only one): `ember bench p2p`, seed 000's columns (p2p.csv).
p2p() {
  local pair="0,0"
  [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -gt 1 ] && pair="0,1"
  echo "== ember bench p2p --gpus $pair" | tee -a "$OUT_DIR/p2p.log"
  timeout 120 "${JAVA[@]}" -jar "$DEST/app/ember.jar" bench p2p --gpus "$pair" --hidden-sizes 4096 \
    --csv "$OUT_DIR/p2p.csv" >> "$OUT_DIR/p2p.log" 2>&1 || echo "(bench p2p failed: exit $?)" | tee -a "$OUT_DIR/p2p.log"
  grep -vE '^\s*$' "$OUT_DIR/p2p.log" | tail -30
}

# Where a decode step's time goes, measured rather than guessed: each kernel of the 8B shape in isolation at batch 1
# and 64 (`ember bench kernel`, kernel.csv); then, where Nsight Systems is installed, every kernel of bench e2e's
# batch-1 and batch-64 decode runs with graph nodes traced one by one (nsys-*.csv: total and mean time per kernel
# name, graph replays included); without nsys, ncu times 600 launches of the batch-64 step (ncu-decode.csv).
profile() {
  local ember=("${JAVA[@]}" -jar "$DEST/app/ember.jar") name args
  echo "== ember bench kernel --preset llama-3.1-8b --batch 1,64"
  timeout 200 "${ember[@]}" bench kernel --backend cuda --preset llama-3.1-8b --batch 1,64 --csv "$OUT_DIR/kernel.csv" \
    > "$OUT_DIR/kernel.log" 2>&1 || echo "(bench kernel failed: exit $?)"
  grep -vE '^\s*$' "$OUT_DIR/kernel.log" | tail -40
  # The device's own timeline of the 8B shape's decode steps (CUPTI: kernels overlapping under programmatic dependent
  # launch as they run, the gaps between them), at batch 1 and 64; every kernel in kernels-bN.csv.
  for entry in "b1|--prompt-len 128 --gen-len 128 --decode-batch 1" \
               "b64|--prompt-len 512 --gen-len 64 --chunk-len 4096 --decode-batch 64"; do
    name="${entry%%|*}"; args="${entry#*|}"
    echo "== ember bench e2e --preset llama-3.1-8b $args --kernel-timeline (kernels-$name.csv)"
    # shellcheck disable=SC2086
    timeout 200 "${ember[@]}" bench e2e --backend cuda --preset llama-3.1-8b $args --iters 1 --warmup 1 \
      --kernel-timeline "$OUT_DIR/kernels-$name.csv" > "$OUT_DIR/kernels-$name.log" 2>&1 || echo "(kernel timeline $name failed: exit $?)"
    grep -A30 '^# kernel timeline' "$OUT_DIR/kernels-$name.log" | head -34
  done
  if command -v nsys > /dev/null; then
    for entry in "b1|--prompt-len 128 --gen-len 128 --decode-batch 1 --iters 1 --warmup 1" \
                 "b64|--prompt-len 512 --gen-len 64 --chunk-len 4096 --decode-batch 64 --iters 1 --warmup 1"; do
      name="${entry%%|*}"; args="${entry#*|}"
      # shellcheck disable=SC2086
      timeout 240 nsys profile --cuda-graph-trace=node --trace=cuda --sample=none --cpuctxsw=none -o "/tmp/nsys-$name" \
        --force-overwrite true "${ember[@]}" bench e2e --preset llama-3.1-8b $args > "$OUT_DIR/nsys-$name.log" 2>&1 \
        || echo "(nsys $name failed: exit $?)"
      nsys stats --report cuda_gpu_kern_sum --format csv --output "$OUT_DIR/nsys-$name" "/tmp/nsys-$name.nsys-rep" \
        > /dev/null 2>&1 || echo "(nsys stats $name failed)"
      echo "== nsys: $name decode run, kernels by total time (nsys-${name}_cuda_gpu_kern_sum.csv)"
      python3 - "$OUT_DIR/nsys-${name}_cuda_gpu_kern_sum.csv" <<'PY' || true
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
total = sum(float(r["Total Time (ns)"]) for r in rows)
for r in rows[:16]:
    t = float(r["Total Time (ns)"])
    print(f"{t / total * 100:5.1f}%  {t / 1e6:9.1f} ms  {int(r['Instances']):7d} x {float(r['Avg (ns)']) / 1e3:8.2f} us  {r['Name'][:90]}")
PY
    done
  else
    echo "(no nsys on this host: ncu instead)"
    EMBER_JAVA_WRAPPER="ncu --clock-control none --graph-profiling node --nvtx --nvtx-include decode_step/ \
        --metrics gpu__time_duration.sum --print-units base --csv \
        --launch-skip 700 --launch-count 600 --log-file $OUT_DIR/ncu-decode.csv" \
        b64_decode_run /tmp/profile-decode.log
    awk -F'","' '/gpu__time_duration.sum/ { v = $NF; gsub(/[",]/, "", v); t[$5] += v; n[$5]++ }
                 END { for (k in t) printf "%-60s %8.1f us x %d\n", substr(k, 1, 60), t[k] / n[k] / 1000, n[k] }' "$OUT_DIR/ncu-decode.csv" || true
  fi
  # What holds the batch-64 decode attention at a fraction of the read ceiling: its memory workload (DRAM and L2
  # throughput, sectors per request, L2 hit rate), speed of light, occupancy and warp stalls, for a few launches.
  EMBER_JAVA_WRAPPER="ncu --clock-control none --graph-profiling node --nvtx --nvtx-include decode_step/ \
      --section SpeedOfLight --section MemoryWorkloadAnalysis \
      --section Occupancy --section WarpStateStats --csv --page details --kernel-name regex:decode_attention_(keys_d|mma|bulk) \
      --launch-skip 64 --launch-count 3 --log-file $OUT_DIR/ncu-decode-sections.csv" \
      b64_decode_run /tmp/profile-decode-sections.log
  echo "== ncu: decode attention (the tensor-core kernel, bulk copies on sm_90) at batch 64 (ncu-decode-sections.csv), first launch"
  ncu_sections "$OUT_DIR/ncu-decode-sections.csv"
  # The same for Qwen3-0.6B's shape (two query heads a KV head) in the middle of bench offline, where ~200 sequences
  # of long contexts decode: a kernel node of a replayed graph, hence --graph-profiling node.
  timeout 240 ncu --clock-control none --graph-profiling node --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section Occupancy --section WarpStateStats --section LaunchStats --csv \
      --page details --kernel-name "regex:decode_attention_(keys_d|mma|bulk)" --launch-skip 12000 --launch-count 2 \
      --log-file "$OUT_DIR/ncu-decode-qwen3.csv" "${ember[@]}" bench offline --backend cuda --preset qwen3-0.6b --runs 1 \
      > "$OUT_DIR/ncu-decode-qwen3.log" 2>&1 || echo "(ncu of bench offline qwen3-0.6b failed: exit $?)"
  echo "== ncu: decode attention (decode_attention_bulk on sm_90, else decode_attention_keys) in bench offline, Qwen3-0.6B (ncu-decode-qwen3.csv), first launch"
  ncu_sections "$OUT_DIR/ncu-decode-qwen3.csv"
  # Prefill attention at 1024 rows of the 8B shape (issue 12's prefill row; prefill_attention_bulk on sm_90 unless
  # EMBER_PREFILL_BULK=0, else prefill_attention_mma), the warm-up's first two layers.
  timeout 240 ncu --clock-control none --section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy \
      --section WarpStateStats --section LaunchStats --csv --page details \
      --kernel-name "regex:prefill_attention_(mma|bulk)" --launch-count 2 --log-file "$OUT_DIR/ncu-prefill.csv" \
      "${ember[@]}" bench e2e --preset llama-3.1-8b --prompt-len 1024 --gen-len 8 --chunk-len 1024 --decode-batch 1 \
      --iters 1 --warmup 1 > "$OUT_DIR/ncu-prefill.log" 2>&1 || echo "(ncu of prefill attention failed: exit $?)"
  echo "== ncu: prefill attention, 1024 rows of the 8B shape (ncu-prefill.csv), first launch"
  ncu_sections "$OUT_DIR/ncu-prefill.csv"
}

# The first launch's figures of ncu's memory, occupancy and warp-state sections from a --csv --page details log, and
# those of any metric whose name matches $2 (a regular expression). ncu's CSV has a row a metric, its name, unit and
# value in columns 13-15, after ncu's own lines.
ncu_sections() {
  awk -F'","' -v extra="${2:-}" '
    /^"[0-9]/ && !seen[$13]++ && ($13 ~ /^(Duration|Memory Throughput|DRAM Throughput|L1\/TEX Hit Rate|L2 Hit Rate|Mem Busy|Max Bandwidth|Mem Pipes Busy|Achieved Occupancy|Theoretical Occupancy|Block Limit [A-Za-z ]+|Registers Per Thread|Grid Size|Block Size|Warp Cycles Per Issued Instruction|Stall [A-Za-z ]+)$/ || (extra != "" && $13 ~ extra)) {
      v = $15; gsub(/"/, "", v); sub(/,$/, "", v); printf "  %-45s %s %s\n", $13, v, $14 }' "$1" 2> /dev/null || true
}

# HF transformers' references for the default model in models/ember-tiny (tools/fixtures/make_fixtures.py, on this
# host's CPU as every fixture is made), written into this checkout's src/test/resources so that the tests after it
# compare against them, and kept under fixtures/ for the repository.
fixtures() {
  echo "== HF references of models/ember-tiny (tools/fixtures/make_fixtures.py)" | tee "$OUT_DIR/fixtures.log"
  set +e
  PYTHONUNBUFFERED=1 timeout 240 python3 "$ROOT/tools/fixtures/make_fixtures.py" --parts ember-tiny --threads 16 \
    --out "$OUT_DIR/fixtures" --texts "$ROOT/tools/fixtures/tokenizer_texts.json" --models "$ROOT/models" >> "$OUT_DIR/fixtures.log" 2>&1
  echo "make_fixtures.py exit code: $?" | tee -a "$OUT_DIR/fixtures.log"
  set -e
  if [ -d "$OUT_DIR/fixtures/src/test/resources" ]; then
    cp -r "$OUT_DIR/fixtures/src/test/resources/." "$ROOT/src/test/resources/"
  fi
  grep -E 'margins|disagreements|Error|error' "$OUT_DIR/fixtures.log" | head -8 || true
}

# Weight streaming (seed 002): `ember bench infer` on a preset written to disk once (STREAM_PRESET, default
# llama-3.2-1b; STREAM_BUDGET GiB of GPU weight budget, default 1), each mode swept over STREAM_BATCHES (default
# 1,2,4,8,16,32,64) in one process, each size beside its streaming bound; greedy, so every mode must print full's first
# tokens. One JSON per mode and size (full-b1.json ... mixed-b64.json) and the chart of them all, decode tokens/s
# against batch size per mode (batch-sweep_modes.png and .svg), under streaming/.
streaming() {
  local dir="$OUT_DIR/streaming" mode args
  local infer=("${JAVA[@]}" -jar "$DEST/app/ember.jar" bench infer --preset "${STREAM_PRESET:-llama-3.2-1b}" \
    --weights-dir /tmp/ember-weights --prompt-len 128 --temperature 0)
  local batches="${STREAM_BATCHES:-1,2,4,8,16,32,64}"
  # STREAM_SECONDS (default 300) bounds the whole: a mode that would start past it is left out, with a line saying
  # so, and one cut short keeps the JSON of the sizes it finished (each is written as soon as its batch is done).
  local until=$(( $(date +%s) + ${STREAM_SECONDS:-300} )) left
  mkdir -p "$dir"
  # mixed reads every step from the disk (about 1 s a step for the 1B shape here, 9 s for the 8B): fewer tokens, no
  # warm-up round, and its own batch sizes (STREAM_MIXED_BATCHES, default STREAM_BATCHES). STREAM_MODE_SECONDS (default
  # 150) bounds each mode.
  for entry in "full|--batch-sizes $batches --max-new-tokens 32" \
               "preload|--batch-sizes $batches --gpu-weight-budget ${STREAM_BUDGET:-1} --max-new-tokens 16" \
               "stream|--batch-sizes $batches --gpu-weight-budget ${STREAM_BUDGET:-1} --max-new-tokens 16" \
               "mixed|--batch-sizes ${STREAM_MIXED_BATCHES:-$batches} --gpu-weight-budget ${STREAM_BUDGET:-1} --max-new-tokens 8 --warmup-rounds 0"; do
    mode="${entry%%|*}"; args="${entry#*|}"
    left=$(( until - $(date +%s) ))
    if [ "$left" -lt 20 ]; then echo "($mode left out: STREAM_SECONDS spent)" | tee -a "$dir/streaming.log"; continue; fi
    echo "== ember bench infer --mode $mode $args" | tee -a "$dir/streaming.log"
    # shellcheck disable=SC2086
    local cap=${STREAM_MODE_SECONDS:-150}
    timeout "$(( left < cap ? left : cap ))" "${infer[@]}" --mode "$mode" $args --out-json "$dir/$mode.json" > "$dir/$mode.log" 2>&1 \
      || echo "($mode failed or cut short: exit $?)" | tee -a "$dir/streaming.log"
    grep -iE 'batch size|tok/s|bound|first tokens|tokens:|error' "$dir/$mode.log" | head -40 | tee -a "$dir/streaming.log" || true
  done
  # Issue 14's chart: every mode's decode rate against batch size, each beside its streaming bound; the files go in the
  # modes' order, which is the order of the chart's series (a mode with no file, say one left out, is skipped).
  local runs=() file
  for mode in full preload stream mixed; do
    for file in "$dir/$mode"-b*.json; do if [ -f "$file" ]; then runs+=("$file"); fi; done
  done
  if [ "${#runs[@]}" -gt 0 ]; then
    "${JAVA[@]}" -jar "$DEST/app/ember.jar" plot --kind modes --out-dir "$dir" --out-prefix batch-sweep "${runs[@]}" 2>&1 \
      | tee -a "$dir/streaming.log" || true
  fi
}

# Speculative decoding on the GPU (seed 001): the shipped pair (also with every round drafted from the host,
# EMBER_DRAFT_CATCH_UP=0), n-gram prompt lookup on the default model and the 8B shape's own first layers (self:K) at
# batch 1 over gamma 1-8, and the shipped pair and n-gram lookup at larger batches (where speculation stops paying:
# the crossover); results under spec/. An entry is name|args, or name|args|ENV=VALUE for the run's environment.
spec() {
  local dir="$OUT_DIR/spec" ember=("${JAVA[@]}" -jar "$DEST/app/ember.jar") name args envs
  mkdir -p "$dir"
  for entry in "tiny-pair|--model $ROOT/models/ember-tiny --speculative-model $ROOT/models/ember-tiny-draft --gamma 1,2,4,8 --num-prompts 16 --batch-size 1" \
               "tiny-pair-host-drafts|--model $ROOT/models/ember-tiny --speculative-model $ROOT/models/ember-tiny-draft --gamma 1,2,4,8 --num-prompts 16 --batch-size 1|EMBER_DRAFT_CATCH_UP=0" \
               "tiny-pair-rows4|--model $ROOT/models/ember-tiny --speculative-model $ROOT/models/ember-tiny-draft --gamma 2,4 --num-prompts 16 --batch-size 1|EMBER_GEMV_MAX_ROWS=4" \
               "tiny-pair-b4|--model $ROOT/models/ember-tiny --speculative-model $ROOT/models/ember-tiny-draft --gamma 1,2 --num-prompts 16 --batch-size 4" \
               "tiny-ngram|--model $ROOT/models/ember-tiny --speculative-method ngram --gamma 1,2,4,8 --num-prompts 16 --batch-size 1" \
               "llama8b-self4|--preset llama-3.1-8b --speculative-model self:4 --gamma 1,2,4,8 --num-prompts 4 --batch-size 1 --gen-len 128" \
               "tiny-pair-b16|--model $ROOT/models/ember-tiny --speculative-model $ROOT/models/ember-tiny-draft --gamma 4 --num-prompts 64 --batch-size 16" \
               "tiny-ngram-b4|--model $ROOT/models/ember-tiny --speculative-method ngram --gamma 2 --num-prompts 32 --batch-size 4 --gen-len 200" \
               "tiny-ngram-b16|--model $ROOT/models/ember-tiny --speculative-method ngram --gamma 2 --num-prompts 128 --batch-size 16 --gen-len 200" \
               "tiny-ngram-b32|--model $ROOT/models/ember-tiny --speculative-method ngram --gamma 2 --num-prompts 256 --batch-size 32 --gen-len 200" \
               "tiny-ngram-b64|--model $ROOT/models/ember-tiny --speculative-method ngram --gamma 2 --num-prompts 256 --batch-size 64 --gen-len 200" \
               "tiny-ngram-b128|--model $ROOT/models/ember-tiny --speculative-method ngram --gamma 2 --num-prompts 512 --batch-size 128 --gen-len 200"; do
    IFS='|' read -r name args envs <<< "$entry"
    # SPEC_ONLY="name ...": only those entries (e.g. the batch-1 rows).
    if [ -n "${SPEC_ONLY:-}" ] && [[ " $SPEC_ONLY " != *" $name "* ]]; then continue; fi
    echo "== ${envs:+$envs }ember bench spec $args" | tee -a "$dir/spec.log"
    # shellcheck disable=SC2086
    timeout 200 env ${envs:-} "${ember[@]}" bench spec --backend cuda $args --out-dir "$dir/$name" > "$dir/$name.log" 2>&1 \
      || echo "(spec $name failed: exit $?)" | tee -a "$dir/spec.log"
    grep -iE 'gamma|speed-up|accept|error|choice / capture|cost of a step|measured / predicted' "$dir/$name.log" | head -24 | tee -a "$dir/spec.log"
  done
}

# Structured output on the GPU (`grammar`): `ember generate` of 64 prompts held to a JSON object on the default model,
# the grammar's mask applied on the device (mask_logits, the default) and on the host from copied logits
# (EMBER_DEVICE_MASKS=0), and the same prompts as free text; GRAMMAR_ROUNDS rounds (2). Prints each run's generated
# tokens/s and checks that every output that ended by itself is a JSON object.
grammar() {
  local dir="$OUT_DIR/grammar" prompts=/tmp/ember-grammar-prompts.txt name envs args round
  mkdir -p "$dir"
  for i in $(seq 1 64); do echo "Describe item $i of the inventory as JSON:"; done > "$prompts"
  for round in $(seq 1 "${GRAMMAR_ROUNDS:-2}"); do
    for entry in "device||--json-object" "host|EMBER_DEVICE_MASKS=0|--json-object" "free||"; do
      IFS='|' read -r name envs args <<< "$entry"
      # shellcheck disable=SC2086
      timeout 120 env $envs "${JAVA[@]}" -jar "$DEST/app/ember.jar" generate --backend cuda --prompts-file "$prompts" \
        -n 256 --temperature 1 --seed "$round" $args > "$dir/$name-$round.out" 2> "$dir/$name-$round.log" \
        || echo "(generate $name failed: exit $?)" | tee -a "$dir/grammar.log"
      echo "$name, round $round: $(grep -o 'throughput: [0-9.]* generated tokens/s' "$dir/$name-$round.log")" | tee -a "$dir/grammar.log"
    done
  done
  python3 - "$dir" <<'PY' | tee -a "$dir/grammar.log"
import glob, json, re, sys
for path in sorted(glob.glob(sys.argv[1] + "/*.out")):
    if "/free-" in path:
        continue
    blocks = re.split(r"^--- request \d+: .*\((\w+)\).*$", open(path).read(), flags=re.M)
    ended = bad = 0
    for reason, text in zip(blocks[1::2], blocks[2::2]):
        if reason == "stop":
            ended += 1
            try:
                bad += not isinstance(json.loads(text), dict)
            except ValueError:
                bad += 1
    print(f"{path.rsplit('/', 1)[1]}: {ended} outputs ended by the grammar, {bad} of them not a JSON object")
PY
}

# The soak (tools/soak/soak.py, docs/benchmarks.md "Soak") on this host, where no other work takes the cores the
# /health bound is meant for: `ember serve` from the bundle on the default model, --backend cuda and then --backend
# cpu, each bounded by SOAK_SECONDS (default 110); soak/<backend>.json, .log (soak.py's output) and -server.log.
# SOAK_ARGS passes more soak.py options (e.g. "--requests 200 --concurrency 50"), SOAK_BACKENDS the runs (default "cuda cpu"),
# SOAK_JAVA_OPTS options of the server's JVM after the bundle's jvm.options (e.g. "-Xlog:gc:file=/tmp/gc.log").
soak() {
  local dir="$OUT_DIR/soak" backend rc=0 run_rc
  mkdir -p "$dir"
  if [ ! -x "$DEST/jre/bin/jcmd" ]; then
    echo "(no jcmd in the bundle's runtime: soak.py reports the heap check as not made; pack a bundle with jdk.jcmd)"
  fi
  for backend in ${SOAK_BACKENDS:-cuda cpu}; do
    echo "== tools/soak/soak.py --serve-args \"--backend $backend\" ${SOAK_ARGS:-}"
    set +e
    # The time limit inside (soak.py stops its clients and reports) comes before timeout's, which stops it and its server.
    # shellcheck disable=SC2086
    timeout -k 30 "${SOAK_SECONDS:-110}" python3 "$ROOT/tools/soak/soak.py" --ember "$(printf '%q ' "${JAVA[@]}" ${SOAK_JAVA_OPTS:-} -jar "$DEST/app/ember.jar")" \
      --jcmd "$DEST/jre/bin/jcmd" --serve-args "--backend $backend" --time-limit $(( ${SOAK_SECONDS:-110} - 20 )) \
      --server-log "$dir/$backend-server.log" --out "$dir/$backend.json" ${SOAK_ARGS:-} > "$dir/$backend.log" 2>&1
    run_rc=$?
    set -e
    echo "soak.py exit code: $run_rc" | tee -a "$dir/$backend.log"
    [ "$run_rc" -eq 0 ] || rc=1
    grep '^soak:' "$dir/$backend.log" || true
  done
  python3 - "$dir" "${SOAK_BACKENDS:-cuda cpu}" <<'PY'
import json, os, sys
d = sys.argv[1]
rows = [("run", "complete / JSON error / left", "/health: n, p50 / p99 / max ms, > 100", "latency p50 / p99",
         "heap after GC, MB", "result")]
notes = []
for backend in sys.argv[2].split():
    try:
        f = json.load(open(os.path.join(d, backend + ".json")))
    except (OSError, ValueError):
        rows.append((backend, "-", "-", "-", "-", "no figures (soak.py stopped first: soak/%s.log)" % backend))
        continue
    o = f["outcomes"]
    other = f["requests"] - o.get("complete", 0) - o.get("json_error", 0) - o.get("disconnected", 0)
    rows.append((backend,
                 "%d / %d / %d" % (o.get("complete", 0), o.get("json_error", 0), o.get("disconnected", 0))
                 + (" (+%d other)" % other if other else ""),
                 "%d, %s / %s / %s, %d" % (f["health_checks"], f["health_p50_ms"], f["health_p99_ms"], f["health_max_ms"],
                                           f["health_over_limit"]),
                 "%s / %s s" % (f["latency_p50_s"], f["latency_p99_s"]),
                 "%s -> %s" % (f["heap_after_gc_start_mb"] or "-", f["heap_after_gc_end_mb"] or "-"),
                 f["result"]))
    notes += ["%s: %s: %s" % (backend, name, check) for name, check in f["checks"].items() if check != "held"]
    notes += ["%s: %s" % (backend, failure) for failure in f["failures"]]
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for row in rows:
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
for note in notes:
    print("  " + note)
PY
  return $rc
}

# The rows of `ab`, one per line: a name, the ember arguments (after `ember`) and, optionally, environment settings for
# that row (e.g. `b64-1split|bench e2e ... --decode-batch 64|EMBER_DECODE_SPLITS=1`) and the bench e2e column that is
# its figure (e.g. `prefill-1024|bench e2e ... --chunk-len 1024 --decode-batch 1 ...||ttft_ms`; default the last,
# decode_tok_s); each row's output is grepped for its figure, the last one printed (bench offline: tok/s).
AB_ROWS_DEFAULT='offline-qwen3-0.6b|bench offline --backend cuda --preset qwen3-0.6b --runs 2
offline-llama-8b|bench offline --backend cuda --preset llama-3.1-8b --runs 1
b64-decode|bench e2e --preset llama-3.1-8b --prompt-len 512 --gen-len 128 --chunk-len 4096 --decode-batch 64 --iters 3 --warmup 1
b1-decode|bench e2e --preset llama-3.1-8b --prompt-len 128 --gen-len 256 --decode-batch 1 --iters 3 --warmup 1'

ab() {
  local jars=("$DEST/app/ember.jar") jar round name args envs column log figure dir="$OUT_DIR/ab"
  mkdir -p "$dir"
  for jar in "$DEST"/app/ember-*.jar; do [ -f "$jar" ] && jars+=("$jar"); done
  if [ "${#jars[@]}" -lt 2 ]; then echo "(ab: no candidate jar in the bundle: pack with CANDIDATES=\"REV...\")"; fi
  for round in $(seq 1 "${AB_ROUNDS:-2}"); do
    for jar in "${jars[@]}"; do
      while IFS='|' read -r name args envs column; do
        [ -n "$name" ] || continue
        # AB_DEADLINE (seconds since the epoch): rows that would start after it are left out, so the table comes back.
        if [ -n "${AB_DEADLINE:-}" ] && [ "$(date +%s)" -ge "$AB_DEADLINE" ]; then echo "(ab: $name, round $round left out: AB_DEADLINE)"; continue; fi
        log="$dir/$(basename "$jar" .jar)-$name-$round.log"
        # shellcheck disable=SC2086
        timeout 150 env ${envs:-} "${JAVA[@]}" -jar "$jar" $args > "$log" 2>&1 || true
        # bench offline prints "Throughput: X tok/s" per run (their median below), bench e2e a table (header `mode ...`)
        # whose row's last column is it, or the column the row names.
        figure=$(python3 - "$log" "${column:-}" <<'PY'
import re, statistics, sys
text, column = open(sys.argv[1]).read(), sys.argv[2]
runs = [float(x) for x in re.findall(r"Throughput: ([0-9.]+)tok/s", text)]
lines = [l.split() for l in text.splitlines()]
header = next((l for l in lines if l and l[0] == "mode"), [])
at = header.index(column) if column in header else -1
rows = [l for l in lines if l and l[0] in ("single", "batch") and len(l) > at]
print(f"{statistics.median(runs):.1f}" if runs else rows[-1][at] if rows and (at >= 0 or not column) else "failed")
PY
)
        echo "$(basename "$jar" .jar),$name,$round,$figure" | tee -a "$dir/ab.csv"
      done <<< "${AB_ROWS:-$AB_ROWS_DEFAULT}"
    done
  done
  echo "== ab: output tok/s (or the row's column, e.g. ttft_ms) per build and row, median over rounds (ab/ab.csv)" | tee "$OUT_DIR/summary.txt"
  python3 - "$dir/ab.csv" <<'PY' | tee -a "$OUT_DIR/summary.txt"
import collections, csv, statistics, sys
figures = collections.defaultdict(list)
builds, rows = [], []
for build, row, _, value in csv.reader(open(sys.argv[1])):
    builds += [build] if build not in builds else []
    rows += [row] if row not in rows else []
    if value != "failed":
        figures[build, row].append(float(value))
print(f"{'row':<22}" + "".join(f"{b:>28}" for b in builds))
for row in rows:
    base = statistics.median(figures[builds[0], row]) if figures[builds[0], row] else None
    cells = []
    for b in builds:
        v = figures[b, row]
        m = statistics.median(v) if v else None
        ratio = f" ({m / base:.3f})" if m and base and b != builds[0] else ""
        cells.append(f"{m:.1f}{ratio}" if m else "failed")
    print(f"{row:<22}" + "".join(f"{c:>28}" for c in cells))
PY
}

# Few files come back from the GPU machine (8): everything but summary.txt goes into one results.tar.gz beside it.
pack_results() {
  local archive=/tmp/ember-results.tar.gz
  tar -C "$OUT_DIR" --exclude=./summary.txt -czf "$archive" .
  find "$OUT_DIR" -mindepth 1 -maxdepth 1 ! -name summary.txt -exec rm -rf {} +
  mv "$archive" "$OUT_DIR/results.tar.gz"
}

# The tests of a change to the kernels, the runner or the engine (check and round run them).
CHECK_TESTS=()
for class in ElementwiseKernelsTest AttentionKernelsTest GemvKernelTest SamplingKernelsTest CudaModelRunnerTest \
             CudaForwardAndSampleTest CudaOverlapTest CudaSpeculativeTest CudaStreamingTest CudaLogprobsTest; do
  CHECK_TESTS+=(--select-class=dev.ember.backend.cuda.$class)
done

if [ -n "${REQUIRE_GPU:-}" ] && [ "${1:-}" != pack ]; then
  gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || true)
  case "$gpu_name" in
    *"$REQUIRE_GPU"*) ;;
    *) echo "REQUIRE_GPU=$REQUIRE_GPU but GPU 0 is '${gpu_name:-none found}': nothing run" >&2; exit 3 ;;
  esac
fi

case "${1:-}" in
  pack) shift; pack "$@" ;;
  round)
    # One call of about eight minutes for a change to the kernels, the engine or the server: the check's tests, the
    # bench rows (with and without programmatic dependent launch; their logs name the batch-1 product choices),
    # bench offline Qwen3-0.6B with and without it, then serving and spec while ROUND_SECONDS (default 540) last.
    unpack; host_info
    until=$(( $(date +%s) + ${ROUND_SECONDS:-540} ))
    rc=0; tests "${CHECK_TESTS[@]}" || rc=$?
    BENCH_ONLY="b1-decode prefill-1024 b64-decode b1-decode-no-pdl b64-decode-no-pdl" bench
    for pdl in 1 0; do
      echo "== EMBER_PDL=$pdl ember bench offline --preset qwen3-0.6b --runs 2" | tee -a "$OUT_DIR/offline.log"
      EMBER_PDL=$pdl timeout 120 "${JAVA[@]}" -jar "$DEST/app/ember.jar" bench offline --backend cuda --preset qwen3-0.6b \
        --runs 2 2>&1 | grep -E '^run|^# (Ember|runner)' | tee -a "$OUT_DIR/offline.log" || true
    done
    if [ $(( until - $(date +%s) )) -gt 240 ]; then serving; else echo "(serving left out: ROUND_SECONDS)"; fi
    if [ $(( until - $(date +%s) )) -gt 100 ]; then spec > "$OUT_DIR/spec.txt" 2>&1; else echo "(spec left out: ROUND_SECONDS)"; fi
    summary
    { echo "== bench offline Qwen3-0.6B (offline.log)"; cat "$OUT_DIR/offline.log"
      if [ -f "$OUT_DIR/spec.txt" ]; then cat "$OUT_DIR/spec.txt"; fi; } | tee -a "$OUT_DIR/summary.txt"
    pack_results
    exit $rc ;;
  all)
    # The whole suite is three calls (one would pass a call's ten minutes): this one the tests, generate and p2p;
    # all-second the tests without programmatic dependent launch, the bench rows and the peer; then serving.
    unpack; host_info; hf_models
    rc=0; tests --select-package=dev.ember.backend.cuda --select-class=dev.ember.monitor.GpuMonitorTest \
      --select-class=dev.ember.nativelib.NvtxTest --select-class=dev.ember.bench.E2eEventTimingGpuTest || rc=$?
    generate; p2p; summary; pack_results
    exit $rc ;;
  all-second)
    # Programmatic dependent launch must not change any result: the CUDA tests again without it; then the bench rows
    # and the peer, whose table compares them.
    unpack; host_info; hf_models
    rc=0; EMBER_PDL=0 TESTS_LOG="$OUT_DIR/tests-pdl.log" tests --select-package=dev.ember.backend.cuda || rc=$?
    bench; [ -n "${NO_PEER:-}" ] || peer; summary; pack_results
    exit $rc ;;
  tests+ab)
    # The tests and an A/B in one run: the CUDA tests once, then `ab` (AB_ROWS, AB_ROUNDS; pack with
    # CANDIDATES) until TESTS_AB_SECONDS (default 570) from the start, so that both come back from one call.
    unpack; host_info; rc=0; AB_DEADLINE=$(( $(date +%s) + ${TESTS_AB_SECONDS:-570} - 150 ))
    if [ -n "${TESTS_AB_SELECT:-}" ]; then
      # shellcheck disable=SC2086
      tests $TESTS_AB_SELECT || rc=$?
    else
      hf_models  # the HF references first (about a minute), so that HfGpuComparisonTest runs among the tests
      tests --select-package=dev.ember.backend.cuda --select-class=dev.ember.bench.E2eEventTimingGpuTest || rc=$?
    fi
    summary > "$OUT_DIR/summary-tests.txt"
    ab > /dev/null
    cat "$OUT_DIR/summary-tests.txt" "$OUT_DIR/summary.txt" > "$OUT_DIR/summary-all.txt"
    mv "$OUT_DIR/summary-all.txt" "$OUT_DIR/summary.txt"; cat "$OUT_DIR/summary.txt"
    pack_results
    exit $rc ;;
  serving) unpack; host_info; serving; summary; pack_results ;;
  gpu) shift; unpack; host_info; rc=0; tests "$@" || rc=$?; summary; pack_results; exit $rc ;;
  bench) unpack; host_info; bench; summary; pack_results ;;
  peer) unpack; peer; summary; pack_results ;;
  p2p) unpack; host_info; p2p; pack_results ;;
  bench+peer) unpack; host_info; bench; peer; summary; pack_results ;;
  profile) unpack; profile | tee "$OUT_DIR/summary.txt"; pack_results ;;
  batch1)
    # The tests of the kernels a batch-1 step runs first (a kernel change is checked before it is timed), then batch 1's
    # kernel timeline, then the batch-1 and batch-64 rows with each build in the bundle (pack with CANDIDATES="REV" to
    # compare a change with the revision before it; 1, 2 and 4 splits at batch 1 were measured on 2026-12-05: no gain).
    unpack; host_info
    rc=0; tests --select-class=dev.ember.backend.cuda.AttentionKernelsTest --select-class=dev.ember.backend.cuda.ElementwiseKernelsTest \
      --select-class=dev.ember.backend.cuda.GemvKernelTest || rc=$?
    summary > "$OUT_DIR/summary-tests.txt"
    b1_args="--preset llama-3.1-8b --prompt-len 128 --gen-len 256 --decode-batch 1 --iters 3 --warmup 1"
    timeout 200 "${JAVA[@]}" -jar "$DEST/app/ember.jar" bench e2e --backend cuda --preset llama-3.1-8b --prompt-len 128 \
      --gen-len 128 --decode-batch 1 --iters 1 --warmup 1 --kernel-timeline "$OUT_DIR/kernels-b1.csv" \
      > "$OUT_DIR/kernels-b1.log" 2>&1 || echo "(kernel timeline failed: exit $?)"
    grep -A16 '^# kernel timeline' "$OUT_DIR/kernels-b1.log" | head -18 | tee "$OUT_DIR/summary-timeline.txt"
    AB_ROWS="b1-decode|bench e2e $b1_args
b64-decode|bench e2e --preset llama-3.1-8b --prompt-len 512 --gen-len 128 --chunk-len 4096 --decode-batch 64 --iters 3 --warmup 1" ab > /dev/null
    cat "$OUT_DIR/summary-tests.txt" "$OUT_DIR/summary-timeline.txt" "$OUT_DIR/summary.txt" > "$OUT_DIR/summary-all.txt"
    mv "$OUT_DIR/summary-all.txt" "$OUT_DIR/summary.txt"; cat "$OUT_DIR/summary.txt"
    pack_results
    exit $rc ;;
  layer-stream)
    # The one-launch decode step (LayerStream, EMBER_LAYER_STREAM=1, off by default): its test, then batch 1 of the 8B
    # shape at a 128 and a 2,048-token prompt and of the 1B shape, with the launch and without, and with one copy in
    # flight a block.
    unpack; host_info
    LS="$OUT_DIR/layer-stream.txt"  # summary() writes summary.txt itself: this mode gathers its own and renames it last
    rc=0; tests --select-class=dev.ember.backend.cuda.LayerStreamGpuTest || rc=$?
    summary > "$LS"
    # Again with at most two copies in flight a block (the same results; the producer's wait for landed chunks exercised).
    mv "$OUT_DIR/tests.log" "$OUT_DIR/tests-in-flight-all.log"
    EMBER_LAYER_STREAM_IN_FLIGHT=2 tests --select-class=dev.ember.backend.cuda.LayerStreamGpuTest || rc=$?
    summary >> "$LS"
    # Each row: a name, the environment (EMBER_LAYER_STREAM=0 is the kernels layer by layer), the bench's shape. The
    # one launch's rows are traced (the `[layer-stream]` line: each phase's and barrier's microseconds a layer).
    shape_8b="--preset llama-3.1-8b --prompt-len 128 --gen-len 256"
    for entry in "8b-128-kernels|EMBER_LAYER_STREAM=0|$shape_8b" \
                 "8b-128|EMBER_LAYER_STREAM=1|$shape_8b" \
                 "8b-128-in-flight-1|EMBER_LAYER_STREAM=1 EMBER_LAYER_STREAM_IN_FLIGHT=1|$shape_8b" \
                 "8b-2048-kernels|EMBER_LAYER_STREAM=0|--preset llama-3.1-8b --prompt-len 2048 --gen-len 128" \
                 "8b-2048|EMBER_LAYER_STREAM=1|--preset llama-3.1-8b --prompt-len 2048 --gen-len 128" \
                 "1b-128-kernels|EMBER_LAYER_STREAM=0|--preset llama-3.2-1b --prompt-len 128 --gen-len 256" \
                 "1b-128|EMBER_LAYER_STREAM=1|--preset llama-3.2-1b --prompt-len 128 --gen-len 256"; do
      IFS='|' read -r name knobs args <<< "$entry"
      echo "== $name: $knobs ember bench e2e $args --decode-batch 1 --iters 3 --warmup 1" >> "$LS"
      # shellcheck disable=SC2086
      env $knobs EMBER_LAYER_STREAM_TRACE=1 timeout 200 "${JAVA[@]}" -jar "$DEST/app/ember.jar" bench e2e \
        $args --decode-batch 1 --iters 3 --warmup 1 > "$OUT_DIR/layer-stream-$name.log" 2>&1 \
        || echo "(bench $name failed: exit $?)" >> "$LS"
      grep -E 'decode roofline|\[layer-stream\]' "$OUT_DIR/layer-stream-$name.log" >> "$LS" || true
    done
    # Where the launch's warps wait (ncu's stall reasons over one step of the 8B shape, LAYER_STREAM_NCU=0 leaves it
    # out): "no instruction" is the instruction cache, which a launch of every phase's code could miss each layer.
    if [ "${LAYER_STREAM_NCU:-1}" != 0 ] && command -v ncu > /dev/null; then
      echo "== ncu: the one launch's warp stalls, summed over its warps (ncu-layer-stream.csv)" >> "$LS"
      # shellcheck disable=SC2086
      EMBER_LAYER_STREAM=1 timeout 200 ncu --clock-control none --graph-profiling node --kernel-name regex:layer_stream \
        --launch-skip 4 --launch-count 1 --section WarpStateStats --section SchedulerStats --metrics \
        smsp__warps_issue_stalled_no_instruction.sum,smsp__warps_issue_stalled_long_scoreboard.sum,smsp__warps_issue_stalled_barrier.sum,smsp__warps_issue_stalled_sleeping.sum,smsp__warps_issue_stalled_branch_resolving.sum,smsp__warps_issue_stalled_membar.sum,smsp__warps_issue_stalled_wait.sum,smsp__warps_issue_stalled_short_scoreboard.sum,smsp__warps_issue_stalled_selected.sum,smsp__warps_active.sum,smsp__inst_executed.sum \
        --csv --log-file "$OUT_DIR/ncu-layer-stream.csv" "${JAVA[@]}" -jar "$DEST/app/ember.jar" bench e2e \
        $shape_8b --decode-batch 1 --iters 1 --warmup 1 > "$OUT_DIR/ncu-layer-stream.log" 2>&1 \
        || echo "(ncu of the one launch failed: exit $?)" >> "$LS"
      ncu_sections "$OUT_DIR/ncu-layer-stream.csv" 'stall|inst_executed|warps_active|Warp Cycles|No Eligible|Issued Warp' >> "$LS"
    fi
    mv "$LS" "$OUT_DIR/summary.txt"; cat "$OUT_DIR/summary.txt"; pack_results
    exit $rc ;;
  spec) unpack; spec | tee "$OUT_DIR/summary.txt"; pack_results ;;
  grammar) unpack; host_info; grammar | tee "$OUT_DIR/summary.txt"; pack_results ;;
  profile+spec) unpack; { profile; spec; } 2>&1 | tee "$OUT_DIR/summary.txt"; pack_results ;;
  streaming) unpack; streaming 2>&1 | tee "$OUT_DIR/summary.txt"; pack_results ;;
  check)
    # About eight minutes for a change to the kernels, the engine or the default model: the default model's HF
    # references, the kernel, runner, speculation and streaming tests (about four minutes), the batch-1 and batch-64
    # decode rows, and the streaming sweep bounded to STREAM_SECONDS (here 150 unless set), so that the whole fits a
    # call of ten minutes with its start.
    unpack; host_info; fixtures
    rc=0; tests "${CHECK_TESTS[@]}" --select-class=dev.ember.backend.cuda.HfGpuComparisonTest || rc=$?
    BENCH_ONLY="b1-decode b64-decode" bench
    STREAM_SECONDS=${STREAM_SECONDS:-150} streaming > /dev/null 2>&1 || true
    { summary; echo "== streaming (streaming/)"; cat "$OUT_DIR/streaming/streaming.log"; } > /tmp/check-summary.txt 2>&1
    cat "$OUT_DIR/fixtures.log" >> /tmp/check-summary.txt
    mv /tmp/check-summary.txt "$OUT_DIR/summary.txt"; cat "$OUT_DIR/summary.txt"; pack_results
    exit $rc ;;
  soak)
    unpack; host_info > /dev/null
    rc=0; soak > "$OUT_DIR/soak.txt" 2>&1 || rc=$?
    { cat "$OUT_DIR/soak.txt"; echo "== host: $(sed -n 2p "$OUT_DIR/host.txt"), $(nproc) cores"; } > "$OUT_DIR/summary.txt"
    cat "$OUT_DIR/summary.txt"; pack_results
    exit $rc ;;
  report)
    unpack; host_info
    "${JAVA[@]}" -jar "$DEST/app/ember.jar" report --backend cuda --preset llama-3.1-8b --monitor --trace \
      --out "$OUT_DIR/report" > "$OUT_DIR/report.log" 2>&1 || echo "(ember report failed: exit $?)" >> "$OUT_DIR/report.log"
    { tail -5 "$OUT_DIR/report.log"; ls "$OUT_DIR/report"; } | tee "$OUT_DIR/summary.txt"
    pack_results ;;
  ab) unpack; host_info; ab; pack_results ;;
  ember) shift; unpack; ${EMBER_JAVA_WRAPPER:-} "${JAVA[@]}" -jar "$DEST/app/ember.jar" "$@" ;;
  *) echo "usage: $0 pack [BUNDLE_DIR] | all | all-second | gpu [JUNIT_SELECTORS...] | bench | peer | bench+peer | p2p | serving | profile | spec | profile+spec | streaming | check | round | soak | grammar | ab | tests+ab | batch1 | report | ember ARGS..." >&2; exit 2 ;;
esac
