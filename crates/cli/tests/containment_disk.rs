//! A full disk (issue 18): the node's data directory on a small tmpfs of
//! its own (mounting one needs root, which the test machine and CI have),
//! filled to the last byte while the node serves. Requests keep being
//! served, the ledger says in `/readyz` that it cannot write and holds what
//! it cannot write, async work is refused rather than acknowledged and
//! lost, and once there is room again everything held is written.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(bytes: u64) -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}")])
            .arg("tmpfs")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "cannot mount a tmpfs on {} (this test needs root): {status}",
            dir.path().display()
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Takes every free byte with a file, answering its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
            let block = vec![0u8; chunk];
            while file.write_all(&block).is_ok() {}
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path()).status();
    }
}

/// `/readyz`'s problems once `wanted` says they are as expected; fails
/// after 20 s.
async fn problems_until(
    server: &Server,
    wanted: impl Fn(&[String]) -> bool,
    what: &str,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let (status, health) = server.admin_get("/readyz").await;
        assert_eq!(
            status, 200,
            "a full disk must not take the node out: {health}"
        );
        // Left out when there are none.
        let problems: Vec<String> = health["problems"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        if wanted(&problems) {
            return problems;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: {problems:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ledger_problem(problems: &[String]) -> bool {
    problems
        .iter()
        .any(|p| p.contains("invocation ledger cannot write"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_no_request_and_loses_nothing_acknowledged() {
    let disk = SmallDisk::mount(96 << 20);
    let data = disk.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = Server::start_in(&data, &[]);
    server.deploy(testbed_app("disk", "writer", &["/disk/..."], "").path());
    server.deploy(testbed_app("other", "neighbour", &["/other/..."], "").path());
    for path in ["/disk/print?text=before", "/other/echo"] {
        assert_eq!(server.get(path).await.status(), 200, "{path}");
    }
    server.usage_reaching("?app=disk", 1).await;

    let filler = disk.fill();
    for i in 0..50 {
        let response = server.get(&format!("/disk/print?text=full-{i}")).await;
        assert_eq!(response.status(), 200, "request {i} on a full disk");
    }
    assert_eq!(server.get("/other/echo").await.status(), 200);
    problems_until(
        &server,
        ledger_problem,
        "the ledger never said it cannot write",
    )
    .await;
    assert!(server.metric("stratus_ledger_write_failures_total").await > 0);
    // Async work is stored before it is acknowledged: refused now (503 and
    // Retry-After), or acknowledged because it was stored after all (in
    // space SQLite had already), and then it must run.
    let response = server
        .http
        .post(server.admin_url("/v1/functions/writer/invocations?mode=async&path=/echo"))
        .bearer_auth(TOKEN)
        .body("on a full disk")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").cloned();
    let answer = json(response).await;
    let acknowledged = match status {
        503 => {
            assert!(retry_after.is_some(), "{answer}");
            None
        }
        202 => Some(answer["id"].as_str().unwrap().to_owned()),
        other => panic!("{other}: {answer}"),
    };

    // Room again: what the ledger held is written, and nothing is amiss.
    std::fs::remove_file(filler).unwrap();
    problems_until(
        &server,
        |p| !ledger_problem(p),
        "the ledger never recovered",
    )
    .await;
    let usage = server.usage_reaching("?app=disk", 51).await;
    assert!(
        usage["total"]["requests"].as_u64().unwrap() >= 51,
        "requests served on the full disk were lost: {usage}"
    );
    if let Some(id) = acknowledged {
        assert_eq!(settled(&server, &id).await["state"], "succeeded");
    }
    let accepted = submit(&server, "writer", "/echo", "after").await;
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(settled(&server, id).await["state"], "succeeded");
    assert_eq!(server.get("/other/echo").await.status(), 200);
    drop(server);
}
