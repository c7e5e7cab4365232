//! RFC 9728 protected-resource metadata for the MCP door in `oauth` mode, derived from the same
//! settings the verifier uses so the document and the checks cannot disagree.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mailagent_crds::Scope;
use serde_json::json;

use crate::app::App;

pub const ROOT: &str = "/.well-known/oauth-protected-resource";
pub const MCP: &str = "/.well-known/oauth-protected-resource/mcp";

/// The absolute URL of the path-inserted metadata document for the resource.
pub fn metadata_url(app: &App) -> String {
    let Some(oauth) = app.auth.oauth() else { return MCP.to_owned() };
    let (scheme, rest) = oauth.resource.split_once("://").unwrap_or(("https", &oauth.resource));
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, String::new()));
    format!("{scheme}://{authority}{ROOT}{path}")
}

pub async fn document(State(app): State<Arc<App>>) -> Response {
    let Some(oauth) = app.auth.oauth() else { return StatusCode::NOT_FOUND.into_response() };
    let scopes: Vec<&str> =
        Scope::ALL.into_iter().filter(|s| app.mutations_enabled() || !s.is_mutation()).map(Scope::as_str).collect();
    Json(json!({
        "resource": oauth.resource,
        "authorization_servers": [oauth.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "mailagent",
    }))
    .into_response()
}
