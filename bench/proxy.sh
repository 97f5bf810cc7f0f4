#!/usr/bin/env bash
# Benchmark: HTTP/1.1 reverse-proxy throughput and latency, side by side in one run, on
# the same backend, each proxy with one worker thread, driven by wrk (2 threads, 32
# keep-alive connections, 10 s, best of 3 interleaved rounds, each after a 2 s warm-up):
#   kiln     `kiln proxy --workers 1` with a one-route table pushed over its control socket;
#   nginx    one process (master_process off), upstream keepalive 32 (the anchor);
#   haproxy  nbthread 1, http-reuse always;
#   direct   wrk against the backend itself (the floor).
# The backend is a second nginx (worker_processes 2) answering `200 hello\n` on keep-alive.
# Targets: kiln req/s >= nginx req/s; kiln p99 <= nginx p99. Also reported: each proxy's
# CPU time per request (user + system, from /proc/PID/stat over the measured run), which
# is steadier than req/s on a machine where the load generator and the backend share the
# proxy's two cores.
# Everything listens on 127.0.0.1 only, on free ports picked at start; the system's nginx
# and haproxy services are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
install_packages nginx haproxy wrk curl python3
cargo build --release --locked -p kiln >&2
KILN="$PWD/target/release/kiln"

DURATION=10
WARMUP=2
CONNS=32
RUNS=3

work="$(mktemp -d /tmp/kiln-bench-proxy.XXXXXX)"
pids=()

log() { echo "bench: $*" >&2; }

cleanup() {
    set +e
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

# Four free ports on 127.0.0.1 (others may be benchmarking on this machine too).
read -r BACKEND_PORT NGINX_PORT HAPROXY_PORT KILN_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
')

# ---------------------------------------------------------------- configs
mkdir -p "$work/backend" "$work/nginx" "$work/haproxy" "$work/kiln"
nginx_common() { # PREFIX: temp paths inside the prefix, no access log
    cat <<EOF
    access_log off;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
EOF
}
cat > "$work/backend/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $work/backend/nginx.pid;
error_log $work/backend/error.log warn;
events { worker_connections 1024; }
http {
$(nginx_common "$work/backend")
    server {
        listen 127.0.0.1:$BACKEND_PORT;
        location / { default_type text/plain; return 200 "hello\n"; }
    }
}
EOF
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
$(nginx_common "$work/nginx")
    upstream backend {
        server 127.0.0.1:$BACKEND_PORT;
        keepalive 32;
        keepalive_requests 1000000;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
cat > "$work/haproxy/haproxy.cfg" <<EOF
global
    nbthread 1
    pidfile $work/haproxy/haproxy.pid
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend bench
    bind 127.0.0.1:$HAPROXY_PORT
    default_backend backend
backend backend
    server b1 127.0.0.1:$BACKEND_PORT
EOF
cat > "$work/kiln/table.json" <<EOF
{"version":1,"routes":[{"name":"bench","listen":"127.0.0.1:$KILN_PORT","host":null,
 "path_prefix":null,"service":"bench","timeout_ms":30000,"tls":null,
 "backends":[{"address":"127.0.0.1:$BACKEND_PORT","instance":"b1","version":"v1",
 "group":"stable"}],"canary_weight":0}]}
EOF

# ---------------------------------------------------------------- start
start() { # NAME LOG CMD...: starts CMD in the background, records its pid
    local name=$1 logf=$2
    shift 2
    "$@" > "$logf" 2>&1 &
    pids+=($!)
    log "started $name (pid $!)"
}
alive_or_die() { # NAME PID LOG
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; log "$1 exited"; exit 1; }
}
# wait_200 NAME PORT PID LOG: until GET / answers 200 hello (10 s at most).
wait_200() {
    local body
    for _ in $(seq 100); do
        alive_or_die "$1" "$3" "$4"
        body=$(curl -s --max-time 1 -w ' %{http_code}' "http://127.0.0.1:$2/" 2>/dev/null || true)
        [ "$body" = $'hello\n 200' ] && return 0
        sleep 0.1
    done
    log "$1 on port $2 did not answer 200 hello within 10 s (last: ${body:-nothing})"
    tail -20 "$4" >&2
    exit 1
}

start backend "$work/backend/out.log" \
    nginx -e "$work/backend/error.log" -c "$work/backend/nginx.conf" -p "$work/backend"
wait_200 backend "$BACKEND_PORT" "${pids[-1]}" "$work/backend/out.log"

start nginx "$work/nginx/out.log" \
    nginx -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" -p "$work/nginx"
wait_200 nginx "$NGINX_PORT" "${pids[-1]}" "$work/nginx/out.log"
nginx_pid=${pids[-1]}

start haproxy "$work/haproxy/out.log" haproxy -f "$work/haproxy/haproxy.cfg" -db
wait_200 haproxy "$HAPROXY_PORT" "${pids[-1]}" "$work/haproxy/out.log"
haproxy_pid=${pids[-1]}

mkdir -p "$work/kiln/home"
start kiln "$work/kiln/out.log" env KILN_HOME="$work/kiln/home" "$KILN" proxy --workers 1
kiln_pid=${pids[-1]}
for _ in $(seq 100); do
    [ -S "$work/kiln/home/proxy.sock" ] && break
    alive_or_die kiln "$kiln_pid" "$work/kiln/out.log"
    sleep 0.1
done
[ -S "$work/kiln/home/proxy.sock" ] || { log "kiln proxy.sock did not appear in 10 s"; exit 1; }
answer=$(curl -s --unix-socket "$work/kiln/home/proxy.sock" -X PUT http://kiln/v1/table \
    -H 'content-type: application/json' --data-binary @"$work/kiln/table.json" \
    -w ' %{http_code}' || true)
if [ "$answer" != '{"version":1} 200' ]; then
    log "kiln PUT /v1/table answered: $answer"; tail -20 "$work/kiln/out.log" >&2; exit 1
fi
wait_200 kiln "$KILN_PORT" "$kiln_pid" "$work/kiln/out.log"

# ---------------------------------------------------------------- measure
# The rounds are interleaved (every proxy in round 1, then every proxy in round 2), so a
# burst of load from elsewhere on the machine does not land on one proxy only. Each
# measurement follows a 2 s warm-up on the same proxy.
# cpu_ticks PID: user + system clock ticks of a process (fields 14 and 15 of its stat,
# counted after the command name, which may hold spaces).
cpu_ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}
targets=("direct $BACKEND_PORT -" "nginx $NGINX_PORT $nginx_pid" "haproxy $HAPROXY_PORT $haproxy_pid"
    "kiln $KILN_PORT $kiln_pid")
for run in $(seq "$RUNS"); do
    for target in "${targets[@]}"; do
        set -- $target
        out="$work/wrk-$1-$run.txt"
        wrk -t2 -c"$CONNS" -d"${WARMUP}s" "http://127.0.0.1:$2/" > /dev/null
        [ "$3" = - ] || before=$(cpu_ticks "$3")
        wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$2/" > "$out"
        [ "$3" = - ] || echo "cpu_ticks: $(( $(cpu_ticks "$3") - before ))" >> "$out"
        log "$1 run $run: $(grep 'Requests/sec' "$out" | tr -s ' '), $(grep -E '^ +50%' "$out" \
            | tr -s ' ' | sed 's/^ //') $(grep -E '^ +99%' "$out" | tr -s ' ' | sed 's/^ //')"
    done
done
# best NAME: "rps p50_ms p99_ms errors cpu_us_per_request" of the run with the most
# requests/s (cpu 0 when not measured).
best() {
    python3 - "$work"/wrk-"$1"-*.txt <<'PY'
import os, re, sys
def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    return float(m[1]) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[m[2]]
best = None
for path in sys.argv[1:]:
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M)[1])
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M)[1])
    errors = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m: errors += int(m[1])
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m: errors += sum(map(int, m.groups()))
    requests = int(re.search(r"(\d+) requests in", text)[1])
    m = re.search(r"cpu_ticks: (\d+)", text)
    cpu_us = int(m[1]) * 1e6 / os.sysconf("SC_CLK_TCK") / requests if m else 0
    if best is None or rps > best[0]:
        best = (rps, p50, p99, errors, cpu_us)
print(*best)
PY
}
declare -A result
for name in direct nginx haproxy kiln; do result[$name]=$(best "$name"); done
for i in "${!pids[@]}"; do
    kill -0 "${pids[$i]}" 2>/dev/null || log "warning: pid ${pids[$i]} exited during the run"
done
if grep -qiE 'warn|error' "$work/kiln/out.log"; then
    log "kiln proxy logged warnings or errors:"; grep -iE 'warn|error' "$work/kiln/out.log" | tail -5 >&2
fi

# ---------------------------------------------------------------- report
python3 - "$CONNS" "$DURATION" "$RUNS" "${result[direct]}" "${result[nginx]}" \
    "${result[haproxy]}" "${result[kiln]}" <<'PY'
import os, sys
conns, duration, runs = sys.argv[1:4]
rows = dict(zip(["backend direct (floor)", "nginx (anchor)", "haproxy", "kiln proxy"],
                [list(map(float, a.split())) for a in sys.argv[4:]]))
print(f"HTTP/1.1 keep-alive GET, wrk -t2 -c{conns} -d{duration}s, best of {runs}; "
      f"one proxy worker thread; backend nginx x2 workers; {os.cpu_count()} cores")
print(f"  {'proxy':24} {'req/s':>10} {'p50':>9} {'p99':>9} {'errors':>7} {'CPU/req':>9}")
for name, (rps, p50, p99, err, cpu) in rows.items():
    cpu_text = f"{cpu:7.1f}us" if cpu else f"{'-':>9}"
    print(f"  {name:24} {rps:10.0f} {p50:7.2f}ms {p99:7.2f}ms {int(err):7} {cpu_text}")
k, n, h = rows["kiln proxy"], rows["nginx (anchor)"], rows["haproxy"]
print(f"  kiln/nginx req/s   {k[0] / n[0]:5.2f}x   (target >= 1.00x)")
print(f"  kiln/nginx p99     {k[2] / n[2]:5.2f}x   (target <= 1.00x)")
print(f"  kiln/nginx CPU per request {k[4] / n[4]:5.2f}x")
print(f"  kiln/haproxy req/s {k[0] / h[0]:5.2f}x, p99 {k[2] / h[2]:5.2f}x, "
      f"CPU per request {k[4] / h[4]:5.2f}x")
print("blue/green switch time: measured by bench/switch.sh")
PY
