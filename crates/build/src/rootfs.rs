//! `rootfs:` bases: a directory, or a tarball (plain or gzip), turned into one canonical
//! layer. Tarballs are unpacked with the store's safety rules (no absolute paths, no `..`,
//! no links out of the root, no device nodes, a size cap) before anything is kept.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use kiln_image::{Digest, LayerEntry, LayerInfo, Store, UnpackLimits, unpack_layer};

use crate::BuildError;
use crate::cache::{KeyBuilder, entries_digest};
use crate::statcache::StatCache;
use crate::walk::{Ownership, WalkOptions, walk};

const KEEP: WalkOptions = WalkOptions {
    ownership: Ownership::Keep,
    overlay_upper: false,
    mtime: None,
};

/// The work a rootfs base needs, once its cache key is known.
#[derive(Debug)]
pub enum RootfsLayer {
    Dir(Vec<LayerEntry>),
    Tarball(PathBuf),
}

/// The cache key of a rootfs base and how to make its layer.
pub fn plan(
    path: &Path,
    stat: &mut StatCache,
    epoch: u64,
) -> Result<(Digest, RootfsLayer), BuildError> {
    let meta = fs::metadata(path).map_err(BuildError::io(path))?;
    if meta.is_dir() {
        let mut entries = Vec::new();
        walk(path, "", &KEEP, &|_, _| true, &mut entries)?;
        let mut key = KeyBuilder::new("rootfs-dir");
        key.part(
            "entries",
            entries_digest(&entries, stat, epoch)?.hex().as_bytes(),
        )
        .part("compressor", kiln_image::COMPRESSOR.as_bytes());
        Ok((key.finish(), RootfsLayer::Dir(entries)))
    } else {
        let mut key = KeyBuilder::new("rootfs-tar");
        key.part("file", stat.digest(path, &meta)?.hex().as_bytes())
            .part("epoch", &epoch.to_le_bytes())
            .part("compressor", kiln_image::COMPRESSOR.as_bytes());
        Ok((key.finish(), RootfsLayer::Tarball(path.to_path_buf())))
    }
}

impl RootfsLayer {
    pub fn write(self, store: &Store, epoch: u64) -> Result<LayerInfo, BuildError> {
        match self {
            RootfsLayer::Dir(entries) => Ok(store.write_layer(entries, epoch)?),
            RootfsLayer::Tarball(path) => {
                let tmp_root = store.tmp_dir();
                fs::create_dir_all(&tmp_root).map_err(BuildError::io(&tmp_root))?;
                let tmp = tempfile::Builder::new()
                    .prefix("rootfs-")
                    .tempdir_in(&tmp_root)
                    .map_err(BuildError::io(&tmp_root))?;
                let root = tmp.path().join("root");
                fs::create_dir(&root).map_err(BuildError::io(&root))?;
                unpack_layer(open_tarball(&path)?, &root, &UnpackLimits::from_env())
                    .map_err(kiln_image::ImageError::from)?;
                let mut entries = Vec::new();
                walk(&root, "", &KEEP, &|_, _| true, &mut entries)?;
                Ok(store.write_layer(entries, epoch)?)
            }
        }
    }
}

/// Opens a tarball, decompressing it when it starts with the gzip magic.
pub fn open_tarball(path: &Path) -> Result<Box<dyn Read>, BuildError> {
    let mut f = BufReader::new(File::open(path).map_err(BuildError::io(path))?);
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic).map_err(BuildError::io(path))?;
    let head = std::io::Cursor::new(magic[..n].to_vec()).chain(f);
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(GzDecoder::new(head)))
    } else {
        Ok(Box::new(head))
    }
}
