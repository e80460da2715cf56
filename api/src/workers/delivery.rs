//! Webhook deliveries: claim due ones, POST them signed, record the outcome, retry with
//! exponential backoff and jitter, dead-letter after the configured number of attempts.
//!
//! At least once: a delivery is claimed with a lease (its `next_attempt_at` pushed ahead), so if
//! this process dies mid-request another one sends it again when the lease ends. Receivers
//! deduplicate on `Switchyard-Event-Id`, which never changes for an event.

use std::time::{Duration, Instant};

use chrono::Utc;
use engine::store::{Store, TenantId};
use rand::Rng;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::sql::{self, AttemptResult, Claimed};
use super::webhooks::{
    signature, ATTEMPT_HEADER, DELIVERY_ID_HEADER, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER,
};
use super::WorkerConfig;
use crate::hub::{wait, EventHub, Wake};

/// Deliveries claimed (and sent concurrently) at once, per tenant.
const BATCH: i64 = 16;
/// Tenants looked at per round.
const TENANTS_PER_ROUND: i64 = 1000;
/// Tenants whose deliveries are sent at the same time.
const TENANTS_AT_ONCE: usize = 8;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// Characters of an error kept.
const MAX_ERROR_LEN: usize = 500;

/// The HTTP client of deliveries: checked DNS, no redirects, no proxy, the attempt timeout.
pub fn client(config: &WorkerConfig) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(super::destination::GuardedResolver(config.destinations.clone())))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("Switchyard-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

pub async fn run(store: Store, hub: EventHub, stop: CancellationToken, config: WorkerConfig, client: reqwest::Client) {
    let mut rx = hub.subscribe();
    loop {
        let next = match deliver_due(&store, &config, &client, &stop).await {
            Ok(next) => next,
            Err(e) => {
                tracing::warn!(error = %e, "webhook delivery failed; retrying");
                None
            }
        };
        if stop.is_cancelled() {
            return;
        }
        let now = tokio::time::Instant::now();
        let deadline = match next {
            Some(d) => now + d.min(config.poll),
            None => now + config.poll,
        };
        if !wait(&mut rx, &stop, deadline, |w| matches!(w, Wake::Deliveries(_) | Wake::Resync)).await {
            return;
        }
    }
}

/// Sends every due delivery (batch by batch, up to [`TENANTS_AT_ONCE`] tenants at a time, so a
/// slow receiver holds up only its own tenant); returns how long until the next one is due.
pub async fn deliver_due(
    store: &Store,
    config: &WorkerConfig,
    client: &reqwest::Client,
    stop: &CancellationToken,
) -> Result<Option<Duration>, sqlx::Error> {
    loop {
        let tenants = sql::due_tenants(store.pool(), TENANTS_PER_ROUND).await?;
        let now = Utc::now();
        let mut next: Option<Duration> = None;
        let mut due = Vec::new();
        for (tenant, due_at) in tenants {
            if due_at > now {
                let wait = (due_at - now).to_std().unwrap_or_default();
                next = Some(next.map_or(wait, |n| n.min(wait)));
            } else {
                due.push(tenant);
            }
        }
        let mut sent = 0;
        let mut running = tokio::task::JoinSet::new();
        let mut failure = None;
        for tenant in due {
            if stop.is_cancelled() {
                break;
            }
            if running.len() >= TENANTS_AT_ONCE {
                if let Some(Ok(r)) = running.join_next().await {
                    collect(r, &mut sent, &mut failure);
                }
            }
            let (store, config, client) = (store.clone(), config.clone(), client.clone());
            running.spawn(async move { deliver_tenant(&store, &config, &client, tenant).await });
        }
        while let Some(joined) = running.join_next().await {
            if let Ok(r) = joined {
                collect(r, &mut sent, &mut failure);
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if sent == 0 || stop.is_cancelled() {
            return Ok(next);
        }
    }
}

fn collect(r: Result<usize, sqlx::Error>, sent: &mut usize, failure: &mut Option<sqlx::Error>) {
    match r {
        Ok(n) => *sent += n,
        Err(e) => *failure = Some(e),
    }
}

/// Claims and sends one batch of a tenant's due deliveries; returns how many were sent.
pub async fn deliver_tenant(
    store: &Store,
    config: &WorkerConfig,
    client: &reqwest::Client,
    tenant: TenantId,
) -> Result<usize, sqlx::Error> {
    let lease = config.timeout.as_secs_f64() * 2.0 + 30.0;
    let mut tx = engine::store::conn::retry_dead(|| store.pool().begin()).await?;
    engine::store::sql::set_tenant(&mut tx, tenant).await?;
    let claimed = sql::claim_due(&mut tx, tenant, BATCH, lease).await?;
    let slug = sql::tenant_slug(&mut tx, tenant).await?.unwrap_or_default();
    tx.commit().await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let mut attempts = tokio::task::JoinSet::new();
    for c in claimed {
        let (client, config, slug) = (client.clone(), config.clone(), slug.clone());
        attempts.spawn(async move {
            let result = attempt(&client, &config, &slug, &c).await;
            (c, result)
        });
    }
    let mut sent = 0;
    while let Some(joined) = attempts.join_next().await {
        let Ok((c, result)) = joined else { continue };
        sent += 1;
        let mut tx = engine::store::conn::retry_dead(|| store.pool().begin()).await?;
        engine::store::sql::set_tenant(&mut tx, tenant).await?;
        let recorded = sql::record_attempt(&mut tx, tenant, c.id, c.attempt, &result).await?;
        tx.commit().await?;
        if recorded {
            crate::metrics::webhook_attempt(result.status);
        }
        tracing::info!(
            tenant.id = %tenant,
            webhook.id = %c.webhook_id,
            delivery.id = %c.id,
            event.id = %c.event_id,
            attempt = c.attempt,
            status = result.status,
            http.status_code = result.status_code,
            error = result.error.as_deref().unwrap_or(""),
            recorded,
            "webhook attempt"
        );
    }
    Ok(sent)
}

/// One POST, and what it means for the delivery.
async fn attempt(client: &reqwest::Client, config: &WorkerConfig, tenant_slug: &str, c: &Claimed) -> AttemptResult {
    let started = Instant::now();
    let outcome = send(client, config, tenant_slug, c).await;
    let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let (status_code, error) = match outcome {
        Ok(code) if (200..300).contains(&code) => {
            return AttemptResult {
                status_code: Some(code.into()),
                error: None,
                duration_ms,
                status: "delivered",
                retry_in_secs: None,
            }
        }
        Ok(code) => (Some(i32::from(code)), Some(format!("the receiver answered {code}"))),
        Err(e) => (None, Some(truncate(e))),
    };
    if c.attempt >= config.max_attempts as i32 {
        return AttemptResult { status_code, error, duration_ms, status: "dead", retry_in_secs: None };
    }
    let retry = backoff(config.backoff, c.attempt as u32, &mut rand::thread_rng());
    AttemptResult { status_code, error, duration_ms, status: "pending", retry_in_secs: Some(retry.as_secs_f64()) }
}

/// Sends the event; the response status, or why there is none.
async fn send(client: &reqwest::Client, config: &WorkerConfig, tenant_slug: &str, c: &Claimed) -> Result<u16, String> {
    // Address literals never reach the resolver: check them (and re-check names) here.
    let url = config.destinations.check_url(&c.url).await.map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&json!({
        "id": c.event_id,
        "type": c.name,
        "tenant": tenant_slug,
        "entity_type": c.entity_type,
        "entity_id": c.entity_id,
        "payload": c.payload,
        "created_at": c.created_at,
    }))
    .map_err(|e| e.to_string())?;
    let timestamp = Utc::now().timestamp();
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature(&c.secret, timestamp, &body))
        .header(EVENT_ID_HEADER, c.event_id.to_string())
        .header(EVENT_TYPE_HEADER, c.name.as_str())
        .header(DELIVERY_ID_HEADER, c.id.to_string())
        .header(ATTEMPT_HEADER, c.attempt.to_string())
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    Ok(response.status().as_u16())
}

/// The reason a request failed, with its causes (a refused destination says so).
fn describe(e: reqwest::Error) -> String {
    use std::error::Error as _;
    let mut out = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_ERROR_LEN {
        let mut end = MAX_ERROR_LEN;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The wait after failed attempt `n` (1-based): `base · 2^(n-1)`, at most [`MAX_BACKOFF`], of
/// which a random half is taken off (so receivers that failed together are not retried together).
pub fn backoff(base: Duration, n: u32, rng: &mut impl Rng) -> Duration {
    let full = base.saturating_mul(1u32 << n.saturating_sub(1).min(20)).min(MAX_BACKOFF);
    full.mul_f64(rng.gen_range(0.5..=1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let mut rng = rand::thread_rng();
        let base = Duration::from_secs(60);
        for n in 1..=6 {
            let full = base * (1 << (n - 1));
            for _ in 0..50 {
                let d = backoff(base, n, &mut rng);
                assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?}");
            }
        }
        assert!(backoff(base, 40, &mut rng) <= MAX_BACKOFF);
    }
}
