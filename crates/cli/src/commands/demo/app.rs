//! The demo's app: Debian's static busybox serving a health check and a CGI script that
//! answers `version $VERSION` (and 500 on `$FAIL_PERCENT` % of requests), as one image
//! and one canaried service behind a route.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use anyhow::Context as _;

/// Where Debian's busybox-static puts busybox.
const BUSYBOX: &str = "/bin/busybox";

/// The image: busybox, its applets, and `/www`. The root is read-only at run time, so
/// the site is copied to `/tmp` (a tmpfs) before httpd starts.
const IMAGE: &str = r#"[image.app]
from = "scratch"
cmd = ["/bin/sh", "-c", "mkdir -p /tmp/www && cp -r /www/* /tmp/www/ && chmod 755 /tmp/www/cgi-bin/* && exec httpd -f -p 127.0.0.1:$PORT -h /tmp/www"]

[[image.app.step]]
copy = "busybox"
to = "/bin/busybox"
mode = "0755"

[[image.app.step]]
run = ["/bin/busybox", "--install", "-s", "/bin"]

[[image.app.step]]
copy = "www"
to = "/www"
"#;

/// `cgi-bin/app`: `version $VERSION`, or a 500 on `$FAIL_PERCENT` % of requests.
const CGI: &str = r#"#!/bin/sh
if [ "${FAIL_PERCENT:-0}" -gt 0 ] && [ $((RANDOM % 100)) -lt "$FAIL_PERCENT" ]; then
  printf 'Status: 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\nfailed version %s\n' "$VERSION"
else
  printf 'Content-Type: text/plain\r\n\r\nversion %s\n' "$VERSION"
fi
"#;

/// One version of the app: the same image, a different env (a new definition, so every
/// change is a canary).
#[derive(Debug, Clone, Copy)]
pub struct Version {
    pub name: &'static str,
    pub fail_percent: u32,
}

pub const V1: Version = Version {
    name: "v1",
    fail_percent: 0,
};
pub const V2: Version = Version {
    name: "v2",
    fail_percent: 0,
};
pub const V3: Version = Version {
    name: "v3",
    fail_percent: 30,
};

/// The canary's parameters, also shown in the demo's headings.
pub const STEPS: [u32; 3] = [10, 50, 100];
pub const PAUSE: &str = "3s";
pub const MAX_ERROR_RATE: f64 = 0.05;
pub const MIN_REQUESTS: u32 = 40;

/// Writes the build context into `ctx`: busybox, `www/` and kiln.toml for `version`.
pub fn write_context(ctx: &Path, route_port: u16, version: Version) -> anyhow::Result<()> {
    if !Path::new(BUSYBOX).is_file() {
        anyhow::bail!(
            "{BUSYBOX} not found: the demo's app is Debian's static busybox \
             (apt-get install busybox-static)"
        );
    }
    fs::create_dir_all(ctx.join("www/cgi-bin"))
        .with_context(|| format!("cannot create {}", ctx.display()))?;
    fs::copy(BUSYBOX, ctx.join("busybox"))
        .with_context(|| format!("cannot copy {BUSYBOX} into {}", ctx.display()))?;
    fs::write(ctx.join("www/healthz"), "ok\n")?;
    let cgi = ctx.join("www/cgi-bin/app");
    fs::write(&cgi, CGI)?;
    fs::set_permissions(&cgi, fs::Permissions::from_mode(0o755))?;
    write_spec(ctx, route_port, version)
}

/// (Re)writes `ctx/kiln.toml` for `version`.
pub fn write_spec(ctx: &Path, route_port: u16, version: Version) -> anyhow::Result<()> {
    let path = ctx.join("kiln.toml");
    fs::write(&path, spec(route_port, version))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// kiln.toml: the image, the service `app` with its canary strategy, and its route.
pub fn spec(route_port: u16, version: Version) -> String {
    let steps: Vec<String> = STEPS.iter().map(u32::to_string).collect();
    format!(
        r#"# kiln demo: {name}
{IMAGE}
[service.app]
image = "app:demo"
replicas = 3
env = {{ VERSION = "{name}", FAIL_PERCENT = "{fail}" }}
# busybox httpd runs as pid 1 and ignores SIGTERM: do not wait long for it.
stop = {{ grace = "2s" }}

[service.app.readiness]
http = "/healthz"
interval = "200ms"

[service.app.strategy]
kind = "canary"
steps = [{steps}]
pause = "{PAUSE}"
progress_deadline = "60s"

[service.app.strategy.analysis]
max_error_rate = {MAX_ERROR_RATE}
min_requests = {MIN_REQUESTS}

[route.app]
listen = "127.0.0.1:{route_port}"
service = "app"
"#,
        name = version.name,
        fail = version.fail_percent,
        steps = steps.join(", "),
    )
}
