//! Keeps a refused request from breaking the client's next one. A door may answer (401, 429, 404,
//! 413) before it has read the request's body; hyper then closes the connection without saying
//! so, and a client that reuses it gets a broken pipe. This layer lends the handlers the body
//! through a shared slot, and after the response reads and discards whatever they left, up to
//! [`DRAIN_LIMIT`] bytes within [`DRAIN_TIMEOUT`]; a body beyond either gets `Connection: close`,
//! so the client knows to open a new connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};

/// The most a refused request may make the server read: the largest body a door accepts.
pub const DRAIN_LIMIT: usize = 4 * 1024 * 1024 + 64 * 1024;
/// The longest a refused request may make the server wait for the rest of its body.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

type Slot = Arc<Mutex<Option<Body>>>;

/// The request body as the handlers see it: reads go to the body in the shared slot, which
/// stays behind for [`drain_unread_body`] when they drop it.
struct Lent(Slot);

impl HttpBody for Lent {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        match self.0.lock().expect("body slot").as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.0.lock().expect("body slot").as_ref().is_none_or(HttpBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.0.lock().expect("body slot").as_ref().map(HttpBody::size_hint).unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

/// The outermost layer (see the module docs).
pub async fn drain_unread_body(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let slot: Slot = Arc::new(Mutex::new(Some(body)));
    let mut response = next.run(Request::from_parts(parts, Body::new(Lent(slot.clone())))).await;
    let left = slot.lock().expect("body slot").take();
    if let Some(left) = left
        && !left.is_end_stream()
    {
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, discard(left, DRAIN_LIMIT)).await;
        if !matches!(drained, Ok(true)) {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    response
}

/// Reads `body` to its end; false when it is longer than `limit` or fails.
async fn discard(mut body: Body, limit: usize) -> bool {
    let mut read = 0usize;
    loop {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            None => return true,
            Some(Ok(frame)) => {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > limit {
                    return false;
                }
            }
            Some(Err(_)) => return false,
        }
    }
}
