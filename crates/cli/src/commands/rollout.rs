//! `kiln rollout status|promote|abort|pause|resume|undo SERVICE`.

use std::path::Path;
use std::process::ExitCode;

use kiln_daemon::api::types::RolloutStatus;

use crate::client::encode;
use crate::output::{OutputFormat, print_json};

pub fn status(home: &Path, service: &str, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let status: RolloutStatus =
        super::client(home).get(&format!("/v1/rollouts/{}", encode(service)))?;
    match output {
        OutputFormat::Json => print_json(&status)?,
        OutputFormat::Text => print!("{}", render(&status)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `promote`, `abort`, `pause`, `resume` or `undo`.
pub fn command(home: &Path, service: &str, verb: &str) -> anyhow::Result<ExitCode> {
    let status: Option<RolloutStatus> = super::client(home).post(
        &format!("/v1/rollouts/{}/{verb}", encode(service)),
        &serde_json::json!({}),
    )?;
    match status {
        Some(status) => print!("{}", render(&status)),
        None => println!("{service}: {verb} accepted"),
    }
    Ok(ExitCode::SUCCESS)
}

fn render(s: &RolloutStatus) -> String {
    let steps = if s.steps.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = s.steps.iter().map(|w| format!("{w}%")).collect();
        format!(" of [{}]", list.join(", "))
    };
    let mut out = format!(
        "{}: {} {}{}, step {}{steps}, {} % to the new version\n  stable {}  →  new {}\n  {}\n",
        s.service,
        s.kind,
        s.phase,
        if s.is_undo { " (undo)" } else { "" },
        s.step,
        s.weight,
        s.stable,
        s.canary,
        s.reason
    );
    if let Some(analysis) = &s.analysis {
        out.push_str(&format!("  analysis: {analysis}\n"));
    }
    if let Some(deadline) = &s.deadline {
        out.push_str(&format!("  deadline: {deadline}\n"));
    }
    out
}
