//! `stratus up --watch`: rebuild and redeploy an app when its sources
//! change, as `spin watch` and `wrangler dev` do.
//!
//! Changes are found by polling the app directory's file list, sizes and
//! modification times (twice a second) rather than by inotify: it works the
//! same on every file system (a container's bind mount, NFS), costs a
//! directory walk of a source tree, and needs no watch limit raised. What a
//! build writes — `target/`, `node_modules/`, any `.wasm` — is not looked
//! at, or every build would start the next. A failed build or deploy leaves
//! the last good version serving and is reported in a few lines.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use stratus_control::Node;

use crate::node::prepare_app;

/// How often the directory is looked at.
const POLL: Duration = Duration::from_millis(500);
/// How long it must stay unchanged before a build starts: an editor's
/// save (write, rename, touch) is one change, not three builds.
const SETTLE: Duration = Duration::from_millis(300);
/// Directories never looked into: build output, dependencies, VCS.
const IGNORED_DIRS: &[&str] = &[
    "target",
    "node_modules",
    ".git",
    ".stratus",
    "__pycache__",
    ".venv",
    "dist",
];
/// A walk stops after this many files (a home directory passed by
/// mistake must not be walked forever every half second).
const MAX_FILES: usize = 20_000;

/// What the directory holds: each file's size and modification time.
type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

/// Watches `dir` until the process ends, redeploying its app into `node`
/// after each settled change.
pub async fn watch(node: Arc<Node>, dir: PathBuf) {
    let mut seen = snapshot(&dir).await;
    loop {
        tokio::time::sleep(POLL).await;
        let now = snapshot(&dir).await;
        if now == seen {
            continue;
        }
        // Wait for the change to settle.
        let mut settled = now;
        loop {
            tokio::time::sleep(SETTLE).await;
            let again = snapshot(&dir).await;
            if again == settled {
                break;
            }
            settled = again;
        }
        redeploy(&node, &dir).await;
        // Files the build itself wrote outside the ignored paths (a
        // `Cargo.lock`, a generated binding) are no change of the sources:
        // the next build waits for the next edit.
        seen = snapshot(&dir).await;
    }
}

async fn redeploy(node: &Node, dir: &Path) {
    let started = Instant::now();
    println!("\n[watch] {} changed: building", dir.display());
    let upload = match prepare_app(dir, true).await {
        Ok(upload) => upload,
        Err(e) => {
            println!("[watch] build failed; the last good version keeps serving:\n  {e:#}");
            return;
        }
    };
    match node.deploy(upload).await {
        Ok(report) => {
            println!(
                "[watch] app {} version {} is live ({:.1} s)",
                report.app,
                report.version,
                started.elapsed().as_secs_f64()
            );
            for line in report.gained.lines() {
                println!("[watch]   gained {line}");
            }
        }
        Err(e) => {
            println!("[watch] deploy refused; the last good version keeps serving:\n  {e}");
        }
    }
}

async fn snapshot(dir: &Path) -> Snapshot {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || walk(&dir))
        .await
        .unwrap_or_default()
}

fn walk(root: &Path) -> Snapshot {
    let mut files = Snapshot::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if kind.is_dir() {
                if !IGNORED_DIRS.contains(&name.as_ref()) {
                    pending.push(path);
                }
            } else if kind.is_file() && !name.ends_with(".wasm") {
                let meta = entry.metadata().ok();
                let size = meta.as_ref().map_or(0, std::fs::Metadata::len);
                let modified = meta.and_then(|m| m.modified().ok());
                files.insert(path, (size, modified));
                if files.len() >= MAX_FILES {
                    return files;
                }
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_count_and_build_output_does_not() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        for (path, text) in [
            ("stratus.toml", "x"),
            ("src/lib.rs", "fn a() {}"),
            ("target/debug/out.rs", "built"),
            ("node_modules/x/index.js", "dep"),
            ("app.wasm", "\0asm"),
        ] {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap_or(root))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
        }
        let files: Vec<PathBuf> = walk(root)
            .into_keys()
            .map(|p| p.strip_prefix(root).map(Path::to_path_buf).unwrap_or(p))
            .collect();
        assert_eq!(
            files,
            [PathBuf::from("src/lib.rs"), PathBuf::from("stratus.toml")]
        );

        let before = walk(root);
        std::fs::write(root.join("src/lib.rs"), "fn a() { 1; }").unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(walk(root), before, "an edit is a change");
        let before = walk(root);
        std::fs::write(root.join("app.wasm"), "\0asm rebuilt").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(walk(root), before, "build output is not");
    }
}
