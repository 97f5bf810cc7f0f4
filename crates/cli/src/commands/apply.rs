//! `kiln apply` and `kiln destroy`: change the desired state, print the plan, and wait
//! for the daemon to carry it out.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use kiln_daemon::api::types::{ApplyRequest, ApplyResponse};

use super::plan;
use super::wait::{self, EventFeed};
use crate::client::encode;

pub fn apply(
    home: &Path,
    file: &Path,
    dry_run: bool,
    detach: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let source =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let client = super::client(home);
    let request = ApplyRequest {
        path: file.display().to_string(),
        source,
        dry_run,
    };
    let answer: ApplyResponse = client.post("/v1/apply", &request)?;
    print!("{}", plan::render(&answer.plan));
    std::io::stdout().flush()?;
    if dry_run || detach || answer.plan.changes.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut events = EventFeed::new(&client, answer.events_after, &answer.services);
    let done = wait::converge(
        &client,
        &answer.services,
        answer.generation,
        &mut events,
        timeout,
    )?;
    let mut out = std::io::stdout().lock();
    for name in &answer.services {
        match done.iter().find(|s| &s.name == name) {
            Some(s) => writeln!(
                out,
                "Applied: {name} {}/{} ready (version {})",
                s.ready, s.replicas, s.version
            )?,
            None => writeln!(out, "Applied: {name} destroyed")?,
        }
    }
    // A rollout that was aborted converges too — back on the old version: say so.
    let mut aborted = false;
    for name in &answer.rollouts {
        let status: kiln_daemon::api::types::RolloutStatus =
            client.get(&format!("/v1/rollouts/{}", encode(name)))?;
        if status.phase == "aborted" {
            aborted = true;
            writeln!(out, "Rollout of {name} aborted: {}", status.reason)?;
        }
    }
    Ok(if aborted {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn destroy(
    home: &Path,
    service: &str,
    detach: bool,
    timeout: Duration,
) -> anyhow::Result<ExitCode> {
    let client = super::client(home);
    let answer: ApplyResponse = client.delete(&format!("/v1/services/{}", encode(service)))?;
    if !answer.plan.changes.is_empty() {
        print!("{}", plan::render(&answer.plan));
        std::io::stdout().flush()?;
    }
    if detach {
        return Ok(ExitCode::SUCCESS);
    }
    let mut events = EventFeed::new(&client, answer.events_after, &[service.to_string()]);
    wait::gone(&client, service, &mut events, timeout)?;
    println!("Destroyed: {service}");
    Ok(ExitCode::SUCCESS)
}
