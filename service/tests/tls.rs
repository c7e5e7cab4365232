//! In-process TLS over real loopback sockets: HTTPS with a self-signed certificate, a renewed
//! certificate served without a restart and without a failed request, a broken renewal kept out,
//! plain HTTP refused, the peer address kept for rate limits, graceful shutdown.
#![allow(clippy::disallowed_methods, reason = "test clients talk to the server this test starts")]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use mailagent_service::app::App;
use mailagent_service::tls::Tls;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

fn self_signed() -> Pair {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    Pair { cert_pem: cert.pem(), key_pem: signing_key.serialize_pem(), der: cert.der().clone() }
}

/// Replaces a file by rename, as a renewal tool or the kubelet's symlink swap does.
fn replace(path: &Path, contents: &str) {
    let temp = path.with_extension("tmp");
    std::fs::write(&temp, contents).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn write_pair(dir: &Path, pair: &Pair) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    replace(&key, &pair.key_pem);
    replace(&cert, &pair.cert_pem);
    (cert, key)
}

struct Server {
    app: Arc<App>,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: tempfile::TempDir,
    _keyring: tempfile::TempDir,
}

async fn start(pair: &Pair, extra: &[(&str, &str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = write_pair(dir.path(), pair);
    let mut settings = vec![("TLS_CERT_PATH", cert.to_str().unwrap()), ("TLS_KEY_PATH", key.to_str().unwrap())];
    settings.extend_from_slice(extra);
    let (app, keyring) = app("api_key", &settings);
    let tls = Tls::load(&cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(mailagent_service::server::serve(app.clone(), listener, Some(tls), async {
        let _ = stopped.await;
    }));
    Server { app, addr, stop: Some(stop), task, dir, _keyring: keyring }
}

fn client_config(trusted: &[&Pair]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for pair in trusted {
        roots.add(pair.der.clone()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// A client trusting `trusted`, reaching `localhost` at `addr`, one connection per request.
fn https_client(addr: SocketAddr, trusted: &[&Pair]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_backend_preconfigured(client_config(trusted))
        .resolve("localhost", addr)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// The end-entity certificate a fresh handshake is given.
async fn served_certificate(addr: SocketAddr, trusted: &[&Pair]) -> CertificateDer<'static> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(trusted)));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned()
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_is_served_without_restart_or_a_failed_request() {
    let (old, new) = (self_signed(), self_signed());
    let server = start(&old, &[]).await;
    let client = https_client(server.addr, &[&old, &new]);
    let response = client.get(format!("https://localhost:{}/health", server.addr.port())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(served_certificate(server.addr, &[&old, &new]).await, old.der);

    // Callers keep making authenticated requests (a new connection each) across the swap.
    let running = Arc::new(AtomicBool::new(true));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = tokio::spawn({
        let (running, ok, failed, client) = (running.clone(), ok.clone(), failed.clone(), client.clone());
        let url = format!("https://localhost:{}/v1/mail/scan", server.addr.port());
        async move {
            while running.load(Ordering::Relaxed) {
                let sent = client.post(&url).header("x-api-key", API_KEY).json(&serde_json::json!({})).send().await;
                match sent {
                    Ok(response) if response.status() == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(response) => panic!("status {}", response.status()),
                    Err(error) => {
                        eprintln!("request failed: {error:?}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_pair(server.dir.path(), &new);
    until("the renewed certificate", async || served_certificate(server.addr, &[&old, &new]).await == new.der).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);
    load.await.unwrap();

    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request may fail during the swap");
    assert!(ok.load(Ordering::Relaxed) > 0);
    eprintln!("{} requests across the swap, none failed", ok.load(Ordering::Relaxed));
    assert_eq!(server.app.metrics.tls_reloads.get(), 1);
    // A client that trusts only the new certificate now gets through.
    let response = https_client(server.addr, &[&new])
        .get(format!("https://localhost:{}/health", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_renewal_keeps_the_certificate_in_force_and_is_counted() {
    let (old, new) = (self_signed(), self_signed());
    let server = start(&old, &[]).await;
    // The new certificate with the old key: does not match, must not be served.
    replace(&server.dir.path().join("tls.crt"), &new.cert_pem);
    until("the failure to be counted", async || server.app.metrics.tls_reload_failures.get() == 1).await;
    assert_eq!(served_certificate(server.addr, &[&old, &new]).await, old.der);
    let response = https_client(server.addr, &[&old])
        .get(format!("https://localhost:{}/health", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The same broken files are reported once, not on every poll.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(server.app.metrics.tls_reload_failures.get(), 1);
    // The matching key arrives: the renewal goes through.
    replace(&server.dir.path().join("tls.key"), &new.key_pem);
    until("the renewed certificate", async || served_certificate(server.addr, &[&old, &new]).await == new.der).await;
    let metrics = server.app.metrics.render();
    assert!(metrics.contains("mailagent_tls_reload_failures_total 1"), "{metrics}");
    assert!(metrics.contains("mailagent_tls_reloads_total 1"), "{metrics}");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_fails() {
    let pair = self_signed();
    let server = start(&pair, &[]).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await.unwrap();
    assert!(!answer.starts_with(b"HTTP/"), "plain HTTP was answered: {:?}", String::from_utf8_lossy(&answer));
    let plain =
        https_client(server.addr, &[&pair]).get(format!("http://localhost:{}/health", server.addr.port())).send().await;
    assert!(plain.is_err(), "{plain:?}");
    until("the handshake failure to be counted", async || server.app.metrics.tls_handshake_failures.get() >= 1).await;
}

#[tokio::test]
async fn the_peer_address_still_keys_the_rate_limit() {
    let pair = self_signed();
    let server = start(&pair, &[("RATE_LIMIT_PER_MINUTE", "1"), ("RATE_LIMIT_BURST", "2")]).await;
    let url = format!("https://localhost:{}/health", server.addr.port());
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .tls_backend_preconfigured(client_config(&[&pair]))
            .resolve("localhost", server.addr)
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let first = from([127, 0, 0, 1]);
    let statuses: Vec<u16> = futures::future::join_all((0..3).map(|_| first.get(&url).send()))
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 1, "{statuses:?}");
    // Another loopback address has its own bucket: the socket's peer address reached the limiter.
    let other = from([127, 0, 0, 2]).get(&url).send().await.unwrap();
    assert_eq!(other.status(), 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_returns() {
    let pair = self_signed();
    let mut server = start(&pair, &[]).await;
    let client = https_client(server.addr, &[&pair]);
    assert_eq!(
        client.get(format!("https://localhost:{}/health", server.addr.port())).send().await.unwrap().status(),
        200
    );
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), &mut server.task).await.unwrap().unwrap().unwrap();
    until("the port to close", async || tokio::net::TcpStream::connect(server.addr).await.is_err()).await;
}

#[tokio::test]
async fn a_bad_or_mismatched_pair_is_a_start_up_error() {
    let (one, two) = (self_signed(), self_signed());
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert, &one.cert_pem).unwrap();
    std::fs::write(&key, &two.key_pem).unwrap();
    let error = format!("{:#}", Tls::load(&cert, &key).unwrap_err());
    assert!(error.contains("does not belong"), "{error}");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n").unwrap();
    assert!(Tls::load(&cert, &key).is_err());
    std::fs::write(&cert, "no certificate here").unwrap();
    let error = format!("{:#}", Tls::load(&cert, &dir.path().join("absent")).unwrap_err());
    assert!(error.contains("absent"), "{error}");

    // The binary's start path refuses before listening.
    std::fs::write(&cert, &one.cert_pem).unwrap();
    std::fs::write(&key, &two.key_pem).unwrap();
    let state = tempfile::tempdir().unwrap();
    let env = [
        ("AGENT_API_KEY", API_KEY),
        ("AUTH_MODE", "api_key"),
        ("MAILAGENT_LISTEN", "127.0.0.1:0"),
        ("MAILAGENT_STATE_DIR", state.path().to_str().unwrap()),
        ("TLS_CERT_PATH", cert.to_str().unwrap()),
        ("TLS_KEY_PATH", key.to_str().unwrap()),
    ];
    let source = mailagent_service::settings::Source::from_map(
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    );
    let error = tokio::time::timeout(Duration::from_secs(10), mailagent_service::server::run(source))
        .await
        .expect("run returns at once")
        .unwrap_err();
    assert!(format!("{error:#}").contains("does not belong"), "{error:#}");
}
