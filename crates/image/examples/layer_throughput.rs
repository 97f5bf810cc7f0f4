//! Times `Store::write_layer` on a directory tree: `layer_throughput STORE_HOME DIR`.
//!
//! Compare with `tar -C DIR -cf - . | gzip -6 | sha256sum`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Instant;

use kiln_image::{EntryKind, FileSource, LayerEntry, Store};

fn walk(root: &Path, rel: &str, out: &mut Vec<LayerEntry>) -> std::io::Result<()> {
    for entry in fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = entry.metadata()?;
        let kind = if meta.is_dir() {
            walk(root, &path, out)?;
            EntryKind::Dir { opaque: false }
        } else if meta.is_file() {
            EntryKind::File {
                source: FileSource::Path {
                    path: entry.path(),
                    size: meta.len(),
                },
            }
        } else {
            continue;
        };
        out.push(LayerEntry {
            path,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            mtime: u64::try_from(meta.mtime()).unwrap_or(0),
        });
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, home, dir] = args.as_slice() else {
        return Err("usage: layer_throughput STORE_HOME DIR".into());
    };
    let store = Store::open(Path::new(home))?;
    let start = Instant::now();
    let mut entries = Vec::new();
    walk(Path::new(dir), "", &mut entries)?;
    let walked = start.elapsed();
    let info = store.write_layer(entries, 1_700_000_000)?;
    let total = start.elapsed();
    let tar_bytes: u64 = fs::metadata(store.blob_path(&info.digest))?.len();
    println!(
        "walk {:.3}s, total {:.3}s, blob {} bytes, digest {}, diff_id {}",
        walked.as_secs_f64(),
        total.as_secs_f64(),
        tar_bytes,
        info.digest,
        info.diff_id
    );
    Ok(())
}
