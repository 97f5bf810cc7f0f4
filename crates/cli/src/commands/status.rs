//! `kiln ps` and `kiln status`: the instances and services as the daemon sees them.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use kiln_daemon::api::types::{DaemonStatus, InstanceInfo, ServiceStatus};

use crate::client::query;
use crate::clock::{age, format_duration, now_ms, parse_rfc3339_ms};
use crate::output::{OutputFormat, print_json};

pub fn ps(home: &Path, service: Option<&str>, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/v1/instances{}",
        query(&[("service", service.map(Into::into))])
    );
    let instances: Vec<InstanceInfo> = super::client(home).get(&path)?;
    match output {
        OutputFormat::Json => print_json(&instances)?,
        OutputFormat::Text => print!("{}", instance_table(&instances)),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn status(home: &Path, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let status: DaemonStatus = super::client(home).get("/v1/status")?;
    match output {
        OutputFormat::Json => print_json(&status)?,
        OutputFormat::Text => print!("{}", render_status(&status)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `sha256:0123456789ab` from a full digest.
fn short_digest(digest: &str) -> String {
    let (algo, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    format!("{algo}:{}", hex.get(..12).unwrap_or(hex))
}

fn instance_table(instances: &[InstanceInfo]) -> String {
    let header = [
        "ID", "SERVICE", "VERSION", "STATE", "READY", "PID", "ADDRESS", "STARTED", "IMAGE",
    ];
    let rows: Vec<[String; 9]> = instances
        .iter()
        .map(|i| {
            [
                i.id.clone(),
                i.service.clone(),
                i.version.clone(),
                i.state.clone(),
                if i.ready { "yes" } else { "no" }.into(),
                i.pid.map_or("-".into(), |p| p.to_string()),
                i.address.clone(),
                i.started
                    .as_deref()
                    .and_then(parse_rfc3339_ms)
                    .map_or("-".into(), age),
                short_digest(&i.image),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, w) in cells.zip(widths) {
            let _ = write!(text, "{cell:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in &rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn render_status(d: &DaemonStatus) -> String {
    let mut out = format!(
        "kiln {}: daemon pid {}, up {}, home {}, ports {}:{}, generation {}\n",
        d.version,
        d.pid,
        age(d.started_ms),
        d.home,
        d.host,
        d.ports,
        d.generation
    );
    if d.services.is_empty() {
        out.push_str("No services: `kiln apply` deploys a spec.\n");
    }
    let width = d
        .services
        .iter()
        .map(|s| s.name.chars().count())
        .max()
        .unwrap_or(0);
    for s in &d.services {
        let _ = writeln!(out, "{:<width$}  {}", s.name, service_line(s));
    }
    out
}

/// `3/3 ready  version abc1234  converged`, with what is still going on when it is not.
fn service_line(s: &ServiceStatus) -> String {
    let mut line = format!("{}/{} ready  version {}  ", s.ready, s.replicas, s.version);
    line.push_str(if s.converged {
        "converged"
    } else {
        "converging"
    });
    if s.outdated > 0 {
        let _ = write!(line, ", {} outdated", s.outdated);
    }
    if s.stopping > 0 {
        let _ = write!(line, ", {} stopping", s.stopping);
    }
    if let Some(until) = s.backoff_until_ms.filter(|&u| u > now_ms()) {
        let wait = u64::try_from(until - now_ms()).unwrap_or(0);
        let _ = write!(
            line,
            ", backing off for {}",
            format_duration(Duration::from_millis(wait))
        );
    }
    if let Some(failure) = s.last_failure.as_deref().filter(|_| !s.converged) {
        let _ = write!(line, "; last failure: {failure}");
    }
    line
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::commands::wait::tests::service;

    #[test]
    fn the_instance_table_is_aligned() {
        let started = kiln_daemon::rfc3339_ms(now_ms() - 192_500);
        let i = InstanceInfo {
            id: "web-1a2b3c4d".into(),
            service: "web".into(),
            image: "sha256:0123456789abcdef0123".into(),
            version: "abc1234".into(),
            state: "running".into(),
            ready: true,
            pid: Some(4242),
            address: "127.0.0.1:20000".into(),
            started: Some(started),
            created: "2026-11-26T14:00:00.000Z".into(),
            current: true,
            replaces: None,
        };
        let creating = InstanceInfo {
            id: "web-0f0f0f0f".into(),
            state: "creating".into(),
            ready: false,
            pid: None,
            started: None,
            ..i.clone()
        };
        let table = instance_table(&[i, creating]);
        let lines: Vec<_> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ID            SERVICE  VERSION  STATE     READY  PID   ADDRESS          STARTED  IMAGE"
        );
        assert_eq!(
            lines[1],
            "web-1a2b3c4d  web      abc1234  running   yes    4242  127.0.0.1:20000  3m12s    sha256:0123456789ab"
        );
        assert_eq!(
            lines[2],
            "web-0f0f0f0f  web      abc1234  creating  no     -     127.0.0.1:20000  -        sha256:0123456789ab"
        );
    }

    #[test]
    fn service_lines_say_what_is_left_to_do() {
        assert_eq!(
            service_line(&service("web", 3, true, 1)),
            "3/3 ready  version abc1234  converged"
        );
        let mut s = service("web", 1, false, 1);
        s.outdated = 2;
        s.stopping = 1;
        s.last_failure = Some("exited with status 1".into());
        assert_eq!(
            service_line(&s),
            "1/3 ready  version abc1234  converging, 2 outdated, 1 stopping; last failure: exited \
             with status 1"
        );
    }
}
