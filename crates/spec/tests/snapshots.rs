//! Snapshots: each `snapshots/NAME.toml` must fail with exactly `snapshots/NAME.expected`,
//! except `snapshots/NAME_ok.toml`, which must parse into the model shown, as JSON, in
//! `snapshots/NAME_ok.expected`.
//!
//! Run with `KILN_BLESS=1` to (re)write the `.expected` files from the current
//! messages; review the diff before committing.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

fn snapshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// For a spec that must fail, what a user sees: the message as a CLI would
/// print it. For one that must parse, the model. `Err` says why it is neither.
fn render(source: &str, must_parse: bool) -> Result<String, String> {
    match (kiln_spec::parse(source, Path::new("kiln.toml")), must_parse) {
        (Err(err), false) => Ok(format!("error: {err}\n")),
        (Ok(spec), true) => Ok(format!(
            "images: {}\nservices: {}\nroutes: {}\n",
            serde_json::to_string_pretty(&spec.images).unwrap(),
            serde_json::to_string_pretty(&spec.services).unwrap(),
            serde_json::to_string_pretty(&spec.routes).unwrap()
        )),
        (Ok(_), false) => Err("parsed without error".to_owned()),
        (Err(err), true) => Err(format!("did not parse:\nerror: {err}")),
    }
}

#[test]
fn snapshots() {
    let bless = std::env::var_os("KILN_BLESS").is_some_and(|v| v == "1");
    let mut specs: Vec<PathBuf> = fs::read_dir(snapshot_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    specs.sort();
    assert!(!specs.is_empty(), "no snapshots found");

    let mut failures = Vec::new();
    for spec in &specs {
        let name = spec.file_stem().unwrap().to_string_lossy().into_owned();
        let source = fs::read_to_string(spec).unwrap();
        let actual = match render(&source, name.ends_with("_ok")) {
            Ok(actual) => actual,
            Err(problem) => {
                failures.push(format!("{name}: {problem}"));
                continue;
            }
        };
        let expected_path = spec.with_extension("expected");
        if bless {
            fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        match fs::read_to_string(&expected_path) {
            Ok(expected) if expected == actual => {}
            Ok(expected) => failures.push(format!(
                "{name}: message differs\n--- expected\n{expected}--- actual\n{actual}"
            )),
            Err(_) => failures.push(format!(
                "{name}: no {name}.expected (run with KILN_BLESS=1)\n--- actual\n{actual}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
