//! `rediss://`: the service talks TLS to Redis, as to a managed Redis, verifying the certificate.

use crate::helpers::{flashsale, wait_for_log};
use flashsale::store::local_server::{free_port, LocalRedisServer, LocalServerOptions};
use fred::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use std::process::Stdio;

#[tokio::test]
async fn a_rediss_url_connects_over_tls_and_sells() {
    // Arrange: a CA, a server certificate for 127.0.0.1, and Redis with a TLS port beside its
    // plain one (the plain one is for this test's own checks).
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    std::fs::write(path("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(path("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(path("server.key"), server_key.serialize_pem()).unwrap();
    let tls_port = free_port().unwrap();
    let redis = LocalRedisServer::start_with(LocalServerOptions {
        extra_args: [
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            &path("server.pem"),
            "--tls-key-file",
            &path("server.key"),
            "--tls-ca-cert-file",
            &path("ca.pem"),
            "--tls-auth-clients",
            "no",
        ]
        .map(str::to_owned)
        .to_vec(),
        ..Default::default()
    })
    .await
    .unwrap();
    let port = free_port().unwrap();

    // Act: the binary, trusting our CA the way rustls-native-certs is told to (SSL_CERT_FILE).
    let mut child = flashsale()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REDIS_URL", format!("rediss://127.0.0.1:{tls_port}"))
        .env("SSL_CERT_FILE", path("ca.pem"))
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
    let plain = Client::new(Config::from_url(&redis.url()).unwrap(), None, None, None);
    plain.init().await.unwrap();
    let stock: i64 = plain.get("sale:{default}:stock").await.unwrap();
    assert_eq!(stock, 4);
}

#[test]
fn a_rediss_url_with_an_untrusted_certificate_refuses_to_start() {
    // Arrange: a TLS port whose certificate no trusted CA signed.
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.path().join("c.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("k.pem"), key.serialize_pem()).unwrap();
    let tls_port = free_port().unwrap();
    let mut redis = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &tls_port.to_string(),
            "--save",
            "",
        ])
        .arg("--tls-cert-file")
        .arg(dir.path().join("c.pem"))
        .arg("--tls-key-file")
        .arg(dir.path().join("k.pem"))
        .args(["--tls-auth-clients", "no"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));

    // Act
    let output = flashsale()
        .env("REDIS_URL", format!("rediss://127.0.0.1:{tls_port}"))
        .env("REDIS_TIMEOUT_MS", "1000")
        .env("PORT", "0")
        .output()
        .unwrap();
    let _ = redis.kill();
    let _ = redis.wait();

    // Assert: it stops with a message naming the Redis (without credentials), instead of serving.
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!("rediss://127.0.0.1:{tls_port}")),
        "{stderr}"
    );
}
