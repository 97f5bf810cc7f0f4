#!/usr/bin/env bash
# Benchmark: the time from `kiln apply` to 100 % of the traffic on the new version, for a
# blue/green switch of a 10-instance service (busybox httpd) behind a kiln route.
# A first `kiln apply` deploys v1 (untimed); then RUNS times (v2, v3, …), each a new
# blue/green rollout (pause 0s, rollback_window 1s):
#   T0        `kiln apply --detach` starts (this script's clock; the `apply` event's ts too);
#   T_ready   ts of the last `instance.ready` event of the 10 new instances;
#   T_switch  ts of the first `proxy.table` event with the 10 new backends at 100 %;
# found by polling `kiln events --output json` every 20 ms; right after T_switch is seen,
# a request through the route must answer the new version. Between runs the rollout is
# left to complete (old set stopped after the rollback window).
# Reported per run and as medians: apply→ready, ready→100 % and apply→100 %.
# Target: ready→100 % (the time beyond readiness) under 2 s.
# Everything runs on the host network and talks only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
. bench/lib.sh
install_packages jq curl python3
cargo build --release --locked -p kiln >&2
KILN="$PWD/target/release/kiln"

RUNS=3
N=10
KILN_PORTS=23600-23649 # instances: 10 old + 10 new at the switch
POLL=0.02

work="$(mktemp -d /var/tmp/kiln-bench-switch.XXXXXX)"
export KILN_HOME="$work/home"
daemon_pid=""

log() { echo "bench: $*" >&2; }

# Pids of this run's `kiln --home HOME proxy` (the daemon starts it, in its own session).
proxy_pids() {
    local p pid cmd
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline") || continue
        if [[ "$cmd" == *"$KILN_HOME"* && "$cmd" == *" proxy"* ]]; then echo "$pid"; fi
    done
}

cleanup() {
    set +e
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        timeout 30 "$KILN" destroy web >/dev/null 2>&1
        kill "$daemon_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    for pid in $(proxy_pids); do
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
    done
    if [ -d "$KILN_HOME/runc-instances" ]; then
        for id in $(runc --root "$KILN_HOME/runc-instances" list -q 2>/dev/null); do
            runc --root "$KILN_HOME/runc-instances" delete -f "$id" >/dev/null 2>&1
        done
    fi
    sweep_work "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

ROUTE_PORT=$(python3 -c '
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ROUTE="127.0.0.1:$ROUTE_PORT"
python3 - "${KILN_PORTS%-*}" "${KILN_PORTS#*-}" <<'PY'
import socket, sys
busy = []
for p in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    try:
        socket.create_connection(("127.0.0.1", p), timeout=0.2).close(); busy.append(p)
    except OSError:
        pass
if busy:
    sys.exit(f"bench: ports already in use in the instance range: {busy}")
PY

# ---------------------------------------------------------------- the image and spec
ctx="$work/ctx"
image=$(web_image "$ctx")
echo ok > "$ctx/www/healthz"
# /cgi-bin/version answers the instance's $VERSION (httpd passes its environment on).
printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%%s\\n" "$VERSION"\n' > "$ctx/version"

spec() { # VERSION
    cat <<TOML
$image

[[image.web.step]]
copy = "version"
to = "/www/cgi-bin/version"
mode = "0755"

[service.web]
image = "web"
replicas = $N
env = { VERSION = "$1" }

[service.web.readiness]
http = "/healthz"
interval = "200ms"

[service.web.stop]
grace = "1s"

[service.web.strategy]
kind = "blue-green"
pause = "0s"
rollback_window = "1s"

[route.web]
listen = "$ROUTE"
service = "web"
TOML
}

# version_via_route: what GET /cgi-bin/version through the route answers.
version_via_route() { curl -fsS --max-time 2 "http://$ROUTE/cgi-bin/version"; }

# ---------------------------------------------------------------- the daemon and v1
log "starting kiln daemon --ports $KILN_PORTS (route $ROUTE)"
"$KILN" daemon --ports "$KILN_PORTS" > "$work/daemon.log" 2>&1 &
daemon_pid=$!
deadline=$((SECONDS + 30))
until [ -S "$KILN_HOME/kiln.sock" ] && timeout 5 "$KILN" status >/dev/null 2>&1; do
    kill -0 "$daemon_pid" 2>/dev/null || { cat "$work/daemon.log" >&2; log "kiln daemon exited"; exit 1; }
    if [ "$SECONDS" -ge "$deadline" ]; then
        tail -20 "$work/daemon.log" >&2; log "kiln status did not succeed within 30 s"; exit 1
    fi
    sleep 0.1
done

spec v1 > "$ctx/kiln.toml"
log "building the image"
"$KILN" build -f "$ctx/kiln.toml" >/dev/null
log "first deploy: v1 x$N (untimed)"
if ! timeout 120 "$KILN" apply -f "$ctx/kiln.toml" --timeout 100s > "$work/apply.log" 2>&1; then
    cat "$work/apply.log" >&2; tail -20 "$work/daemon.log" >&2; log "kiln apply v1 failed"; exit 1
fi
deadline=$((SECONDS + 20))
until [ "$(version_via_route 2>/dev/null)" = v1 ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
        version_via_route >&2 || true; log "the route $ROUTE does not answer v1"; exit 1
    fi
    sleep 0.1
done

# ---------------------------------------------------------------- the switches
# switch.py KILN ROUTE T0 BASE_SEQ VERSION: polls the events until the switch, checks the
# route right after, prints one JSON object with the times; exits 1 on a timeout.
cat > "$work/switch.py" <<'PY'
import datetime, json, re, subprocess, sys, time, urllib.request
kiln, route, t0, base, version, interval = sys.argv[1:]
t0, base, interval = float(t0), int(base), float(interval)
N = 10
switch_re = re.compile(r"\((\d+) backends, (\d+) canary at 100 %\)")

def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

def events():
    out = subprocess.run([kiln, "events", "--output", "json"], check=True,
                         capture_output=True, text=True, timeout=10).stdout
    return [e for e in map(json.loads, filter(str.strip, out.splitlines())) if e["seq"] > base]

polls = 0
deadline = time.time() + 60
while True:
    evs = events()
    polls += 1
    seen = time.time()
    apply = next((e for e in evs if e["kind"] == "apply"), None)
    switch = next((e for e in evs if apply and e["seq"] > apply["seq"]
                   and e["kind"] == "proxy.table"
                   and (m := switch_re.search(e["message"])) and int(m.group(2)) == N), None)
    if switch:
        break
    if seen > deadline:
        for e in evs:
            print(f'{e["ts"]} {e["kind"]} {e["instance"] or "-"} {e["message"]}', file=sys.stderr)
        sys.exit(f"bench: no proxy.table with {N} canary backends at 100 % within 60 s")
    time.sleep(interval)

try:
    with urllib.request.urlopen(f"http://{route}/cgi-bin/version", timeout=2) as r:
        answer = f"{r.status} {r.read().decode().strip()}"
except Exception as e:
    answer = f"error: {e}"
answered = time.time()

created = {e["instance"] for e in evs if e["kind"] == "instance.created"
           and e["seq"] > apply["seq"] and e["seq"] < switch["seq"]}
ready = {}
for e in evs:
    if e["kind"] == "instance.ready" and apply["seq"] < e["seq"] < switch["seq"]:
        ready.setdefault(e["instance"], e)
if len(ready) != N or (created and set(ready) != created):
    for e in evs:
        print(f'{e["ts"]} {e["kind"]} {e["instance"] or "-"} {e["message"]}', file=sys.stderr)
    sys.exit(f"bench: {len(ready)} instance.ready events before the switch "
             f"({len(created)} instances created), expected {N}")
t_ready = max(ts(e["ts"]) for e in ready.values())
t_switch = ts(switch["ts"])
timeline = [(round((ts(e["ts"]) - t0) * 1000), e["kind"], e["instance"] or "-", e["message"])
            for e in evs if e["seq"] <= switch["seq"]]
print(json.dumps({
    "apply_event": ts(apply["ts"]) - t0,
    "apply_ready": t_ready - t0,
    "ready_switch": t_switch - t_ready,
    "apply_switch": t_switch - t0,
    "observed": seen - t0,
    "polls": polls,
    "answer": answer,
    "answer_ok": answer == f"200 {version}",
    "request_ms": (answered - seen) * 1000,
    "switch_message": switch["message"],
    "timeline": timeline,
}))
PY

results=()
for run in $(seq "$RUNS"); do
    version="v$((run + 1))"
    spec "$version" > "$ctx/kiln.toml"
    base=$("$KILN" events --output json | jq -s 'map(.seq) | max // 0')
    t0=$EPOCHREALTIME
    if ! timeout 60 "$KILN" apply -f "$ctx/kiln.toml" --detach > "$work/apply.log" 2>&1; then
        cat "$work/apply.log" >&2; tail -20 "$work/daemon.log" >&2
        log "kiln apply --detach $version failed"; exit 1
    fi
    if ! result=$(python3 "$work/switch.py" "$KILN" "$ROUTE" "$t0" "$base" "$version" "$POLL"); then
        "$KILN" rollout status web >&2 || true; tail -20 "$work/daemon.log" >&2; exit 1
    fi
    results+=("$result")
    jq -r --arg v "$version" --arg run "$run" '
        "run \($run) (\($v)): apply→ready \(.apply_ready * 1000 | round) ms, "
        + "ready→100 % \(.ready_switch * 1000 | round) ms, apply→100 % \(.apply_switch * 1000 | round) ms; "
        + "route: \(.answer)"' <<<"$result" | while read -r line; do log "$line"; done
    if [ "$(jq -r .answer_ok <<<"$result")" != true ]; then
        jq -r '.timeline[] | "  +\(.[0]) ms \(.[1]) \(.[2]) \(.[3])"' <<<"$result" >&2
        log "right after the switch the route answered '$(jq -r .answer <<<"$result")', not 200 $version"
        exit 1
    fi
    # Untimed: let the rollout complete (rollback window, old set stopped) before the next.
    deadline=$((SECONDS + 60))
    until timeout 10 "$KILN" rollout status web --output json > "$work/rollout.json" 2>/dev/null \
        && jq -e '.phase == "completed" and .done' "$work/rollout.json" >/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            cat "$work/rollout.json" >&2; log "rollout $version not completed within 60 s"; exit 1
        fi
        sleep 0.2
    done
    "$KILN" ps --output json > "$work/ps.json"
    left=$(jq '[.[] | select(.service == "web")] | length' "$work/ps.json")
    if [ "$left" != "$N" ]; then
        log "kiln: rollout status says completed and done, yet $left web instances, expected $N: $(
            jq -c '[.[] | select(.service == "web") | {state, ready, current}]
                | group_by(.) | map(.[0] + {n: length})' "$work/ps.json")"
        # Runs do not overlap: wait until the old set is gone.
        deadline=$((SECONDS + 30))
        until [ "$("$KILN" ps --output json | jq '[.[] | select(.service == "web")] | length')" = "$N" ]; do
            [ "$SECONDS" -lt "$deadline" ] || { log "old instances still there after 30 s"; exit 1; }
            sleep 0.2
        done
    fi
done

# ---------------------------------------------------------------- report
cat > "$work/report.py" <<'PY'
import json, os, statistics, sys
runs = [json.loads(l) for l in sys.stdin if l.strip()]
def ms(x): return f"{x * 1000:7.0f} ms"
print(f"blue/green switch of 10 instances (busybox httpd, readiness 200ms), "
      f"{len(runs)} runs, {os.cpu_count()} cores; events polled every 20 ms")
print(f"  {'':22} {'median':>10}" + "".join(f" {'run ' + str(i + 1):>10}" for i in range(len(runs))))
rows = [("apply→ready", "apply_ready"), ("ready→100 %", "ready_switch"),
        ("apply→100 %", "apply_switch"), ("apply→apply event", "apply_event"),
        ("apply→switch seen", "observed")]
for name, key in rows:
    xs = [r[key] for r in runs]
    print(f"  {name:22} {ms(statistics.median(xs)):>10}" + "".join(f" {ms(x):>10}" for x in xs))
m = statistics.median(r["ready_switch"] for r in runs)
worst = max(r["ready_switch"] for r in runs)
print(f"  target: ready→100 % < 2000 ms: median {m * 1000:.0f} ms, worst {worst * 1000:.0f} ms: "
      f"{'met' if worst < 2 else 'MISSED'}")
print(f"  right after each switch the route answered: " + ", ".join(r["answer"] for r in runs))
print("  last run, events from apply to the switch (ms after apply start):")
for t, kind, inst, msg in runs[-1]["timeline"]:
    print(f"    +{t:5d} {kind:18} {inst:16} {msg}")
PY
printf '%s\n' "${results[@]}" | python3 "$work/report.py"
