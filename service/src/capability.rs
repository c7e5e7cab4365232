//! Running the capabilities of the table in [`mailagent_crds::capability`] against the mail
//! domain: each one's input schema, its call with JSON arguments, and what a mutation acts on
//! (for the audit line). REST routes, A2A skills and MCP tools all go through here.

use std::sync::Arc;

pub use mailagent_crds::Capability;
use mailagent_mail::api::{self as mail, Assistant, DomainError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Why a call did not produce a result.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The arguments do not match the input schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The domain refused or failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

/// JSON Schema of the arguments.
pub fn input_schema(capability: Capability) -> Value {
    let schema = match capability {
        Capability::Scan => schemars::schema_for!(mail::ScanRequest),
        Capability::UnsubscribeCandidates => schemars::schema_for!(mail::CandidatesRequest),
        Capability::Unsubscribe => schemars::schema_for!(mail::UnsubscribeRequest),
        Capability::Digest => schemars::schema_for!(mail::DigestRequest),
        Capability::Availability => schemars::schema_for!(mail::AvailabilityRequest),
        Capability::MeetingIntervals => schemars::schema_for!(mail::MeetingIntervalsRequest),
    };
    serde_json::to_value(schema).expect("schemas serialize")
}

/// Runs the capability with JSON arguments and returns the JSON result.
pub async fn call(
    capability: Capability,
    assistant: &Arc<dyn Assistant>,
    arguments: Value,
) -> Result<Value, CallError> {
    let a = assistant.as_ref();
    match capability {
        Capability::Scan => to_json(a.scan(parse(arguments)?).await?),
        Capability::UnsubscribeCandidates => to_json(a.unsubscribe_candidates(parse(arguments)?).await?),
        Capability::Unsubscribe => to_json(a.unsubscribe(parse(arguments)?).await?),
        Capability::Digest => to_json(a.digest(parse(arguments)?).await?),
        Capability::Availability => to_json(a.availability(parse(arguments)?).await?),
        Capability::MeetingIntervals => to_json(a.meeting_intervals(parse(arguments)?).await?),
    }
}

/// As [`call`], the result serialized straight to JSON bytes (REST answers): no intermediate
/// `Value` tree to build and walk.
pub async fn call_to_bytes(
    capability: Capability,
    assistant: &Arc<dyn Assistant>,
    arguments: Value,
) -> Result<Vec<u8>, CallError> {
    let a = assistant.as_ref();
    match capability {
        Capability::Scan => to_bytes(a.scan(parse(arguments)?).await?),
        Capability::UnsubscribeCandidates => to_bytes(a.unsubscribe_candidates(parse(arguments)?).await?),
        Capability::Unsubscribe => to_bytes(a.unsubscribe(parse(arguments)?).await?),
        Capability::Digest => to_bytes(a.digest(parse(arguments)?).await?),
        Capability::Availability => to_bytes(a.availability(parse(arguments)?).await?),
        Capability::MeetingIntervals => to_bytes(a.meeting_intervals(parse(arguments)?).await?),
    }
}

/// What a mutation acts on, for the audit line: the candidate key, or the digest recipient role.
pub fn mutation_target(capability: Capability, arguments: &Value) -> Option<String> {
    match capability {
        Capability::Unsubscribe => Some(arguments.get("candidate").and_then(Value::as_str).unwrap_or("?").to_owned()),
        Capability::Digest => Some("digest_recipient".to_owned()),
        _ => None,
    }
}

/// Arguments are a JSON object, as every input schema says: serde would otherwise also read a
/// struct from an array of its fields in order (`[null, null]`). Numbers are read the JSON Schema
/// way, where `10.0` is an integer.
fn parse<T: DeserializeOwned>(arguments: Value) -> Result<T, CallError> {
    let Value::Object(mut arguments) = arguments else {
        return Err(CallError::InvalidArguments(format!("arguments must be a JSON object, not {}", kind(&arguments))));
    };
    arguments.values_mut().for_each(integral_floats_as_integers);
    serde_json::from_value(Value::Object(arguments)).map_err(|e| CallError::InvalidArguments(e.to_string()))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `1000.0` to `1000` wherever it occurs, so integer fields accept what JSON Schema calls an
/// integer; fields typed as floats read integers just as well.
fn integral_floats_as_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let integral = f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0; // 2^53: exact
            if integral {
                *value = if f < 0.0 { Value::from(f as i64) } else { Value::from(f as u64) };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(map) => map.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

fn to_bytes<T: Serialize>(value: T) -> Result<Vec<u8>, CallError> {
    Ok(serde_json::to_vec(&value).expect("domain responses serialize"))
}

fn to_json<T: Serialize>(value: T) -> Result<Value, CallError> {
    Ok(serde_json::to_value(value).expect("domain responses serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_must_be_an_object() {
        // Regression (schemathesis): `[null, null]` and `null` were accepted as a ScanRequest.
        for body in [json!([null, null]), json!(null), json!("x"), json!(3)] {
            let parsed = parse::<mail::ScanRequest>(body.clone());
            assert!(matches!(parsed, Err(CallError::InvalidArguments(_))), "{body} was accepted");
        }
        assert!(parse::<mail::ScanRequest>(json!({})).is_ok());
    }

    #[test]
    fn integral_floats_are_integers_and_fractions_are_not() {
        // Regression (schemathesis): `{"limit": 1000000000.0}` is an integer to JSON Schema.
        let request: mail::CandidatesRequest = parse(json!({"limit": 1000.0, "min_messages": 2})).unwrap();
        assert_eq!((request.limit, request.min_messages), (Some(1000), Some(2)));
        assert!(parse::<mail::CandidatesRequest>(json!({"limit": 2.5})).is_err());
        assert!(parse::<mail::CandidatesRequest>(json!({"limit": -1.0})).is_err());
        assert!(parse::<mail::CandidatesRequest>(json!({"limit": 1e300})).is_err());
    }
}
