//! What an instance is made from: a service's definition with its image resolved to a
//! digest, and the hash that decides whether an instance is current.
//!
//! The definition is everything in `[service.NAME]` except `replicas` (scaling never
//! replaces instances) and the way the image was named (retagging the same digest is no
//! change). Its hash is the SHA-256 of its JSON, whose field and map order is fixed.

use std::collections::BTreeMap;

use kiln_image::Store;
use kiln_image::oci::ImageConfig;
use kiln_spec::{ImageRef, Probe, Resources, ServiceSpec, StopSpec, Volume};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The part of a service that every one of its instances is made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Definition {
    /// The image's manifest digest.
    pub image: String,
    pub args: Option<Vec<String>>,
    pub env: BTreeMap<String, String>,
    pub port: Option<u16>,
    pub resources: Resources,
    pub stop: StopSpec,
    pub tmpfs: Vec<String>,
    pub volumes: Vec<Volume>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
}

impl Definition {
    /// The definition's JSON text (what is stored and hashed).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a definition always serializes")
    }

    /// `sha256:<hex>` of [`Definition::to_json`].
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.to_json().as_bytes());
        format!("sha256:{}", kiln_image::to_hex(&digest))
    }
}

/// A service of the spec, resolved against the store.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub spec: ServiceSpec,
    pub definition: Definition,
    pub def_json: String,
    pub def_hash: String,
    /// The image's version: the tag it was found by, or a short digest.
    pub version: String,
}

/// Resolves `service`'s image in `store` and checks that the image can run as an
/// instance. Errors name `path:LINE` and the field.
pub fn resolve(store: &Store, path: &str, service: &ServiceSpec) -> Result<Resolved, String> {
    let at = |line: usize, field: &str| format!("{path}:{line}: service.{}.{field}", service.name);
    let reference = match &service.image {
        ImageRef::Name(name) => name.clone(),
        ImageRef::Tagged { name, tag } => format!("{name}:{tag}"),
        ImageRef::Digest { digest, .. } => digest.clone(),
    };
    let resolved = store.resolve(&reference).map_err(|e| {
        format!(
            "{}: {e} (build it with `kiln build`, or name an image from `kiln images`)",
            at(service.image_line, "image")
        )
    })?;
    if let ImageRef::Digest { name, .. } = &service.image {
        let tagged_as_name = store
            .images()
            .map_err(|e| format!("{}: {e}", at(service.image_line, "image")))?
            .iter()
            .any(|r| r.name == *name && r.manifest.digest == resolved.manifest.digest);
        if !tagged_as_name {
            return Err(format!(
                "{}: no image `{name}` has digest {}",
                at(service.image_line, "image"),
                resolved.manifest.digest
            ));
        }
    }
    let digest = resolved.manifest.digest.to_string();
    let version = match &resolved.name_tag {
        Some((_, tag)) => tag.clone(),
        None => digest
            .trim_start_matches("sha256:")
            .chars()
            .take(12)
            .collect(),
    };
    let config =
        image_config(store, &digest).map_err(|e| format!("{}: {e}", at(service.line, "image")))?;
    let runnable = Definition::command(&config, service.args.as_deref());
    if runnable.is_empty() {
        return Err(format!(
            "{}: image `{reference}` has no entrypoint or cmd: set `args`",
            at(service.line, "args")
        ));
    }
    if user_of(&config).is_none() {
        return Err(format!(
            "{}: image `{reference}` runs as user {:?}: instances need a numeric UID[:GID]",
            at(service.image_line, "image"),
            config.config.user.as_deref().unwrap_or_default()
        ));
    }
    for volume in &service.volumes {
        if !volume.host.exists() {
            return Err(format!(
                "{}: host path {} does not exist (external state is created outside kiln)",
                at(service.line, "volumes"),
                volume.host.display()
            ));
        }
    }
    let definition = Definition {
        image: digest,
        args: service.args.clone(),
        env: service.env.clone(),
        port: service.port,
        resources: service.resources.clone(),
        stop: service.stop.clone(),
        tmpfs: service.tmpfs.clone(),
        volumes: service.volumes.clone(),
        readiness: service.readiness.clone(),
        liveness: service.liveness.clone(),
    };
    Ok(Resolved {
        spec: service.clone(),
        def_json: definition.to_json(),
        def_hash: definition.hash(),
        definition,
        version,
    })
}

/// The config of the image whose manifest is `digest`.
pub fn image_config(store: &Store, digest: &str) -> Result<ImageConfig, kiln_image::ImageError> {
    let digest = kiln_image::Digest::parse(digest)?;
    let manifest = store.read_manifest(&digest)?;
    store.read_config(&manifest.config.digest)
}

/// The numeric user an image runs as (`None` for a user name).
pub fn user_of(config: &ImageConfig) -> Option<(u32, u32)> {
    let user = config.config.user.as_deref().unwrap_or_default();
    if user.is_empty() || user == "root" {
        return Some((0, 0));
    }
    match user.split_once(':') {
        Some((u, g)) => Some((u.parse().ok()?, g.parse().ok()?)),
        None => user.parse().ok().map(|u| (u, u)),
    }
}

impl Definition {
    /// The instance's command: the image's entrypoint followed by `args`, or by the
    /// image's cmd when the service gives no args (the OCI/Docker rule).
    pub fn command(config: &ImageConfig, args: Option<&[String]>) -> Vec<String> {
        let mut command = config.config.entrypoint.clone().unwrap_or_default();
        match args {
            Some(args) => command.extend(args.iter().cloned()),
            None => command.extend(config.config.cmd.clone().unwrap_or_default()),
        }
        command
    }
}
