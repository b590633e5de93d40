//! Containment of key-value data (issue 11, item 6): one app wrote 300 MB
//! in 1.7 s. Now every app is held to a quota of bytes (keys and values)
//! and of keys (`--keyvalue-max-bytes-per-app`, `--keyvalue-max-keys-per-app`):
//! writers racing to fill it get an error naming the limit and the flag, the
//! data stays within it, deletes free room, and a neighbour app keeps
//! writing and answering. Run on SQLite and on Redis.

use crate::common::*;

/// The byte quota the tests' node runs with.
const QUOTA_BYTES: usize = 1 << 20;
/// The key quota the tests' node runs with.
const QUOTA_KEYS: usize = 50;
/// What one `kvfill` write of 64 KiB stores: a key `w<n>-<4 digits>` (7
/// bytes) and its value.
const ONE_WRITE: usize = 7 + 64 * 1024;

fn quota_flags() -> Vec<&'static str> {
    vec![
        "--keyvalue-max-bytes-per-app",
        "1MiB",
        "--keyvalue-max-keys-per-app",
        "50",
    ]
}

/// An app of one `capabilities` function under `/<app>/...` with the
/// bucket `default` (and the config value the guest's import needs).
fn store_app(app: &str) -> AppDir {
    AppDir::new(&format!(
        "[app]\nname = \"{app}\"\n\n[[function]]\nname = \"store\"\ncomponent = \"{}\"\nroutes = [\"/{app}/...\"]\nkeyvalue = [\"default\"]\nconfig = {{ role = \"test\" }}\n",
        test_guest("capabilities").display(),
    ))
}

async fn call(server: &Server, app: &str, method: &str, route: &str, body: &[u8]) -> (u16, String) {
    server.send(method, &format!("/{app}/{route}"), body).await
}

/// The bytes and keys the guest reads back from its bucket.
async fn stored(server: &Server, app: &str) -> (usize, usize) {
    let (status, body) = call(server, app, "GET", "kvsize?bucket=default", b"").await;
    assert_eq!(status, 200, "{body}");
    let (bytes, keys) = body.split_once(' ').unwrap();
    (bytes.parse().unwrap(), keys.parse().unwrap())
}

/// How many values a `kvfill` answer says were written, and the error it
/// stopped at (empty if none).
fn filled(body: &str) -> (usize, String) {
    let (first, error) = body.split_once('\n').unwrap_or((body, ""));
    let n = first.strip_prefix("wrote ").unwrap().parse().unwrap();
    (n, error.to_string())
}

async fn the_quota_contains_a_runaway_app(server: &Server) {
    let (filler, neighbour) = (unique("filler"), unique("neighbour"));
    server.deploy(store_app(&filler).path());
    server.deploy(store_app(&neighbour).path());
    assert_eq!(
        call(
            server,
            &neighbour,
            "PUT",
            "set?bucket=default&key=before",
            b"1"
        )
        .await,
        (200, "set".into())
    );

    // Four writers at once, each trying 40 values of 64 KiB: 10 MiB for a
    // 1 MiB quota.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (http, url) = (
                server.http.clone(),
                server.url(&format!(
                    "/{filler}/kvfill?bucket=default&n=40&kb=64&prefix=w{w}-"
                )),
            );
            tokio::spawn(async move {
                let response = http.get(url).send().await.unwrap();
                (response.status().as_u16(), response.text().await.unwrap())
            })
        })
        .collect();
    let mut written = Vec::new();
    for writer in writers {
        let (status, body) = writer.await.unwrap();
        assert_eq!(status, 500, "a writer of 10 MiB must be stopped: {body}");
        let (n, error) = filled(&body);
        assert!(
            error.contains(
                "the app's key-value quota of 1048576 bytes (--keyvalue-max-bytes-per-app) is used up"
            ),
            "{error}"
        );
        assert!(error.contains("nothing was written"), "{error}");
        written.push(n);
    }
    // Exactly what fits: 16 writes would be 1,048,688 bytes.
    let total: usize = written.iter().sum();
    assert_eq!(total, QUOTA_BYTES / ONE_WRITE, "{written:?}");
    let (bytes, keys) = stored(server, &filler).await;
    assert!(
        bytes <= QUOTA_BYTES,
        "{bytes} bytes stored for a quota of {QUOTA_BYTES}"
    );
    assert_eq!((bytes, keys), (total * ONE_WRITE, total));

    // The neighbour writes, reads and answers as before.
    assert_eq!(
        call(
            server,
            &neighbour,
            "PUT",
            "set?bucket=default&key=after",
            b"2"
        )
        .await,
        (200, "set".into())
    );
    assert_eq!(
        call(
            server,
            &neighbour,
            "GET",
            "get?bucket=default&key=before",
            b""
        )
        .await,
        (200, "1".into())
    );
    assert_eq!(
        call(server, &neighbour, "GET", "ping", b"").await,
        (200, "capabilities".into())
    );

    // A delete frees what the key held: one more value fits, and only one.
    let (w, _) = written.iter().enumerate().find(|(_, n)| **n > 0).unwrap();
    assert_eq!(
        call(
            server,
            &filler,
            "DELETE",
            &format!("delete?bucket=default&key=w{w}-0000"),
            b""
        )
        .await,
        (200, "deleted".into())
    );
    let (status, body) = call(
        server,
        &filler,
        "GET",
        "kvfill?bucket=default&n=2&kb=64&prefix=z0-",
        b"",
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(filled(&body).0, 1, "{body}");
    assert!(stored(server, &filler).await.0 <= QUOTA_BYTES);

    // The key quota: 60 empty values for a quota of 50 keys.
    let counter = unique("keys");
    server.deploy(store_app(&counter).path());
    let (status, body) = call(
        server,
        &counter,
        "GET",
        "kvfill?bucket=default&n=60&kb=0&prefix=k",
        b"",
    )
    .await;
    assert_eq!(status, 500, "{body}");
    let (n, error) = filled(&body);
    assert_eq!(n, QUOTA_KEYS, "{body}");
    assert!(
        error.contains("the app's key-value quota of 50 keys (--keyvalue-max-keys-per-app)"),
        "{error}"
    );
    assert_eq!(stored(server, &counter).await.1, QUOTA_KEYS);

    // Every refusal is counted, none as a failure of the store: four
    // writers, the write after the delete, the 51st key.
    assert_eq!(server.metric("stratus_keyvalue_over_quota_total").await, 6);
    assert_eq!(server.metric("stratus_keyvalue_errors_total").await, 0);
    assert!(
        server.logs("key-value write refused").await,
        "refusals are logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_contains_a_runaway_app_on_sqlite() {
    let server = Server::start_with(&quota_flags());
    the_quota_contains_a_runaway_app(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_contains_a_runaway_app_on_redis() {
    let mut flags = quota_flags();
    flags.extend([
        "--keyvalue",
        "redis",
        "--keyvalue-url",
        "redis://127.0.0.1:6379",
    ]);
    let server = Server::start_with(&flags);
    the_quota_contains_a_runaway_app(&server).await;
}

#[tokio::test]
async fn a_quota_flag_without_a_unit_is_refused_naming_it() {
    let err = server_refuses(&["--keyvalue-max-bytes-per-app", "1000"], &[]);
    assert!(err.contains("--keyvalue-max-bytes-per-app"), "{err}");
}
