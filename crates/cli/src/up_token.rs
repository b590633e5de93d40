//! Where a running `stratus up` leaves its admin token, so the CLI in
//! another shell of the same user reaches it with no flags.
//!
//! `up` makes a new token every run (its node is throwaway), which the user
//! would otherwise copy into every other shell. Instead it writes
//! `up-<port>.json` (mode 0600, in a 0700 directory of the user's own: the
//! runtime dir when there is one, else the state dir) and removes it when it
//! stops; the CLI, talking to a loopback address, looks there for the
//! port it talks to, and ignores a file whose process is gone (after a
//! `kill -9`). Only the same user can read it, as with `<data-dir>/admin-token`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct UpNode {
    pid: u32,
    admin: String,
    token: String,
}

/// The directory for token files: `$XDG_RUNTIME_DIR/stratus`, else
/// `$XDG_STATE_HOME/stratus`, else `~/.local/state/stratus`.
fn directory() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = var("XDG_RUNTIME_DIR")
        .or_else(|| var("XDG_STATE_HOME"))
        .or_else(|| var("HOME").map(|home| home.join(".local/state")))?;
    Some(base.join("stratus"))
}

fn file(port: u16) -> Option<PathBuf> {
    Some(directory()?.join(format!("up-{port}.json")))
}

/// The token file of a running `up` node; removed when dropped, as the
/// node stops.
#[derive(Debug)]
pub struct Published {
    path: PathBuf,
}

impl Published {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Leaves `token` where the CLI looks for a node on `port`, whose admin
/// API is at `url`.
pub fn publish(url: &str, port: u16, token: &str) -> std::io::Result<Published> {
    let path = file(port).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "neither XDG_RUNTIME_DIR, XDG_STATE_HOME nor HOME is set",
        )
    })?;
    if let Some(dir) = path.parent() {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(dir)?;
    }
    let node = UpNode {
        pid: std::process::id(),
        admin: url.to_owned(),
        token: token.to_owned(),
    };
    let text = serde_json::to_string(&node).map_err(std::io::Error::other)?;
    crate::node::write_private(&path, &text)?;
    Ok(Published { path })
}

/// The token of a running `up` node at `server`, with the file it came
/// from, when `server` is a loopback address.
pub fn find(server: &str) -> Option<(String, PathBuf)> {
    let url = reqwest::Url::parse(server).ok()?;
    let host = url.host_str()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return None;
    }
    let path = file(url.port_or_known_default()?)?;
    let node: UpNode = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    alive(node.pid).then_some((node.token, path))
}

/// Whether process `pid` still runs; where `/proc` is missing, assumed.
fn alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}
