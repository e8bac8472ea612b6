#!/usr/bin/env python3
"""Bounded soak test of `ember serve`, on the loopback only; it stops by itself.

Starts `./ember serve` on 127.0.0.1 (--ember names another command for `./ember`, say the bundled Java runtime with the
app jar; or --base-url with --pid uses a running server), then sends --requests requests from --concurrency clients at
once: completions and chat, streamed and whole, some held to a grammar (JSON, a regular expression) or scoring their
prompt, a share of streaming clients that disconnect mid-stream, bad requests and prompts far over the context. Meanwhile it times GET /health every 100 ms and samples the heap from /metrics. At
the end it checks that:
  - every request got a complete answer (a finish reason, and [DONE] when streamed) or an OpenAI-style JSON error,
  - no KV block and no request slot leaked (/metrics: nothing running or waiting, no request in flight, blocks in use
    only those the prefix cache holds),
  - /health answered within --health-limit-ms every time,
  - the heap after a full GC is back within 10% of where it was after warm-up (`jcmd PID GC.run`, then the heap in use
    from /metrics; jcmd from --jcmd, else beside the java of --ember, on PATH or in $JAVA_HOME/bin),
and prints the figures (requests, errors by kind, p50/p99 latency, /health p50/p99/max, peak heap, each check's
result) as JSON; each /health check over the limit is listed under health_slow as [seconds since the clients started
(UTC time under clients_started_at), ms, phase: before / while / after the requests] (and its status when not 200),
to set beside a GC log. A check that cannot be made (no jcmd, no process id) is reported as "not made" under
"checks", never as held. Exit code 0 when every check holds, 1 when one fails, 2 when none fails but one could not be made.
Standard library only.

  tools/soak/soak.py                          # 1,000 requests at 200 concurrent on the default model (CPU)
  tools/soak/soak.py --requests 200 --concurrency 50
  tools/soak/soak.py --ember "java @config/jvm.options -Dember.home=$PWD -jar target/ember.jar" --jcmd $JAVA_HOME/bin/jcmd
"""
import argparse
import http.client
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError  # (the builtin one from Python 3.11 on)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMPTS = ["And the LORD said unto Moses,", "A friend in need", "The king of Israel", "In the beginning",
           "Blessed is the man", "Who is wise?", "computer: a machine that", "The meaning of life is"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--disconnect-share", type=float, default=0.2, help="clients that leave mid-stream")
    p.add_argument("--bad-share", type=float, default=0.08, help="malformed or invalid requests")
    p.add_argument("--oversized-share", type=float, default=0.04, help="prompts far over the context")
    p.add_argument("--max-tokens", type=int, default=48, help="the most tokens a request asks for")
    p.add_argument("--seed", type=int, default=15)
    p.add_argument("--port", type=int, default=0, help="port for the server started here; 0 picks a free one")
    p.add_argument("--base-url", help="use a running server (loopback only) instead of starting one")
    p.add_argument("--pid", type=int, help="with --base-url: the server's process id, for jcmd GC.run")
    p.add_argument("--ember", help="the command that stands for ./ember, split as a shell would (no expansion); "
                   "`serve --host 127.0.0.1 --port N` and --serve-args follow it. Default: ./ember of this checkout")
    p.add_argument("--serve-args", default="", help="more arguments for `ember serve`, e.g. \"--backend cuda\"")
    p.add_argument("--jcmd", help="the jcmd that runs GC.run in the server's JVM for the heap check (default: beside "
                   "the java of --ember, on PATH, or in $JAVA_HOME/bin); without one the heap check is reported not made")
    p.add_argument("--server-log", help="the server's output (default: $TMPDIR/ember-soak-server.log)")
    p.add_argument("--health-limit-ms", type=float, default=100)
    p.add_argument("--client-niceness", type=int, default=10, help="os.nice of the load-generating clients (0: none)")
    p.add_argument("--time-limit", type=float, default=900, help="seconds after which the run stops, failed")
    p.add_argument("--out", help="write the figures as JSON here too")
    return p.parse_args()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The server under test: host, port and process id (its process when this script started it)."""

    def __init__(self, args):
        self.process = None
        if args.base_url:
            host, _, port = args.base_url.removeprefix("http://").rstrip("/").partition(":")
            if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
                sys.exit("soak: only a server on the loopback may be soaked, not " + host)
            self.host, self.port, self.pid = host, int(port), args.pid
            return
        self.host, self.port = "127.0.0.1", args.port or free_port()
        ember = shlex.split(args.ember) if args.ember else [os.path.join(ROOT, "ember")]
        command = ember + ["serve", "--host", self.host, "--port", str(self.port)] + shlex.split(args.serve_args)
        print("soak: starting " + shlex.join(command), file=sys.stderr)
        self.log = open(args.server_log or os.path.join(os.environ.get("TMPDIR", "/tmp"), "ember-soak-server.log"), "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        on_term(self)
        deadline = time.time() + 300
        while time.time() < deadline:
            if self.process.poll() is not None:
                sys.exit("soak: the server exited with " + str(self.process.returncode) + "; see " + self.log.name)
            try:
                if request(self, "GET", "/health", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            self.stop()
            sys.exit("soak: the server did not answer /health within 300 s")
        self.pid = java_pid(self.process.pid)

    def stop(self, grace=90):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def java_pid(launcher_pid):
    """The JVM under the ./ember launcher: the launcher execs java, or runs it as a child."""
    for _ in range(50):
        try:
            children = subprocess.run(["pgrep", "-P", str(launcher_pid)], capture_output=True, text=True).stdout.split()
        except FileNotFoundError:
            children = []
        with open("/proc/%d/cmdline" % launcher_pid, "rb") as f:
            if b"java" in f.read().split(b"\0")[0]:
                return launcher_pid
        for child in children:
            with open("/proc/%s/cmdline" % child, "rb") as f:
                if b"java" in f.read().split(b"\0")[0]:
                    return int(child)
        time.sleep(0.1)
    return launcher_pid


def request(server, method, path, body=None, timeout=120):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace"), response.getheader("Content-Type", "")
    finally:
        conn.close()


def metrics(server):
    status, text, _ = request(server, "GET", "/metrics", timeout=30)
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name_labels, _, value = line.rpartition(" ")
        values[name_labels.split("{")[0] if "le=" not in name_labels and "finished_reason" not in name_labels else name_labels] = float(value)
    return values


def find_jcmd(args):
    """The jcmd to use: --jcmd, else the one beside the java that --ember runs, on PATH, or in a JDK; None if none."""
    if args.jcmd:
        if not os.access(args.jcmd, os.X_OK):
            sys.exit("soak: --jcmd %s is not an executable file" % args.jcmd)
        return args.jcmd
    candidates = []
    if args.ember:
        java = shlex.split(args.ember)[0]
        if os.path.basename(java) == "java":
            candidates.append(os.path.join(os.path.dirname(shutil.which(java) or java), "jcmd"))
    candidates += [shutil.which("jcmd") or "", os.path.join(os.environ.get("JAVA_HOME", ""), "bin", "jcmd"),
                   "/usr/lib/jvm/temurin-25-jdk-amd64/bin/jcmd"]
    return next((p for p in candidates if p and os.access(p, os.X_OK)), None)


def full_gc_heap(server, jcmd):
    """The heap in use right after a full GC (jcmd GC.run), read from /metrics, and why not (None, reason) when the GC
    cannot be asked for: the heap read without it would not be after a full GC, so it is not taken as one."""
    if not jcmd:
        return None, "no jcmd (neither --jcmd, beside the server's java, on PATH nor in $JAVA_HOME/bin)"
    if not server.pid:
        return None, "no process id of the server (--pid) for jcmd"
    for _ in range(2):
        done = subprocess.run([jcmd, str(server.pid), "GC.run"], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            return None, "%s %d GC.run failed (exit %d): %s" % (jcmd, server.pid, done.returncode,
                                                               (done.stdout + done.stderr).strip()[-200:])
    return metrics(server)["ember_jvm_heap_used_bytes"], None


def plan(args):
    """Each request's kind, in a shuffled but seeded order."""
    rng = random.Random(args.seed)
    n = args.requests
    kinds = (["disconnect"] * round(n * args.disconnect_share) + ["bad"] * round(n * args.bad_share)
             + ["oversized"] * round(n * args.oversized_share))
    while len(kinds) < n:
        kinds.append(rng.choice(["stream", "plain"]))
    kinds = kinds[:n]
    rng.shuffle(kinds)
    jobs = []
    for i, kind in enumerate(kinds):
        chat = rng.random() < 0.5
        jobs.append({"i": i, "kind": kind, "chat": chat, "prompt": rng.choice(PROMPTS),
                     "max_tokens": rng.randint(4, args.max_tokens), "seed": rng.randint(0, 1 << 30),
                     "temperature": rng.choice([0, 0.7, 1.0]), "variant": rng.randint(0, 5)})
    return jobs


BAD_BODIES = [
    b'{"prompt": "hi", ',                                                   # malformed JSON
    b'{"prompt": "hi", "temperature": "hot"}',                              # wrong type
    b'{"prompt": "hi", "frobnicate": 1}',                                   # unknown field
    b'{"messages": [{"role": "user"}]}',                                    # message without content
    b'{"messages": [{"role": "wizard", "content": "hi"}]}',                 # unknown role
    b'{"prompt": "hi", "response_format": {"type": "json_schema"}}',        # structured output
]


def body_of(job, context_chars):
    if job["kind"] == "bad":
        return BAD_BODIES[job["variant"]], "/v1/chat/completions" if b"messages" in BAD_BODIES[job["variant"]] else "/v1/completions"
    body = {"max_tokens": job["max_tokens"], "temperature": job["temperature"], "seed": job["seed"], "ignore_eos": True}
    prompt = job["prompt"]
    if job["kind"] == "oversized":
        # far over the context (refused before tokenizing), or just over it (tokenized, then refused)
        prompt = "and the " * (context_chars // 8 + 1) if job["variant"] % 2 else "and the " * 1100
    if job["kind"] in ("stream", "disconnect"):
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if job["kind"] != "oversized" and job["variant"] == 0:
        # held to a grammar: JSON for chat, a regular expression for completions (a grammar ends the output itself)
        del body["ignore_eos"]
        if job["chat"]:
            body["response_format"] = {"type": "json_object"}
        else:
            body["guided_regex"] = "[a-z]{1,12}( [a-z]{1,12}){0,3}"
    if job["chat"]:
        body["messages"] = [{"role": "user", "content": prompt}]
        return json.dumps(body).encode(), "/v1/chat/completions"
    body["prompt"] = prompt
    if job["kind"] == "plain" and job["variant"] == 1:
        body.update({"echo": True, "logprobs": 1})  # the prompt scored too, as lm-evaluation-harness asks
    return json.dumps(body).encode(), "/v1/completions"


def run_job(server, job, context_chars):
    body, path = body_of(job, context_chars)
    start = time.perf_counter()
    result = {"i": job["i"], "kind": job["kind"], "chat": job["chat"]}
    conn = http.client.HTTPConnection(server.host, server.port, timeout=300)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        result["status"] = response.status
        content_type = response.getheader("Content-Type", "")
        if response.status != 200:
            text = response.read().decode("utf-8", "replace")
            try:
                error = json.loads(text)["error"]
                ok = all(k in error for k in ("message", "type", "param", "code")) and content_type.startswith("application/json")
                result["outcome"] = "json_error" if ok else "bad_error_body"
                result["error"] = "%d %s" % (response.status, error.get("param") or error.get("code") or error.get("type"))
            except (ValueError, KeyError, TypeError):
                result["outcome"] = "bad_error_body"
                result["error"] = text[:120]
        elif job["kind"] == "disconnect":
            for _ in range(1 + job["variant"]):
                if not response.fp.readline():
                    break
            result["outcome"] = "disconnected"
        elif "event-stream" in content_type:
            finish, done = None, False
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data: "):
                    continue
                data = line[6:]
                if data == "[DONE]":
                    done = True
                    break
                chunk = json.loads(data)
                if "error" in chunk:
                    finish = "error"
                for choice in chunk.get("choices", []):
                    finish = choice.get("finish_reason") or finish
            result["outcome"] = "complete" if done and finish in ("stop", "length") else "incomplete"
        else:
            answer = json.loads(response.read())
            choice = answer["choices"][0]
            complete = choice["finish_reason"] in ("stop", "length") and answer["usage"]["completion_tokens"] >= 1
            result["outcome"] = "complete" if complete else "incomplete"
    except (OSError, http.client.HTTPException, ValueError) as e:
        result["outcome"] = "transport_error"
        result["error"] = repr(e)[:160]
    finally:
        conn.close()
    result["seconds"] = time.perf_counter() - start
    return result


def percentile(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    args = parse_args()
    jcmd = find_jcmd(args)
    server = Server(args)
    failures = []
    checks = {}
    try:
        deadline = time.time() + args.time_limit
        models = json.loads(request(server, "GET", "/v1/models")[1])
        context_chars = models["data"][0]["max_model_len"] * 32
        for prompt in PROMPTS:  # warm-up: the JIT and the prefix cache see each prompt once
            request(server, "POST", "/v1/completions", json.dumps({"prompt": prompt, "max_tokens": 4}).encode())
        heap_start, heap_not_made = full_gc_heap(server, jcmd)

        # /health is timed from a process of its own, so that this client's threads (and Python's lock) do not add to it.
        health_log = os.path.join(os.environ.get("TMPDIR", "/tmp"), "ember-soak-health-%d.log" % os.getpid())
        monitor = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--monitor", server.host, str(server.port),
                                    health_log])
        on_term(server, monitor)
        stop = threading.Event()
        heap_samples = []

        def sample_heap():
            while not stop.is_set():
                try:
                    heap_samples.append(metrics(server)["ember_jvm_heap_used_bytes"])
                except (OSError, KeyError, ValueError):
                    pass
                stop.wait(0.25)

        watcher = threading.Thread(target=sample_heap, daemon=True)
        watcher.start()
        # The clients yield the cores to the server and the /health timer, as clients on other machines would: on a
        # machine of two cores they would otherwise take the CPU the server answers with.
        os.nice(args.client_niceness)
        started, started_at = time.perf_counter(), time.time()
        results = []
        with ThreadPoolExecutor(max_workers=args.concurrency) as pool:
            futures = [pool.submit(run_job, server, job, context_chars) for job in plan(args)]
            for f in futures:
                try:
                    results.append(f.result(timeout=max(0, deadline - time.time())))
                except TimeoutError:
                    failures.append("the run passed its time limit of %d s (%d of %d requests answered)" % (
                        args.time_limit, len(results), len(futures)))
                    checks["time_limit"] = "failed"
                    for g in futures:
                        g.cancel()
                    break
        wall = time.perf_counter() - started
        ended_at = started_at + wall
        stop.set()
        watcher.join()
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(30)
        with open(health_log) as f:
            health_ms = [(float(ms), int(status), float(at)) for ms, status, at in (line.split() for line in f)]
        os.unlink(health_log)

        # Leaks: wait for the engine to settle, then nothing may hold a request slot or a block beyond the prefix cache.
        settle = time.time() + 60
        while True:
            m = metrics(server)
            busy = m["ember_num_requests_running"] + m["ember_num_requests_waiting"] + m["ember_http_requests_in_flight"]
            used = round(m["ember_kv_cache_usage_ratio"] * m["ember_kv_cache_blocks"])
            if busy == 0 and used == m["ember_prefix_cache_blocks"] or time.time() > settle:
                break
            time.sleep(0.2)
        leaks = len(failures)
        if busy:
            failures.append("requests still held after the run: %s" % {k: m[k] for k in (
                "ember_num_requests_running", "ember_num_requests_waiting", "ember_http_requests_in_flight")})
        if used != m["ember_prefix_cache_blocks"]:
            failures.append("KV blocks leaked: %d in use, %d held by the prefix cache" % (used, m["ember_prefix_cache_blocks"]))
        checks["no_leak"] = "held" if len(failures) == leaks else "failed"
        heap_end, end_not_made = full_gc_heap(server, jcmd)
        heap_not_made = heap_not_made or end_not_made

        outcomes = {}
        errors = {}
        for r in results:
            outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
            if "error" in r:
                errors[r["error"]] = errors.get(r["error"], 0) + 1
        answers = len(failures)
        for bad in ("incomplete", "bad_error_body", "transport_error"):
            if outcomes.get(bad):
                failures.append("%d requests ended %s" % (outcomes[bad], bad))
        for r in results:
            expected_error = r["kind"] in ("bad", "oversized")
            if expected_error != (r["outcome"] == "json_error") and r["outcome"] != "disconnected":
                failures.append("request %d (%s) ended %s" % (r["i"], r["kind"], r["outcome"]))
                break
        checks["answers"] = "held" if len(failures) == answers else "failed"
        health = [ms for ms, _, _ in health_ms]
        # Each check over the limit: when it was sent, in seconds since the clients started, and in which phase.
        slow_health = []
        for ms, status, at in health_ms:
            if ms >= args.health_limit_ms or status != 200:
                sent = at - ms / 1000
                phase = "before" if sent < started_at else "while" if sent < ended_at else "after"
                slow_health.append([round(sent - started_at, 2), round(ms, 1), phase] + ([] if status == 200 else [status]))
        if not health_ms:
            failures.append("/health was never timed")
        elif slow_health:
            failures.append("/health over %g ms or not 200 %d times of %d (slowest %.1f ms); at +s, ms, phase: %s" % (
                args.health_limit_ms, len(slow_health), len(health_ms), max(health),
                ", ".join("%+.2f %.1f %s" % tuple(slow[:3]) for slow in slow_health)))
        checks["health"] = "failed" if slow_health or not health_ms else "held"
        if heap_not_made:
            checks["heap"] = "not made: " + heap_not_made
            print("soak: the heap check was not made: " + heap_not_made, file=sys.stderr)
        elif heap_end > heap_start * 1.10:
            failures.append("the heap after GC grew from %.1f to %.1f MB" % (heap_start / 2**20, heap_end / 2**20))
            checks["heap"] = "failed"
        else:
            checks["heap"] = "held"

        complete = [r["seconds"] for r in results if r["outcome"] == "complete"]
        rounded = lambda value, digits: None if value is None else round(value, digits)
        figures = {
            "date": time.strftime("%Y-%m-%d"),
            "command": args.ember or "./ember", "serve_args": args.serve_args,
            "requests": len(results), "concurrency": args.concurrency, "wall_seconds": round(wall, 1),
            "outcomes": outcomes, "errors_by_kind": dict(sorted(errors.items())),
            "latency_p50_s": rounded(percentile(complete, 0.5), 3), "latency_p99_s": rounded(percentile(complete, 0.99), 3),
            "health_checks": len(health_ms), "health_max_ms": rounded(max(health, default=None), 1),
            "health_p50_ms": rounded(percentile(health, 0.5), 1), "health_p99_ms": rounded(percentile(health, 0.99), 1),
            "health_limit_ms": args.health_limit_ms, "health_over_limit": len(slow_health),
            "health_slow": slow_health, "clients_started_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started_at))
            + ".%03dZ" % (started_at % 1 * 1000),
            "cores": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 1),
            "heap_after_gc_start_mb": rounded(heap_start and heap_start / 2**20, 1),
            "heap_after_gc_end_mb": rounded(heap_end and heap_end / 2**20, 1),
            "heap_peak_mb": heap_samples and round(max(heap_samples) / 2**20, 1),
            "checks": checks,
            "result": "failed" if failures else "held" if all(v == "held" for v in checks.values()) else "not all checks made",
            "failures": failures,
        }
        print(json.dumps(figures, indent=2))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(figures, f, indent=2)
    finally:
        server.stop()
    return 1 if failures else 0 if all(v == "held" for v in checks.values()) else 2


def on_term(server, *children):
    """On SIGTERM (say from `timeout`) the server started here, in a session of its own, is stopped too."""
    def stop(*_):
        for child in children:
            child.kill()
        server.stop(grace=20)
        os._exit(128 + signal.SIGTERM)
    signal.signal(signal.SIGTERM, stop)


def monitor_health(host, port, log):
    """GET /health every 100 ms until SIGTERM, one line per check: milliseconds and status (0: no answer)."""
    running = [True]
    signal.signal(signal.SIGTERM, lambda *_: running.__setitem__(0, False))
    server = type("S", (), {"host": host, "port": int(port)})
    with open(log, "w") as out:
        while running[0]:
            t = time.perf_counter()
            try:
                status = request(server, "GET", "/health", timeout=10)[0]
            except OSError:
                status = 0
            out.write("%.2f %d %.3f\n" % ((time.perf_counter() - t) * 1000, status, time.time()))
            out.flush()
            time.sleep(0.1)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--monitor":
        monitor_health(*sys.argv[2:])
        sys.exit(0)
    sys.exit(main())
