//! The process's one `LISTEN` connection: Postgres notifications become [`Wake`]s on the hub,
//! and credential changes invalidate the hub's [`crate::auth::cache::AuthCache`], which is used
//! only while this connection listens.

use std::time::Duration;

use engine::store::TenantId;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::sql::{CHANNEL_EVENTS, CHANNEL_OUTBOX, CHANNEL_WEBHOOKS};
use crate::auth::cache::CHANNEL_AUTH;
use crate::hub::{EventHub, Wake};

/// Listens until `stop`; reconnects (after a pause) when the connection is lost, and then says
/// `Resync`, since notifications sent meanwhile are gone.
pub async fn run(pool: PgPool, hub: EventHub, stop: CancellationToken) {
    while !stop.is_cancelled() {
        let result = listen(&pool, &hub, &stop).await;
        // Not listening: credential changes would go unseen.
        hub.auth().set_live(false);
        match result {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "event listener lost its connection; retrying");
                hub.wake(Wake::Resync);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        }
    }
}

async fn listen(pool: &PgPool, hub: &EventHub, stop: &CancellationToken) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL_OUTBOX, CHANNEL_EVENTS, CHANNEL_WEBHOOKS, CHANNEL_AUTH]).await?;
    // Whatever was notified before we listened: look once; credentials may be kept from now on.
    hub.wake(Wake::Resync);
    hub.auth().set_live(true);
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            r = listener.try_recv() => r?,
        };
        let Some(n) = received else {
            // The connection was lost and re-established: notifications may be lost.
            hub.auth().invalidate();
            hub.wake(Wake::Resync);
            continue;
        };
        if n.channel() == CHANNEL_AUTH {
            tracing::debug!(tenant = n.payload(), "credentials changed");
            hub.auth().invalidate();
            continue;
        }
        let Some(tenant) = TenantId::from_notification(n.payload()) else { continue };
        let wake = match n.channel() {
            CHANNEL_OUTBOX => Wake::Outbox(tenant),
            CHANNEL_EVENTS => Wake::Events(tenant),
            CHANNEL_WEBHOOKS => Wake::Deliveries(tenant),
            _ => continue,
        };
        hub.wake(wake);
    }
}
