//! Validates one image: its settings, then its steps.

use std::collections::BTreeMap;

use crate::model::{Base, ImageSpec};
use crate::raw::{Entry, RawImage};
use crate::report::Report;
use crate::validate::{Scope, base, step, values};

/// `None` if the image has problems, all of which are reported.
pub(crate) fn image(raw: &RawImage, scope: &Scope, report: &mut Report) -> Option<ImageSpec> {
    let mut ok = true;
    let name = &raw.name.value;
    if let Err(reason) = values::image_name(name) {
        let diagnostic = report.error(
            &raw.name.key,
            format!("invalid image name `{name}`: {reason}"),
        );
        match values::image_name_like(name) {
            Some(like) => diagnostic.hint(format!("did you mean `{like}`?")),
            None => diagnostic.hint(values::IMAGE_NAME_RULE),
        };
        ok = false;
    }

    let from = match &raw.from {
        Some(from) => base::base(from, scope.context, report),
        None => Some(Base::Scratch),
    };
    ok &= from.is_some();

    let workdir = raw.workdir.as_ref().map(|field| {
        let dir = &field.value;
        if !dir.starts_with('/') || dir.contains('\0') {
            report
                .error(
                    &field.span,
                    format!("`workdir` must be an absolute path, found `{dir}`"),
                )
                .hint(format!("did you mean `/{}`?", dir.trim_start_matches("./")));
            ok = false;
        }
        dir.clone()
    });

    let user = raw.user.as_ref().map(|field| {
        if let Err(reason) = values::user(&field.value) {
            report
                .error(&field.span, values::invalid("user", &field.value, reason))
                .hint("use \"UID\", \"UID:GID\" or a user name of the image");
            ok = false;
        }
        field.value.clone()
    });

    let env = table(
        &raw.env,
        "env",
        "variable name",
        values::env_name,
        report,
        &mut ok,
    );
    let labels = table(
        &raw.labels,
        "labels",
        "label name",
        values::label_name,
        report,
        &mut ok,
    );

    let mut expose: Vec<u16> = Vec::with_capacity(raw.expose.len());
    for number in &raw.expose {
        match values::port(*number.get_ref()) {
            Ok(port) if expose.contains(&port) => {
                report.error(
                    &number.span(),
                    format!("port {port} is listed twice in `expose`"),
                );
                ok = false;
            }
            Ok(port) => expose.push(port),
            Err(reason) => {
                report
                    .error(
                        &number.span(),
                        format!("invalid port {} in `expose`", number.get_ref()),
                    )
                    .hint(reason);
                ok = false;
            }
        }
    }

    let mut steps = Vec::with_capacity(raw.steps.len());
    let mut step_lines = Vec::with_capacity(raw.steps.len());
    for raw_step in &raw.steps {
        match step::step(raw_step, scope, report) {
            Some(step) => {
                steps.push(step);
                step_lines.push(report.line(raw_step.header.start));
            }
            None => ok = false,
        }
    }

    let image = ImageSpec {
        name: name.clone(),
        from: from?,
        entrypoint: raw.entrypoint.as_ref().map(|f| f.value.clone()),
        cmd: raw.cmd.as_ref().map(|f| f.value.clone()),
        env,
        workdir,
        user,
        labels,
        expose,
        steps,
        step_lines,
        line: report.line(raw.header.start),
    };
    ok.then_some(image)
}

/// A table of strings whose names are checked by `check`; `key` names it in messages.
pub(crate) fn table(
    entries: &[Entry],
    key: &str,
    what: &str,
    check: impl Fn(&str) -> Result<(), &'static str>,
    report: &mut Report,
    ok: &mut bool,
) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for entry in entries {
        if let Err(reason) = check(&entry.name) {
            let message = if entry.name.is_empty() {
                format!("empty {what} in `{key}`")
            } else {
                format!("invalid {what} `{}` in `{key}`: {reason}", entry.name)
            };
            report.error(&entry.key, message);
            *ok = false;
        }
        if entry.value.contains('\0') {
            report.error(
                &entry.span,
                format!(
                    "value of `{}` in `{key}` contains a NUL character",
                    entry.name
                ),
            );
            *ok = false;
        }
        table.insert(entry.name.clone(), entry.value.clone());
    }
    table
}
