//! The router: every module's routes merged, and the layers every request passes through, from
//! the outside in: the frame (request id, a tracing span per request and its log line, metrics,
//! security headers, the error envelope of what answers without it), CORS, the gate (rate
//! limits, then the bounds on requests in progress), the timeout, the body size limit.

use std::time::Duration;

use axum::http::StatusCode;
use axum::Router;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

pub use crate::limits::{MAX_BODY_BYTES, REQUEST_TIMEOUT};
use crate::state::AppState;

/// The listener the server accepts on: every accepted connection with `TCP_NODELAY`, so that a
/// small write (an event of a stream, the last piece of a large answer) leaves at once rather
/// than waiting for the client's delayed acknowledgement of the one before (Nagle's algorithm;
/// a client that only listens, as an event stream's does, acknowledges up to 40 ms late).
pub fn listener(
    tcp: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt as _;
    fn no_delay(stream: &mut tokio::net::TcpStream) {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set on an accepted connection");
        }
    }
    tcp.tap_io(no_delay as fn(&mut tokio::net::TcpStream))
}

pub fn router(state: AppState) -> Router {
    router_with_timeout(state, REQUEST_TIMEOUT)
}

/// [`router`] with another request time limit (tests).
pub fn router_with_timeout(state: AppState, timeout: Duration) -> Router {
    crate::metrics::handle();
    let shared = state.clone();
    crate::routes::all()
        .into_router()
        // The studio's files: not API routes (no OpenAPI operations), served from the same origin.
        .merge(crate::routes::studio::router())
        .fallback(|| async { crate::error::ApiError::not_found("no such route") })
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), crate::middleware::gate))
        .layer(crate::middleware::cors(&shared.ops.config))
        .layer(axum::middleware::from_fn_with_state(timeout, crate::middleware::frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An accepted connection sends without delay (a fresh socket does not: the default is
    /// Nagle's algorithm on).
    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        use axum::serve::Listener as _;
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let mut listener = listener(tcp);
        let (accepted, client) = tokio::join!(listener.accept(), tokio::net::TcpStream::connect(addr));
        let client = client.expect("connect");
        assert!(!client.nodelay().expect("the client's option"), "a socket's default");
        let (io, peer) = accepted;
        assert_eq!(peer, client.local_addr().expect("client addr"));
        assert!(io.nodelay().expect("the accepted socket's option"));
    }
}
