//! Validates a service's rollout `strategy`: its kind, the keys that fit the kind, and
//! their values.

use std::time::Duration;

use toml::Spanned;

use crate::model::{Pause, Strategy, StrategyKind};
use crate::raw::{Field, KIND_KEYS, RawStrategy};
use crate::report::Report;
use crate::suggest::did_you_mean;
use crate::validate::{analysis, bounded, values};

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Other names for the kinds, as (wrong, right).
const KIND_ALIASES: &[(&str, &str)] = &[
    ("bluegreen", "blue-green"),
    ("blue_green", "blue-green"),
    ("blue/green", "blue-green"),
    ("red-black", "blue-green"),
    ("rolling-update", "rolling"),
    ("rolling_update", "rolling"),
    ("rollingupdate", "rolling"),
];

/// Surge and unavailability beyond the most replicas a service may have mean nothing.
const MAX_BATCH: i64 = 1000;

/// [`Strategy::default`] without a table; `None` if it has problems, all reported.
pub(crate) fn strategy(raw: Option<&RawStrategy>, report: &mut Report) -> Option<Strategy> {
    let default = Strategy::default();
    let Some(raw) = raw else {
        return Some(default);
    };
    let label = &raw.label;
    let key = |name: &str| format!("{label}.{name}");
    let kind = match &raw.kind {
        Some(field) => kind(field, &key("kind"), report),
        None if raw.kind_wrong => None,
        None => Some(default.kind),
    };
    let mut ok = true;
    // Keys that do not fit the kind are reported; their values are not checked.
    let mut applies = |name: &str| {
        let Some(kind) = kind else {
            return true;
        };
        let Some((_, span)) = raw.kind_keys.iter().find(|(key, _)| *key == name) else {
            return true;
        };
        let Some((_, fits)) = KIND_KEYS.iter().find(|(key, _)| *key == name) else {
            return true;
        };
        if *fits == kind.name() {
            return true;
        }
        let defaulted = if raw.kind.is_none() {
            " (the default kind)"
        } else {
            ""
        };
        report
            .error(
                span,
                format!(
                    "`{}` applies to {fits}, not {}{defaulted}",
                    key(name),
                    kind.name()
                ),
            )
            .hint(format!("remove it, or set kind = \"{fits}\""));
        ok = false;
        false
    };
    let steps_apply = applies("steps");
    let rollback_window_applies = applies("rollback_window");
    let max_surge_applies = applies("max_surge");
    let max_unavailable_applies = applies("max_unavailable");

    let steps = match &raw.steps {
        Some(field) if steps_apply => steps(field, &key("steps"), report),
        _ => Some(default.steps),
    };
    let pause = match &raw.pause {
        Some(field) => pause(field, &key("pause"), report),
        None => Some(default.pause),
    };
    let rollback_window = match &raw.rollback_window {
        Some(field) if rollback_window_applies => bounded::duration(
            field,
            &key("rollback_window"),
            Duration::ZERO..=DAY,
            "it must be at most 24h",
            report,
        ),
        _ => Some(default.rollback_window),
    };
    let max_surge = match &raw.max_surge {
        Some(field) if max_surge_applies => {
            bounded::integer(field, &key("max_surge"), 0..=MAX_BATCH, report).map(Some)
        }
        _ => Some(default.max_surge),
    };
    let max_unavailable = match &raw.max_unavailable {
        Some(field) if max_unavailable_applies => {
            bounded::integer(field, &key("max_unavailable"), 0..=MAX_BATCH, report)
        }
        _ => Some(default.max_unavailable),
    };
    if let (Some(Some(0)), Some(0), Some(surge)) = (max_surge, max_unavailable, &raw.max_surge) {
        report
            .error(
                &surge.span,
                format!(
                    "`{}` and `max_unavailable` are both 0: no instance could ever be replaced",
                    key("max_surge")
                ),
            )
            .hint("allow an extra instance (max_surge = 1) or one fewer (max_unavailable = 1)");
        ok = false;
    }
    let progress_deadline = match &raw.progress_deadline {
        Some(field) => bounded::duration(
            field,
            &key("progress_deadline"),
            Duration::from_nanos(1)..=DAY,
            "it must be more than 0 and at most 24h",
            report,
        ),
        None => Some(default.progress_deadline),
    };
    let analysis = match &raw.analysis {
        Some(raw_analysis) => analysis::analysis(raw_analysis, report),
        None => Some(default.analysis),
    };
    let strategy = Strategy {
        kind: kind?,
        steps: steps?,
        pause: pause?,
        rollback_window: rollback_window?,
        max_surge: max_surge?,
        max_unavailable: max_unavailable?,
        progress_deadline: progress_deadline?,
        analysis: analysis?,
    };
    ok.then_some(strategy)
}

fn kind(field: &Field<String>, key: &str, report: &mut Report) -> Option<StrategyKind> {
    let text = field.value.as_str();
    if let Some(kind) = StrategyKind::from_name(text) {
        return Some(kind);
    }
    let names = StrategyKind::ALL.map(|kind| kind.name());
    let diagnostic = report.error(
        &field.span,
        format!("unknown strategy kind `{text}` in `{key}`"),
    );
    let lower = text.to_ascii_lowercase();
    let alias = KIND_ALIASES
        .iter()
        .find(|(wrong, _)| *wrong == lower)
        .map(|(_, right)| *right);
    if let Some(known) = alias.or_else(|| did_you_mean(text, names)) {
        diagnostic.hint(format!("did you mean `{known}`?"));
    }
    diagnostic.hint("kinds are \"blue-green\", \"canary\" and \"rolling\"");
    None
}

/// Canary weights: percentages, strictly increasing, ending at 100.
fn steps(field: &Field<Vec<Spanned<i64>>>, key: &str, report: &mut Report) -> Option<Vec<u32>> {
    let example = "for example: steps = [5, 25, 50, 100]";
    let Some(last) = field.value.last() else {
        report
            .error(&field.span, format!("empty `{key}`"))
            .hint(example);
        return None;
    };
    let mut steps: Vec<u32> = Vec::with_capacity(field.value.len());
    for step in &field.value {
        let percent = *step.get_ref();
        let Some(percent) = u32::try_from(percent).ok().filter(|p| *p <= 100) else {
            report
                .error(
                    &step.span(),
                    format!("invalid step {percent} in `{key}`: it must be a percentage, 0 to 100"),
                )
                .hint("each step is the new version's share of traffic");
            return None;
        };
        if let Some(&previous) = steps.last()
            && percent <= previous
        {
            report
                .error(
                    &step.span(),
                    format!("`{key}` must increase: {percent} comes after {previous}"),
                )
                .hint(format!(
                    "each step gives the new version more of the traffic, {example}"
                ));
            return None;
        }
        steps.push(percent);
    }
    if steps.last() != Some(&100) {
        let written: Vec<String> = steps.iter().map(u32::to_string).collect();
        report
            .error(
                &last.span(),
                format!("`{key}` must end at 100: the new version takes all traffic before it is promoted"),
            )
            .hint(format!("add it: steps = [{}, 100]", written.join(", ")));
        return None;
    }
    Some(steps)
}

/// A duration of at most 24h, or "manual".
fn pause(field: &Field<String>, key: &str, report: &mut Report) -> Option<Pause> {
    let text = field.value.as_str();
    if text == "manual" {
        return Some(Pause::Manual);
    }
    if text.starts_with(|c: char| c.is_ascii_digit()) {
        return bounded::duration(
            field,
            key,
            Duration::ZERO..=DAY,
            "it must be at most 24h",
            report,
        )
        .map(Pause::For);
    }
    let diagnostic = report.error(
        &field.span,
        values::invalid(key, text, "expected a duration or \"manual\""),
    );
    if let Some(manual) = did_you_mean(text, ["manual"]) {
        diagnostic.hint(format!("did you mean `{manual}`?"));
    }
    diagnostic.hint(
        "for example: pause = \"30s\", or pause = \"manual\" to wait for `kiln rollout promote`",
    );
    None
}
