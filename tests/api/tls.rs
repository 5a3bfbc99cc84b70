//! `rediss://`: the service talks TLS to Redis, as to a managed Redis, verifying the certificate.

use crate::helpers::{flashsale, wait_for_log};
use flashsale::store::local_server::{free_port, LocalRedisServer, LocalServerOptions};
use fred::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::process::Stdio;
use tempfile::TempDir;

/// Redis with a TLS port beside its plain one (the plain one is for the test's own checks),
/// serving `cert.pem` from `dir`.
struct TlsRedis {
    server: LocalRedisServer,
    tls_port: u16,
    dir: TempDir,
}

impl TlsRedis {
    /// `signed`: a certificate from a test CA (written to `ca.pem`); else a self-signed one.
    async fn start(signed: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        let key = KeyPair::generate().unwrap();
        let cert = if signed {
            let ca_key = KeyPair::generate().unwrap();
            let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
            ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            std::fs::write(
                dir.path().join("ca.pem"),
                ca_params.self_signed(&ca_key).unwrap().pem(),
            )
            .unwrap();
            let issuer = Issuer::new(ca_params, ca_key);
            CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap()
        } else {
            CertificateParams::new(names)
                .unwrap()
                .self_signed(&key)
                .unwrap()
        };
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let tls_port = free_port().unwrap();
        let server = LocalRedisServer::start_with(LocalServerOptions {
            extra_args: [
                "--tls-port",
                &tls_port.to_string(),
                "--tls-cert-file",
                &path("cert.pem"),
                "--tls-key-file",
                &path("key.pem"),
                "--tls-auth-clients",
                "no",
            ]
            .map(str::to_owned)
            .to_vec(),
            ..Default::default()
        })
        .await
        .unwrap();
        Self {
            server,
            tls_port,
            dir,
        }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.tls_port)
    }

    fn ca_file(&self) -> String {
        self.dir
            .path()
            .join("ca.pem")
            .to_string_lossy()
            .into_owned()
    }
}

#[tokio::test]
async fn a_rediss_url_connects_over_tls_and_sells() {
    // Arrange
    let redis = TlsRedis::start(true).await;
    let port = free_port().unwrap();

    // Act: the binary, trusting our CA the way rustls-native-certs is told to (SSL_CERT_FILE).
    let mut child = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REDIS_URL", redis.url())
        .env("SSL_CERT_FILE", redis.ca_file())
        .env("SALE_TOTAL_STOCK", "5")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_log(&mut child, "flashsale listening");
    let reply = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/sale/purchase"))
        .json(&serde_json::json!({"userId": "tls-user"}))
        .send()
        .await
        .unwrap();
    let status = reply.status();
    let _ = child.kill();
    let _ = child.wait();

    // Assert
    assert_eq!(status, 200);
    let plain = Client::new(
        Config::from_url(&redis.server.url()).unwrap(),
        None,
        None,
        None,
    );
    plain.init().await.unwrap();
    let stock = crate::helpers::redis::sale_stock(&plain, "default").await;
    assert_eq!(stock, Some(4));
}

#[tokio::test]
async fn a_rediss_url_with_an_untrusted_certificate_refuses_to_start() {
    // Arrange: a TLS port whose certificate no trusted CA signed.
    let redis = TlsRedis::start(false).await;

    // Act
    let output = flashsale()
        .env("REDIS_URL", redis.url())
        .env("REDIS_TIMEOUT_MS", "1000")
        .env("PORT", "0")
        .output()
        .unwrap();

    // Assert: it stops with a message naming the Redis (without credentials), instead of serving.
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains(&redis.url()), "{stderr}");
    // One line that says why: the certificate, not only "no answer".
    assert!(stderr.contains("UnknownIssuer"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}
