//! `/v1` routes: one POST per capability, thin over [`crate::capability::call_to_bytes`].

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::Value;

use crate::app::App;
use crate::audit;
use crate::auth::{Principal, Surface};
use crate::capability::{self, Capability};
use crate::error::{ApiError, ErrorCode};

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
    if let Err(error) = app.authorize(Surface::Rest, &principal, capability) {
        return error.into_response();
    }
    let arguments = match body {
        Ok(Json(arguments)) => arguments,
        Err(rejection) => return body_rejected(&rejection).into_response(),
    };
    let target = capability::mutation_target(capability, &arguments);
    let result = capability::call_to_bytes(capability, &app.assistant, arguments).await;
    if let Some(target) = target {
        audit::mutation(
            Surface::Rest,
            &principal,
            capability.name(),
            &target,
            if result.is_ok() { "ok" } else { "error" },
        );
    }
    match result {
        Ok(bytes) => ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response(),
        Err(error) => ApiError::from(&error).into_response(),
    }
}

/// A body that is not JSON (415 without `Content-Type: application/json`, 400 for a syntax error,
/// 413 over the size limit) gets the same JSON error shape as every other failure.
fn body_rejected(rejection: &JsonRejection) -> ApiError {
    let code = match rejection.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        _ => ErrorCode::InvalidJson,
    };
    ApiError::new(code).with_message(rejection.body_text())
}
