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
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// How often the files are looked at: a `stat` of each, nothing more.
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
            .field("files", &self.identity.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads `files` and builds the server configuration: TLS 1.2 and 1.3,
    /// ALPN `h2` then `http/1.1`.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let current = load_identity(&files, &provider)?;
        let identity = Arc::new(Identity {
            stamp: RwLock::new(stamp(&files)),
            current: RwLock::new(Arc::new(current)),
            files,
            provider: provider.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Mismatch {
                cert: identity.files.cert.clone(),
                key: identity.files.key.clone(),
                reason: e.to_string(),
            })?
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
        let now = stamp(&identity.files);
        if *read(&identity.stamp) == now {
            return Ok(false);
        }
        // Marked seen first: a broken pair is reported once, not every
        // second, and tried again when the files next change.
        *write(&identity.stamp) = now;
        let loaded = load_identity(&identity.files, &identity.provider)?;
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
#[derive(Debug)]
struct Identity {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    /// The files' modification times and sizes when last looked at.
    stamp: RwLock<Stamp>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Identity {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(read(&self.current).clone())
    }
}

type Stamp = [Option<(SystemTime, u64)>; 2];

fn stamp(files: &TlsFiles) -> Stamp {
    let of = |path: &Path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    };
    [of(&files.cert), of(&files.key)]
}

fn load_identity(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let unreadable = |what, path: &Path, reason: String| TlsError::Read {
        what,
        path: path.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| unreadable("certificate", &files.cert, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable("certificate", &files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
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
