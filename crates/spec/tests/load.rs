//! Loading from disk, and choosing what to build.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use kiln_spec::{Base, SpecError, load, parse};

#[test]
fn load_uses_the_canonical_folder_as_context() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.toml");
    fs::write(&path, "[image.a]\nfrom = \"oci:layout\"\n").unwrap();
    let spec = load(&path).unwrap();
    let context = dir.path().canonicalize().unwrap();
    assert_eq!(spec.path, path);
    assert_eq!(spec.context, context);
    assert_eq!(
        spec.images["a"].from,
        Base::Oci {
            path: context.join("layout"),
            reference: None
        }
    );
}

#[test]
fn load_names_an_unreadable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.toml");
    let err = load(&path).unwrap_err();
    assert!(matches!(err, SpecError::Io { .. }));
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("cannot read {}: ", path.display())),
        "{message}"
    );
}

#[test]
fn load_reports_problems_with_the_path_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.toml");
    fs::write(&path, "[image.a]\nfrm = \"scratch\"\n").unwrap();
    let message = load(&path).unwrap_err().to_string();
    assert_eq!(
        message,
        format!(
            "{}:2:1: unknown key `frm` in [image.a]\n  hint: did you mean `from`?",
            path.display()
        )
    );
}

const CHAIN: &str = r#"
[image.zeta]

[image.app]
[[image.app.step]]
copy = "/bin/tool"
from_image = "tools"
to = "/bin/tool"
[[image.app.step]]
copy = "/lib"
from_image = "base"
to = "/lib"

[image.tools]
[[image.tools.step]]
copy = "/lib"
from_image = "base"
to = "/lib"

[image.base]
"#;

fn order(selected: &[&str]) -> Result<Vec<String>, SpecError> {
    let spec = parse(CHAIN, Path::new("kiln.toml")).unwrap();
    let selected: Vec<String> = selected.iter().map(|s| s.to_string()).collect();
    Ok(spec
        .build_order(&selected)?
        .into_iter()
        .map(|image| image.name.clone())
        .collect())
}

#[test]
fn build_order_puts_dependencies_first_then_names() {
    assert_eq!(order(&[]).unwrap(), ["base", "tools", "app", "zeta"]);
    assert_eq!(order(&["app"]).unwrap(), ["base", "tools", "app"]);
    assert_eq!(
        order(&["tools", "zeta"]).unwrap(),
        ["base", "tools", "zeta"]
    );
    assert_eq!(order(&["base", "base"]).unwrap(), ["base"]);
}

#[test]
fn build_order_names_an_unknown_selection() {
    let message = order(&["tool"]).unwrap_err().to_string();
    assert_eq!(
        message,
        "kiln.toml: unknown image `tool`\n  hint: did you mean `tools`?\n  hint: images in this file: app, base, tools, zeta"
    );
}

#[test]
fn load_resolves_certificates_against_the_canonical_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kiln.toml");
    let source = "[service.web]\nimage = \"web\"\n\n[route.web]\nlisten = \"0.0.0.0:8443\"\nservice = \"web\"\ntls = { cert = \"./certs/site.pem\", key = \"/etc/site.key\" }\n";
    fs::write(&path, source).unwrap();
    let spec = load(&path).unwrap();
    let tls = spec.routes["web"].tls.as_ref().unwrap();
    let context = dir.path().canonicalize().unwrap();
    assert_eq!(tls.cert, context.join("certs/site.pem"));
    assert_eq!(tls.key, Path::new("/etc/site.key"));
}
