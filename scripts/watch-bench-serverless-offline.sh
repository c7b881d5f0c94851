#!/usr/bin/env bash
# Measures save-to-serving under serverless-offline, for comparison with Gatehouse's watch mode
# (BenchmarkWatchSaveToServing in internal/app/watch_bench_test.go): a Node.js function behind an
# HTTP API, edited 10 times; each edit writes handler.js as editors save (a new file renamed over the
# old one) and times the rename to the first 200 answer carrying the new body, polling every
# millisecond. Prints p50 and max (p50 is the upper median of the 10, as the Go benchmark's).
#
# serverless-offline 13 does not watch files: --reloadHandler makes it load the handler anew (a new
# worker thread) for every request, so an edit shows on the next request. The script also prints
# what that costs per request with no edit.
#
# Usage: scripts/watch-bench-serverless-offline.sh [install-dir]
# where install-dir has node_modules with serverless v3 and serverless-offline 13 (default
# /tmp/slsbench). Needs node and python3.
set -euo pipefail

install=${1:-/tmp/slsbench}
port=${PORT:-3999}
lambda_port=${LAMBDA_PORT:-3998}
sls="$install/node_modules/.bin/serverless"
[ -x "$sls" ] || { echo "no serverless in $install/node_modules/.bin" >&2; exit 1; }
[ -d "$install/node_modules/serverless-offline" ] || { echo "no serverless-offline in $install/node_modules" >&2; exit 1; }

work=$(mktemp -d)
sls_pid=
cleanup() {
  if [ -n "$sls_pid" ]; then
    # serverless runs in a process group of its own (setsid): stop it and whatever it started.
    kill -TERM -- "-$sls_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$sls_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$sls_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ln -s "$install/node_modules" "$work/node_modules"
cat >"$work/serverless.yml" <<'EOF'
service: sobench
frameworkVersion: '3'
provider:
  name: aws
  runtime: nodejs20.x
  region: us-east-1
functions:
  hello:
    handler: handler.hello
    events:
      - httpApi: {method: GET, path: /hello}
plugins:
  - serverless-offline
EOF
printf "exports.hello = async () => ({statusCode: 200, body: 'v1'})\n" >"$work/handler.js"

cd "$work"
export SLS_TELEMETRY_DISABLED=1 SLS_NOTIFICATIONS_MODE=off SLS_DEPRECATION_DISABLE='*'
export AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline
setsid "$sls" offline --httpPort "$port" --lambdaPort "$lambda_port" --reloadHandler >"$work/offline.log" 2>&1 &
sls_pid=$!

python3 - "$work/handler.js" "http://127.0.0.1:$port/hello" "$sls_pid" <<'EOF' || { echo "offline log:" >&2; tail -30 "$work/offline.log" >&2; exit 1; }
import http.client, os, sys, time
from urllib.parse import urlsplit

path, url, pid = sys.argv[1], urlsplit(sys.argv[2]), int(sys.argv[3])
conn = None

def get():
    global conn
    try:
        if conn is None:
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        conn.request("GET", url.path)
        r = conn.getresponse()
        return r.status, r.read().decode()
    except (OSError, http.client.HTTPException):
        if conn is not None:
            conn.close()
        conn = None
        return 0, ""

def served(body, timeout):
    deadline = time.monotonic() + timeout
    while True:
        if get() == (200, body):
            return
        if time.monotonic() > deadline:
            sys.exit(f"{body} not served after {timeout}s")
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit("serverless offline exited")
        time.sleep(0.001)

def save(v):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("exports.hello = async () => ({statusCode: 200, body: '%s'})\n" % v)
    at = time.monotonic()
    os.rename(tmp, path)
    return at

t0 = time.monotonic()
served("v1", 120)
print(f"serverless offline up, first answer after {(time.monotonic() - t0) * 1000:.0f} ms")

# What --reloadHandler costs: requests with no edit.
steady = []
for _ in range(20):
    t = time.monotonic()
    if get() != (200, "v1"):
        sys.exit("unexpected answer with no edit")
    steady.append((time.monotonic() - t) * 1000)
steady.sort()
print(f"request with no edit (--reloadHandler loads the handler for each): p50 {steady[len(steady) // 2]:.1f} ms, max {steady[-1]:.1f} ms")

times = []
for i in range(2, 12):
    v = f"v{i}"
    at = save(v)
    served(v, 120)
    times.append((time.monotonic() - at) * 1000)
    time.sleep(0.1)  # a pause between saves, as the Go benchmark makes
print("save to serving, in order (ms):", " ".join(f"{t:.1f}" for t in times))
times.sort()
print(f"serverless-offline --reloadHandler save to serving: p50 {times[len(times) // 2]:.1f} ms, max {times[-1]:.1f} ms ({len(times)} edits)")
EOF
