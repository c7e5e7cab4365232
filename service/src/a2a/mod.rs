//! The A2A door: JSON-RPC at `/a2a` with `SendMessage`, `GetTask`, `ListTasks`, `CancelTask`
//! and `GetExtendedAgentCard` (v1.0), and `message/send`, `tasks/get`, `tasks/cancel` and
//! `agent/getAuthenticatedExtendedCard` when `A2A-Version` is absent or 0.3.
//!
//! Hand-rolled rather than `a2a-server-lf`: the surface is five methods over one synchronous
//! call, and the official server crate brings its own task store, executor model and reqwest with
//! the aws-lc-rs TLS provider, which this binary avoids (it uses ring).

pub mod card;
mod tasks;
mod v03;

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::App;
use crate::audit;
use crate::auth::{Door, Principal};
use crate::capability::Capability;
pub use tasks::TaskStore;

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

fn rpc_error(id: &Value, code: i64, message: &str) -> Response {
    Json(json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})).into_response()
}

async fn rpc(
    State(app): State<Arc<App>>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return rpc_error(&Value::Null, -32700, "parse error");
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let version = match headers.get("a2a-version").and_then(|v| v.to_str().ok()).map(str::trim) {
        None | Some("") | Some("0.3") | Some("0.3.0") => Version::V03,
        Some("1.0") | Some("1") => Version::V1,
        Some(_) => return rpc_error(&id, VERSION_NOT_SUPPORTED, "supported A2A versions: 1.0, 0.3"),
    };
    let (Some(method), params) =
        (request.get("method").and_then(Value::as_str), request.get("params").cloned().unwrap_or(json!({})))
    else {
        return rpc_error(&id, -32600, "invalid request");
    };
    let owner = principal.bucket();
    let result = match (version, method) {
        (Version::V1, "SendMessage") | (Version::V03, "message/send") => {
            match send_message(&app, &principal, &params).await {
                Ok(task) => {
                    app.tasks.insert(&owner, task.clone());
                    Ok(match version {
                        Version::V1 => json!({"task": task}),
                        Version::V03 => v03::task(&task),
                    })
                }
                Err(response) => return response,
            }
        }
        (Version::V1, "GetTask") | (Version::V03, "tasks/get") => {
            let task_id = params.get("id").and_then(Value::as_str).unwrap_or_default();
            match app.tasks.get(&owner, task_id) {
                Some(task) if version == Version::V03 => Ok(v03::task(&task)),
                Some(task) => Ok(task),
                None => Err((TASK_NOT_FOUND, "task not found")),
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
                Some(_) => Err((TASK_NOT_CANCELABLE, "task already finished")),
                None => Err((TASK_NOT_FOUND, "task not found")),
            }
        }
        (Version::V1, "GetExtendedAgentCard") => {
            Ok(card::extended_card(&app, &card::base_url(&app, &headers), &principal))
        }
        (Version::V03, "agent/getAuthenticatedExtendedCard") => {
            Ok(v03::card(&card::extended_card(&app, &card::base_url(&app, &headers), &principal)))
        }
        _ => Err((-32601, "method not found")),
    };
    match result {
        Ok(result) => Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response(),
        Err((code, message)) => rpc_error(&id, code, message),
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

async fn send_message(app: &App, principal: &Principal, params: &Value) -> Result<Value, Response> {
    let message = params.get("message").cloned().unwrap_or(Value::Null);
    let Some((capability, arguments)) = requested(params) else {
        let id = Value::Null;
        return Err(rpc_error(
            &id,
            -32602,
            "name a skill: a data part {\"skill\": <id>, \"arguments\": {...}} or a text part with the skill id",
        ));
    };
    crate::http::rest::permit(app, Door::A2a, principal, capability).map_err(|response| *response)?;
    let target = crate::http::rest::mutation_target(capability, &arguments);
    let result = capability.call(&app.assistant, arguments).await;
    if let Some(target) = target {
        audit::mutation(Door::A2a, principal, capability.name(), &target, if result.is_ok() { "ok" } else { "error" });
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
        Err(error) => (
            json!({"state": "TASK_STATE_FAILED", "timestamp": now, "message": {
                "messageId": uuid::Uuid::new_v4().to_string(), "role": "ROLE_AGENT", "parts": [{"text": error.to_string()}]
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
