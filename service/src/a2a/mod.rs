//! The A2A door: JSON-RPC at `/a2a` with `SendMessage`, `GetTask`, `ListTasks`, `CancelTask`
//! and `GetExtendedAgentCard` (v1.0), and `message/send`, `tasks/get`, `tasks/cancel` and
//! `agent/getAuthenticatedExtendedCard` when `A2A-Version` is absent or 0.3.
//!
//! Hand-rolled rather than `a2a-server-lf`: the surface is five methods over one synchronous
//! call, and the official server crate brings its own task store, executor model and reqwest with
//! the aws-lc-rs TLS provider, which this binary avoids (it uses ring).

pub mod card;
mod v03;

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::App;
use crate::audit;
use crate::auth::{Principal, Surface};
use crate::capability::{self, Capability};
use crate::error::{ApiError, ErrorCode};

const TASK_NOT_FOUND: i64 = -32001;
const TASK_NOT_CANCELABLE: i64 = -32002;
const VERSION_NOT_SUPPORTED: i64 = -32009;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route(mailagent_crds::contract::http::A2A, axum::routing::post(rpc))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V03,
}

/// Why a JSON-RPC call failed: an A2A protocol error (its own code), or one of the service's
/// errors (the shared shape, with its HTTP status).
enum Failure {
    Protocol(i64, &'static str),
    Service(ApiError),
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self::Service(error)
    }
}

fn rpc_error(id: Value, code: i64, message: &str) -> Response {
    Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})).into_response()
}

/// Whether the request says its body is JSON (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

async fn rpc(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let id = crate::jsonrpc::request_id(&body);
    if !is_json(&headers) {
        let error = ApiError::new(ErrorCode::UnsupportedMediaType).with_message("send JSON-RPC as application/json");
        return error.into_jsonrpc(id);
    }
    match dispatch(&app, &principal, &headers, &body).await {
        Ok(result) => Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response(),
        Err(Failure::Protocol(code, message)) => rpc_error(id, code, message),
        Err(Failure::Service(error)) => error.into_jsonrpc(id),
    }
}

async fn dispatch(app: &App, principal: &Principal, headers: &HeaderMap, body: &[u8]) -> Result<Value, Failure> {
    let request = serde_json::from_slice::<Value>(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson).with_message(format!("parse error: {e}")))?;
    let version = match headers.get("a2a-version").and_then(|v| v.to_str().ok()).map(str::trim) {
        None | Some("") | Some("0.3") | Some("0.3.0") => Version::V03,
        Some("1.0") | Some("1") => Version::V1,
        Some(_) => return Err(Failure::Protocol(VERSION_NOT_SUPPORTED, "supported A2A versions: 1.0, 0.3")),
    };
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return Err(ApiError::new(ErrorCode::InvalidRequest).with_message("invalid request: no method").into());
    };
    let params = request.get("params").cloned().unwrap_or(json!({}));
    let owner = principal.bucket();
    match (version, method) {
        (Version::V1, "SendMessage") | (Version::V03, "message/send") => {
            let task = send_message(app, principal, &params).await?;
            app.tasks.insert(&owner, task.clone());
            Ok(match version {
                Version::V1 => json!({"task": task}),
                Version::V03 => v03::task(&task),
            })
        }
        (Version::V1, "GetTask") | (Version::V03, "tasks/get") => {
            let task_id = params.get("id").and_then(Value::as_str).unwrap_or_default();
            match app.tasks.get(&owner, task_id) {
                Some(task) if version == Version::V03 => Ok(v03::task(&task)),
                Some(task) => Ok(task),
                None => Err(Failure::Protocol(TASK_NOT_FOUND, "task not found")),
            }
        }
        (Version::V1, "ListTasks") => {
            let tasks = app.tasks.list(&owner, params.get("contextId").and_then(Value::as_str));
            Ok(json!({"tasks": tasks, "nextPageToken": "", "pageSize": tasks.len(), "totalSize": tasks.len()}))
        }
        (Version::V1, "CancelTask") | (Version::V03, "tasks/cancel") => {
            let task_id = params.get("id").and_then(Value::as_str).unwrap_or_default();
            // Every task runs to completion inside SendMessage, so none is ever cancelable.
            match app.tasks.get(&owner, task_id) {
                Some(_) => Err(Failure::Protocol(TASK_NOT_CANCELABLE, "task already finished")),
                None => Err(Failure::Protocol(TASK_NOT_FOUND, "task not found")),
            }
        }
        (Version::V1, "GetExtendedAgentCard") => Ok(card::extended_card(app, &card::base_url(app, headers), principal)),
        (Version::V03, "agent/getAuthenticatedExtendedCard") => {
            Ok(v03::card(&card::extended_card(app, &card::base_url(app, headers), principal)))
        }
        _ => Err(Failure::Protocol(-32601, "method not found")),
    }
}

/// The skill and arguments a message asks for: a data part `{"skill", "arguments"}`, else
/// `metadata.skill` with a data part as arguments, else a text part that is exactly a skill id.
fn requested(params: &Value) -> Option<(Capability, Value)> {
    let message = params.get("message")?;
    let parts = message.get("parts").and_then(Value::as_array).cloned().unwrap_or_default();
    let data = parts.iter().find_map(|p| p.get("data")).cloned();
    let skill = data
        .as_ref()
        .and_then(|d| d.get("skill"))
        .or_else(|| message.pointer("/metadata/skill"))
        .or_else(|| params.pointer("/metadata/skill"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| parts.iter().find_map(|p| p.get("text").and_then(Value::as_str)).map(|t| t.trim().to_owned()))?;
    let capability = Capability::by_name(&skill)?;
    let arguments = match data {
        Some(d) if d.get("skill").is_some() => {
            d.get("arguments").filter(|a| !a.is_null()).cloned().unwrap_or(json!({}))
        }
        Some(d) => d,
        None => json!({}),
    };
    Some((capability, arguments))
}

async fn send_message(app: &App, principal: &Principal, params: &Value) -> Result<Value, ApiError> {
    let message = params.get("message").cloned().unwrap_or(Value::Null);
    let Some((capability, arguments)) = requested(params) else {
        return Err(ApiError::new(ErrorCode::InvalidArguments).with_message(
            "name a skill: a data part {\"skill\": <id>, \"arguments\": {...}} or a text part with the skill id",
        ));
    };
    app.authorize(Surface::A2a, principal, capability)?;
    let target = capability::mutation_target(capability, &arguments);
    let result = capability::call(capability, &app.assistant, arguments).await;
    if let Some(target) = target {
        audit::mutation(
            Surface::A2a,
            principal,
            capability.name(),
            &target,
            if result.is_ok() { "ok" } else { "error" },
        );
    }
    let task_id = uuid::Uuid::new_v4().to_string();
    let context_id = message
        .get("contextId")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let (status, artifacts) = match result {
        Ok(value) => (
            json!({"state": "TASK_STATE_COMPLETED", "timestamp": now}),
            json!([{"artifactId": uuid::Uuid::new_v4().to_string(), "name": capability.name(), "parts": [{"data": value, "mediaType": "application/json"}]}]),
        ),
        // The failure keeps its kind: a data part carries the same error body REST answers.
        Err(error) => (
            json!({"state": "TASK_STATE_FAILED", "timestamp": now, "message": {
                "messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_AGENT", "parts": [
                    {"text": error.to_string()},
                    {"data": ApiError::from(&error), "mediaType": "application/json"},
                ]
            }}),
            json!([]),
        ),
    };
    let mut history_message = message.clone();
    if let Some(obj) = history_message.as_object_mut() {
        obj.insert("taskId".into(), json!(task_id));
        obj.insert("contextId".into(), json!(context_id));
    }
    Ok(
        json!({"id": task_id, "contextId": context_id, "status": status, "artifacts": artifacts, "history": [history_message]}),
    )
}
