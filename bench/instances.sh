#!/usr/bin/env bash
# Benchmark: the time from start to 10 ready instances of a small HTTP server (busybox
# httpd serving a static page), three ways in the same run, each 5 times (median, min):
#   kiln    `kiln apply` of a service with replicas = 10 and an HTTP readiness probe,
#           against a running `kiln daemon` (apply exits once all 10 are ready);
#   runc    the floor: `runc run -d` x10 of prepared bundles sharing one read-only
#           rootfs (unpacked from `kiln export`), then polling until all 10 answer 200;
#           once in sequence (the floor the target names), once concurrently;
#   docker  the anchor: `docker run -d --network host --read-only` x10 of the same image
#           (`kiln export --format docker-archive`, `docker load`), then the same polling.
# Targets: kiln within 2x of raw runc, and well ahead of docker.
# Everything runs on the host network and talks only to 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup
. bench/lib.sh
docker_reason=""
install_packages jq curl python3
install_packages docker.io || docker_reason="apt-get install docker.io failed"
cargo build --release --locked -p kiln >&2
KILN="$PWD/target/release/kiln"

RUNS=5
N=10
KILN_PORTS=23000-23099
RUNC_PORT0=23100
DOCKER_PORT0=23200
DOCKER=/usr/bin/docker # Debian's client, matching Debian's dockerd

work="$(mktemp -d /var/tmp/kiln-bench-instances.XXXXXX)"
export KILN_HOME="$work/home"
daemon_pid=""
dockerd_pid=""
dsock="$work/docker/docker.sock"

log() { echo "bench: $*" >&2; }

cleanup() {
    set +e
    if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
        timeout 30 "$KILN" destroy web >/dev/null 2>&1
        kill "$daemon_pid" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$daemon_pid" 2>/dev/null
        wait "$daemon_pid" 2>/dev/null
    fi
    for root in "$work/runc" "$KILN_HOME/runc-instances"; do
        [ -d "$root" ] || continue
        for id in $(runc --root "$root" list -q 2>/dev/null); do
            runc --root "$root" delete -f "$id" >/dev/null 2>&1
        done
    done
    if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
        ids=$("$DOCKER" -H "unix://$dsock" ps -aq 2>/dev/null)
        [ -n "$ids" ] && "$DOCKER" -H "unix://$dsock" rm -f $ids >/dev/null 2>&1
        kill "$dockerd_pid" 2>/dev/null
        for _ in $(seq 200); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$dockerd_pid" 2>/dev/null
        wait "$dockerd_pid" 2>/dev/null
    fi
    sweep_work "$work"
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP

# poll.py PORT...: exits 0 once every port answers GET / with 200 (20 s at most).
# poll.py --free PORT...: exits 1 if any port already accepts connections.
cat > "$work/poll.py" <<'PY'
import socket, sys, time
args = sys.argv[1:]
free = args and args[0] == "--free"
ports = [int(p) for p in (args[1:] if free else args)]
def ok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n")[0].split(b" ")[1:2] == [b"200"]
    except OSError:
        return False
if free:
    busy = []
    for p in ports:
        try:
            socket.create_connection(("127.0.0.1", p), timeout=0.2).close(); busy.append(p)
        except OSError:
            pass
    if busy:
        print(f"ports already in use: {busy}", file=sys.stderr); sys.exit(1)
    sys.exit(0)
deadline = time.monotonic() + 20
pending = set(ports)
while pending:
    pending = {p for p in pending if not ok(p)}
    if pending:
        if time.monotonic() > deadline:
            print(f"not answering 200 after 20 s: {sorted(pending)}", file=sys.stderr); sys.exit(1)
        time.sleep(0.005)
PY
poll() { python3 "$work/poll.py" "$@"; }
seq_ports() { seq "$1" $(($1 + N - 1)); }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }

# ---------------------------------------------------------------- the image
ctx="$work/ctx"
image=$(web_image "$ctx")
cat > "$ctx/kiln.toml" <<TOML
$image

[service.web]
image = "web"
replicas = 10

[service.web.readiness]
http = "/"
interval = "1s"

# Not timed: httpd as pid 1 may ignore SIGTERM; keep teardown short.
[service.web.stop]
grace = "2s"
TOML
log "building the image"
"$KILN" build -f "$ctx/kiln.toml" --tag bench >/dev/null
"$KILN" export web:bench --format oci-dir --dest "$work/oci" >/dev/null
"$KILN" export web:bench --format docker-archive --dest "$work/web.tar" >/dev/null

# ---------------------------------------------------------------- kiln
kiln_times=()
log "starting kiln daemon --ports $KILN_PORTS"
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
for run in $(seq "$RUNS"); do
    t0=$EPOCHREALTIME
    if ! timeout 120 "$KILN" apply -f "$ctx/kiln.toml" > "$work/apply.log" 2>&1; then
        cat "$work/apply.log" >&2; tail -20 "$work/daemon.log" >&2
        log "kiln apply failed (run $run)"; exit 1
    fi
    t1=$EPOCHREALTIME
    kiln_times+=("$(elapsed "$t0" "$t1")")
    # Untimed check that apply told the truth: 10 ready instances, each answering 200.
    timeout 30 "$KILN" ps --output json > "$work/ps.json"
    ready=$(jq '[.[] | select(.service == "web" and .ready == true)] | length' "$work/ps.json")
    ports=$(jq -r '.[] | select(.service == "web") | .address | split(":")[1]' "$work/ps.json")
    if [ "$ready" != "$N" ] || ! timeout 25 python3 "$work/poll.py" $ports; then
        cat "$work/ps.json" >&2; log "kiln apply exited but $ready/$N instances are ready"; exit 1
    fi
    log "kiln run $run: ${kiln_times[-1]} s"
    timeout 120 "$KILN" destroy web > "$work/destroy.log" 2>&1 || {
        cat "$work/destroy.log" >&2; log "kiln destroy web failed"; exit 1; }
    left=$(timeout 30 "$KILN" ps --output json | jq '[.[] | select(.service == "web")] | length')
    [ "$left" = 0 ] || { log "kiln destroy web exited with $left instances left"; exit 1; }
done
kill "$daemon_pid"
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
wait "$daemon_pid" 2>/dev/null || true
daemon_pid=""

# ---------------------------------------------------------------- raw runc
runc_times=()
umoci unpack --image "$work/oci:bench" "$work/bundle" >/dev/null
for i in $(seq 0 $((N - 1))); do
    mkdir -p "$work/b$i"
    jq --arg root "$work/bundle/rootfs" --arg port "127.0.0.1:$((RUNC_PORT0 + i))" '
        .root = {path: $root, readonly: true}
        | .process.terminal = false
        | .process.args = ["/bin/httpd", "-f", "-p", $port, "-h", "/www"]
        | .linux.namespaces |= map(select(.type != "network"))
    ' "$work/bundle/config.json" > "$work/b$i/config.json"
done
for run in $(seq "$RUNS"); do
    poll --free $(seq_ports $RUNC_PORT0)
    t0=$EPOCHREALTIME
    for i in $(seq 0 $((N - 1))); do
        runc --root "$work/runc" run -d --bundle "$work/b$i" "bench-$run-$i" \
            </dev/null >/dev/null 2>"$work/runc.err" || { cat "$work/runc.err" >&2; exit 1; }
    done
    poll $(seq_ports $RUNC_PORT0)
    t1=$EPOCHREALTIME
    runc_times+=("$(elapsed "$t0" "$t1")")
    log "runc run $run: ${runc_times[-1]} s"
    for i in $(seq 0 $((N - 1))); do runc --root "$work/runc" delete -f "bench-$run-$i"; done
done
# The same, the 10 `runc run -d` started concurrently (kiln starts instances concurrently).
runc_par_times=()
for run in $(seq "$RUNS"); do
    poll --free $(seq_ports $RUNC_PORT0)
    t0=$EPOCHREALTIME
    pids=()
    for i in $(seq 0 $((N - 1))); do
        runc --root "$work/runc" run -d --bundle "$work/b$i" "par-$run-$i" \
            </dev/null >/dev/null 2>"$work/runc-$i.err" &
        pids+=($!)
    done
    for i in $(seq 0 $((N - 1))); do
        wait "${pids[$i]}" || { cat "$work/runc-$i.err" >&2; exit 1; }
    done
    poll $(seq_ports $RUNC_PORT0)
    t1=$EPOCHREALTIME
    runc_par_times+=("$(elapsed "$t0" "$t1")")
    log "runc (concurrent) run $run: ${runc_par_times[-1]} s"
    for i in $(seq 0 $((N - 1))); do runc --root "$work/runc" delete -f "par-$run-$i"; done
done

# ---------------------------------------------------------------- docker
docker_times=()
if [ -z "$docker_reason" ] && ! command -v dockerd >/dev/null; then docker_reason="no dockerd"; fi
if [ -z "$docker_reason" ]; then
    mkdir -p "$work/docker"
    dockerd --data-root "$work/docker/data" --exec-root "$work/docker/exec" \
        --pidfile "$work/docker/dockerd.pid" -H "unix://$dsock" \
        --iptables=false --ip6tables=false --bridge=none > "$work/docker/dockerd.log" 2>&1 &
    dockerd_pid=$!
    for _ in $(seq 300); do
        "$DOCKER" -H "unix://$dsock" version >/dev/null 2>&1 && break
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! "$DOCKER" -H "unix://$dsock" version >/dev/null 2>&1; then
        docker_reason="dockerd did not start: $(grep -i -E 'level=(error|fatal)|failed' \
            "$work/docker/dockerd.log" | tail -1 | cut -c1-200)"
    fi
fi
if [ -z "$docker_reason" ]; then
    D=("$DOCKER" -H "unix://$dsock")
    image=$("${D[@]}" load -i "$work/web.tar" | sed -n 's/^Loaded image\( ID\)\?: //p' | tail -1)
    [ -n "$image" ] || { log "docker load printed no image"; exit 1; }
    for run in $(seq "$RUNS"); do
        poll --free $(seq_ports $DOCKER_PORT0)
        t0=$EPOCHREALTIME
        for i in $(seq 0 $((N - 1))); do
            "${D[@]}" run -d --network host --read-only --name "bench-$run-$i" "$image" \
                /bin/httpd -f -p "127.0.0.1:$((DOCKER_PORT0 + i))" -h /www >/dev/null
        done
        poll $(seq_ports $DOCKER_PORT0)
        t1=$EPOCHREALTIME
        docker_times+=("$(elapsed "$t0" "$t1")")
        log "docker run $run: ${docker_times[-1]} s"
        "${D[@]}" rm -f $("${D[@]}" ps -aq) >/dev/null
    done
fi

# ---------------------------------------------------------------- report
python3 - "$docker_reason" "${kiln_times[*]}" "${runc_times[*]}" "${runc_par_times[*]}" \
    "${docker_times[*]:-}" <<'PY'
import os, statistics, sys
reason = sys.argv[1]
kiln, runc, runc_par, docker = [[float(x) for x in a.split()] for a in sys.argv[2:]]
rows = [("kiln apply (daemon, readiness http, interval 1s)", kiln),
        ("runc run -d x10 in sequence + poll (floor)", runc),
        ("runc run -d x10 concurrently + poll", runc_par)]
if docker:
    rows.append(("docker run -d x10 + poll (anchor)", docker))
print(f"10 instances of busybox httpd, start to all ready; {len(kiln)} runs each, {os.cpu_count()} cores")
print(f"  {'method':50} {'median':>8} {'min':>8}")
for name, ts in rows:
    print(f"  {name:50} {statistics.median(ts):7.3f}s {min(ts):7.3f}s")
if not docker:
    print(f"  docker: unavailable ({reason})")
km, rm = statistics.median(kiln), statistics.median(runc)
print(f"  kiln/runc   {km / rm:5.2f}x median, {min(kiln) / min(runc):5.2f}x min   (target <= 2.00x)")
pm = statistics.median(runc_par)
print(f"  kiln/runc concurrent {km / pm:5.2f}x median, {min(kiln) / min(runc_par):5.2f}x min")
if docker:
    dm = statistics.median(docker)
    print(f"  kiln/docker {km / dm:5.2f}x median, {min(kiln) / min(docker):5.2f}x min   (target: well below 1x)")
PY
