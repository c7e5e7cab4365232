//! The one error type every door answers with. REST gets the JSON body `{"error", "message"?,
//! "scope"?}` (documented in OpenAPI from this type); the JSON-RPC doors (A2A, MCP) get the
//! JSON-RPC error object with the request's id and the same fields under `data`.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mailagent_crds::Scope;
use mailagent_mail::api::DomainError;
use serde::Serialize;
use serde_json::{Value, json};

use crate::capability::CallError;

/// A stable, machine-readable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No valid credentials (the reason is in `X-Auth-Failure`).
    Unauthorized,
    /// The caller lacks the scope named in `scope`.
    InsufficientScope,
    /// Refused before authorisation (a `Host` or `Origin` the door does not accept).
    Forbidden,
    /// A mutation while mutation tools are switched off.
    MutationsDisabled,
    /// Too many requests; see `Retry-After`.
    RateLimited,
    /// The arguments do not match the input schema.
    InvalidArguments,
    /// The arguments are well-formed but unusable (an empty window, an unknown time zone).
    InvalidInput,
    /// The body is not JSON.
    InvalidJson,
    /// A JSON-RPC message without `method`, or not an object.
    InvalidRequest,
    /// The body was not sent as `application/json`.
    UnsupportedMediaType,
    /// The body is over the size limit.
    PayloadTooLarge,
    /// No such route, or what the arguments name does not exist.
    NotFound,
    /// The route exists, not for this HTTP method.
    MethodNotAllowed,
    /// The client does not accept any media type the route answers with.
    NotAcceptable,
    /// Refused by the domain on purpose (an unsafe unsubscribe target, a link already used).
    Refused,
    /// The mail or calendar provider is unavailable for now: retry later.
    ProviderUnavailable,
    /// The mailbox owner's consent is gone: retrying will not help until they consent again.
    ReconsentRequired,
    /// The provider refused the request for good: retrying will not help until the
    /// configuration changes.
    ProviderRejected,
    /// The service is shutting down.
    Draining,
    /// Anything else the service could not do.
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::InsufficientScope => "insufficient_scope",
            Self::Forbidden => "forbidden",
            Self::MutationsDisabled => "mutations_disabled",
            Self::RateLimited => "rate_limited",
            Self::InvalidArguments => "invalid_arguments",
            Self::InvalidInput => "invalid_input",
            Self::InvalidJson => "invalid_json",
            Self::InvalidRequest => "invalid_request",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::NotAcceptable => "not_acceptable",
            Self::Refused => "refused",
            Self::ProviderUnavailable => "provider_unavailable",
            Self::ReconsentRequired => "reconsent_required",
            Self::ProviderRejected => "provider_rejected",
            Self::Draining => "draining",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status. Only `provider_unavailable` (and `rate_limited`, `draining`) say "retry
    /// later"; a provider that needs a person to act answers 502, which no retry will fix.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope | Self::MutationsDisabled | Self::Forbidden => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::InvalidArguments | Self::InvalidInput | Self::InvalidJson | Self::InvalidRequest => {
                StatusCode::BAD_REQUEST
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Refused => StatusCode::CONFLICT,
            Self::ProviderUnavailable | Self::Draining => StatusCode::SERVICE_UNAVAILABLE,
            Self::ReconsentRequired | Self::ProviderRejected => StatusCode::BAD_GATEWAY,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON-RPC error code on the A2A and MCP doors: the standard codes where one fits, else
    /// one in the implementation-defined range that A2A's own codes (-32001..-32009) leave free.
    pub const fn rpc_code(self) -> i64 {
        match self {
            Self::InvalidJson => -32700,
            Self::InvalidRequest | Self::MethodNotAllowed | Self::NotAcceptable => -32600,
            Self::InvalidArguments | Self::InvalidInput => -32602,
            Self::NotFound => -32601,
            Self::Internal => -32603,
            Self::Unauthorized => -32010,
            Self::InsufficientScope => -32011,
            Self::MutationsDisabled => -32012,
            Self::RateLimited => -32013,
            Self::PayloadTooLarge => -32014,
            Self::UnsupportedMediaType => -32015,
            Self::Refused => -32016,
            Self::ProviderUnavailable => -32017,
            Self::ReconsentRequired => -32018,
            Self::ProviderRejected => -32019,
            Self::Draining => -32020,
            Self::Forbidden => -32021,
        }
    }

    /// The HTTP status on a JSON-RPC door: a malformed call is a JSON-RPC matter answered with
    /// 200 and the error object; refusals of the HTTP request itself keep their status.
    pub const fn jsonrpc_status(self) -> StatusCode {
        match self {
            Self::InvalidJson | Self::InvalidRequest | Self::InvalidArguments | Self::InvalidInput => StatusCode::OK,
            other => other.status(),
        }
    }

    /// The code a bare status stands for (responses a library answered without a body).
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::UNAUTHORIZED => Self::Unauthorized,
            StatusCode::FORBIDDEN => Self::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::NOT_ACCEPTABLE => Self::NotAcceptable,
            StatusCode::SERVICE_UNAVAILABLE => Self::Draining,
            s if s.is_client_error() => Self::InvalidRequest,
            _ => Self::Internal,
        }
    }
}

/// The body of every error response: a stable machine-readable `error` code, and for some a
/// human-readable `message` or the missing `scope`.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ApiError {
    /// What went wrong, as a stable code.
    pub error: ErrorCode,
    /// What went wrong, in words (never secrets or mail content).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The scope the caller lacks (`insufficient_scope` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Headers that go with the status (`WWW-Authenticate`, `Retry-After`, `X-Auth-Failure`).
    #[serde(skip)]
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Overrides [`ErrorCode::status`] (a library's own status kept as it was).
    #[serde(skip)]
    status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(error: ErrorCode) -> Self {
        Self { error, message: None, scope: None, headers: Vec::new(), status: None }
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    pub fn with_scope(mut self, scope: Scope) -> Self {
        self.scope = Some(scope.as_str().to_owned());
        self
    }

    /// Adds a header; a value that is not a valid header is left out.
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.retain(|(n, _)| *n != name);
            self.headers.push((name, value));
        }
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn rate_limited(wait: Duration) -> Self {
        let seconds = crate::ratelimit::retry_after_seconds(wait).to_string();
        Self::new(ErrorCode::RateLimited).with_header(header::RETRY_AFTER, &seconds)
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(self.error.status())
    }

    /// The JSON-RPC form: the same status and headers, the body an error object for `id`.
    pub fn into_jsonrpc(self, id: Value) -> Response {
        let status = self.status.unwrap_or(self.error.jsonrpc_status());
        let message = self.message.clone().unwrap_or_else(|| self.error.as_str().replace('_', " "));
        let mut data = json!({"error": self.error});
        if let Some(scope) = &self.scope {
            data["scope"] = json!(scope);
        }
        let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": self.error.rpc_code(), "message": message, "data": data}});
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let headers = self.headers.clone();
        let mut response = (status, Json(self)).into_response();
        response.headers_mut().extend(headers);
        response
    }
}

/// Gives an error response that a library produced without a JSON body (axum's 404, 405 and
/// body rejections, rmcp's refusals) the shared shape: the REST body, or with `jsonrpc_id` the
/// JSON-RPC error object. Its status and headers (`Allow`, `WWW-Authenticate`) are kept, and
/// its short plain-text explanation becomes the `message`.
pub async fn normalize(response: Response, jsonrpc_id: Option<Value>) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_EXPLANATION_BYTES)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let mut error = ApiError::new(ErrorCode::for_status(status)).with_status(status);
    if let Some(text) = text {
        error = error.with_message(text);
    }
    let rendered = match jsonrpc_id {
        Some(id) => error.into_jsonrpc(id),
        None => error.into_response(),
    };
    let (rendered_parts, body) = rendered.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(rendered_parts.headers);
    Response::from_parts(parts, body)
}

/// Longest library explanation carried over into `message`.
const MAX_EXPLANATION_BYTES: usize = 1024;

impl From<&DomainError> for ApiError {
    fn from(error: &DomainError) -> Self {
        let code = match error {
            DomainError::InvalidInput(_) => ErrorCode::InvalidInput,
            DomainError::NotFound(_) => ErrorCode::NotFound,
            DomainError::Refused(_) => ErrorCode::Refused,
            DomainError::Provider(_) => ErrorCode::ProviderUnavailable,
            DomainError::ReconsentRequired(_) => ErrorCode::ReconsentRequired,
            DomainError::ProviderRejected(_) => ErrorCode::ProviderRejected,
        };
        Self::new(code).with_message(error.to_string())
    }
}

impl From<&CallError> for ApiError {
    fn from(error: &CallError) -> Self {
        match error {
            CallError::InvalidArguments(_) => Self::new(ErrorCode::InvalidArguments).with_message(error.to_string()),
            CallError::Domain(domain) => domain.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconsent_is_not_retry_later() {
        let retry = ApiError::from(&DomainError::Provider("HTTP 503".into()));
        let consent = ApiError::from(&DomainError::ReconsentRequired("refresh token revoked".into()));
        assert_eq!((retry.error, retry.status()), (ErrorCode::ProviderUnavailable, StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!((consent.error, consent.status()), (ErrorCode::ReconsentRequired, StatusCode::BAD_GATEWAY));
        assert_ne!(consent.error.rpc_code(), retry.error.rpc_code());
    }

    #[test]
    fn the_body_leaves_out_what_is_absent() {
        let body =
            serde_json::to_value(ApiError::new(ErrorCode::InsufficientScope).with_scope(Scope::MailScan)).unwrap();
        assert_eq!(body, json!({"error": "insufficient_scope", "scope": "mail:scan"}));
    }
}
