//! Executes the images of a spec against the store, step by step, with the step cache.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kiln_image::oci::{Descriptor, ImageConfig, MEDIA_TYPE_LAYER_GZIP};
use kiln_image::{
    Digest, EntryKind, FileSource, LayerEntry, Store, load_docker_archive_base, load_oci_base,
};
use kiln_runtime::{Sandbox, SandboxSpec};
use kiln_spec::{Base, CopyBinaryStep, CopyStep, ImageSpec, RunStep, Spec, Step};

use crate::cache::{CachedLayer, KeyBuilder, StepCache};
use crate::context::{Context, Selected, base_name};
use crate::layers::RootView;
use crate::statcache::StatCache;
use crate::walk::{Ownership, WalkOptions, walk};
use crate::{BuildError, Progress, config, elf, rootfs};

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The tag every built image gets.
    pub tag: String,
    /// Do every step's work even when the cache has its result.
    pub no_cache: bool,
    /// SOURCE_DATE_EPOCH: the `created` time and the upper bound of every mtime.
    pub source_date_epoch: u64,
}

/// One image a build produced.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub name: String,
    pub tag: String,
    pub manifest: Descriptor,
    pub steps_run: usize,
    pub steps_cached: usize,
}

/// An image part-way through its steps.
#[derive(Debug, Clone)]
struct ImageState {
    config: ImageConfig,
    layers: Vec<Descriptor>,
    /// The cache key of everything so far: the parent of the next step's key.
    chain: Digest,
}

/// Builds the images of one spec into one store.
pub struct Builder<'a> {
    store: &'a Store,
    opts: &'a BuildOptions,
    progress: &'a mut Progress,
    ctx: Context,
    stat: StatCache,
    cache: StepCache,
    sandbox: Sandbox,
    built: BTreeMap<String, ImageState>,
    /// The spec file as the user named it, for messages.
    spec_file: String,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("context", &self.ctx.root())
            .finish()
    }
}

impl<'a> Builder<'a> {
    pub fn new(
        spec: &Spec,
        store: &'a Store,
        opts: &'a BuildOptions,
        progress: &'a mut Progress,
    ) -> Result<Builder<'a>, BuildError> {
        let ctx = Context::open(&spec.context)?;
        let cache_dir = store.home().join("cache");
        Ok(Builder {
            store,
            opts,
            progress,
            ctx,
            stat: StatCache::load(cache_dir.join("stat")),
            cache: StepCache::new(store),
            sandbox: Sandbox::new(store.home().join("runc"), store.tmp_dir()),
            built: BTreeMap::new(),
            spec_file: spec.path.display().to_string(),
        })
    }

    /// Builds the selected images (all when empty) and the images they copy from, in
    /// dependency order, and tags each one.
    pub fn build(
        &mut self,
        spec: &Spec,
        selected: &[String],
    ) -> Result<Vec<BuiltImage>, BuildError> {
        let order = spec.build_order(selected)?;
        let mut out = Vec::new();
        for image in order {
            let result = self.build_image(image);
            // Whatever happened, keep what was learnt about file digests; the build's
            // own error matters more than a failure to save them.
            let saved = self.stat.save();
            out.push(result?);
            saved?;
        }
        Ok(out)
    }

    fn build_image(&mut self, img: &ImageSpec) -> Result<BuiltImage, BuildError> {
        let total = img.steps.len() + 1;
        let base_desc = describe_base(&img.from);
        self.progress.step(&img.name, 1, total, &base_desc, false);
        let mut state = self.base(img).map_err(|e| BuildError::Base {
            image: img.name.clone(),
            base: base_desc.clone(),
            source: Box::new(e),
        })?;
        let (mut run, mut cached) = (0, 0);
        for (i, step) in img.steps.iter().enumerate() {
            let what = describe_step(step);
            let line = img.step_lines.get(i).copied().unwrap_or(img.line);
            let was_cached = self
                .step(img, i, step, &what, &mut state)
                .map_err(|e| match e {
                    BuildError::Step { .. } => e,
                    other => BuildError::Step {
                        image: img.name.clone(),
                        file: self.spec_file.clone(),
                        step: i + 1,
                        line,
                        message: other.to_string(),
                    },
                })?;
            if was_cached {
                cached += 1;
            } else {
                run += 1;
            }
        }
        let created = config::rfc3339(self.opts.source_date_epoch);
        let mut cfg = state.config.clone();
        cfg.config = config::apply(&cfg.config, img);
        cfg.created = Some(created);
        cfg.architecture = config::host_architecture().to_string();
        cfg.os = "linux".to_string();
        let manifest = self.store.put_image(&cfg, state.layers.clone())?;
        self.store.tag(&img.name, &self.opts.tag, &manifest)?;
        self.built.insert(img.name.clone(), state);
        Ok(BuiltImage {
            name: img.name.clone(),
            tag: self.opts.tag.clone(),
            manifest,
            steps_run: run,
            steps_cached: cached,
        })
    }

    fn base(&mut self, img: &ImageSpec) -> Result<ImageState, BuildError> {
        let epoch = self.opts.source_date_epoch;
        match &img.from {
            Base::Scratch => Ok(ImageState {
                config: config::scratch(),
                layers: Vec::new(),
                chain: KeyBuilder::new("scratch").finish(),
            }),
            Base::Oci { path, reference } => {
                let base = load_oci_base(self.store, path, reference.as_deref())?;
                Ok(state_of_base(base.config, base.layers))
            }
            Base::DockerArchive { path } => {
                let base = load_docker_archive_base(self.store, path)?;
                Ok(state_of_base(base.config, base.layers))
            }
            Base::Rootfs { path } => {
                let (key, make) = rootfs::plan(path, &mut self.stat, epoch)?;
                let layer = match self.lookup(&key) {
                    Some(hit) => hit,
                    None => {
                        let info = make.write(self.store, epoch)?;
                        self.remember(&key, info)?
                    }
                };
                let mut config = config::scratch();
                config.rootfs.diff_ids.push(layer.diff_id.clone());
                config.history.push(config::history(
                    &config::rfc3339(epoch),
                    format!("kiln: rootfs {}", file_name(path)),
                ));
                Ok(ImageState {
                    config,
                    layers: vec![layer.layer],
                    chain: key,
                })
            }
        }
    }

    fn lookup(&self, key: &Digest) -> Option<CachedLayer> {
        if self.opts.no_cache {
            return None;
        }
        self.cache.get(self.store, key)
    }

    fn remember(
        &self,
        key: &Digest,
        info: kiln_image::LayerInfo,
    ) -> Result<CachedLayer, BuildError> {
        let cached = CachedLayer {
            layer: Descriptor::new(MEDIA_TYPE_LAYER_GZIP, info.digest, info.size),
            diff_id: info.diff_id,
        };
        self.cache.put(key, &cached)?;
        Ok(cached)
    }

    /// Runs one step (or takes it from the cache) and extends `state`; true when cached.
    fn step(
        &mut self,
        img: &ImageSpec,
        i: usize,
        step: &Step,
        what: &str,
        state: &mut ImageState,
    ) -> Result<bool, BuildError> {
        let n = i + 2;
        let total = img.steps.len() + 1;
        let epoch = self.opts.source_date_epoch;
        let step_json = serde_json::to_vec(step).expect("steps always serialize");
        let mut key = KeyBuilder::new("step");
        key.part("parent", state.chain.hex().as_bytes())
            .part("step", &step_json)
            .part("epoch", &epoch.to_le_bytes())
            .part("compressor", kiln_image::COMPRESSOR.as_bytes());

        // Collect the inputs that decide the key; some steps can only list their
        // entries while a view is mounted, so they hash a cheaper identity instead.
        let pending = match step {
            Step::Copy(c) if c.from_image.is_none() => {
                let entries = self.context_entries(c)?;
                key.part("inputs", self.entries_digest(&entries)?.hex().as_bytes());
                Pending::Entries(entries)
            }
            Step::Copy(c) => {
                let from = c.from_image.as_deref().unwrap_or_default();
                let other = self.built.get(from).ok_or_else(|| {
                    BuildError::Other(format!("image `{from}` has not been built"))
                })?;
                let ids = other.config.rootfs.diff_ids.iter().map(|d| d.to_string());
                key.part("from", ids.collect::<Vec<_>>().join(",").as_bytes());
                Pending::FromImage(Box::new(other.clone()))
            }
            Step::CopyBinary(c) => {
                let entries = self.binary_entries(c)?;
                key.part("inputs", self.entries_digest(&entries)?.hex().as_bytes());
                Pending::Entries(entries)
            }
            Step::Run(_) => {
                let c = config::apply(&state.config.config, img);
                key.part("env", config::run_env(&c).join("\n").as_bytes())
                    .part("cwd", c.working_dir.unwrap_or_default().as_bytes())
                    .part("user", c.user.unwrap_or_default().as_bytes());
                Pending::Run
            }
        };
        let key = key.finish();

        let (layer, cached) = match self.lookup(&key) {
            Some(hit) => {
                self.progress.step(&img.name, n, total, what, true);
                (hit, true)
            }
            None => {
                self.progress.step(&img.name, n, total, what, false);
                let info = match (pending, step) {
                    (Pending::Entries(entries), _) => self.store.write_layer(entries, epoch)?,
                    (Pending::FromImage(other), Step::Copy(c)) => {
                        self.copy_from_image(&other, c)?
                    }
                    (Pending::Run, Step::Run(r)) => self.run(img, state, r)?,
                    _ => unreachable!("pending work always matches its step"),
                };
                (self.remember(&key, info)?, false)
            }
        };
        state.config.rootfs.diff_ids.push(layer.diff_id.clone());
        state.config.history.push(config::history(
            &config::rfc3339(epoch),
            format!("kiln: {what}"),
        ));
        state.layers.push(layer.layer);
        state.chain = key;
        Ok(cached)
    }

    /// Layer entries for a `copy` from the context.
    fn context_entries(&mut self, c: &CopyStep) -> Result<Vec<LayerEntry>, BuildError> {
        let selected = self.ctx.select(&c.src)?;
        let opts = WalkOptions {
            ownership: Ownership::Normalize {
                mode: c.mode,
                owner: c.owner.unwrap_or((0, 0)),
            },
            overlay_upper: false,
            mtime: Some(self.opts.source_date_epoch),
        };
        let root = self.ctx.root().to_path_buf();
        let ctx = &self.ctx;
        let keep = |p: &Path, is_dir: bool| {
            p.strip_prefix(&root)
                .map(|rel| !ctx.is_ignored(rel, is_dir))
                .unwrap_or(true)
        };
        let multiple = selected.len() > 1 || crate::context::is_glob(&c.src);
        let mut entries = Vec::new();
        for sel in &selected {
            let dest = destination(&c.to, sel, multiple);
            walk(&sel.abs, &dest, &opts, &keep, &mut entries)?;
        }
        Ok(entries)
    }

    /// Layer entries for a `copy_binary`: the executable and what its loader needs.
    fn binary_entries(&mut self, c: &CopyBinaryStep) -> Result<Vec<LayerEntry>, BuildError> {
        let selected = self.ctx.select(&c.src)?;
        let [sel] = selected.as_slice() else {
            return Err(BuildError::Other(format!(
                "`{}` must name one executable file",
                c.src
            )));
        };
        let meta = std::fs::symlink_metadata(&sel.abs).map_err(BuildError::io(&sel.abs))?;
        if !meta.is_file() {
            return Err(BuildError::Other(format!(
                "`{}` is not a regular file (symbolic links are not followed)",
                c.src
            )));
        }
        let placed = format!("/{}", c.to.trim_matches('/'));
        let (uid, gid) = c.owner.unwrap_or((0, 0));
        let epoch = self.opts.source_date_epoch;
        let mut entries = vec![LayerEntry {
            path: c.to.trim_matches('/').to_string(),
            kind: EntryKind::File {
                source: FileSource::Path {
                    path: sel.abs.clone(),
                    size: meta.len(),
                },
            },
            mode: c.mode.unwrap_or(0o755),
            uid,
            gid,
            mtime: epoch,
        }];
        let libs = elf::resolve_placed(&sel.abs, &placed, &elf::SearchConfig::host())
            .map_err(|e| BuildError::Other(e.to_string()))?;
        for lib in libs {
            let meta = std::fs::metadata(&lib.host_path).map_err(BuildError::io(&lib.host_path))?;
            entries.push(LayerEntry {
                path: lib.image_path.trim_start_matches('/').to_string(),
                kind: EntryKind::File {
                    source: FileSource::Path {
                        path: lib.host_path.clone(),
                        size: meta.len(),
                    },
                },
                mode: 0o755,
                uid: 0,
                gid: 0,
                mtime: epoch,
            });
        }
        Ok(entries)
    }

    fn entries_digest(&mut self, entries: &[LayerEntry]) -> Result<Digest, BuildError> {
        crate::cache::entries_digest(entries, &mut self.stat, self.opts.source_date_epoch)
    }

    fn unpacked(&self, state: &ImageState) -> Result<Vec<PathBuf>, BuildError> {
        let mut dirs = Vec::new();
        for (layer, diff_id) in state.layers.iter().zip(&state.config.rootfs.diff_ids) {
            dirs.push(self.store.ensure_unpacked(layer, diff_id)?);
        }
        // overlay lists the topmost lower dir first.
        dirs.reverse();
        Ok(dirs)
    }

    fn copy_from_image(
        &mut self,
        other: &ImageState,
        c: &CopyStep,
    ) -> Result<kiln_image::LayerInfo, BuildError> {
        let view = RootView::new(self.store, &self.unpacked(other)?)?;
        let src = view.resolve(&c.src)?;
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            return Err(BuildError::Other(format!(
                "`{}` does not exist in image `{}`",
                c.src,
                c.from_image.as_deref().unwrap_or_default()
            )));
        };
        let opts = WalkOptions {
            ownership: Ownership::Keep,
            overlay_upper: false,
            mtime: None,
        };
        let sel = Selected {
            rel: PathBuf::from(c.src.trim_start_matches('/')),
            abs: src.clone(),
            is_dir: meta.is_dir(),
        };
        let dest = destination(&c.to, &sel, false);
        let mut entries = Vec::new();
        walk(&src, &dest, &opts, &|_, _| true, &mut entries)?;
        for e in &mut entries {
            if let Some((uid, gid)) = c.owner {
                e.uid = uid;
                e.gid = gid;
            }
            if let (Some(m), EntryKind::File { .. }) = (c.mode, &e.kind) {
                e.mode = m;
            }
        }
        // Written while the view is still mounted: the entries read from it.
        let info = self
            .store
            .write_layer(entries, self.opts.source_date_epoch)?;
        drop(view);
        Ok(info)
    }

    fn run(
        &mut self,
        img: &ImageSpec,
        state: &ImageState,
        r: &RunStep,
    ) -> Result<kiln_image::LayerInfo, BuildError> {
        let c = config::apply(&state.config.config, img);
        let user = config::numeric_user(c.user.as_deref()).ok_or_else(|| {
            BuildError::Other(format!(
                "RUN needs a numeric `user` (UID or UID:GID), not `{}`",
                c.user.clone().unwrap_or_default()
            ))
        })?;
        let lowerdirs = self.unpacked(state)?;
        let tmp_root = self.store.tmp_dir();
        std::fs::create_dir_all(&tmp_root).map_err(BuildError::io(&tmp_root))?;
        let work = tempfile::Builder::new()
            .prefix("run-")
            .tempdir_in(&tmp_root)
            .map_err(BuildError::io(&tmp_root))?;
        let upper = work.path().join("upper");
        std::fs::create_dir(&upper).map_err(BuildError::io(&upper))?;
        std::fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .map_err(BuildError::io(&upper))?;
        // The merged `/` takes its attributes from the upper dir: give it the epoch, not
        // the time of this build.
        let epoch =
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.opts.source_date_epoch);
        std::fs::File::open(&upper)
            .and_then(|d| {
                d.set_times(
                    std::fs::FileTimes::new()
                        .set_accessed(epoch)
                        .set_modified(epoch),
                )
            })
            .map_err(BuildError::io(&upper))?;
        self.progress.end_line();
        self.sandbox
            .run(&SandboxSpec {
                lowerdirs,
                upperdir: upper.clone(),
                args: r.args.clone(),
                env: config::run_env(&c),
                cwd: c.working_dir.clone().unwrap_or_else(|| "/".to_string()),
                user,
                network: r.network,
                hostname: "kiln-build".to_string(),
            })
            .map_err(|e| BuildError::Other(e.to_string()))?;
        let opts = WalkOptions {
            ownership: Ownership::Keep,
            overlay_upper: true,
            mtime: None,
        };
        let mut entries = Vec::new();
        walk(&upper, "", &opts, &|_, _| true, &mut entries)?;
        let info = self
            .store
            .write_layer(entries, self.opts.source_date_epoch)?;
        // The upper dir is not adopted as the unpacked layer: its mtimes, xattrs and root
        // mode are the host's, while later steps must see exactly what the blob holds.
        Ok(info)
    }
}

enum Pending {
    Entries(Vec<LayerEntry>),
    FromImage(Box<ImageState>),
    Run,
}

fn state_of_base(config: ImageConfig, layers: Vec<Descriptor>) -> ImageState {
    let mut key = KeyBuilder::new("base");
    for d in &config.rootfs.diff_ids {
        key.part("diff_id", d.hex().as_bytes());
    }
    for l in &layers {
        key.part("layer", l.digest.hex().as_bytes());
    }
    key.part("config", &kiln_image::oci::canonical_json(&config.config));
    ImageState {
        config,
        layers,
        chain: key.finish(),
    }
}

/// Where a selected source lands: a single source at `to` (or inside it when `to` ends
/// with '/'); several sources (or a glob) each at `to/<name>`.
fn destination(to: &str, sel: &Selected, multiple: bool) -> String {
    let base = to.trim_matches('/').to_string();
    if multiple || (to.ends_with('/') && !sel.is_dir) {
        let name = base_name(&sel.rel).unwrap_or_default();
        if base.is_empty() {
            name
        } else {
            format!("{base}/{name}")
        }
    } else {
        base
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| p.display().to_string())
}

fn describe_base(b: &Base) -> String {
    match b {
        Base::Scratch => "from scratch".to_string(),
        Base::Oci { path, reference } => format!(
            "from oci:{}{}",
            path.display(),
            reference
                .as_ref()
                .map(|r| format!(":{r}"))
                .unwrap_or_default()
        ),
        Base::DockerArchive { path } => format!("from docker-archive:{}", path.display()),
        Base::Rootfs { path } => format!("from rootfs:{}", path.display()),
    }
}

fn describe_step(s: &Step) -> String {
    match s {
        Step::Copy(c) => match &c.from_image {
            Some(f) => format!("copy {} from image {f} to {}", c.src, c.to),
            None => format!("copy {} to {}", c.src, c.to),
        },
        Step::CopyBinary(c) => format!("copy_binary {} to {}", c.src, c.to),
        Step::Run(r) => {
            let s = format!("run {}", r.args.join(" "));
            if s.chars().count() > 100 {
                s.chars().take(97).collect::<String>() + "..."
            } else {
                s
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sel(rel: &str, is_dir: bool) -> Selected {
        Selected {
            rel: PathBuf::from(rel),
            abs: PathBuf::from("/ctx").join(rel),
            is_dir,
        }
    }

    #[test]
    fn destinations_follow_the_copy_rules() {
        assert_eq!(
            destination("/bin/busybox", &sel("bin/busybox", false), false),
            "bin/busybox"
        );
        assert_eq!(
            destination("/bin/", &sel("x/busybox", false), false),
            "bin/busybox"
        );
        assert_eq!(destination("/app", &sel("src", true), false), "app");
        assert_eq!(
            destination("/app", &sel("src/a.rs", false), true),
            "app/a.rs"
        );
        assert_eq!(destination("/", &sel("a.rs", false), true), "a.rs");
    }
}
