//! The process's event hub: the wake-ups that reach workers and SSE streams (a tokio broadcast
//! channel fed by the process's own commits and by the Postgres listener), the shutdown signal
//! long-lived work ends on, and the credential cache the listener keeps exact. It sits below
//! the workers and [`crate::state`] (both hold one) and above [`crate::auth`] (whose cache it
//! carries); it does no IO itself.

use std::sync::Arc;

use engine::store::TenantId;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::auth::cache::AuthCache;

/// What woke a worker or a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// New outbox rows of a tenant were committed (by this process, or by another that said so).
    Outbox(TenantId),
    /// The relay appended events to a tenant's stream.
    Events(TenantId),
    /// Deliveries of a tenant were queued or replayed.
    Deliveries(TenantId),
    /// Notifications may have been lost (the listener reconnected): everyone looks again.
    Resync,
}

impl Wake {
    /// Whether a stream or worker interested in `tenant` should look.
    pub fn concerns(&self, tenant: TenantId) -> bool {
        match self {
            Wake::Outbox(t) | Wake::Events(t) | Wake::Deliveries(t) => *t == tenant,
            Wake::Resync => true,
        }
    }
}

/// The process's wake-ups, its shutdown signal and the credential cache the listener keeps
/// exact. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Wake>,
    shutdown: CancellationToken,
    auth: Arc<AuthCache>,
}

impl Default for EventHub {
    fn default() -> EventHub {
        // A slow receiver that falls behind gets `Lagged` and re-reads: nothing is lost.
        let (tx, _) = broadcast::channel(1024);
        EventHub { tx, shutdown: CancellationToken::new(), auth: Arc::default() }
    }
}

impl EventHub {
    /// The answers about credentials this process keeps: used only while the listener is
    /// connected, dropped whenever any process changes a user, session, API key or tenant.
    pub fn auth(&self) -> &AuthCache {
        &self.auth
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Wake> {
        self.tx.subscribe()
    }

    pub fn wake(&self, wake: Wake) {
        // No receiver is not an error: nobody is waiting.
        let _ = self.tx.send(wake);
    }

    /// Cancelled when the server shuts down: long-lived responses (SSE) and workers end.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }
}

/// Waits until `deadline`, a wake-up that passes `filter`, or cancellation; returns false when
/// cancelled.
pub async fn wait(
    rx: &mut broadcast::Receiver<Wake>,
    stop: &CancellationToken,
    deadline: tokio::time::Instant,
    filter: impl Fn(&Wake) -> bool,
) -> bool {
    let sleep = tokio::time::sleep_until(deadline);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = stop.cancelled() => return false,
            () = &mut sleep => return true,
            msg = rx.recv() => match msg {
                Ok(w) if filter(&w) => return true,
                Ok(_) => {}
                // Missed some: look anyway.
                Err(broadcast::error::RecvError::Lagged(_)) => return true,
                // The hub is gone (cannot happen while we hold a clone): poll.
                Err(broadcast::error::RecvError::Closed) => {
                    tokio::select! {
                        () = stop.cancelled() => return false,
                        () = &mut sleep => return true,
                    }
                }
            },
        }
    }
}
