//! `make bench` for the workload. Every figure is printed next to a baseline measured in the same
//! run: a bare axum route that returns the same bytes without auth or any of our layers.
//!
//! 1. In process (tower `oneshot`, one request at a time, no sockets): isolates our layers.
//! 2. Over loopback sockets: hyper clients on `CONNECTIONS` keep-alive connections against the
//!    servers started here (ours through `server::serve`, exactly as the binary serves).
//! 3. JWT verification cost per request, first sight of a token and again.
//! 4. Resident memory of the release `mailagent` binary, idle and after load.
//! 5. The same binary against the official MCP Python SDK server ([`head_to_head`]).
//!
//! MCP `tools/call` runs over rmcp's Streamable HTTP service as a client of the 2025-06-18
//! revision does it: one `initialize` (a session), then every call carries `Mcp-Session-Id`; the
//! answer is the SSE stream rmcp returns, read to its end. And as a 2026-07-28 client does it: no
//! session (that revision removed them), each call stands alone with its `_meta` and `Mcp-Method`
//! headers; rmcp serves each such call with a fresh service, and the answer is plain JSON
//! (`json_response`, see `src/mcp/mod.rs`).
//!
//! Throughput is the best of `ROUNDS` rounds (the machine may be shared; the rounds interleave
//! the contenders in rotating order so each sees the same conditions); p99 is from that round.
#![allow(
    clippy::disallowed_methods,
    reason = "bench clients talk to the server this bench starts; the bench installs the provider once"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use mailagent_crds::contract::Surface;
use mailagent_service::app::App;
use mailagent_service::testing::{self, API_KEY, AUDIENCE, ISSUER};
use serde_json::json;
use tower::ServiceExt;

/// The servers in this process run under the allocator the `mailagent` binary uses
/// (`src/main.rs`), the bare baseline included.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "doors/head_to_head.rs"]
mod head_to_head;

const IN_PROCESS_REQUESTS: usize = 20_000;
const ROUNDS: usize = 4;
const CONNECTIONS: usize = 16;
const LOOPBACK_TIME: Duration = Duration::from_secs(2);
const JWT_SAMPLES: usize = 20_000;
const MIB: f64 = 1024.0 * 1024.0;
const IDLE_GOAL_MIB: f64 = 30.0;

/// One contender's result.
#[derive(Clone, Copy, Debug, Default)]
struct Figure {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

impl Figure {
    fn from(latencies: &mut [Duration], elapsed: Duration) -> Self {
        latencies.sort_unstable();
        let at = |q: usize| latencies[(latencies.len() * q / 100).min(latencies.len() - 1)];
        Self { rate: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(50), p99: at(99) }
    }

    fn best(self, other: Self) -> Self {
        if other.rate > self.rate { other } else { self }
    }
}

/// What a contender sends: method, path, headers, body.
#[derive(Clone)]
struct Call {
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Call {
    fn request(&self) -> Request<Body> {
        let mut builder = Request::post(self.path);
        for (name, value) in &self.headers {
            builder = builder.header(*name, value);
        }
        builder.body(Body::from(self.body.clone())).unwrap()
    }
}

fn rest(credential: (&'static str, String)) -> Call {
    Call {
        path: "/v1/mail/scan",
        headers: vec![("host", "127.0.0.1".into()), ("content-type", "application/json".into()), credential],
        body: Bytes::from_static(b"{}"),
    }
}

fn mcp(bearer: &str, session: &str) -> Call {
    mcp_tool(bearer, session, "mail_scan")
}

/// A 2025-06-18 `tools/call` of `tool` on `session`; an empty session makes each connection of
/// [`loopback`] open its own, and an empty bearer sends no `Authorization` (for a peer without auth).
fn mcp_tool(bearer: &str, session: &str, tool: &str) -> Call {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
    let mut headers = vec![
        ("host", "127.0.0.1".into()),
        ("content-type", "application/json".into()),
        ("accept", "application/json, text/event-stream".into()),
        ("authorization", bearer.to_owned()),
        ("mcp-session-id", session.to_owned()),
        ("mcp-protocol-version", "2025-06-18".into()),
    ];
    headers.retain(|(name, value)| *name != "authorization" || !value.is_empty());
    Call { path: "/mcp", headers, body: Bytes::from(body.to_string()) }
}

/// A 2026-07-28 `tools/call`: no session (that revision has none).
fn mcp_stateless(bearer: &str) -> Call {
    mcp_stateless_tool(bearer, "mail_scan")
}

fn mcp_stateless_tool(bearer: &str, tool: &str) -> Call {
    let mut call = mcp_tool(bearer, "", tool);
    call.headers.retain(|(name, _)| *name != "mcp-session-id" && *name != "mcp-protocol-version");
    call.headers.push(("mcp-protocol-version", STATELESS_REVISION.into()));
    // The revision routes on headers that mirror the body.
    call.headers.push(("mcp-method", "tools/call".into()));
    call.headers.push(("mcp-name", tool.to_owned()));
    // Without a handshake, each 2026-07-28 request names its revision and capabilities itself.
    call.body = Bytes::from(
        json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": tool, "arguments": {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": STATELESS_REVISION,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "1"},
        }}})
        .to_string(),
    );
    call
}

const STATELESS_REVISION: &str = "2026-07-28";

fn is_stateless(call: &Call) -> bool {
    call.headers.iter().any(|(name, value)| *name == "mcp-protocol-version" && value == STATELESS_REVISION)
}

/// Checks an answer: 200 and, for MCP, a result rather than an error.
/// Every answer is checked, so the check searches bytes: decoding each body as UTF-8 first was 9 %
/// of the load generator's samples in the head-to-head.
fn check(status: StatusCode, body: &[u8]) {
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(body));
    let json_rpc = body.starts_with(b"{\"jsonrpc\"");
    let sse = body.starts_with(b"event:") || body.starts_with(b"data:") || body.starts_with(b"id:");
    if json_rpc || sse {
        let found = |needle: &[u8]| memchr::memmem::find(body, needle).is_some();
        assert!(found(b"\"result\"") && !found(b"\"isError\":true"), "{}", String::from_utf8_lossy(body));
    }
}

async fn in_process(router: &Router, call: &Call, requests: usize) -> Figure {
    let mut latencies = Vec::with_capacity(requests);
    let start = Instant::now();
    for _ in 0..requests {
        let t = Instant::now();
        let response = router.clone().oneshot(call.request()).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        latencies.push(t.elapsed());
        check(status, &body);
    }
    Figure::from(&mut latencies, start.elapsed())
}

/// `connections` keep-alive HTTP/1.1 connections, each sending `call` back to back for `time`.
/// A 2025-06-18 MCP call without a session id opens one session per connection, as separate
/// clients would; with one, every connection shares that session, as one client fanning out would.
async fn loopback(addr: SocketAddr, call: &Call, time: Duration, connections: usize) -> Figure {
    let start = Instant::now();
    let deadline = start + time;
    let workers: Vec<_> = (0..connections)
        .map(|index| {
            let call = call.clone();
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
                tokio::spawn(connection);
                let mut call = call;
                let own_session = call.path == "/mcp" && !is_stateless(&call) && session_of(&call).is_empty();
                if own_session {
                    // One session per connection, as separate MCP clients would have.
                    let session = mcp_session(&bearer_of(&call), Via::Connection(&mut sender)).await;
                    set_header(&mut call, "mcp-session-id", session);
                }
                let mut latencies = Vec::with_capacity(4096);
                // JSON-RPC ids must differ among a session's requests in flight.
                let (template, mut sequence) = (String::from_utf8(call.body.to_vec()).unwrap(), 0u64);
                while Instant::now() < deadline {
                    let mut builder = hyper::Request::post(call.path);
                    for (name, value) in &call.headers {
                        builder = builder.header(*name, value);
                    }
                    sequence += 1;
                    let body = if call.path == "/mcp" {
                        let id = format!("\"id\":{}", index as u64 * 1_000_000_000 + sequence);
                        Bytes::from(template.replacen("\"id\":7", &id, 1))
                    } else {
                        call.body.clone()
                    };
                    let request = builder.body(Full::new(body)).unwrap();
                    let t = Instant::now();
                    sender.ready().await.unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    let status = response.status();
                    let body = response.into_body().collect().await.unwrap().to_bytes();
                    latencies.push(t.elapsed());
                    check(status, &body);
                }
                if own_session {
                    // A client that is done ends its session (the spec's SHOULD; the official
                    // SDK clients do it on close), so the servers' memory after load holds the
                    // sessions in use, not every one the rounds ever opened.
                    close_session(&call, &mut sender).await;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    Figure::from(&mut all, start.elapsed())
}

/// Where a set-up request goes: through the router in process, or over one connection.
enum Via<'a> {
    Router(&'a Router),
    Connection(&'a mut Sender),
}

impl Via<'_> {
    async fn send(&mut self, call: Call) -> (StatusCode, HeaderMap, Bytes) {
        match self {
            Via::Router(router) => oneshot(router, call).await,
            Via::Connection(sender) => send(sender, call).await,
        }
    }
}

/// Opens an MCP session (initialize + initialized) and returns its id.
async fn mcp_session(bearer: &str, mut via: Via<'_>) -> String {
    let mut call = mcp(bearer, "");
    call.headers.retain(|(name, _)| *name != "mcp-session-id" && *name != "mcp-protocol-version");
    call.body = Bytes::from(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        .to_string(),
    );
    let (status, headers, body) = via.send(call.clone()).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    call.headers.push(("mcp-session-id", session.clone()));
    call.headers.push(("mcp-protocol-version", "2025-06-18".into()));
    call.body = Bytes::from(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string());
    let (status, _, body) = via.send(call).await;
    assert!(status.is_success(), "{status} {}", String::from_utf8_lossy(&body));
    session
}

/// Sends the DELETE that ends `call`'s session.
async fn close_session(call: &Call, sender: &mut Sender) {
    let mut builder = hyper::Request::delete(call.path);
    for (name, value) in &call.headers {
        builder = builder.header(*name, value);
    }
    sender.ready().await.unwrap();
    let response = sender.send_request(builder.body(Full::new(Bytes::new())).unwrap()).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    // 405 is the spec's answer of a server that lets clients not end sessions.
    assert!(status.is_success() || status == StatusCode::METHOD_NOT_ALLOWED, "DELETE: {status} {body:?}");
}

async fn oneshot(router: &Router, call: Call) -> (StatusCode, HeaderMap, Bytes) {
    let response = router.clone().oneshot(call.request()).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn send(sender: &mut Sender, call: Call) -> (StatusCode, HeaderMap, Bytes) {
    let mut builder = hyper::Request::post(call.path);
    for (name, value) in &call.headers {
        builder = builder.header(*name, value);
    }
    sender.ready().await.unwrap();
    let response = sender.send_request(builder.body(Full::new(call.body)).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
}

fn header_of(call: &Call, wanted: &str) -> String {
    call.headers.iter().find(|(name, _)| *name == wanted).map(|(_, v)| v.clone()).unwrap_or_default()
}

fn bearer_of(call: &Call) -> String {
    header_of(call, "authorization")
}

fn session_of(call: &Call) -> String {
    header_of(call, "mcp-session-id")
}

fn set_header(call: &mut Call, name: &'static str, value: String) {
    call.headers.retain(|(n, _)| *n != name);
    call.headers.push((name, value));
}

fn token(extra: serde_json::Value) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut claims = json!({"sub": "bench", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 3600,
        "scope": "mail:scan unsubscribe:read"});
    claims.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    testing::hs256(&claims)
}

fn bench_app() -> (Arc<App>, tempfile::TempDir) {
    testing::app("hybrid", &[("RATE_LIMIT_PER_MINUTE", "1000000000"), ("RATE_LIMIT_BURST", "1000000000")])
}

fn ratio(ours: f64, base: f64) -> String {
    format!("{:>6.1} %", 100.0 * ours / base)
}

fn row(name: &str, figure: Figure, base: Figure, goal: &str) {
    println!(
        "  {name:<34} {:>9.0} req/s  p50 {:>9.1?}  p99 {:>9.1?}   throughput {} of bare   p99 {:>5.1}x bare  {goal}",
        figure.rate,
        figure.p50,
        figure.p99,
        ratio(figure.rate, base.rate),
        figure.p99.as_secs_f64() / base.p99.as_secs_f64(),
    );
}

fn bare_row(figure: Figure) {
    println!(
        "  {:<34} {:>9.0} req/s  p50 {:>9.1?}  p99 {:>9.1?}   (baseline)",
        "bare axum route (same bytes)", figure.rate, figure.p50, figure.p99
    );
}

/// The contenders' order in a round: each starts one round first, so none always runs first.
fn rotated(round: usize, n: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |i| (i + round) % n)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // On a worker thread, as a server's handlers run, not on the thread that blocks.
    runtime.block_on(async { tokio::spawn(run()).await.unwrap() });
}

async fn run() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!("mailagent door bench (load average at start: {})", load_average());
    if std::env::var_os("DOORS_HEAD_TO_HEAD_ONLY").is_some() {
        // The head-to-head alone (section 5), for a quick look.
        head_to_head::run(&format!("Bearer {}", token(json!({})))).await;
        return;
    }
    let (app, _dir) = bench_app();
    let ours = mailagent_service::http::router(app.clone());
    let scan = mailagent_mail::api::ScanRequest::default();
    let body = serde_json::to_vec(&app.assistant.scan(scan).await.unwrap()).unwrap();
    let bare: Router =
        Router::new().route("/v1/mail/scan", axum::routing::post(move || std::future::ready(body.clone())));
    let bearer = format!("Bearer {}", token(json!({})));
    let rest_jwt = rest(("authorization", bearer.clone()));
    let rest_key = rest(("x-api-key", API_KEY.to_owned()));
    let bare_call = rest(("x-unused", String::new()));

    // 1. In process.
    let session = mcp_session(&bearer, Via::Router(&ours)).await;
    let mcp_call = mcp(&bearer, &session);
    let mcp_stateless_call = mcp_stateless(&bearer);
    let contenders: [(&str, &Router, &Call); 5] = [
        ("bare", &bare, &bare_call),
        ("REST, JWT (HS256)", &ours, &rest_jwt),
        ("REST, API key", &ours, &rest_key),
        ("MCP tools/call, JWT, session", &ours, &mcp_call),
        ("MCP tools/call, JWT, 2026-07-28", &ours, &mcp_stateless_call),
    ];
    if let Ok(wanted) = std::env::var("DOORS_PROFILE") {
        // `DOORS_PROFILE=mcp perf record ...`: one contender in process for 10 s, nothing else.
        let (name, router, call) =
            contenders.iter().find(|(name, ..)| name.to_lowercase().starts_with(&wanted)).unwrap();
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(10) {
            in_process(router, call, 1_000).await;
            n += 1_000;
        }
        println!("{name}: {n} requests in {:?}", start.elapsed());
        return;
    }
    if std::env::var_os("DOORS_PROFILE_LOOPBACK").is_none() {
        let mut best = [Figure::default(); 5];
        for (_, router, call) in contenders {
            in_process(router, call, 2_000).await; // warm up
        }
        for round in 0..ROUNDS {
            for i in rotated(round, contenders.len()) {
                let (_, router, call) = contenders[i];
                best[i] = best[i].best(in_process(router, call, IN_PROCESS_REQUESTS).await);
            }
        }
        println!(
            "\nIn process (tower oneshot, sequential, {IN_PROCESS_REQUESTS} requests x {ROUNDS} rounds, best round):"
        );
        bare_row(best[0]);
        row(contenders[1].0, best[1], best[0], "(goal >= 60 %)");
        row(contenders[2].0, best[2], best[0], "");
        row(contenders[3].0, best[3], best[0], "(goal >= 25 %)");
        row(contenders[4].0, best[4], best[0], "(goal >= 25 %)");
    }

    // 2. Loopback sockets.
    let bare_addr = spawn_bare(bare.clone()).await;
    let ours_addr = spawn_ours(app.clone()).await;
    // Each connection opens its own session (see `loopback`), or all share one.
    let mcp_call = mcp(&bearer, "");
    let shared = mcp(&bearer, &open_session(ours_addr, &bearer).await);
    let contenders: [(&str, SocketAddr, &Call, usize); 7] = [
        ("bare", bare_addr, &bare_call, CONNECTIONS),
        ("REST, JWT (HS256)", ours_addr, &rest_jwt, CONNECTIONS),
        ("REST, API key", ours_addr, &rest_key, CONNECTIONS),
        ("MCP tools/call, JWT, 16 sessions", ours_addr, &mcp_call, CONNECTIONS),
        ("MCP tools/call, JWT, 1 session, 16 in flight", ours_addr, &shared, CONNECTIONS),
        ("MCP tools/call, JWT, 1 session, 1 in flight", ours_addr, &shared, 1),
        ("MCP tools/call, JWT, 2026-07-28", ours_addr, &mcp_stateless_call, CONNECTIONS),
    ];
    if let Ok(wanted) = std::env::var("DOORS_PROFILE_LOOPBACK") {
        // `DOORS_PROFILE_LOOPBACK="mcp tools/call, jwt, 1 session, 16" perf record ...`: one contender, 10 s.
        let (name, addr, call, connections) =
            contenders.iter().find(|(name, ..)| name.to_lowercase().starts_with(&wanted)).unwrap();
        let figure = loopback(*addr, call, Duration::from_secs(10), *connections).await;
        println!("{name}: {:.0} req/s, p99 {:?}", figure.rate, figure.p99);
        return;
    }
    let best = rounds(&contenders).await;
    println!(
        "\nLoopback sockets ({CONNECTIONS} keep-alive HTTP/1.1 connections, each with one request in flight, client and servers in this process on 2 worker threads, {:?} x {ROUNDS} rounds, best round):",
        LOOPBACK_TIME
    );
    bare_row(best[0]);
    row(contenders[1].0, best[1], best[0], "(goal >= 60 %)");
    row(contenders[2].0, best[2], best[0], "");
    for (i, (name, ..)) in contenders.iter().enumerate().skip(3) {
        row(name, best[i], best[0], if i == 5 { "" } else { "(goal >= 25 %)" });
    }
    println!(
        "  one session, 16 in flight: {} of 16 sessions' throughput (goal >= 80 %); {:.1}x one session's 1 in flight",
        ratio(best[4].rate, best[3].rate),
        best[4].rate / best[5].rate
    );
    let bare_request = Duration::from_secs_f64(1.0 / best[0].rate);

    // 3. JWT verification.
    let fresh: Vec<HeaderMap> = (0..JWT_SAMPLES)
        .map(|i| {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", format!("Bearer {}", token(json!({"jti": i}))).parse().unwrap());
            headers
        })
        .collect();
    let start = Instant::now();
    for headers in &fresh {
        app.auth.authenticate(Surface::Rest, headers).await.unwrap();
    }
    let first_sight = start.elapsed() / JWT_SAMPLES as u32;
    let mut headers = HeaderMap::new();
    headers.insert("authorization", bearer.parse().unwrap());
    let start = Instant::now();
    for _ in 0..JWT_SAMPLES {
        app.auth.authenticate(Surface::Rest, &headers).await.unwrap();
    }
    let again = start.elapsed() / JWT_SAMPLES as u32;
    let mut key_headers = HeaderMap::new();
    key_headers.insert("x-api-key", API_KEY.parse().unwrap());
    let start = Instant::now();
    for _ in 0..JWT_SAMPLES {
        app.auth.authenticate(Surface::Rest, &key_headers).await.unwrap();
    }
    let api_key = start.elapsed() / JWT_SAMPLES as u32;
    println!(
        "\nAuthentication cost per request (baseline: one bare loopback request = {bare_request:.1?} of server+client time):"
    );
    for (name, cost) in [
        ("JWT HS256, token seen first time", first_sight),
        ("JWT HS256, same token again", again),
        ("API key (SHA-256, constant-time)", api_key),
    ] {
        println!(
            "  {name:<34} {cost:>9.2?}   {} of a bare request",
            ratio(cost.as_secs_f64(), bare_request.as_secs_f64())
        );
    }

    // 4. Memory of the real binary.
    memory(&bearer, best[0]).await;

    // 5. Against the MCP Python SDK.
    head_to_head::run(&bearer).await;
    println!("\nload average at end: {}", load_average());
}

/// Runs every contender for `LOOPBACK_TIME`, `ROUNDS` times in rotating order; the best round of each.
async fn rounds<const N: usize>(contenders: &[(&str, SocketAddr, &Call, usize); N]) -> [Figure; N] {
    let mut best = [Figure::default(); N];
    for (_, addr, call, connections) in contenders {
        loopback(*addr, call, Duration::from_millis(300), *connections).await; // warm up
    }
    for round in 0..ROUNDS {
        for i in rotated(round, N) {
            let (_, addr, call, connections) = contenders[i];
            best[i] = best[i].best(loopback(addr, call, LOOPBACK_TIME, connections).await);
        }
    }
    best
}

/// Opens a 2025-06-18 session over a connection of its own, for contenders that share it.
async fn open_session(addr: SocketAddr, bearer: &str) -> String {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    mcp_session(bearer, Via::Connection(&mut sender)).await
}

async fn spawn_bare(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // TCP_NODELAY as `server::serve` sets it, so both sides write the same way.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn spawn_ours(app: Arc<App>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(mailagent_service::server::serve(app, listener, None, std::future::pending()));
    addr
}

/// The process's resident memory now (`VmRSS`) and at its peak (`VmHWM`), in bytes.
fn resident_bytes(pid: u32) -> (f64, f64) {
    let status = procfs::process::Process::new(pid.try_into().unwrap()).unwrap().status().unwrap();
    let bytes = |kib: Option<u64>| kib.unwrap() as f64 * 1024.0;
    (bytes(status.vmrss), bytes(status.vmhwm))
}

/// The resident anonymous memory of a process (`RssAnon`: heap, stacks, relocated data), in bytes.
/// Its mapped files (code, read-only data, shared libraries) are page cache that every process of
/// the same image on a node shares, so this is what each further agent on a node costs.
fn anonymous_bytes(pid: u32) -> f64 {
    let status = procfs::process::Process::new(pid.try_into().unwrap()).unwrap().status().unwrap();
    status.rssanon.unwrap() as f64 * 1024.0
}

/// The `mailagent` binary the spawned sections run: the release build users get, which `make bench`
/// passes in `MAILAGENT_BENCH_BINARY` (hack/pgo-build.sh: profile-guided), else the one cargo built
/// for this bench (plain release). Returns the path and how it was built, for the report.
fn workload_binary() -> (std::path::PathBuf, &'static str) {
    match std::env::var_os("MAILAGENT_BENCH_BINARY") {
        Some(path) => {
            let path = std::path::PathBuf::from(path);
            assert!(path.is_file(), "MAILAGENT_BENCH_BINARY names no file: {path:?} (did hack/pgo-build.sh fail?)");
            (path, "MAILAGENT_BENCH_BINARY")
        }
        None => (env!("CARGO_BIN_EXE_mailagent").into(), "cargo's release build, no PGO"),
    }
}

/// Spawns the release binary ([`workload_binary`]), reads VmRSS at idle and after loopback load on
/// REST and MCP.
async fn memory(bearer: &str, bare: Figure) {
    let state = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let (binary, built) = workload_binary();
    let mut child = std::process::Command::new(&binary)
        .env_clear()
        .envs(testing::LOAD_ENV)
        .envs([
            ("MAILAGENT_LISTEN", addr.to_string().as_str()),
            ("MAILAGENT_STATE_DIR", state.path().to_str().unwrap()),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the mailagent binary");
    let pid = child.id();
    let started = Instant::now();
    loop {
        if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
            drop(stream);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "mailagent did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (idle, _) = resident_bytes(pid);
    let rest_call = rest(("authorization", bearer.to_owned()));
    let rest = loopback(addr, &rest_call, LOOPBACK_TIME, CONNECTIONS).await;
    let mcp_figure = loopback(addr, &mcp(bearer, ""), LOOPBACK_TIME, CONNECTIONS).await;
    let mcp_stateless_figure = loopback(addr, &mcp_stateless(bearer), LOOPBACK_TIME, CONNECTIONS).await;
    let (loaded, peak) = resident_bytes(pid);
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    let _ = child.wait();
    println!(
        "\nThe release `mailagent` binary (maildir backend, JSON audit log to /dev/null; {CONNECTIONS} connections; bare in-process server above as baseline):"
    );
    println!("  binary: {} ({built})", binary.display());
    row("REST, JWT (binary)", rest, bare, "");
    row("MCP tools/call, JWT, session (binary)", mcp_figure, bare, "");
    row("MCP tools/call, JWT, 2026-07-28 (binary)", mcp_stateless_figure, bare, "");
    println!(
        "  resident memory idle {:.1} MiB ({} of the {IDLE_GOAL_MIB} MiB goal), after load {:.1} MiB, peak {:.1} MiB",
        idle / MIB,
        ratio(idle / MIB, IDLE_GOAL_MIB),
        loaded / MIB,
        peak / MIB
    );
}
