#![allow(clippy::unwrap_used)]

use super::*;
use stratus_storage::SecretBackend;

fn store(dir: &Path) -> SecretStore {
    SecretStore::open_with_key(&dir.join("secrets.sqlite"), &[7; 32]).unwrap()
}

#[test]
fn values_round_trip_and_are_not_stored_in_plain() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.set("shop", "stripe-key", "sk_live_PLAINTEXT_MARKER")
        .unwrap();
    assert_eq!(
        s.reveal("shop", "stripe-key").unwrap().as_deref(),
        Some("sk_live_PLAINTEXT_MARKER")
    );
    assert_eq!(s.reveal("other", "stripe-key").unwrap(), None);
    drop(s);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let found = bytes
            .windows(b"PLAINTEXT_MARKER".len())
            .any(|w| w == b"PLAINTEXT_MARKER");
        assert!(!found, "the plaintext is on disk");
    }
}

#[test]
fn listing_gives_names_only_and_delete_removes() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    s.set("shop", "b", "2").unwrap();
    s.set("shop", "a", "1").unwrap();
    s.set("shop", "a", "1b").unwrap();
    let names: Vec<_> = s
        .list("shop")
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(s.reveal("shop", "a").unwrap().as_deref(), Some("1b"));
    assert!(s.delete("shop", "a").unwrap());
    assert!(!s.delete("shop", "a").unwrap());
    assert_eq!(s.reveal("shop", "a").unwrap(), None);
}

#[test]
fn another_key_or_a_moved_ciphertext_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secrets.sqlite");
    let s = SecretStore::open_with_key(&path, &[1; 32]).unwrap();
    s.set("shop", "token", "t0p").unwrap();
    drop(s);
    let other = SecretStore::open_with_key(&path, &[2; 32]).unwrap();
    let err = other.reveal("shop", "token").unwrap_err();
    assert!(matches!(err, SecretError::WrongKey { .. }), "{err}");
    assert!(!err.to_string().contains("t0p"));
    drop(other);
    // The same ciphertext under another name or app fails authentication.
    let backend = Arc::new(SqliteSecrets::open(&path).unwrap());
    let sealed = backend.get("shop", "token").unwrap().unwrap();
    backend.put("shop", "copy", &sealed).unwrap();
    backend.put("other", "token", &sealed).unwrap();
    let s = SecretStore::with_backend(backend, &[1; 32]);
    assert_eq!(s.reveal("shop", "token").unwrap().as_deref(), Some("t0p"));
    for (app, name) in [("shop", "copy"), ("other", "token")] {
        let err = s.reveal(app, name).unwrap_err();
        assert!(matches!(err, SecretError::WrongKey { .. }), "{err}");
    }
}

#[test]
fn the_key_file_is_created_private_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE);
    let first = key_from_file(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(key_from_file(&path).unwrap(), first);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = key_from_file(&path).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}

#[test]
fn bad_names_values_and_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    assert!(matches!(
        s.set("shop", "a b", "x"),
        Err(SecretError::BadName(_))
    ));
    let big = "x".repeat(MAX_SECRET_BYTES + 1);
    assert!(matches!(
        s.set("shop", "big", &big),
        Err(SecretError::BadValue(_))
    ));
    let err = decode_key("c2hvcnQ=", "in $STRATUS_SECRETS_KEY").unwrap_err();
    assert!(err.to_string().contains("5 bytes instead of 32"), "{err}");
}
