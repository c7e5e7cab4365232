//! RFC 9728 protected-resource metadata for the MCP door in `oauth` mode, derived from the same
//! settings the verifier uses and the same decision the doors make, so the document and the
//! checks cannot disagree.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use mailagent_crds::Scope;
use serde_json::json;

use crate::app::{App, PROTECTED_RESOURCE_METADATA};
use crate::error::{ApiError, ErrorCode};

pub const ROOT: &str = PROTECTED_RESOURCE_METADATA;
pub const MCP: &str = "/.well-known/oauth-protected-resource/mcp";

pub async fn document(State(app): State<Arc<App>>) -> Response {
    let Some(oauth) = app.auth.oauth() else { return ApiError::new(ErrorCode::NotFound).into_response() };
    let advertised = |scope: &Scope| oauth.scopes_supported.as_ref().is_none_or(|listed| listed.contains(scope));
    let scopes: Vec<&str> = app.policy.offered_scopes().into_iter().filter(advertised).map(Scope::as_str).collect();
    let mut document = json!({
        "resource": oauth.resource,
        "authorization_servers": [oauth.issuer],
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "mailagent",
    });
    if let Some(url) = &oauth.resource_documentation {
        document["resource_documentation"] = json!(url);
    }
    Json(document).into_response()
}
