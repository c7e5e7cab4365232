//! What the real `mailagent` binary logs for one MCP call at its default level: the audit line
//! and nothing from rmcp. A 2026-07-28 call runs on a fresh rmcp service, and rmcp logs that
//! service's start and end at info ("Service initialized", "task cancelled", "serve finished"),
//! which made three lines of every call before the default filter quieted rmcp.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const KEY: &str = "binary-log-test-key-0123456789abcdef";

/// One 2026-07-28 `tools/call` over a plain socket; the answer's status line and body.
fn sessionless_call(address: &str) -> String {
    let body = common::mcp_stateless_body(
        "tools/call",
        serde_json::json!({"name": "unsubscribe_candidates", "arguments": {}}),
    )
    .to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nhost: {address}\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\n\
         accept: application/json, text/event-stream\r\nmcp-protocol-version: {}\r\n\
         mcp-method: tools/call\r\nmcp-name: unsubscribe_candidates\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        common::MCP_STATELESS_REVISION,
        body.len()
    );
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn one_sessionless_mcp_call_logs_its_audit_line_and_nothing_from_rmcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut workload = common::spawn_logged(
        common::workload_command(env!("CARGO_BIN_EXE_mailagent"), dir.path())
            .env("AUTH_MODE", "api_key")
            .env("AGENT_API_KEY", KEY),
        dir.path(),
    );
    let address = common::serving_address(dir.path(), &mut workload);
    let answer = sessionless_call(&address);
    assert!(answer.starts_with("HTTP/1.1 200"), "the call failed: {answer}");
    assert!(answer.contains("\"result\""), "no result: {answer}");

    // The audit line is written before the answer; give any late line time to arrive.
    std::thread::sleep(Duration::from_millis(300));
    let lines: Vec<serde_json::Value> = common::workload_log(dir.path())
        .lines()
        .map(|line| serde_json::from_str(line).expect("every line is JSON"))
        .collect();
    let audit = lines.iter().filter(|line| line["target"] == "audit" && line["fields"]["event"] == "authn").count();
    assert_eq!(audit, 1, "one authn audit line for the call: {lines:#?}");
    let from_rmcp: Vec<_> =
        lines.iter().filter(|line| line["target"].as_str().is_some_and(|t| t.starts_with("rmcp"))).collect();
    assert!(from_rmcp.is_empty(), "rmcp logged at the default level: {from_rmcp:#?}");
    assert!(!common::workload_log(dir.path()).contains(KEY), "the key is never logged");
}
