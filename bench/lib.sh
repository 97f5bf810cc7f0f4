# Shared by the benchmark scripts (sourced): the last part of their cleanup.
# sweep_work DIR: kills processes still running from DIR (kiln shims, httpd: started by
# the script, found by their command line), unmounts what is mounted under DIR deepest
# first, and removes DIR unless a mount remains (never rm -rf through a mount).
sweep_work() {
    local work=$1 p pid cmd mounts m
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        [ "$pid" = "$$" ] && continue
        cmd=$(tr '\0' ' ' 2>/dev/null < "$p/cmdline")
        if [[ "$cmd" == *"$work"* ]]; then
            log "left over: pid $pid $cmd"
            kill "$pid" 2>/dev/null
        fi
    done
    for _ in 1 2 3; do
        mounts=$(awk -v w="$work" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r)
        [ -z "$mounts" ] && break
        for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
    done
    if awk -v w="$work" 'index($2, w) == 1 {found=1} END {exit !found}' /proc/mounts; then
        log "mounts remain under $work; not removing it"
    else
        rm -rf "$work"
    fi
}

# web_image CTX: the benchmarks' image, busybox httpd serving CTX/www on $PORT, into the
# context CTX (busybox and a small index page); prints its [image.web] tables.
web_image() {
    local ctx=$1
    mkdir -p "$ctx/www"
    cp /bin/busybox "$ctx/busybox"
    echo '<html><body>kiln bench</body></html>' > "$ctx/www/index.html"
    cat <<'TOML'
[image.web]
from = "scratch"
cmd = ["/bin/sh", "-c", "exec httpd -f -p 127.0.0.1:$PORT -h /www"]

[[image.web.step]]
copy = "busybox"
to = "/bin/busybox"
mode = "0755"

[[image.web.step]]
run = ["/bin/busybox", "--install", "-s", "/bin"]

[[image.web.step]]
copy = "www"
to = "/www"
TOML
}
