//! The CLI's TLS client: rustls with the ring provider, trusting the
//! system's certificate authorities and, with `--ca-cert`, one more (a node
//! whose admin API serves a certificate from a private CA).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// The client configuration every admin request goes through.
pub fn client_config(ca_cert: Option<&Path>) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates leave only --ca-cert to trust; an
    // https:// --server then fails naming the certificate it could not
    // verify, which says what to do.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_cert {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
        if certs.is_empty() {
            bail!(
                "{} holds no PEM certificate (--ca-cert, STRATUS_CA_CERT)",
                path.display()
            );
        }
        for cert in certs {
            roots
                .add(cert)
                .with_context(|| format!("{} is not a usable CA certificate", path.display()))?;
        }
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("cannot set up TLS")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Makes ring the process's TLS provider, for every HTTP client built from
/// here on (reqwest is built without a provider of its own, so that no C
/// crypto library is compiled).
pub fn install_provider() {
    // Already installed is fine: the provider is ring either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
