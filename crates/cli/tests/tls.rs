//! TLS on the gateway and the admin API of a running `stratus server`
//! (issue 14): a real TLS client over HTTP/2 and HTTP/1.1, and the CLI
//! trusting a private CA. Reloading and refusals are tested in
//! crates/gateway/tests/tls.rs.

use std::process::Command;
use std::sync::Arc;

use crate::common::*;

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as
/// `cert.pem` and `key.pem` in `dir`.
fn certificate(dir: &std::path::Path) -> (String, String, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let cert = rcgen::CertificateParams::new(names)
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (
        cert_path.display().to_string(),
        key_path.display().to_string(),
        cert.der().to_vec(),
    )
}

/// A client trusting only `der`, offering only `alpn`.
fn client(der: &[u8], alpn: &[u8]) -> reqwest::Client {
    tls_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(der.to_vec()))
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .build()
        .unwrap()
}

fn cli(server: &Server, ca: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stratus"));
    command
        .args(args)
        .current_dir(repo_root())
        .env("STRATUS_SERVER", &server.admin)
        .env("STRATUS_TOKEN", TOKEN)
        .env_remove("STRATUS_CA_CERT");
    if let Some(ca) = ca {
        command.env("STRATUS_CA_CERT", ca);
    }
    command.output().unwrap()
}

#[tokio::test]
async fn the_gateway_and_admin_api_serve_tls_and_the_cli_trusts_the_ca_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(dir.path());
    let server = Server::start_with(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--admin-tls-cert",
        &cert,
        "--admin-tls-key",
        &key,
    ]);
    assert!(server.gateway.starts_with("https://"), "{}", server.gateway);
    assert!(server.admin.starts_with("https://"), "{}", server.admin);

    // The CLI refuses a certificate it has no reason to trust, saying what
    // to do; given the CA, it deploys.
    let app = testbed_app("tls", "echo", &["/tls/..."], "");
    let app_dir = app.path().to_str().unwrap();
    let out = cli(&server, None, &["deploy", app_dir]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--ca-cert") && err.contains("STRATUS_CA_CERT"),
        "{err}"
    );
    let out = cli(&server, Some(&cert), &["deploy", app_dir]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(&server, Some(&cert), &["apps"]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("tls"),
        "{}",
        stderr(&out)
    );

    // The function answers over HTTP/2 and over HTTP/1.1, by ALPN.
    let url = format!("{}/tls/echo", server.gateway);
    for (alpn, version) in [
        (&b"h2"[..], reqwest::Version::HTTP_2),
        (&b"http/1.1"[..], reqwest::Version::HTTP_11),
    ] {
        let response = client(&der, alpn)
            .post(&url)
            .body("over tls")
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), version);
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "over tls");
    }

    // Plain HTTP to a TLS listener gets no answer, and costs only its own
    // connection.
    let plain = server.gateway.replacen("https://", "http://", 1);
    assert!(
        http_client()
            .get(format!("{plain}/tls/echo"))
            .send()
            .await
            .is_err()
    );
    let response = client(&der, b"h2")
        .post(&url)
        .body("still")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "still");
}

#[test]
fn a_certificate_that_cannot_be_used_stops_the_start_naming_the_flag_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_stratus"))
            .arg("server")
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--admin-token", TOKEN])
            .args(extra)
            .env_remove("STRATUS_TLS_CERT")
            .env_remove("STRATUS_TLS_KEY")
            .output()
            .unwrap()
    };
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let out = start(&["--admin-tls-cert", missing, "--admin-tls-key", missing]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--admin-tls-cert/--admin-tls-key") && err.contains("missing.pem"),
        "{err}"
    );
    // One without the other is a usage error.
    let out = start(&["--tls-cert", missing]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--tls-key"), "{}", stderr(&out));
}
