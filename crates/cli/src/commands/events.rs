//! `kiln events` and `kiln drift`: what happened, and what differs from what was asked.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use kiln_daemon::api::types::{Drift, EventInfo};

use crate::client::query;
use crate::clock::ms_ago;
use crate::output::{OutputFormat, print_json};

const FOLLOW_POLL: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct EventsArgs {
    pub service: Option<String>,
    pub instance: Option<String>,
    pub since: Option<Duration>,
    pub follow: bool,
    pub output: OutputFormat,
}

pub fn events(home: &Path, args: EventsArgs) -> anyhow::Result<ExitCode> {
    let client = super::client(home);
    let since_ms = args.since.map(|d| ms_ago(d).to_string());
    let mut after: Option<i64> = None;
    loop {
        let path = format!(
            "/v1/events{}",
            query(&[
                ("after", after.map(|a| a.to_string())),
                ("service", args.service.clone()),
                ("instance", args.instance.clone()),
                ("since_ms", since_ms.clone()),
            ])
        );
        let events: Vec<EventInfo> = client.get(&path)?;
        let mut out = std::io::stdout().lock();
        for e in &events {
            match args.output {
                OutputFormat::Json => writeln!(out, "{}", serde_json::to_string(e)?)?,
                OutputFormat::Text => writeln!(out, "{}", event_line(e))?,
            }
        }
        out.flush()?;
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        if let Some(last) = events.last() {
            after = Some(last.seq);
        } else if after.is_none() {
            after = Some(0);
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// `2026-11-26T14:02:03.120Z web web-1a2b3c4d instance.ready ready after 120ms`
fn event_line(e: &EventInfo) -> String {
    format!(
        "{} {} {} {} {}",
        e.ts,
        e.service.as_deref().unwrap_or("-"),
        e.instance.as_deref().unwrap_or("-"),
        e.kind,
        e.message
    )
}

pub fn drift(home: &Path, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let drift: Vec<Drift> = super::client(home).get("/v1/drift")?;
    match output {
        OutputFormat::Json => print_json(&drift)?,
        OutputFormat::Text => print!("{}", render_drift(&drift)),
    }
    Ok(if drift.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn render_drift(drift: &[Drift]) -> String {
    if drift.is_empty() {
        return "No drift: every instance matches the desired state.\n".into();
    }
    drift
        .iter()
        .map(|d| {
            format!(
                "{} ({}) {}: expected {}, found {}\n",
                d.instance, d.service, d.field, d.expected, d.actual
            )
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_use_dashes_for_what_is_missing() {
        let e = EventInfo {
            seq: 1,
            ts: "2026-11-26T14:02:03.120Z".into(),
            service: None,
            instance: None,
            kind: "daemon.started".into(),
            message: "pid 42".into(),
        };
        assert_eq!(
            event_line(&e),
            "2026-11-26T14:02:03.120Z - - daemon.started pid 42"
        );
    }

    #[test]
    fn drift_is_one_line_per_difference() {
        assert_eq!(
            render_drift(&[]),
            "No drift: every instance matches the desired state.\n"
        );
        let d = Drift {
            instance: "web-1a2b3c4d".into(),
            service: "web".into(),
            field: "process".into(),
            expected: "running".into(),
            actual: "exited".into(),
        };
        assert_eq!(
            render_drift(&[d]),
            "web-1a2b3c4d (web) process: expected running, found exited\n"
        );
    }
}
