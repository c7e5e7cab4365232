//! The A2A v1.0 agent card, derived from the same settings as authentication: its security
//! schemes are the door's mode (hybrid is two alternatives) and its skills are the capabilities.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailagent_crds::contract::AuthMode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::App;
use crate::auth::{EffectiveMode, Principal};
use crate::capability::Capability;
use crate::security;

pub const PATH: &str = mailagent_crds::contract::http::AGENT_CARD;

/// The public card for a server reachable at `base_url`: every skill the mutation switch allows,
/// whoever asks.
pub fn card(app: &App, base_url: &str) -> Value {
    card_with_skills(app, base_url, |c| app.policy.offered(c))
}

/// The authenticated extended card (`GetExtendedAgentCard`): the same card, listing only the
/// skills `principal` may use right now (its scopes and the mutation switch), as MCP filters
/// `tools/list`.
pub fn extended_card(app: &App, base_url: &str, principal: &Principal) -> Value {
    let permitted = app.policy.permitted(principal);
    card_with_skills(app, base_url, |c| permitted.contains(&c))
}

fn card_with_skills(app: &App, base_url: &str, include: impl Fn(Capability) -> bool) -> Value {
    let (schemes, requirements) = security(app.settings.auth_mode);
    let skills: Vec<Value> = Capability::ALL
        .into_iter()
        .filter(|c| include(*c))
        .map(|c| {
            json!({
                "id": c.name(),
                "name": c.title(),
                "description": c.description(),
                "tags": [c.scope().as_str(), if c.is_mutation() { "mutation" } else { "read-only" }],
                "examples": [format!("{{\"skill\": \"{}\", \"arguments\": {{}}}}", c.name())],
                "inputModes": ["application/json", "text/plain"],
                "outputModes": ["application/json"],
                "securityRequirements": requirements.iter().map(|r| with_scope(r, c.scope().as_str())).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "name": "mailagent",
        "description": "Mail assistant for one mailbox: inbox triage, unsubscribe discovery and execution, digest, calendar availability. Send a message with a data part {\"skill\": <id>, \"arguments\": {...}}.",
        "version": env!("CARGO_PKG_VERSION"),
        "supportedInterfaces": [{
            "url": format!("{base_url}{}", mailagent_crds::contract::http::A2A),
            "protocolBinding": "JSONRPC",
            "protocolVersion": "1.0",
        }],
        "capabilities": {"streaming": false, "pushNotifications": false, "extendedAgentCard": true},
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json"],
        "skills": skills,
        "securitySchemes": schemes,
        "securityRequirements": requirements,
    })
}

/// The card's security schemes and requirements, from the one list the door checks: each scheme
/// is an alternative requirement.
fn security(mode: AuthMode) -> (Value, Vec<Value>) {
    let schemes = security::schemes(EffectiveMode::Local(mode));
    let declared: serde_json::Map<String, Value> =
        schemes.iter().map(|s| (s.name().to_owned(), s.agent_card())).collect();
    let requirements = schemes
        .iter()
        .map(|s| {
            let name = s.name();
            json!({"schemes": {name: {"list": []}}})
        })
        .collect();
    (Value::Object(declared), requirements)
}

fn with_scope(requirement: &Value, scope: &str) -> Value {
    let mut requirement = requirement.clone();
    if let Some(schemes) = requirement["schemes"].as_object_mut() {
        for value in schemes.values_mut() {
            *value = json!({"list": [scope]});
        }
    }
    requirement
}

/// The base of the card's interface URLs: the configured public URL, else the request's `Host`.
pub fn base_url(app: &App, headers: &HeaderMap) -> String {
    match &app.settings.public_url {
        Some(url) => url.clone(),
        None => {
            let scheme = if app.settings.tls.is_some() { "https" } else { "http" };
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            format!("{scheme}://{host}")
        }
    }
}

/// `GET /.well-known/agent-card.json` with `ETag`, `Cache-Control` and `If-None-Match`.
pub async fn serve(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let body = serde_json::to_vec(&card(&app, &base_url(&app, &headers))).expect("card serializes");
    let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
    let cached = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if cached {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex etag"));
    response
}
