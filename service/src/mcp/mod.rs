//! The MCP door: rmcp Streamable HTTP at `/mcp`, one tool per capability. The tool list is
//! filtered per request by the authorisation decision ([`crate::authz`]); a hidden tool is also
//! uncallable (answered as an unknown tool). Every error the door answers, rmcp's own included,
//! is a JSON-RPC error object with the request's id.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, InitializeResult,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use crate::app::App;
use crate::audit;
use crate::auth::{Principal, Surface};
use crate::capability::{self, Capability};
use crate::error::{ApiError, ErrorCode};

mod sessions;

pub use sessions::Sessions;

/// Requests larger than this are refused before JSON parsing (rmcp's own cap is the same).
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// `Host` values accepted besides the configured ones (rmcp's own defaults, which a configured
/// list replaces). Only the pod itself and `kubectl port-forward` (the runbook's canary check)
/// reach it under a loopback name; a DNS-rebinding page sends its own domain, never these.
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// The tower service mounted at `/mcp`.
pub fn service(app: Arc<App>) -> StreamableHttpService<McpDoor, Sessions> {
    let mut config = StreamableHttpServerConfig::default();
    if !app.settings.mcp_allowed_hosts.is_empty() {
        let hosts = app.settings.mcp_allowed_hosts.iter().map(String::as_str).chain(LOOPBACK_HOSTS);
        config = config.with_allowed_hosts(hosts.map(str::to_owned));
    } else if !app.settings.listen.ip().is_loopback() {
        // Listening on all interfaces with no configured host list: the pod's Service name and
        // address are not known here, so Host checking falls to the NetworkPolicy and Origin.
        config = config.disable_allowed_hosts();
    }
    if !app.settings.mcp_allowed_origins.is_empty() {
        config = config.with_allowed_origins(app.settings.mcp_allowed_origins.clone());
    }
    config.max_request_body_bytes = MAX_BODY_BYTES;
    // A 2026-07-28 (sessionless) call whose first message is its answer gets that answer as
    // `application/json`, which the transport allows and every client must accept, instead of an
    // SSE stream with a keep-alive timer for one event. A handler that sent a notification first
    // would still get SSE (rmcp falls back), and sessions of earlier revisions are unaffected.
    config.json_response = true;
    let factory_app = app.clone();
    StreamableHttpService::new(
        move || Ok(McpDoor { app: factory_app.clone() }),
        Arc::new(Sessions::new(McpDoor { app })),
        config,
    )
}

/// One handler per session; the caller is read from each request's HTTP parts.
#[derive(Clone)]
pub struct McpDoor {
    app: Arc<App>,
}

/// The MCP tool for a capability, with annotations a client can show. Built once per process:
/// rmcp asks for a tool's schema on every 2026-07-28 `tools/call` (to check `Mcp-Param-*`
/// headers), and generating a JSON Schema costs more than the rest of the call.
pub fn tool(capability: Capability) -> Tool {
    static TOOLS: std::sync::OnceLock<Vec<Tool>> = std::sync::OnceLock::new();
    let tools = TOOLS.get_or_init(|| Capability::ALL.into_iter().map(build_tool).collect());
    let index = Capability::ALL.iter().position(|c| *c == capability).expect("every capability is in ALL");
    tools[index].clone()
}

fn build_tool(capability: Capability) -> Tool {
    let schema = match capability::input_schema(capability) {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(Default::default()),
    };
    let annotations = ToolAnnotations::with_title(capability.title())
        .read_only(!capability.is_mutation())
        .destructive(capability.is_mutation())
        .idempotent(!capability.is_mutation())
        .open_world(capability.is_mutation());
    Tool::new(capability.name(), capability.description(), schema).with_annotations(annotations)
}

fn principal_of(context: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
    principal_in(context.extensions.get::<axum::http::request::Parts>())
}

fn principal_in(parts: Option<&axum::http::request::Parts>) -> Result<Principal, McpError> {
    parts
        .and_then(|parts| parts.extensions.get::<Principal>())
        .cloned()
        // The auth layer always inserts one; its absence means a wiring bug, so refuse.
        .ok_or_else(|| McpError::internal_error("request reached MCP without an authenticated principal", None))
}

impl ServerHandler for McpDoor {
    fn get_info(&self) -> InitializeResult {
        InitializeResult::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mailagent", env!("CARGO_PKG_VERSION")))
            .with_instructions("Mail assistant: scan and triage the inbox, find and execute unsubscribes, send the digest, and answer calendar availability. Tools you cannot use are not listed.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = principal_of(&context)?;
        Ok(ListToolsResult::with_all_items(self.app.policy.permitted(&principal).into_iter().map(tool).collect()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        Capability::by_name(name).map(tool)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        self.answer_call(context.extensions.get::<axum::http::request::Parts>(), request).await
    }
}

impl McpDoor {
    /// A `tools/call`, whichever route brought it (rmcp's handler, or [`Sessions`] directly):
    /// the caller comes from the request's HTTP parts.
    async fn answer_call(
        &self,
        parts: Option<&axum::http::request::Parts>,
        request: CallToolRequestParams,
    ) -> Result<CallToolResponse, McpError> {
        let principal = principal_in(parts)?;
        let capability = Capability::by_name(&request.name);
        let Some(capability) = capability.filter(|c| self.app.authorize(Surface::Mcp, &principal, *c).is_ok()) else {
            if capability.is_none() {
                audit::forbidden(Surface::Mcp, &principal, &request.name, "not_visible");
            }
            return Err(McpError::invalid_params(format!("unknown tool {:?}", request.name), None));
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let target = capability::mutation_target(capability, &arguments);
        let result = capability::call(capability, &self.app.assistant, arguments).await;
        if let Some(target) = target {
            audit::mutation(
                Surface::Mcp,
                &principal,
                capability.name(),
                &target,
                if result.is_ok() { "ok" } else { "error" },
            );
        }
        Ok(match result {
            Ok(value) => CallToolResult::structured(value),
            // Failures go back as tool results so the model can read and correct them; the
            // structured content is the error body REST answers, so the kind survives.
            Err(error) => {
                let mut result = CallToolResult::error(vec![ContentBlock::text(error.to_string())]);
                result.structured_content = serde_json::to_value(ApiError::from(&error)).ok();
                result
            }
        }
        .into())
    }
}

/// In front of rmcp: reads the body (bounded), refuses a `tools/call` whose scope the caller
/// lacks with 403 `insufficient_scope` (the step-up challenge on an OAuth door), as the MCP
/// authorization spec asks, and turns rmcp's plain-text refusals into JSON-RPC error objects
/// that echo the request's id.
pub async fn gate(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if request.method() != axum::http::Method::POST {
        return crate::error::normalize(next.run(request).await, Some(Value::Null)).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
        let error = ApiError::new(ErrorCode::PayloadTooLarge)
            .with_message(format!("the body is over {MAX_BODY_BYTES} bytes or was cut off"));
        return error.into_jsonrpc(Value::Null);
    };
    let envelope = crate::jsonrpc::Envelope::read(&bytes);
    if let Some(principal) = parts.extensions.get::<Principal>()
        && let Some(capability) = called_tool(&envelope)
        && app.policy.decide(principal, capability).is_err_and(|denial| denial.missing_scope().is_some())
        && let Err(error) = app.authorize(Surface::Mcp, principal, capability)
    {
        return error.into_jsonrpc(envelope.id);
    }
    let id = envelope.id;
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    crate::error::normalize(response, Some(id)).await
}

/// The capability a `tools/call` names, if the request is one.
fn called_tool(envelope: &crate::jsonrpc::Envelope<'_>) -> Option<Capability> {
    #[derive(serde::Deserialize)]
    struct Params<'a> {
        #[serde(borrow)]
        name: std::borrow::Cow<'a, str>,
    }
    (envelope.method()? == "tools/call").then_some(())?;
    Capability::by_name(&envelope.params::<Params<'_>>()?.name)
}
