//! Waiting for the daemon to carry out an apply or a destroy, printing its events on
//! stderr as they arrive.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use kiln_daemon::api::types::{EventInfo, InstanceInfo, ServiceStatus};

use crate::client::{Client, encode, query};
use crate::clock::{format_duration, now_ms};

/// Two small requests on the unix socket per poll: cheap enough to keep an apply's exit
/// within a few milliseconds of the last instance becoming ready.
const POLL: Duration = Duration::from_millis(50);

/// The events recorded after a sequence number, for some services.
#[derive(Debug)]
pub struct EventFeed<'a> {
    client: &'a Client,
    after: i64,
    services: BTreeSet<String>,
}

impl<'a> EventFeed<'a> {
    pub fn new(client: &'a Client, after: i64, services: &[String]) -> Self {
        EventFeed {
            client,
            after,
            services: services.iter().cloned().collect(),
        }
    }

    /// Prints the new events of these services (and those of no service) on stderr.
    pub fn print_new(&mut self) -> anyhow::Result<()> {
        let path = format!(
            "/v1/events{}",
            query(&[("after", Some(self.after.to_string()))])
        );
        let events: Vec<EventInfo> = self.client.get(&path)?;
        for e in events {
            self.after = self.after.max(e.seq);
            if e.service.as_ref().is_none_or(|s| self.services.contains(s)) {
                eprintln!("{}", progress_line(&e));
            }
        }
        Ok(())
    }
}

/// `  14:02:03 web-1a2b3c4d instance.ready: ready after 120ms`
pub fn progress_line(e: &EventInfo) -> String {
    let time = e.ts.get(11..19).unwrap_or(&e.ts);
    let subject = e
        .instance
        .as_deref()
        .or(e.service.as_deref())
        .unwrap_or("kiln");
    format!("  {time} {subject} {}: {}", e.kind, e.message)
}

/// Waits until every service in `services` is converged at `generation` or later (or gone,
/// when it was destroyed); returns the final status of those still there.
pub fn converge(
    client: &Client,
    services: &[String],
    generation: u64,
    events: &mut EventFeed<'_>,
    timeout: Duration,
) -> anyhow::Result<Vec<ServiceStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        events.print_new()?;
        let all: Vec<ServiceStatus> = client.get("/v1/services")?;
        let pending = pending(&all, services, generation);
        // A destroyed service is done once its last instance has stopped.
        let destroyed: Vec<&String> = services
            .iter()
            .filter(|name| !all.iter().any(|s| &s.name == *name))
            .collect();
        let stopping: Vec<InstanceInfo> = if destroyed.is_empty() {
            Vec::new()
        } else {
            let instances: Vec<InstanceInfo> = client.get("/v1/instances")?;
            instances
                .into_iter()
                .filter(|i| destroyed.contains(&&i.service))
                .collect()
        };
        if pending.is_empty() && stopping.is_empty() {
            events.print_new()?;
            return Ok(all
                .into_iter()
                .filter(|s| services.contains(&s.name))
                .collect());
        }
        if Instant::now() >= deadline {
            let mut message = timeout_message(timeout, &pending);
            for i in &stopping {
                let _ = write!(
                    message,
                    "\n  {}: {} still {} (service destroyed)",
                    i.service, i.id, i.state
                );
            }
            anyhow::bail!("{message}");
        }
        std::thread::sleep(POLL);
    }
}

/// Waits until `service` has no instances left.
pub fn gone(
    client: &Client,
    service: &str,
    events: &mut EventFeed<'_>,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let path = format!("/v1/instances?service={}", encode(service));
    loop {
        events.print_new()?;
        let left: Vec<InstanceInfo> = client.get(&path)?;
        if left.is_empty() {
            return events.print_new();
        }
        if Instant::now() >= deadline {
            let ids: Vec<_> = left
                .iter()
                .map(|i| format!("{} ({})", i.id, i.state))
                .collect();
            anyhow::bail!(
                "timed out after {} waiting for {service} to stop: {} still there (the daemon \
                 keeps trying; see `kiln ps {service}`)",
                format_duration(timeout),
                ids.join(", ")
            );
        }
        std::thread::sleep(POLL);
    }
}

/// The services of `wanted` not yet converged at `generation`; a service no longer listed
/// was destroyed and is done.
pub fn pending<'a>(
    all: &'a [ServiceStatus],
    wanted: &[String],
    generation: u64,
) -> Vec<&'a ServiceStatus> {
    all.iter()
        .filter(|s| wanted.contains(&s.name) && !(s.converged && s.generation >= generation))
        .collect()
}

fn timeout_message(timeout: Duration, pending: &[&ServiceStatus]) -> String {
    let mut out = format!(
        "timed out after {} waiting for the apply to converge (the daemon keeps trying; see \
         `kiln status`):",
        format_duration(timeout)
    );
    for s in pending {
        let _ = write!(
            out,
            "\n  {}: {}/{} ready, {} current, {} outdated, {} stopping",
            s.name, s.ready, s.replicas, s.current, s.outdated, s.stopping
        );
        if let Some(until) = s.backoff_until_ms.filter(|&u| u > now_ms()) {
            let wait = u64::try_from(until - now_ms()).unwrap_or(0);
            let _ = write!(
                out,
                ", backing off for {}",
                format_duration(Duration::from_millis(wait))
            );
        }
        if let Some(failure) = &s.last_failure {
            let _ = write!(out, "; last failure: {failure}");
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    pub fn service(name: &str, ready: u32, converged: bool, generation: u64) -> ServiceStatus {
        ServiceStatus {
            name: name.into(),
            image: "sha256:0123456789abcdef".into(),
            version: "abc1234".into(),
            replicas: 3,
            current: 3,
            ready,
            outdated: 0,
            stopping: 0,
            converged,
            generation,
            backoff_until_ms: None,
            last_failure: None,
        }
    }

    #[test]
    fn a_service_is_done_when_converged_at_the_generation_or_gone() {
        let all = vec![
            service("web", 3, true, 5),
            service("api", 3, true, 4),
            service("db", 2, false, 5),
            service("other", 0, false, 5),
        ];
        let wanted = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let names = |p: Vec<&ServiceStatus>| p.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        assert!(pending(&all, &wanted(&["web", "worker"]), 5).is_empty());
        assert_eq!(
            names(pending(&all, &wanted(&["web", "api", "db"]), 5)),
            ["api", "db"]
        );
    }

    #[test]
    fn a_timeout_names_what_is_missing() {
        let mut db = service("db", 1, false, 5);
        db.outdated = 2;
        db.last_failure = Some("exited with status 1".into());
        let text = timeout_message(Duration::from_secs(300), &[&db]);
        assert_eq!(
            text,
            "timed out after 5m waiting for the apply to converge (the daemon keeps trying; \
             see `kiln status`):\n  db: 1/3 ready, 3 current, 2 outdated, 0 stopping; last \
             failure: exited with status 1"
        );
    }

    #[test]
    fn progress_lines_show_the_time_and_the_instance() {
        let e = EventInfo {
            seq: 7,
            ts: "2026-11-26T14:02:03.120Z".into(),
            service: Some("web".into()),
            instance: Some("web-1a2b3c4d".into()),
            kind: "instance.ready".into(),
            message: "ready after 120ms".into(),
        };
        assert_eq!(
            progress_line(&e),
            "  14:02:03 web-1a2b3c4d instance.ready: ready after 120ms"
        );
    }
}
