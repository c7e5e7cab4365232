//! `/v1` routes: one POST per capability, thin over [`Capability::call`].

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use mailagent_mail::api::DomainError;
use serde_json::{Value, json};

use crate::app::App;
use crate::audit;
use crate::auth::{Door, Principal};
use crate::capability::{CallError, Capability};

/// The routes (authentication is layered on by the caller).
pub fn routes() -> Router<Arc<App>> {
    Capability::ALL.into_iter().fold(Router::new(), |router, capability| {
        router.route(
            capability.path(),
            axum::routing::post(
                move |state: State<Arc<App>>,
                      principal: Extension<Principal>,
                      body: Result<Json<Value>, JsonRejection>| {
                    call(capability, state, principal, body)
                },
            ),
        )
    })
}

async fn call(
    capability: Capability,
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    body: Result<Json<Value>, JsonRejection>,
) -> Response {
    if let Err(response) = permit(&app, Door::Rest, &principal, capability) {
        return *response;
    }
    let arguments = match body {
        Ok(Json(arguments)) => arguments,
        Err(rejection) => return body_rejected(&rejection),
    };
    let target = mutation_target(capability, &arguments);
    let result = capability.call_to_bytes(&app.assistant, arguments).await;
    if let Some(target) = target {
        audit::mutation(
            Door::Rest,
            &principal,
            capability.name(),
            &target,
            if result.is_ok() { "ok" } else { "error" },
        );
    }
    match result {
        Ok(bytes) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response(),
        Err(error) => error_response(&error),
    }
}

/// Scope and mutation-switch checks shared by REST and A2A.
pub fn permit(app: &App, door: Door, principal: &Principal, capability: Capability) -> Result<(), Box<Response>> {
    if !principal.may(capability.scope()) {
        audit::forbidden(door, principal, capability.name(), "insufficient_scope");
        return Err(Box::new(crate::http::guard::insufficient_scope(app, door, capability.scope())));
    }
    if capability.is_mutation() && !app.mutations_enabled() {
        audit::forbidden(door, principal, capability.name(), "mutations_disabled");
        return Err(Box::new((StatusCode::FORBIDDEN, Json(json!({"error": "mutations_disabled"}))).into_response()));
    }
    Ok(())
}

/// What a mutation acts on, for the audit line: the candidate key, or the digest recipient role.
pub fn mutation_target(capability: Capability, arguments: &Value) -> Option<String> {
    match capability {
        Capability::Unsubscribe => Some(arguments.get("candidate").and_then(Value::as_str).unwrap_or("?").to_owned()),
        Capability::Digest => Some("digest_recipient".to_owned()),
        _ => None,
    }
}

/// A body that is not JSON (415 without `Content-Type: application/json`, 400 for a syntax error,
/// 413 over the size limit) gets the same JSON error shape as every other failure.
fn body_rejected(rejection: &JsonRejection) -> Response {
    let status = rejection.status();
    let code = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        _ => "invalid_json",
    };
    (status, Json(json!({"error": code, "message": rejection.body_text()}))).into_response()
}

/// Status and body for a failed call.
pub fn error_response(error: &CallError) -> Response {
    let (status, code) = match error {
        CallError::InvalidArguments(_) => (StatusCode::BAD_REQUEST, "invalid_arguments"),
        CallError::Domain(DomainError::InvalidInput(_)) => (StatusCode::BAD_REQUEST, "invalid_input"),
        CallError::Domain(DomainError::NotFound(_)) => (StatusCode::NOT_FOUND, "not_found"),
        CallError::Domain(DomainError::Refused(_)) => (StatusCode::CONFLICT, "refused"),
        CallError::Domain(DomainError::Provider(_)) => (StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable"),
    };
    (status, Json(json!({"error": code, "message": error.to_string()}))).into_response()
}
