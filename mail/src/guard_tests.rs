//! The SSRF matrix: every hostile target is refused before a packet reaches it, and a listener
//! on loopback standing in for an internal service receives nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// DNS as an attacker controls it.
struct HostileDns(HashMap<&'static str, Vec<IpAddr>>);

#[async_trait::async_trait]
impl Resolver for HostileDns {
    async fn resolve(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.0.get(host).cloned().ok_or_else(|| std::io::Error::other("NXDOMAIN"))
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn hostile_dns() -> Box<dyn Resolver> {
    Box::new(HostileDns(HashMap::from([
        ("rebind.example", vec![ip("93.184.216.34"), ip("127.0.0.1")]),
        ("private.example", vec![ip("10.1.2.3")]),
        ("mapped.example", vec![ip("::ffff:169.254.169.254")]),
        ("ula.example", vec![ip("fd12:3456::1")]),
        ("cgnat.example", vec![ip("100.100.100.100")]),
        ("translated.example", vec![ip("::ffff:0:7f00:1")]),
        ("compatible.example", vec![ip("::a9fe:a9fe")]),
        ("isatap.example", vec![ip("2606:4700::5efe:a9fe:a9fe")]),
        ("empty.example", vec![]),
    ])))
}

/// A loopback listener counting connections: the internal service an attacker aims at.
async fn internal_service() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    (address, hits)
}

#[tokio::test]
async fn every_hostile_target_is_refused_and_nothing_reaches_loopback() {
    let (internal, hits) = internal_service().await;
    let port = internal.port();
    let targets = [
        format!("http://127.0.0.1:{port}/u"),
        format!("https://127.0.0.1:{port}/u"),
        "https://127.0.0.1/u".into(),
        "https://localhost/u".into(),
        "https://sub.localhost/u".into(),
        "https://[::1]/u".into(),
        "https://[::]/u".into(),
        "https://0.0.0.0/u".into(),
        "https://2130706433/u".into(),
        "https://0x7f.0.0.1/u".into(),
        "https://0177.0.0.1/u".into(),
        "https://10.0.0.1/u".into(),
        "https://172.16.5.4/u".into(),
        "https://192.168.1.1/u".into(),
        "https://100.64.0.1/u".into(),
        "https://198.18.0.1/u".into(),
        "https://169.254.169.254/latest/meta-data/".into(),
        "https://metadata.google.internal/computeMetadata/v1/".into(),
        "https://[fd00:ec2::254]/latest/meta-data/".into(),
        "https://[fe80::1]/u".into(),
        "https://[fc00::1]/u".into(),
        "https://224.0.0.1/u".into(),
        "https://[ff02::1]/u".into(),
        "https://255.255.255.255/u".into(),
        "https://[::ffff:127.0.0.1]/u".into(),
        "https://[::ffff:10.0.0.1]/u".into(),
        "https://[64:ff9b::a00:1]/u".into(),
        "https://[2002:7f00:1::1]/u".into(),
        // Every IPv6 form that embeds an IPv4 address (issue 13: the IPv4-translated range passed).
        "https://[::ffff:0:7f00:1]/u".into(),
        "https://[::ffff:0:a9fe:a9fe]/latest/meta-data/".into(),
        format!("https://[::ffff:0:7f00:1]:{port}/u"),
        format!("https://[::ffff:127.0.0.1]:{port}/u"),
        format!("https://[::7f00:1]:{port}/u"),
        "https://[::a9fe:a9fe]/u".into(),
        "https://[64:ff9b:1::a9fe:a9fe]/u".into(),
        "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/u".into(),
        "https://[2606:4700::5efe:7f00:1]/u".into(),
        "https://translated.example/u".into(),
        "https://compatible.example/u".into(),
        "https://isatap.example/u".into(),
        "https://user:pass@news.example.com/u".into(),
        "https://kubernetes.default.svc/api".into(),
        "https://my-service.ns.svc.cluster.local/u".into(),
        "https://intranet/u".into(),
        "https://rebind.example/u".into(),
        "https://private.example/u".into(),
        "https://mapped.example/u".into(),
        "https://ula.example/u".into(),
        "https://cgnat.example/u".into(),
        "https://empty.example/u".into(),
        "https://nxdomain.example/u".into(),
        "ftp://news.example.com/u".into(),
        "javascript:alert(1)".into(),
        "not a uri".into(),
    ];
    assert!(targets.len() >= 25);
    let client = GuardedClient::new(hostile_dns());
    for target in &targets {
        let result = client.one_click(target).await;
        assert!(result.is_err(), "{target} was not refused: {result:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a refused target reached the loopback listener");
}

#[tokio::test]
async fn embedded_ipv4_is_judged_before_the_port_and_named() {
    let (internal, hits) = internal_service().await;
    let port = internal.port();
    let client = GuardedClient::new(hostile_dns());
    for (target, carried) in [
        (format!("https://[::ffff:0:7f00:1]:{port}/u"), "IPv4-translated, carrying 127.0.0.1 (loopback)"),
        (format!("https://[::ffff:127.0.0.1]:{port}/u"), "IPv4-mapped, carrying 127.0.0.1 (loopback)"),
        (format!("https://[::7f00:1]:{port}/u"), "IPv4-compatible, carrying 127.0.0.1 (loopback)"),
        ("https://[::ffff:0:a9fe:a9fe]/".to_string(), "IPv4-translated, carrying 169.254.169.254 (link-local"),
        ("https://translated.example/u".to_string(), "IPv4-translated, carrying 127.0.0.1"),
        ("https://isatap.example/u".to_string(), "ISATAP, carrying 169.254.169.254"),
    ] {
        let refusal = client.check(&target).await.expect_err(&target);
        assert!(refusal.0.contains(carried), "{target}: {refusal}");
        assert!(client.one_click(&target).await.is_err(), "{target}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a refused target reached the loopback listener");
}

/// A local endpoint answering every request with `response`, recording requests.
async fn endpoint(response: Vec<u8>, delay: Duration) -> (SocketAddr, Arc<tokio::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let requests = Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = vec![0u8; 8192];
            let read = socket.read(&mut buffer).await.unwrap_or(0);
            seen.lock().await.push(String::from_utf8_lossy(&buffer[..read]).into_owned());
            tokio::time::sleep(delay).await;
            let _ = socket.write_all(&response).await;
        }
    });
    (address, requests)
}

fn http(status: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n", body.len())
        .into_bytes();
    out.extend_from_slice(body);
    out
}

/// What a case's result must look like.
type Expectation = fn(&PostResult) -> bool;

#[tokio::test]
async fn answers_are_judged_strictly() {
    let (internal, hits) = internal_service().await;
    let redirect = format!("location: http://{internal}/\r\n");
    let cases: Vec<(Vec<u8>, Expectation)> = vec![
        (http("200 OK", "", b"done"), |r| matches!(r, PostResult::Accepted(200))),
        (http("204 No Content", "", b""), |r| matches!(r, PostResult::Accepted(204))),
        (http("302 Found", &redirect, b""), |r| matches!(r, PostResult::NotCompliant(_))),
        (http("307 Temporary Redirect", &redirect, b""), |r| matches!(r, PostResult::NotCompliant(_))),
        (http("201 Created", "", b""), |r| matches!(r, PostResult::NotCompliant(_))),
        (http("404 Not Found", "", b""), |r| matches!(r, PostResult::Failed(_))),
        (http("500 Internal Server Error", "", b""), |r| matches!(r, PostResult::Failed(_))),
        (http("200 OK", "", &vec![b'x'; MAX_RESPONSE_BYTES + 1]), |r| matches!(r, PostResult::Failed(_))),
    ];
    for (response, expected) in cases {
        let (address, requests) = endpoint(response, Duration::ZERO).await;
        let client = GuardedClient::new(hostile_dns()).with_test_endpoint(address);
        let result = client.one_click(&format!("http://{address}/u?token=t")).await.unwrap();
        assert!(expected(&result), "{result:?}");
        let seen = requests.lock().await;
        let request = seen.first().unwrap().to_ascii_lowercase();
        assert!(request.starts_with("post /u?token=t "), "{request}");
        assert!(request.ends_with("\r\n\r\nlist-unsubscribe=one-click"), "{request}");
        assert!(!request.contains("cookie:") && !request.contains("authorization:"), "{request}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a redirect was followed");
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let (address, _) = endpoint(http("200 OK", "", b"late"), TOTAL_TIMEOUT + Duration::from_secs(2)).await;
    let client = GuardedClient::new(hostile_dns()).with_test_endpoint(address);
    let result = client.one_click(&format!("http://{address}/u")).await.unwrap();
    assert!(matches!(result, PostResult::Failed(ref reason) if reason.contains("timed out")), "{result:?}");
}

#[test]
fn public_addresses_pass() {
    for address in ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"] {
        assert_eq!(forbidden_class(ip(address)), None, "{address}");
    }
}
