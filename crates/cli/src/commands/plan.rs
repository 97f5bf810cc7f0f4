//! Rendering a plan the way `terraform plan` does: a summary line, then one line per
//! change marked `+` create, `~` replace, `-` destroy.

use std::fmt::Write as _;

use kiln_daemon::api::types::{ChangeKind, Plan};

/// The plan as printed by `kiln apply` and `kiln destroy`, ending with a newline.
pub fn render(plan: &Plan) -> String {
    if plan.changes.is_empty() {
        let n = plan.unchanged;
        let s = if n == 1 { "" } else { "s" };
        return format!("No changes: {n} instance{s} up to date.\n");
    }
    let count = |kind: ChangeKind| plan.changes.iter().filter(|c| c.action == kind).count();
    let mut out = format!(
        "Plan: {} to create, {} to replace, {} to destroy ({} unchanged)\n",
        count(ChangeKind::Create),
        count(ChangeKind::Replace),
        count(ChangeKind::Destroy),
        plan.unchanged
    );
    let targets: Vec<String> = plan
        .changes
        .iter()
        .map(|c| match &c.instance {
            Some(id) => format!("{} {id}", c.service),
            None => c.service.clone(),
        })
        .collect();
    let width = targets.iter().map(|t| t.chars().count()).max().unwrap_or(0);
    for (change, target) in plan.changes.iter().zip(&targets) {
        let (mark, verb) = match change.action {
            ChangeKind::Create => ('+', "create"),
            ChangeKind::Replace => ('~', "replace"),
            ChangeKind::Destroy => ('-', "destroy"),
        };
        let _ = writeln!(out, "  {mark} {target:<width$} {verb}: {}", change.reason);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use kiln_daemon::api::types::Change;

    fn change(action: ChangeKind, service: &str, instance: Option<&str>, reason: &str) -> Change {
        Change {
            action,
            service: service.into(),
            instance: instance.map(Into::into),
            reason: reason.into(),
        }
    }

    #[test]
    fn changes_are_aligned_under_a_summary() {
        let plan = Plan {
            changes: vec![
                change(ChangeKind::Create, "web", None, "scale up to 4"),
                change(
                    ChangeKind::Replace,
                    "web",
                    Some("web-1a2b3c4d"),
                    "env.LOG_LEVEL changed",
                ),
                change(
                    ChangeKind::Destroy,
                    "worker",
                    Some("worker-0f0f0f0f"),
                    "service removed from the spec",
                ),
            ],
            unchanged: 2,
        };
        assert_eq!(
            render(&plan),
            "Plan: 1 to create, 1 to replace, 1 to destroy (2 unchanged)\n\
             \x20 + web                    create: scale up to 4\n\
             \x20 ~ web web-1a2b3c4d       replace: env.LOG_LEVEL changed\n\
             \x20 - worker worker-0f0f0f0f destroy: service removed from the spec\n"
        );
    }

    #[test]
    fn an_empty_plan_says_so() {
        let plan = Plan {
            changes: vec![],
            unchanged: 3,
        };
        assert_eq!(render(&plan), "No changes: 3 instances up to date.\n");
        let plan = Plan {
            changes: vec![],
            unchanged: 1,
        };
        assert_eq!(render(&plan), "No changes: 1 instance up to date.\n");
    }
}
