//! One function per command: load inputs, call the component crates, format results.
//! The image commands are here; the control-plane commands, clients of the daemon, are in
//! the modules below.

pub mod apply;
pub mod daemon;
pub mod demo;
pub mod events;
pub mod logs;
mod plan;
pub mod rollout;
pub mod status;
mod wait;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use kiln_build::{BuildOptions, Builder, Progress, default_tag, source_date_epoch, verify_repro};
use kiln_image::{Digest, ExportFormat, Store, export as export_image, import as import_images};
use serde::Serialize;

use crate::client::Client;
use crate::output::{OutputFormat, human_size, print_json};

/// A client of the daemon serving `home`.
fn client(home: &Path) -> Client {
    Client::new(kiln_daemon::socket_path(home))
}

pub fn check(file: &Path) -> anyhow::Result<ExitCode> {
    let spec = kiln_spec::load(file)?;
    let names: Vec<_> = spec.images.keys().cloned().collect();
    println!(
        "{}: ok ({} image{}: {})",
        file.display(),
        names.len(),
        if names.len() == 1 { "" } else { "s" },
        names.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

pub fn build(
    home: &Path,
    file: &Path,
    images: &[String],
    tag: Option<String>,
    no_cache: bool,
    verify: bool,
) -> anyhow::Result<ExitCode> {
    let spec = kiln_spec::load(file)?;
    let tag = tag.unwrap_or_else(|| default_tag(&spec.context));
    let opts = BuildOptions {
        tag,
        no_cache,
        source_date_epoch: source_date_epoch()?,
    };
    let store = Store::open(home)?;
    let mut progress = Progress::stderr();
    if verify {
        let report = verify_repro(&spec, images, &opts, &store.tmp_dir(), &mut progress)?;
        drop(progress);
        let mut out = std::io::stdout().lock();
        for (name, a, b) in &report.images {
            if a == b {
                writeln!(out, "{name}: reproducible {a}")?;
            } else {
                writeln!(out, "{name}: NOT reproducible: {a} vs {b}")?;
            }
        }
        for d in &report.differences {
            writeln!(out, "  {d}")?;
        }
        return Ok(if report.reproducible() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    let built = Builder::new(&spec, &store, &opts, &mut progress)?.build(&spec, images)?;
    drop(progress);
    let mut out = std::io::stdout().lock();
    for b in &built {
        writeln!(out, "{}:{} {}", b.name, b.tag, b.manifest.digest)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct ImageRow {
    name: String,
    tag: String,
    digest: Digest,
    size: u64,
}

pub fn images(home: &Path, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let store = Store::open(home)?;
    let mut rows = Vec::new();
    for i in store.images()? {
        let manifest = store.read_manifest(&i.manifest.digest)?;
        let size = manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>();
        rows.push(ImageRow {
            name: i.name,
            tag: i.tag,
            digest: i.manifest.digest,
            size,
        });
    }
    match output {
        OutputFormat::Json => print_json(&rows)?,
        OutputFormat::Text => {
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<24} {:<20} {:<19} {:>10}",
                "NAME", "TAG", "DIGEST", "SIZE"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<24} {:<20} {:<19} {:>10}",
                    r.name,
                    r.tag,
                    format!("sha256:{}", r.digest.short()),
                    human_size(r.size)
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Inspection {
    reference: Option<String>,
    digest: Digest,
    media_type: String,
    created: Option<String>,
    architecture: String,
    os: String,
    config: kiln_image::oci::ContainerConfig,
    labels: std::collections::BTreeMap<String, String>,
    layers: Vec<LayerRow>,
    size: u64,
}

#[derive(Serialize)]
struct LayerRow {
    digest: Digest,
    diff_id: Option<Digest>,
    size: u64,
    media_type: String,
    created_by: Option<String>,
}

pub fn inspect(home: &Path, reference: &str, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let store = Store::open(home)?;
    let resolved = store.resolve(reference)?;
    let manifest = store.read_manifest(&resolved.manifest.digest)?;
    let config = store.read_config(&manifest.config.digest)?;
    let history: Vec<_> = config.history.iter().filter(|h| !h.empty_layer).collect();
    let layers: Vec<LayerRow> = manifest
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| LayerRow {
            digest: l.digest.clone(),
            diff_id: config.rootfs.diff_ids.get(i).cloned(),
            size: l.size,
            media_type: l.media_type.clone(),
            created_by: history.get(i).and_then(|h| h.created_by.clone()),
        })
        .collect();
    let info = Inspection {
        reference: resolved.name_tag.map(|(n, t)| format!("{n}:{t}")),
        digest: resolved.manifest.digest.clone(),
        media_type: resolved.manifest.media_type.clone(),
        created: config.created.clone(),
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        labels: config.config.labels.clone().unwrap_or_default(),
        size: manifest.config.size + layers.iter().map(|l| l.size).sum::<u64>(),
        config: config.config,
        layers,
    };
    match output {
        OutputFormat::Json => print_json(&info)?,
        OutputFormat::Text => print_inspection(&info)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_inspection(i: &Inspection) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(r) = &i.reference {
        writeln!(out, "Reference:    {r}")?;
    }
    writeln!(out, "Digest:       {}", i.digest)?;
    writeln!(out, "Platform:     {}/{}", i.os, i.architecture)?;
    writeln!(out, "Created:      {}", i.created.as_deref().unwrap_or("-"))?;
    writeln!(out, "Size:         {}", human_size(i.size))?;
    let c = &i.config;
    let list = |v: &Option<Vec<String>>| v.as_ref().map(|v| format!("{v:?}")).unwrap_or("-".into());
    writeln!(out, "Entrypoint:   {}", list(&c.entrypoint))?;
    writeln!(out, "Cmd:          {}", list(&c.cmd))?;
    writeln!(
        out,
        "WorkingDir:   {}",
        c.working_dir.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "User:         {}", c.user.as_deref().unwrap_or("-"))?;
    if let Some(env) = &c.env {
        writeln!(out, "Env:")?;
        for e in env {
            writeln!(out, "  {e}")?;
        }
    }
    if let Some(ports) = &c.exposed_ports {
        let ports: Vec<_> = ports.keys().cloned().collect();
        writeln!(out, "Exposed:      {}", ports.join(", "))?;
    }
    if !i.labels.is_empty() {
        writeln!(out, "Labels:")?;
        for (k, v) in &i.labels {
            writeln!(out, "  {k}={v}")?;
        }
    }
    writeln!(out, "Layers:")?;
    for l in &i.layers {
        writeln!(
            out,
            "  {}  diff_id {}  {:>10}  {}",
            l.digest,
            l.diff_id
                .as_ref()
                .map(|d| d.to_string())
                .unwrap_or("-".into()),
            human_size(l.size),
            l.created_by.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}

pub fn export(home: &Path, reference: &str, format: &str, dest: &Path) -> anyhow::Result<ExitCode> {
    let format: ExportFormat = format.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown export format `{format}`: use oci-dir, oci-archive or docker-archive"
        )
    })?;
    let store = Store::open(home)?;
    let resolved = store.resolve(reference)?;
    let (name, tag) = match resolved.name_tag {
        Some(nt) => nt,
        None => {
            // A digest reference: name it after a tag that points at it, if any.
            let digest = &resolved.manifest.digest;
            store
                .images()?
                .into_iter()
                .find(|i| &i.manifest.digest == digest)
                .map(|i| (i.name, i.tag))
                .unwrap_or_else(|| ("image".to_string(), digest.short().to_string()))
        }
    };
    export_image(&store, &resolved.manifest, &name, &tag, format, dest)
        .with_context(|| format!("exporting {name}:{tag} to {}", dest.display()))?;
    println!(
        "{name}:{tag} {} -> {}",
        resolved.manifest.digest,
        dest.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn import(home: &Path, path: &Path) -> anyhow::Result<ExitCode> {
    let store = Store::open(home)?;
    let imported = import_images(&store, path)?;
    for i in imported {
        println!("{}:{} {}", i.name, i.tag, i.manifest.digest);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rmi(home: &Path, references: &[String]) -> anyhow::Result<ExitCode> {
    let store = Store::open(home)?;
    for r in references {
        for removed in store.remove(r)? {
            println!("untagged {removed}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
