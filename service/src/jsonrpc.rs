//! The bits of JSON-RPC 2.0 the A2A and MCP doors share: reading a request's `id` so every
//! error can echo it, even one answered before the request is dispatched.

use axum::body::Body;
use serde_json::Value;

/// The request id of a JSON-RPC request body, or `null` when none is readable (not JSON, a
/// batch, no `id`). Only `id` is read; the rest of the body is skipped, not built.
pub fn request_id(body: &[u8]) -> Value {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        id: Value,
    }
    match serde_json::from_slice::<Envelope>(body) {
        // JSON-RPC ids are strings, numbers or null; anything else is not echoed.
        Ok(Envelope { id: id @ (Value::String(_) | Value::Number(_)) }) => id,
        _ => Value::Null,
    }
}

/// Reads up to `limit` bytes of `body` for its id; a longer or broken body has no readable id.
pub async fn read_id(body: Body, limit: usize) -> Value {
    match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => request_id(&bytes),
        Err(_) => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_echoed_only_when_readable() {
        assert_eq!(request_id(br#"{"jsonrpc":"2.0","id":7,"method":"x","params":{"a":[1,2]}}"#), json!(7));
        assert_eq!(request_id(br#"{"id":"abc"}"#), json!("abc"));
        for unreadable in [&b"{\"id\":"[..], b"[{\"id\":1}]", b"{\"id\":{\"x\":1}}", b"{}", b"not json"] {
            assert_eq!(request_id(unreadable), Value::Null);
        }
    }
}
