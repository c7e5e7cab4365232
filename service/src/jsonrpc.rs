//! The bits of JSON-RPC 2.0 the A2A and MCP doors share: reading a request's `id` so every
//! error can echo it, even one answered before the request is dispatched.

use axum::body::Body;
use std::borrow::Cow;

use serde_json::Value;
use serde_json::value::RawValue;

/// What a JSON-RPC request body's envelope says, read in one pass. Every member is kept raw, so
/// that one of the wrong type (a numeric `method`, odd `params`) does not hide the others: an error
/// answer must still echo the id. Nothing is built beyond the id.
#[derive(Default)]
pub struct Envelope<'a> {
    /// The id to echo: a string or a number, else `null` (not JSON, a batch, no `id`, an object).
    pub id: Value,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    pub fn read(body: &'a [u8]) -> Self {
        #[derive(serde::Deserialize)]
        struct Wire<'a> {
            #[serde(default)]
            id: Option<&'a RawValue>,
            #[serde(borrow, default)]
            method: Option<&'a RawValue>,
            #[serde(borrow, default)]
            params: Option<&'a RawValue>,
        }
        let Ok(wire) = serde_json::from_slice::<Wire<'_>>(body) else { return Self::default() };
        // JSON-RPC ids are strings, numbers or null; anything else is not echoed.
        let id = match wire.id.map(|raw| serde_json::from_str(raw.get())) {
            Some(Ok(id @ (Value::String(_) | Value::Number(_)))) => id,
            _ => Value::Null,
        };
        Self { id, method: wire.method, params: wire.params }
    }

    /// The method, when it is a string.
    pub fn method(&self) -> Option<Cow<'a, str>> {
        serde_json::from_str(self.method?.get()).ok()
    }

    /// The params as `T`, when they are.
    pub fn params<T: serde::Deserialize<'a>>(&self) -> Option<T> {
        serde_json::from_str(self.params?.get()).ok()
    }
}

/// The request id of a JSON-RPC request body, or `null` when none is readable.
pub fn request_id(body: &[u8]) -> Value {
    Envelope::read(body).id
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

    #[test]
    fn a_member_of_the_wrong_type_hides_neither_the_id_nor_the_others() {
        let envelope = Envelope::read(br#"{"id":3,"method":5,"params":{"name":"x"}}"#);
        assert_eq!((&envelope.id, envelope.method()), (&json!(3), None));
        #[derive(serde::Deserialize)]
        struct Named<'a> {
            name: &'a str,
        }
        assert_eq!(envelope.params::<Named<'_>>().map(|p| p.name), Some("x"));
        let envelope = Envelope::read(br#"{"id":"a","method":"tools/call","params":[1]}"#);
        assert_eq!(envelope.method().as_deref(), Some("tools/call"));
        assert!(envelope.params::<Named<'_>>().is_none());
    }
}
