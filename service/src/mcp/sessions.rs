//! rmcp's in-memory sessions, with one change of route: a `tools/call` on a session of the
//! revisions before 2025-11-25 is answered on the task of its own HTTP request instead of
//! through the session's worker.
//!
//! Why: rmcp serves every message of a session through one worker task (an actor), and the
//! answer comes back through two more channels and a spawned handler task. That costs four task
//! hand-offs per call, and it made `tools/call` the slowest thing the door does (about 1.5 % of a
//! bare route in process, measured by `make bench`). Our tools need none of what the worker gives
//! a call: they send no progress, no server-to-client request and no log message, so the whole
//! answer is one event.
//!
//! What stays the same: rmcp still does every HTTP check before it reaches us (Host and Origin,
//! `Accept`, `Content-Type`, the protocol-version header, the session's existence), the answer is
//! still an SSE stream, and everything else (initialize, `tools/list`, notifications, GET streams,
//! resumption, DELETE) goes to rmcp's `LocalSessionManager` untouched.
//!
//! What is different, and why it is allowed:
//! - The answer is one event with no event ID; through the worker, rmcp first sends a priming
//!   event (an event ID and a `retry:` field) on every revision. Revision 2025-11-25 defines that
//!   priming (SEP-1699: the server SHOULD send it so the client can resume) and only the worker
//!   can hand out IDs and replay them, so calls of 2025-11-25 and later keep the worker route.
//!   Earlier revisions define no priming and make event IDs optional (MAY); an answer that is
//!   complete in one event leaves nothing to resume.
//! - The worker closes a session after `keep_alive` without a message. A session whose calls all
//!   took this route would look idle, so at least every quarter of `keep_alive` one call of the
//!   session goes through the worker, which resets its clock.
//! - Calls of one session run concurrently, as JSON-RPC allows; the worker also spawns one
//!   handler task per request, so that was already true, only slower.
//! - Long-lived streams (GET) and everything a client can resume are the worker's, unchanged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::Stream;
use futures::future::Either;
use rmcp::model::{
    CallToolRequest, ClientJsonRpcMessage, ClientRequest, JsonRpcRequest, ProtocolVersion, RequestId,
    ServerJsonRpcMessage, ServerResult,
};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, SessionConfig};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};

use super::McpDoor;

/// How the header names the revision; absent means 2025-03-26 (the spec's default).
const PROTOCOL_VERSION_HEADER: &str = "mcp-protocol-version";

/// The revisions that define no priming event (it came with 2025-11-25).
const DIRECT_REVISIONS: [ProtocolVersion; 2] = [ProtocolVersion::V_2025_03_26, ProtocolVersion::V_2025_06_18];

/// [`LocalSessionManager`] with `tools/call` answered directly (see the module docs).
pub struct Sessions {
    inner: LocalSessionManager,
    door: McpDoor,
    touches: Touches,
}

impl Sessions {
    pub fn new(door: McpDoor) -> Self {
        let inner = LocalSessionManager::default();
        let keep_alive = inner.session_config.keep_alive.unwrap_or(SessionConfig::DEFAULT_KEEP_ALIVE);
        Self { inner, door, touches: Touches::new(keep_alive / 4) }
    }

    /// The message as a call to answer directly, or back unchanged for the worker: only a
    /// `tools/call` of a revision without priming, on a session whose worker has seen a message
    /// recently, skips the worker.
    fn route(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Route {
        match message {
            ClientJsonRpcMessage::Request(JsonRpcRequest {
                id: request_id,
                request: ClientRequest::CallToolRequest(call),
                ..
            }) if without_priming(&call) && self.touches.recent(id) => Route::Direct(DirectCall { request_id, call }),
            other => Route::Worker(other),
        }
    }

    /// Runs the call on this task and frames the answer as the one event of the stream.
    async fn answer(&self, DirectCall { request_id, call }: DirectCall) -> ServerSseMessage {
        let parts = call.extensions.get::<axum::http::request::Parts>();
        let answer = match self.door.answer_call(parts, call.params).await {
            Ok(response) => ServerJsonRpcMessage::response(ServerResult::from(response), request_id),
            Err(error) => ServerJsonRpcMessage::error(error, Some(request_id)),
        };
        ServerSseMessage::from_message(answer)
    }
}

/// Where a message goes.
enum Route {
    /// Answered on the request's own task.
    Direct(DirectCall),
    /// Through rmcp's session worker, unchanged.
    Worker(ClientJsonRpcMessage),
}

/// A `tools/call` taken off the worker route.
struct DirectCall {
    request_id: RequestId,
    call: CallToolRequest,
}

/// Whether the call came over HTTP on a revision that defines no priming event.
fn without_priming(call: &CallToolRequest) -> bool {
    let Some(parts) = call.extensions.get::<axum::http::request::Parts>() else {
        return false; // not from HTTP: leave it to rmcp
    };
    match parts.headers.get(PROTOCOL_VERSION_HEADER).map(|value| value.to_str()) {
        None => true,
        Some(Ok(version)) => DIRECT_REVISIONS.iter().any(|known| known.as_str() == version),
        Some(Err(_)) => false,
    }
}

impl SessionManager for Sessions {
    type Error = <LocalSessionManager as SessionManager>::Error;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let (id, transport) = self.inner.create_session().await?;
        self.touches.touch(&id);
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.touches.forget(id);
        self.inner.close_session(id).await
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        match self.route(id, message) {
            Route::Direct(call) => Ok(Either::Left(futures::stream::iter([self.answer(call).await]))),
            Route::Worker(message) => Ok(Either::Right(self.inner.create_stream(id, message).await?)),
        }
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.touches.touch(id);
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touches.touch(id);
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.touches.touch(id);
        self.inner.resume(id, last_event_id).await
    }

    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }

    fn event_store(&self) -> Option<std::sync::Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}

/// When each session last had a message routed through its worker.
struct Touches {
    /// How often a session's calls must still reach its worker.
    every: Duration,
    at: Mutex<HashMap<SessionId, Instant>>,
}

impl Touches {
    fn new(every: Duration) -> Self {
        Self { every, at: Mutex::new(HashMap::new()) }
    }

    /// Whether the session's worker saw a message less than `every` ago. When not, this records
    /// the touch the worker route is about to give it, and forgets sessions untouched for four
    /// times as long (their workers have closed them by then), so closed sessions do not pile up.
    fn recent(&self, id: &SessionId) -> bool {
        let now = Instant::now();
        let mut at = self.at.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if at.get(id).is_some_and(|last| now.duration_since(*last) < self.every) {
            return true;
        }
        at.retain(|_, last| now.duration_since(*last) < self.every * 4);
        at.insert(id.clone(), now);
        false
    }

    fn touch(&self, id: &SessionId) {
        self.at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(id.clone(), Instant::now());
    }

    fn forget(&self, id: &SessionId) {
        self.at.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_reaches_its_worker_at_least_once_per_period() {
        let touches = Touches::new(Duration::from_millis(100));
        let id: SessionId = "s1".into();
        assert!(!touches.recent(&id), "a session never seen goes through its worker");
        assert!(touches.recent(&id), "then its calls skip the worker");
        std::thread::sleep(Duration::from_millis(120));
        assert!(!touches.recent(&id), "a period later one call goes through the worker again");
        assert!(touches.recent(&id));
    }

    #[test]
    fn messages_through_the_worker_count_and_closed_sessions_are_forgotten() {
        let touches = Touches::new(Duration::from_millis(50));
        let (open, closed): (SessionId, SessionId) = ("open".into(), "closed".into());
        touches.touch(&open);
        assert!(touches.recent(&open), "initialize or a notification touched it");
        touches.touch(&closed);
        touches.forget(&closed);
        assert!(!touches.recent(&closed), "a deleted session starts over");
        std::thread::sleep(Duration::from_millis(210));
        assert!(!touches.recent(&open));
        assert_eq!(touches.at.lock().unwrap().len(), 1, "sessions idle for four periods are dropped");
    }
}
