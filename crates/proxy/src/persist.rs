//! The applied table on disk (HOME/proxy/table.json), written atomically before the proxy
//! confirms it, so that a restarted proxy serves without the control plane.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use crate::{ProxyError, RouteTable};

/// Writes the table with tmp + fsync + rename + directory fsync, off the async threads.
pub(crate) async fn save(path: &Path, table: &RouteTable) -> Result<(), ProxyError> {
    let persist_error = |source| ProxyError::Persist {
        path: path.to_owned(),
        source,
    };
    let bytes = serde_json::to_vec_pretty(table).map_err(|e| persist_error(io::Error::other(e)))?;
    let target = path.to_owned();
    tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
        .await
        .map_err(|e| persist_error(io::Error::other(e)))?
        .map_err(persist_error)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The persisted table, if there is one.
pub(crate) fn load(path: &Path) -> Result<Option<RouteTable>, ProxyError> {
    let load_error = |message: String| ProxyError::Load {
        path: path.to_owned(),
        message,
    };
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(load_error(e.to_string())),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| load_error(e.to_string()))
}
