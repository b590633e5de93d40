//! TLS for a listener: rustls, HTTP/2 or HTTP/1.1 by ALPN, and a
//! certificate that is read again from its files when they change.
//!
//! Certificates are renewed in place (certbot, cert-manager, a mounted
//! Secret), so the node watches the two files and swaps the identity it
//! presents to *new* handshakes; connections already open keep theirs and
//! are never dropped. A pair that does not load (a half-written file, a key
//! that does not match) is logged and the last good one is kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How often the files are read and compared with the pair in use (a few
/// KiB: cheaper than parsing, and unlike a modification time it cannot miss
/// a rewrite within the file system's clock tick).
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);

/// The certificate chain and private key of a listener, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a listener's TLS identity cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {reason}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("{} holds no PEM certificate (a `-----BEGIN CERTIFICATE-----` block)", path.display())]
    NoCertificate { path: PathBuf },
    #[error(
        "the certificate {} and the key {} do not make a TLS identity: {reason}",
        cert.display(),
        key.display()
    )]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    /// The crypto provider cannot offer the protocol versions asked for
    /// (not with ring's suites; kept so that it is an error, not a panic).
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// A listener's TLS: the acceptor handshakes use, and the identity it
/// presents, reloadable.
pub struct Tls {
    acceptor: TlsAcceptor,
    identity: Arc<Identity>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads `files` and builds the server configuration: TLS 1.2 and 1.3,
    /// ALPN `h2` then `http/1.1`.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let contents = read_pair(&files);
        let current = load_identity(&files, &contents, &provider)?;
        let identity = Arc::new(Identity {
            seen: RwLock::new(contents),
            current: RwLock::new(Arc::new(current)),
            files,
            provider: provider.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(identity.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            identity,
        })
    }

    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Reads the files again if they changed since the last look, and
    /// presents the new identity to handshakes from now on. Answers whether
    /// it swapped; a pair that does not load keeps the old one.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let identity = &self.identity;
        let contents = read_pair(&identity.files);
        if *read(&identity.seen) == contents {
            return Ok(false);
        }
        // Parsed from the bytes compared, so what is presented is what was
        // seen. Marked seen first: a broken pair is reported once, not
        // every second, and tried again when the files next change.
        *write(&identity.seen) = contents.clone();
        let loaded = load_identity(&identity.files, &contents, &identity.provider)?;
        *write(&identity.current) = Arc::new(loaded);
        Ok(true)
    }

    /// Checks the files every `every` until the task is aborted, logging
    /// each swap and each pair that did not load.
    pub fn spawn_reloader(self: &Arc<Self>, name: &'static str) -> tokio::task::JoinHandle<()> {
        let tls = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let files = tls.identity.files.clone();
                let checked = {
                    let tls = tls.clone();
                    tokio::task::spawn_blocking(move || tls.reload_if_changed()).await
                };
                match checked {
                    Ok(Ok(true)) => tracing::info!(
                        cert = %files.cert.display(),
                        "{name}: TLS certificate reloaded; new connections present it"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => {
                        tracing::warn!("{name}: keeping the previous TLS certificate: {e}")
                    }
                    Err(e) => tracing::warn!("{name}: the TLS reload check failed: {e}"),
                }
            }
        })
    }
}

/// The identity handshakes get, swapped by [`Tls::reload_if_changed`].
struct Identity {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    /// The files' contents (or why they could not be read) when last read.
    seen: RwLock<Contents>,
    current: RwLock<Arc<CertifiedKey>>,
}

/// Names the files only: what was read holds the private key.
impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(read(&self.current).clone())
    }
}

/// The certificate file and the key file as read, or why not.
type Contents = [Result<Vec<u8>, String>; 2];

fn read_pair(files: &TlsFiles) -> Contents {
    let of = |path: &Path| std::fs::read(path).map_err(|e| e.to_string());
    [of(&files.cert), of(&files.key)]
}

fn load_identity(
    files: &TlsFiles,
    [cert, key]: &Contents,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let unreadable = |what, path: &Path, reason: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let cert = cert
        .as_deref()
        .map_err(|e| unreadable("certificate", &files.cert, e.clone()))?;
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable("certificate", &files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = key
        .as_deref()
        .map_err(|e| unreadable("key", &files.key, e.clone()))?;
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|e| unreadable("key", &files.key, e.to_string()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        reason: e.to_string(),
    })
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
