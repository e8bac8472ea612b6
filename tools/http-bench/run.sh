#!/usr/bin/env bash
# The measurement behind ember serve's HTTP server (docs/benchmarks.md, "The HTTP server"): each candidate in a JVM of
# its own, on the loopback; one JSON line per server and load. Usage: tools/http-bench/run.sh [streams...]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export JAVA_HOME="${EMBER_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
mvn -q -B -f "$here/pom.xml" compile dependency:build-classpath -Dmdep.outputFile="$here/target/classpath" >&2
cp="$here/target/classes:$(cat "$here/target/classpath")"
loads=("$@")
[ ${#loads[@]} -gt 0 ] || loads=(256 1024)
for streams in "${loads[@]}"; do
  for server in jdk jetty netty helidon; do
    "$JAVA_HOME/bin/java" -Xmx1g -cp "$cp" bench.HttpServerBench "$server" "$streams" 100 20
  done
done
