#!/usr/bin/env bash
# Ember's GPU test suite, in two halves, because the GPU host has no JDK, no Maven and no network.
#
#   tools/gpu/run-gpu-suite.sh pack [BUNDLE_DIR]
#       Here (the development machine): builds the jars (with the CUDA kernels) and the test classes, jlinks a
#       Java runtime, and packs runtime + jars + test classes + the JUnit console launcher into one xz archive
#       in BUNDLE_DIR (default /work/main/.gpu/bundle, which the device call carries), with this script beside it.
#
#   bash .gpu/bundle/run-gpu-suite.sh gpu [TEST_SELECTOR...]
#       On the GPU host (the device call's command): unpacks the archive, runs the GPU tests (the package
#       dev.ember.backend.cuda unless selectors such as --select-class=... are given), writes the full logs
#       and JUnit XML under $OUT (or ./gpu-out) and prints a short table last.
set -euo pipefail

JUNIT_VERSION=6.1.3
# The application runtime of gpu-host.md, plus jdk.zipfs, which the JUnit launcher uses to read jars.
MODULES=java.base,jdk.incubator.vector,jdk.httpserver,java.logging,jdk.unsupported,java.management,java.net.http,jdk.zipfs
ARCHIVE=ember-gpu.tar.xz

pack() {
  local root bundle work jdk
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  bundle="${1:-/work/main/.gpu/bundle}"
  work="$(dirname "$bundle")/bundle-work"
  jdk=/usr/lib/jvm/temurin-25-jdk-amd64
  export JAVA_HOME="$jdk"
  command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "pack: nvcc is needed to build the kernels" >&2; exit 1; }

  echo "[pack] building jars and test classes"
  mvn -B -q -f "$root/pom.xml" -DskipTests package test-compile
  mvn -B -q -f "$root/pom.xml" dependency:copy -Dartifact="org.junit.platform:junit-platform-console-standalone:$JUNIT_VERSION" \
      -DoutputDirectory="$work/tools"

  rm -rf "$work/app" && mkdir -p "$work/app/lib"
  cp "$root/target/ember.jar" "$work/app/"
  cp -r "$root/target/test-classes" "$work/app/test-classes"
  cp "$root/config/jvm.options" "$work/app/"
  for jar in "$root"/target/lib/*.jar; do
    case "$(basename "$jar")" in
      tokenizers-*.jar)
        # DJL ships its tokenizer natives for four platforms; the GPU host needs linux-x86_64 only.
        local tmp; tmp="$(mktemp -d)"
        (cd "$tmp" && unzip -q "$jar" && find native/lib -mindepth 1 -maxdepth 1 -type d ! -name linux-x86_64 -exec rm -rf {} + \
          && zip -q -r -9 "$work/app/lib/$(basename "$jar")" .)
        rm -rf "$tmp" ;;
      *) cp "$jar" "$work/app/lib/" ;;
    esac
  done
  cp "$work/tools/junit-platform-console-standalone-$JUNIT_VERSION.jar" "$work/app/"

  if [ ! -f "$work/jre/release" ] || ! grep -q "$MODULES" "$work/jre/.modules" 2>/dev/null; then
    echo "[pack] jlinking a runtime"
    rm -rf "$work/jre"
    # Uncompressed modules: xz below packs them to 14 MB, where jlink's own zip-9 leaves 21 MB after xz.
    "$jdk/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages --compress=zip-0 --output "$work/jre"
    echo "$MODULES" > "$work/jre/.modules"
  fi

  mkdir -p "$bundle"
  rm -f "$bundle/$ARCHIVE"
  tar -C "$work" -cf - jre app | xz -T2 -6 > "$bundle/$ARCHIVE"
  cp "${BASH_SOURCE[0]}" "$bundle/run-gpu-suite.sh"
  echo "[pack] $(du -h "$bundle/$ARCHIVE" | cut -f1) in $bundle; on the GPU host: bash .gpu/bundle/run-gpu-suite.sh gpu"
}

gpu() {
  local here out dest rc
  here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  out="${OUT:-$PWD/gpu-out}"
  dest=/tmp/ember-gpu
  mkdir -p "$out" "$dest"
  rm -rf "$dest/jre" "$dest/app"
  xz -dc "$here/$ARCHIVE" | tar -C "$dest" -xf -

  {
    echo "== host"; nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv,noheader || true
    echo "== libraries"; ls -l /usr/lib/libcuda.so.1 /usr/local/cuda*/targets/x86_64-linux/lib/libcublasLt.so.* 2>&1 || true
    # The cuBLASLt ABI that CublasLt.java hard-codes, read off this host's headers.
    echo "== cublasLt.h"
    printf '%s\n' '#include <cublasLt.h>' '#include <stdio.h>' \
      'int main(void) { printf("heuristic result %zu bytes, algo %zu, TRANSA %d TRANSB %d PREF_MAX_WORKSPACE %d COMPUTE_32F %d R_16BF %d R_16F %d R_32F %d\n",' \
      '  sizeof(cublasLtMatmulHeuristicResult_t), sizeof(cublasLtMatmulAlgo_t), CUBLASLT_MATMUL_DESC_TRANSA, CUBLASLT_MATMUL_DESC_TRANSB,' \
      '  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, CUBLAS_COMPUTE_32F, CUDA_R_16BF, CUDA_R_16F, CUDA_R_32F); return 0; }' > /tmp/abi.c
    gcc -I/usr/local/cuda/include -o /tmp/abi /tmp/abi.c && /tmp/abi || echo "(no cuBLASLt headers to check against)"
  } > "$out/host.txt" 2>&1
  cat "$out/host.txt"

  local selectors=("$@")
  [ ${#selectors[@]} -gt 0 ] || selectors=(--select-package=dev.ember.backend.cuda)
  cd "$dest/app"
  set +e
  # EMBER_JAVA_WRAPPER runs the JVM under a tool, e.g. "ncu --clock-control none --launch-count 200 --csv --log-file $OUT/ncu.csv".
  ${EMBER_JAVA_WRAPPER:-} "$dest/jre/bin/java" @jvm.options -Xmx24g -jar "junit-platform-console-standalone-$JUNIT_VERSION.jar" execute \
      --class-path "ember.jar:$(ls lib/*.jar | tr '\n' ':')test-classes" \
      --details=tree --disable-banner "${selectors[@]}" > "$out/tests.log" 2>&1
  rc=$?
  set -e
  grep -E '✘|MethodSource|=>|Exception|expected' "$out/tests.log" | head -60 || true
  echo
  echo "== checks (full log: tests.log)"
  grep -h '\[gpu' "$out/tests.log" | sed 's/^[[:space:]│├└─]*//' | sort -u | cut -c1-150 || true
  echo
  grep -E 'tests (successful|failed|aborted|skipped|found)' "$out/tests.log" || true
  echo "junit exit code: $rc"
  return $rc
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  gpu) shift; gpu "$@" ;;
  *) echo "usage: $0 pack [BUNDLE_DIR] | gpu [JUNIT_SELECTORS...]" >&2; exit 2 ;;
esac
