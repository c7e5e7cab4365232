//! A refused request must not break the client's next one on the same keep-alive connection
//! (issue 8, defect 9). A raw HTTP/1.1 client, as an ordinary Python client behaves: it sends a
//! large body with a bad credential, reads the 401, then reuses the connection.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// A server on a loopback port, stopped when dropped (also when a test fails).
struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn start() -> Server {
    let (app, dir) = app("api_key", &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(mailagent_service::server::serve(app, listener, None, std::future::pending()));
    Server { addr, task, _dir: dir }
}

/// One response: status, headers (lower-case names) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

async fn read_reply(reader: &mut BufReader<TcpStream>) -> std::io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed before a response"));
    }
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).await?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    let length: usize =
        headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await?;
    Ok(Reply { status, headers, body })
}

fn request(method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `first` while reading its reply (a client that writes its whole body before reading
/// would deadlock only on a server that never reads; this one reads as it writes), then sends
/// `second` on the same connection and returns both replies.
async fn two_requests_on_one_connection(addr: SocketAddr, first: Vec<u8>, second: Vec<u8>) -> (Reply, Reply) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (read_half, mut write_half) = stream.into_split();
    let writer = tokio::spawn(async move {
        write_half.write_all(&first).await?;
        write_half.flush().await?;
        Ok::<_, std::io::Error>(write_half)
    });
    let mut reader =
        BufReader::new(read_half.reunite(writer.await.unwrap().expect("the first request was sent")).unwrap());
    let one = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut reader)).await.unwrap().unwrap();
    assert_ne!(one.header("connection"), Some("close"), "a body within the drain limit keeps the connection");
    reader.get_mut().write_all(&second).await.expect("the connection still takes a request");
    let two = tokio::time::timeout(Duration::from_secs(10), read_reply(&mut reader))
        .await
        .unwrap()
        .expect("the second request on the connection was answered");
    (one, two)
}

/// A JSON body of about `size` bytes.
fn large_body(size: usize) -> Vec<u8> {
    format!("{{\"query\": \"{}\"}}", "x".repeat(size)).into_bytes()
}

#[tokio::test]
async fn a_refused_rest_request_with_a_large_body_leaves_the_connection_usable() {
    let server = start().await;
    let json = ("content-type", "application/json");
    let first = request("POST", "/v1/mail/scan", &[json, ("x-api-key", "wrong-key")], &large_body(1 << 20));
    let second = request("POST", "/v1/mail/scan", &[json, ("x-api-key", API_KEY)], b"{}");
    let (one, two) = two_requests_on_one_connection(server.addr, first, second).await;
    assert_eq!(one.status, 401);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&one.body).unwrap()["error"], "unauthorized");
    assert_eq!(two.status, 200, "{}", String::from_utf8_lossy(&two.body));
}

#[tokio::test]
async fn a_refused_mcp_request_with_a_large_body_leaves_the_connection_usable() {
    let server = start().await;
    let huge_token = format!("Bearer {}", "a".repeat(20_000));
    let headers = [("content-type", "application/json"), ("accept", "application/json, text/event-stream")];
    let rpc = |id: u32| {
        let mut body = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}});
        body["params"]["padding"] = serde_json::json!("p".repeat(512 * 1024));
        body.to_string().into_bytes()
    };
    let mut bad = headers.to_vec();
    bad.push(("authorization", &huge_token));
    let first = request("POST", "/mcp", &bad, &rpc(41));
    let second = request("POST", "/mcp", &[headers[0], headers[1], ("x-api-key", "wrong-too")], &rpc(42));
    let (one, two) = two_requests_on_one_connection(server.addr, first, second).await;
    assert_eq!(one.status, 401);
    // api_key mode does not read `Authorization` at all (a proxy's header must not defeat a key),
    // so the huge token is no credential; hostile_tokens covers its `too_large` in hybrid mode.
    assert_eq!(one.header("x-auth-failure"), Some("missing_credentials"));
    let one: serde_json::Value = serde_json::from_slice(&one.body).unwrap();
    assert_eq!((one["id"].as_u64(), one["error"]["data"]["error"].as_str()), (Some(41), Some("unauthorized")));
    assert_eq!(two.status, 401, "the second request was read and answered");
    let two: serde_json::Value = serde_json::from_slice(&two.body).unwrap();
    assert_eq!(two["id"], 42);
}

#[tokio::test]
async fn a_body_beyond_the_drain_limit_announces_the_close() {
    let (app, _dir) = app("api_key", &[]);
    let body = vec![b'x'; mailagent_service::http::drain::DRAIN_LIMIT + 1024];
    let request = Request::post("/v1/mail/scan")
        .header("content-type", "application/json")
        .header("x-api-key", "wrong-key")
        .body(Body::from(body))
        .unwrap();
    let (status, headers, _) = send(&app, request).await;
    assert_eq!(status, 401);
    assert_eq!(headers["connection"], "close", "the client must not reuse a connection with unread bytes");
    let small = post("/v1/mail/scan", &[("x-api-key", "wrong-key")], serde_json::json!({}));
    let (status, headers, _) = send(&app, small).await;
    assert_eq!((status.as_u16(), headers.get("connection")), (401, None), "a small body is read, not closed on");
}
