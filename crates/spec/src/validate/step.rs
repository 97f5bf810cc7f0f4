//! Validates one build step: which keys combine, then each value.

use crate::model::{CopyBinaryStep, CopyStep, RunStep, Step};
use crate::raw::{Field, RawStep};
use crate::report::Report;
use crate::suggest::did_you_mean;
use crate::validate::Scope;
use crate::validate::path::{PathProblem, context_path, image_path};
use crate::validate::values;

const ACTIONS: &[&str] = &["copy", "run", "copy_binary"];

/// The keys each action allows besides itself.
fn allowed(action: &str) -> &'static [&'static str] {
    match action {
        "copy" => &["to", "from_image", "mode", "owner"],
        "copy_binary" => &["to", "mode", "owner"],
        _ => &["network"],
    }
}

/// Why `key` cannot be used in a step of another action.
fn misplaced(key: &str) -> String {
    match key {
        "from_image" => "`from_image` is only allowed in a `copy` step".to_owned(),
        "network" => "`network` is only allowed in a `run` step".to_owned(),
        "to" => "`to` is not allowed in a `run` step".to_owned(),
        _ => format!("`{key}` is only allowed in `copy` and `copy_binary` steps"),
    }
}

/// `None` if the step has problems, all of which are reported.
pub(crate) fn step(raw: &RawStep, scope: &Scope, report: &mut Report) -> Option<Step> {
    let label = format!("[[{}.step]]", scope.label);
    let actions: Vec<_> = raw
        .present
        .iter()
        .filter(|(k, _)| ACTIONS.contains(k))
        .collect();
    let action = match actions.as_slice() {
        [] if raw.unknown_keys => return None,
        [] => {
            report
                .error(
                    &raw.header,
                    format!("step does nothing: {label} needs one of `copy`, `run` or `copy_binary`"),
                )
                .hint("for example: copy = \"bin/app\" and to = \"/app\", or run = [\"/bin/sh\", \"-c\", \"...\"]");
            return None;
        }
        [(action, _)] => *action,
        [(first, _), (second, span), ..] => {
            report
                .error(
                    span,
                    format!("step has both `{first}` and `{second}`: each step does one thing"),
                )
                .hint(format!("split it into two {label} tables"));
            return None;
        }
    };

    let mut ok = true;
    for (key, span) in &raw.present {
        if !ACTIONS.contains(key) && !allowed(action).contains(key) {
            report.error(span, misplaced(key));
            ok = false;
        }
    }
    // A misspelled key is the likelier cause of a missing `to`, and is reported already.
    let missing_to = action != "run" && !raw.has("to");
    if missing_to && !raw.unknown_keys {
        report
            .error(
                &raw.header,
                format!("missing `to` in {label}: a `{action}` step needs a destination"),
            )
            .hint("add the absolute path in the image, for example: to = \"/app\"");
        ok = false;
    }
    if !ok || missing_to {
        return None;
    }

    match action {
        "copy" => copy(raw, scope, report).map(Step::Copy),
        "copy_binary" => copy_binary(raw, report).map(Step::CopyBinary),
        _ => run(raw, report).map(Step::Run),
    }
}

fn copy(raw: &RawStep, scope: &Scope, report: &mut Report) -> Option<CopyStep> {
    let src = raw.copy.as_ref()?;
    let from_image = match &raw.from_image {
        Some(field) => Some(from_image(field, scope, report)),
        None if raw.has("from_image") => return None,
        None => None,
    };
    let src = match from_image {
        Some(_) => image_source(src, report),
        None => context_source(src, "copy", true, report),
    };
    let to = destination(raw, report);
    let mode = mode(raw, report);
    let owner = owner(raw, report);
    Some(CopyStep {
        src: src?,
        from_image: match from_image {
            Some(name) => Some(name?),
            None => None,
        },
        to: to?,
        mode: mode?,
        owner: owner?,
    })
}

fn copy_binary(raw: &RawStep, report: &mut Report) -> Option<CopyBinaryStep> {
    let src = context_source(raw.copy_binary.as_ref()?, "copy_binary", false, report);
    let to = destination(raw, report);
    let mode = mode(raw, report);
    let owner = owner(raw, report);
    Some(CopyBinaryStep {
        src: src?,
        to: to?,
        mode: mode?,
        owner: owner?,
    })
}

fn run(raw: &RawStep, report: &mut Report) -> Option<RunStep> {
    let args = raw.run.as_ref()?;
    match args.value.first().map(String::as_str) {
        None => {
            report
                .error(
                    &args.span,
                    "`run` is empty: it needs at least the program to run",
                )
                .hint("for example: run = [\"/bin/sh\", \"-c\", \"make install\"]");
            return None;
        }
        Some("") => {
            report.error(&args.span, "empty program in `run`");
            return None;
        }
        Some(_) => {}
    }
    if args.value.iter().any(|a| a.contains('\0')) {
        report.error(
            &args.span,
            "`run` arguments must not contain a NUL character",
        );
        return None;
    }
    let network = match (&raw.network, raw.has("network")) {
        (Some(network), _) => network.value,
        (None, true) => return None,
        (None, false) => false,
    };
    Some(RunStep {
        args: args.value.clone(),
        network,
    })
}

fn from_image(field: &Field<String>, scope: &Scope, report: &mut Report) -> Option<String> {
    let name = field.value.as_str();
    if name == scope.image {
        report.error(
            &field.span,
            format!("image `{name}` copies from itself in `from_image`"),
        );
        return None;
    }
    if !scope.names.contains(name) {
        let diagnostic = report.error(
            &field.span,
            format!("unknown image `{name}` in `from_image`"),
        );
        let others: Vec<&str> = scope
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| *n != scope.image)
            .collect();
        if let Some(known) = did_you_mean(name, others.iter().copied()) {
            diagnostic.hint(format!("did you mean `{known}`?"));
        }
        if others.is_empty() {
            diagnostic.hint("this file declares no other image");
        } else {
            diagnostic.hint(format!("images in this file: {}", others.join(", ")));
        }
        return None;
    }
    Some(name.to_owned())
}

fn context_source(
    field: &Field<String>,
    key: &str,
    globs: bool,
    report: &mut Report,
) -> Option<String> {
    let path = field.value.as_str();
    match context_path(path, globs) {
        Ok(normal) => return Some(normal),
        Err(PathProblem::Escapes) => {
            report
                .error(
                    &field.span,
                    format!("path escapes the build context: `{path}` in `{key}`"),
                )
                .hint("paths are relative to the folder of kiln.toml and cannot go above it");
        }
        Err(PathProblem::Absolute) => {
            let diagnostic = report
                .error(
                    &field.span,
                    format!("absolute path `{path}` in `{key}`: build context paths are relative"),
                )
                .hint("paths are relative to the folder of kiln.toml");
            if key == "copy" {
                diagnostic
                    .hint("to copy out of another image of this file, add from_image = \"NAME\"");
            }
        }
        Err(PathProblem::Glob) => {
            report
                .error(
                    &field.span,
                    format!("globs are not allowed in `{key}`: `{path}`"),
                )
                .hint("copy_binary copies one executable; use copy for several files");
        }
        Err(other) => path_problem(field, key, other, report),
    }
    None
}

fn image_source(field: &Field<String>, report: &mut Report) -> Option<String> {
    let path = field.value.as_str();
    match image_path(path) {
        Ok(normal) => Some(normal),
        Err(PathProblem::Relative) => {
            report
                .error(
                    &field.span,
                    format!("relative path `{path}` in `copy`: with `from_image` it is a path inside that image"),
                )
                .hint(format!("did you mean `/{path}`?"));
            None
        }
        Err(other) => {
            path_problem(field, "copy", other, report);
            None
        }
    }
}

/// Problems common to paths in the context and in images.
fn path_problem(field: &Field<String>, key: &str, problem: PathProblem, report: &mut Report) {
    let path = &field.value;
    let message = match problem {
        PathProblem::Empty => format!("empty path in `{key}`"),
        PathProblem::Nul => format!("path in `{key}` contains a NUL character"),
        PathProblem::BadGlob(reason) => format!("invalid glob `{path}` in `{key}`: {reason}"),
        PathProblem::Absolute
        | PathProblem::Escapes
        | PathProblem::Relative
        | PathProblem::Glob => {
            format!("invalid path `{path}` in `{key}`")
        }
    };
    report.error(&field.span, message);
}

/// `to`, which the caller has checked is present.
fn destination(raw: &RawStep, report: &mut Report) -> Option<String> {
    let field = raw.to.as_ref()?;
    let to = field.value.as_str();
    if to.is_empty() {
        report.error(&field.span, "empty path in `to`");
        return None;
    }
    if to.contains('\0') {
        report.error(&field.span, "path in `to` contains a NUL character");
        return None;
    }
    if !to.starts_with('/') {
        report
            .error(
                &field.span,
                format!("`to` must be an absolute path in the image, found `{to}`"),
            )
            .hint(format!("did you mean `/{}`?", to.trim_start_matches("./")));
        return None;
    }
    Some(to.to_owned())
}

/// The outer `Option` is failure, the inner one absence.
fn mode(raw: &RawStep, report: &mut Report) -> Option<Option<u32>> {
    let Some(field) = &raw.mode else {
        return (!raw.has("mode")).then_some(None);
    };
    match values::mode(&field.value) {
        Ok(mode) => Some(Some(mode)),
        Err(reason) => {
            report
                .error(&field.span, values::invalid("mode", &field.value, reason))
                .hint("modes are octal permission bits, for example: mode = \"0755\" or mode = \"0644\"");
            None
        }
    }
}

/// The outer `Option` is failure, the inner one absence.
fn owner(raw: &RawStep, report: &mut Report) -> Option<Option<(u32, u32)>> {
    let Some(field) = &raw.owner else {
        return (!raw.has("owner")).then_some(None);
    };
    match values::owner(&field.value) {
        Ok(owner) => Some(Some(owner)),
        Err(reason) => {
            report
                .error(&field.span, values::invalid("owner", &field.value, reason))
                .hint("for example: owner = \"0:0\" (names are not resolved at build time)");
            None
        }
    }
}
