//! One probe of one serving pod: health, a refusal without credentials on every served door, the
//! public agent card, and an MCP handshake with `tools/list` under a short-lived token the
//! operator mints. It only fetches; `expect.rs` judges. The token is sent, never logged or kept.

use std::collections::BTreeSet;
use std::time::Duration;

use mailagent_crds::Capability;
use mailagent_crds::Verification;
use mailagent_crds::contract::{Surface, http};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST};
use serde_json::{Value, json};

use super::expect::{Expected, Finding, judge_card, judge_tools};

/// Longest wait for one answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The MCP version the probe asks for (the workload negotiates down if it must).
const MCP_VERSION: &str = "2025-06-18";
const SESSION_HEADER: &str = "mcp-session-id";

/// The HTTP client probes share: plain HTTP inside the cluster, no proxies, no redirects, short
/// timeouts. Outside the SSRF guard on purpose: its targets are pod addresses the API server
/// lists in the agent's EndpointSlices, never a URL anyone supplies.
///
/// Its TLS configuration is given explicitly and trusts no root at all: the probes speak plain
/// HTTP, and the operator's image has no CA bundle for reqwest to load (without this, building the
/// client fails there).
#[allow(clippy::disallowed_methods)]
pub fn client() -> reqwest::Client {
    let tls =
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client builds")
}

/// Probes the pod at `base` (`http://<pod address>:<port>`), adding what it saw to `report`.
/// `token` is a bearer for the MCP door when the operator can mint one.
pub async fn probe(
    http: &reqwest::Client,
    base: &str,
    expected: &Expected,
    token: Option<&str>,
    report: &mut Verification,
) -> Result<(), Finding> {
    let health = get(http, &format!("{base}{}", http::HEALTHZ), None).await?;
    if health.0 != 200 {
        return Err(Finding::new("HealthFailed", format!("{}{} answered {}", base, http::HEALTHZ, health.0)));
    }
    if expected.serves(Surface::Rest) {
        let read = Capability::ALL.into_iter().find(|c| !c.is_mutation()).expect("a read capability exists");
        refuses_without_credentials(http, base, read.path(), expected.host(Surface::Rest), json!({})).await?;
    }
    if expected.serves(Surface::A2a) {
        let host = expected.host(Surface::A2a);
        let (status, body) = get(http, &format!("{base}{}", http::AGENT_CARD), Some(host)).await?;
        if status != 200 {
            return Err(Finding::new("AgentCardMismatch", format!("the agent card answered {status}")));
        }
        let card: Value = serde_json::from_slice(&body)
            .map_err(|e| Finding::new("AgentCardMismatch", format!("the agent card is not JSON: {e}")))?;
        let (version, skills) = judge_card(expected, &card)?;
        report.a2a_protocol_version = Some(version);
        report.a2a_skills = Some(skills);
        let send = json!({"jsonrpc": "2.0", "id": 1, "method": "SendMessage", "params": {}});
        refuses_without_credentials(http, base, http::A2A, host, send).await?;
    }
    if expected.serves(Surface::Mcp) {
        let host = expected.host(Surface::Mcp);
        refuses_without_credentials(http, base, http::MCP, host, initialize()).await?;
        if let Some(token) = token {
            let (version, tools) = list_tools(http, base, host, token).await?;
            judge_tools(expected, &tools)?;
            report.mcp_protocol_version = Some(version);
            report.mcp_tools = Some(tools.len() as i32);
        }
    }
    Ok(())
}

/// A door must answer 401 to a request without credentials. Anything else is a door open to
/// anyone who can reach the pod.
async fn refuses_without_credentials(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    host: &str,
    body: Value,
) -> Result<(), Finding> {
    let status = http
        .post(format!("{base}{path}"))
        .header(HOST, host)
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT, "application/json, text/event-stream")
        .body(body.to_string())
        .send()
        .await
        .map_err(unreachable(path))?
        .status();
    if status.as_u16() == 401 {
        Ok(())
    } else {
        Err(Finding::new(
            "AnswersWithoutCredentials",
            format!("POST {path} without credentials answered {status}, not 401 Unauthorized"),
        ))
    }
}

/// `initialize`, `notifications/initialized`, `tools/list`, then the session is closed.
async fn list_tools(
    http: &reqwest::Client,
    base: &str,
    host: &str,
    token: &str,
) -> Result<(String, BTreeSet<String>), Finding> {
    let url = format!("{base}{}", http::MCP);
    let post = |body: Value, session: Option<&str>| {
        let mut request = http
            .post(&url)
            .header(HOST, host)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(body.to_string());
        if let Some(session) = session {
            request = request.header(SESSION_HEADER, session).header("mcp-protocol-version", MCP_VERSION);
        }
        request.send()
    };
    let answer = post(initialize(), None).await.map_err(unreachable(http::MCP))?;
    let session = answer.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let init = rpc_result(answer, 1).await?;
    let version = init["protocolVersion"].as_str().unwrap_or_default().to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    post(initialized, session.as_deref()).await.map_err(unreachable(http::MCP))?;
    let listed = post(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), session.as_deref())
        .await
        .map_err(unreachable(http::MCP))?;
    let tools = rpc_result(listed, 2).await?;
    if let Some(session) = &session {
        // Best effort: the workload also expires idle sessions.
        let _ = http
            .delete(&url)
            .header(HOST, host)
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(SESSION_HEADER, session)
            .send()
            .await;
    }
    let names = tools["tools"]
        .as_array()
        .map(|t| t.iter().filter_map(|t| t["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    Ok((version, names))
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": MCP_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "mailagent-operator-verify", "version": env!("CARGO_PKG_VERSION")},
    }})
}

/// The `result` of JSON-RPC answer `id`, from a JSON body or an SSE stream of `data:` lines.
async fn rpc_result(answer: reqwest::Response, id: i64) -> Result<Value, Finding> {
    let status = answer.status();
    let body = answer.text().await.map_err(unreachable(http::MCP))?;
    if !status.is_success() {
        return Err(Finding::new("McpHandshakeFailed", format!("the MCP door answered {status} to the probe's token")));
    }
    let messages: Vec<Value> = match serde_json::from_str::<Value>(&body) {
        Ok(message) => vec![message],
        Err(_) => body
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .filter_map(|data| serde_json::from_str(data.trim()).ok())
            .collect(),
    };
    let message = messages
        .into_iter()
        .find(|m| m["id"].as_i64() == Some(id))
        .ok_or_else(|| Finding::new("McpHandshakeFailed", format!("no answer to MCP request {id}")))?;
    if let Some(error) = message.get("error") {
        return Err(Finding::new("McpHandshakeFailed", format!("MCP request {id} failed: {}", error["message"])));
    }
    Ok(message["result"].clone())
}

async fn get(http: &reqwest::Client, url: &str, host: Option<&str>) -> Result<(u16, Vec<u8>), Finding> {
    let mut request = http.get(url);
    if let Some(host) = host {
        request = request.header(HOST, host);
    }
    let answer = request.send().await.map_err(unreachable(url))?;
    let status = answer.status().as_u16();
    Ok((status, answer.bytes().await.map_err(unreachable(url))?.to_vec()))
}

fn unreachable(what: &str) -> impl Fn(reqwest::Error) -> Finding + '_ {
    move |error| {
        // Without the URL's query (there is none) or any header: nothing secret reaches the text.
        let error = error.without_url();
        Finding::new("Unreachable", format!("{what}: {error}"))
    }
}
