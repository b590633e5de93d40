//! Apps' secrets, encrypted at rest.
//!
//! A secret is set by an operator (`stratus secrets set APP NAME`, value on
//! stdin) and read by the functions of that app whose manifest lists it in
//! `secrets`, through `wasi:config`. Nothing else ever returns a value: the
//! admin API lists names and times, errors and logs name the secret only,
//! and `Debug` prints no value.
//!
//! Each value is sealed with XChaCha20-Poly1305 under the node's 32-byte key,
//! with a random nonce per write and the app and name as associated data, so
//! a ciphertext copied to another row does not open. The key comes from
//! `STRATUS_SECRETS_KEY` (base64) when set, otherwise from `secrets.key` in
//! the data directory, created with mode 0600 on first use. A database
//! without its key is useless to whoever copies it.

mod sqlite;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
pub use sqlite::SqliteSecrets;
pub use stratus_storage::SecretInfo;
use stratus_storage::{SealedSecret, SecretBackend, SecretBackendError};

/// The environment variable that holds the key (base64 of 32 bytes).
pub const KEY_ENV: &str = "STRATUS_SECRETS_KEY";
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "secrets.key";
/// The largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Where the sealed secrets are kept failed; its message unchanged.
    #[error(transparent)]
    Backend(#[from] SecretBackendError),
    #[error("cannot {action} the secrets key file {}: {source}", path.display())]
    KeyFile {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secrets key {origin} is not valid: {reason}")]
    BadKey { origin: String, reason: String },
    #[error(
        "${KEY_ENV} is not set: the nodes of a cluster share their secrets, so every node needs the same key (32 random bytes in base64, e.g. `head -c 32 /dev/urandom | base64`)"
    )]
    NoSharedKey,
    #[error("{0:?} is not a valid secret name: {rule}", rule = stratus_manifest::CONFIG_KEY_RULE)]
    BadName(String),
    #[error("a secret value must be 1 to {MAX_SECRET_BYTES} bytes of UTF-8 text; this one {0}")]
    BadValue(String),
    #[error(
        "secret {name:?} of app {app:?} cannot be decrypted: the node's secrets key is not the one it was stored with"
    )]
    WrongKey { app: String, name: String },
    #[error("secret {name:?} of app {app:?} is not set")]
    NotFound { app: String, name: String },
}

/// The node's secrets: the key that seals them and the backend that keeps
/// them sealed.
pub struct SecretStore {
    backend: Arc<dyn SecretBackend>,
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore").finish_non_exhaustive()
    }
}

impl SecretStore {
    /// Opens the store in `data_dir`, with the key from [`KEY_ENV`] if it
    /// is set, else from the key file (created if missing).
    pub fn open(data_dir: &Path) -> Result<SecretStore, SecretError> {
        let key = match std::env::var(KEY_ENV) {
            Ok(encoded) => decode_key(&encoded, &format!("in ${KEY_ENV}"))?,
            Err(_) => key_from_file(&data_dir.join(KEY_FILE))?,
        };
        Self::open_with_key(&data_dir.join(SqliteSecrets::FILE), &key)
    }

    /// Opens the database at `path` with an explicit 32-byte key.
    pub fn open_with_key(path: &Path, key: &[u8; 32]) -> Result<SecretStore, SecretError> {
        let sqlite = SqliteSecrets::open(path).map_err(SecretBackendError::new)?;
        Ok(Self::with_backend(Arc::new(sqlite), key))
    }

    /// A store over a backend the nodes of a cluster share: they must all
    /// seal with the same key, so it comes from [`KEY_ENV`] only, never
    /// from a key file one node made for itself.
    pub fn shared(backend: Arc<dyn SecretBackend>) -> Result<SecretStore, SecretError> {
        let encoded = std::env::var(KEY_ENV).map_err(|_| SecretError::NoSharedKey)?;
        let key = decode_key(&encoded, &format!("in ${KEY_ENV}"))?;
        Ok(Self::with_backend(backend, &key))
    }

    /// A store that keeps its secrets, sealed with `key`, in `backend`.
    pub fn with_backend(backend: Arc<dyn SecretBackend>, key: &[u8; 32]) -> SecretStore {
        SecretStore {
            backend,
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// Stores (or replaces) secret `name` of `app`.
    pub fn set(&self, app: &str, name: &str, value: &str) -> Result<(), SecretError> {
        if !stratus_manifest::valid_config_key(name) {
            return Err(SecretError::BadName(name.to_string()));
        }
        if value.is_empty() {
            // Surely a mistake (an empty file, a variable never set): a
            // function reading it would take "" for the secret.
            return Err(SecretError::BadValue("is empty".into()));
        }
        if value.len() > MAX_SECRET_BYTES {
            return Err(SecretError::BadValue(format!("has {} bytes", value.len())));
        }
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(app, name);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SecretError::BadValue("could not be encrypted".into()))?;
        self.backend.put(
            app,
            name,
            &SealedSecret {
                nonce: nonce.to_vec(),
                ciphertext: sealed,
                updated: SystemTime::now(),
            },
        )?;
        tracing::info!(app, secret = name, "secret set");
        Ok(())
    }

    /// The names of `app`'s secrets, sorted, with when each was set.
    pub fn list(&self, app: &str) -> Result<Vec<SecretInfo>, SecretError> {
        Ok(self.backend.list(app)?)
    }

    /// Removes a secret; false when it was not set.
    pub fn delete(&self, app: &str, name: &str) -> Result<bool, SecretError> {
        Ok(self.backend.delete(app, name)?)
    }

    /// The plaintext of a secret, none when it is not set.
    pub fn reveal(&self, app: &str, name: &str) -> Result<Option<String>, SecretError> {
        let Some(SealedSecret {
            nonce,
            ciphertext: sealed,
            ..
        }) = self.backend.get(app, name)?
        else {
            return Ok(None);
        };
        let wrong_key = || SecretError::WrongKey {
            app: app.to_string(),
            name: name.to_string(),
        };
        if nonce.len() != 24 {
            return Err(wrong_key());
        }
        let aad = associated_data(app, name);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| wrong_key())?;
        String::from_utf8(plain).map(Some).map_err(|_| wrong_key())
    }
}

impl stratus_storage::SecretSource for SecretStore {
    fn reveal(&self, app: &str, name: &str) -> Result<Option<String>, String> {
        SecretStore::reveal(self, app, name).map_err(|e| e.to_string())
    }
}

/// Binds a ciphertext to the secret it belongs to.
fn associated_data(app: &str, name: &str) -> Vec<u8> {
    format!("stratus-secret\0{app}\0{name}").into_bytes()
}

fn decode_key(encoded: &str, origin: &str) -> Result<[u8; 32], SecretError> {
    let bad = |reason: String| SecretError::BadKey {
        origin: origin.to_string(),
        reason,
    };
    let bytes = BASE64
        .decode(encoded.trim())
        .map_err(|e| bad(format!("not base64 ({e})")))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| bad(format!("{} bytes instead of 32", bytes.len())))
}

/// Reads the key file, or creates it with a new random key, readable by the
/// node's user only.
fn key_from_file(path: &Path) -> Result<[u8; 32], SecretError> {
    let io = |action, source| SecretError::KeyFile {
        action,
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path).map_err(|e| io("check the permissions of", e))?;
            decode_key(&text, &format!("in {}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(|e| io("create", e))?;
            file.write_all(BASE64.encode(key).as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| io("write", e))?;
            tracing::info!(path = %path.display(), "created the secrets key");
            Ok(key)
        }
        Err(e) => Err(io("read", e)),
    }
}

/// Refuses a key file others can read: the key is worth as much as every
/// secret it seals.
fn check_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(std::io::Error::other(format!(
                "its mode is {:o}; it must be readable by the node's user only (chmod 600)",
                mode & 0o777
            )));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod conformance;
#[cfg(test)]
mod tests;
