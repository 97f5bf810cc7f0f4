//! A route with `tls` in kiln.toml: the daemon hands the certificate files to the proxy,
//! which serves HTTPS with HTTP/1.1 and HTTP/2 (by ALPN).

use std::process::Command;

use super::harness::{CONVERGE, Spec, World, require};

/// `curl` over TLS to the route, trusting `cert`: (HTTP version, body).
fn curl(w: &World, cert: &str, version: &str, path: &str) -> Result<(String, String), String> {
    let url = format!("https://localhost:{}{path}", w.route_port);
    let resolve = format!("localhost:{}:127.0.0.1", w.route_port);
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "5",
            version,
            "--cacert",
            cert,
            "--resolve",
            &resolve,
        ])
        .args(["-w", "\n%{http_version}", &url])
        .output()
        .map_err(|e| format!("curl: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!(
            "curl {version} {url}: {}{text}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let (body, http) = text.rsplit_once('\n').unwrap_or(("", &text));
    Ok((http.to_owned(), body.to_owned()))
}

#[test]
fn a_tls_route_serves_http1_and_h2() {
    require(&["openssl", "curl"]);
    let mut w = World::new(12);
    let spec = Spec::new(w.route_port).tls("certs/site.pem", "certs/site.key");
    w.write_spec(&spec);
    let certs = w.ctx().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-days", "1", "-addext", "subjectAltName=DNS:localhost"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
        .arg(certs.join("site.key"))
        .arg("-out")
        .arg(certs.join("site.pem"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    w.check(status.success(), || "openssl req failed".into());
    w.build();
    w.start_daemon();
    let plan = w.apply();
    w.check(plan.contains("create:"), || {
        format!("the first apply creates: {plan}")
    });

    let cert = certs.join("site.pem");
    let cert = cert.to_str().unwrap();
    let (http, body) = w.wait_for(CONVERGE, "the TLS route to answer", || {
        curl(&w, cert, "--http1.1", "/")
    });
    w.check(http == "1.1" && body.trim() == "v1", || {
        format!("HTTP/{http}: {body:?}")
    });
    let (http, body) = curl(&w, cert, "--http2", "/").unwrap_or_else(|e| w.fail(&e));
    w.check(http == "2" && body.trim() == "v1", || {
        format!("HTTP/{http}: {body:?}")
    });
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "3",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://127.0.0.1:{}/", w.route_port))
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&plain.stdout).into_owned();
    w.check(code != "200", || {
        format!("plain HTTP on the TLS route answered {code}")
    });
}
