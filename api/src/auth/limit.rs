//! Rate limits, in-process (each server counts its own), GCRA buckets from `governor`:
//!
//! * [`RateLimiter`]: every request, per user, per API key and per client IP (the settings
//!   `SWITCHYARD_RATE_LIMIT_*`; the middleware that asks it is `crate::middleware::gate`);
//! * [`LoginLimiter`]: login attempts, per client IP and per (tenant, email), so a password
//!   cannot be guessed quickly from one address nor against one account from many.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter as Gcra};

use crate::config::RateLimit;

/// Keys kept (by one limiter) before forgotten buckets (full again) are swept.
const SWEEP_AT: usize = 10_000;

/// Login attempts, per client IP and per (tenant, email).
pub struct LoginLimiter {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_account: DefaultKeyedRateLimiter<String>,
}

impl std::fmt::Debug for LoginLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimiter").finish_non_exhaustive()
    }
}

impl Default for LoginLimiter {
    fn default() -> LoginLimiter {
        let c = crate::config::OpsConfig::default();
        LoginLimiter::new(c.login_limit_ip, c.login_limit_account)
    }
}

impl LoginLimiter {
    /// `count` attempts at once per key, then one every `per / count` (`SWITCHYARD_LOGIN_LIMIT*`).
    pub fn new(per_ip: RateLimit, per_account: RateLimit) -> LoginLimiter {
        LoginLimiter { by_ip: Gcra::keyed(quota(per_ip)), by_account: Gcra::keyed(quota(per_account)) }
    }

    /// Counts an attempt; `Err(wait)` when it is over a limit (then it is not counted against
    /// the account).
    pub fn check(&self, ip: Option<IpAddr>, tenant: &str, email: &str) -> Result<(), Duration> {
        self.sweep();
        let now = DefaultClock::default().now();
        if let Some(ip) = ip {
            self.by_ip.check_key(&ip).map_err(|not_until| not_until.wait_time_from(now))?;
        }
        let account = format!("{}\n{}", tenant.trim().to_lowercase(), email.trim().to_lowercase());
        self.by_account.check_key(&account).map_err(|not_until| not_until.wait_time_from(now))
    }

    fn sweep(&self) {
        sweep_if_over(&self.by_ip, SWEEP_AT);
        sweep_if_over(&self.by_account, SWEEP_AT);
    }
}

fn sweep_if_over<K: std::hash::Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, n: usize) {
    if limiter.len() > n {
        limiter.retain_recent();
        limiter.shrink_to_fit();
    }
}

/// GCRA buckets (`governor`): one per authenticated user (tenant and subject of a valid access
/// token), one per client IP for every other request (anonymous ones, API keys). An API key
/// (`syk_<tenant>_<id>_<secret>`) also counts against a bucket of its own, keyed by its tenant
/// and id as written (with the user quota): telling a valid key needs the database, so the key
/// bucket comes on top of the IP one and a made-up key buys nothing. In-process: each server
/// counts its own requests.
pub struct RateLimiter {
    by_user: Option<DefaultKeyedRateLimiter<String>>,
    by_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("by_user", &self.by_user.is_some())
            .field("by_ip", &self.by_ip.is_some())
            .finish()
    }
}

impl Default for RateLimiter {
    fn default() -> RateLimiter {
        let c = crate::config::OpsConfig::default();
        RateLimiter::new(c.rate_limit_user, c.rate_limit_ip)
    }
}

fn quota(limit: RateLimit) -> Quota {
    let count = NonZeroU32::new(limit.count).unwrap_or(NonZeroU32::MIN);
    let period = (limit.per / count.get()).max(Duration::from_nanos(1));
    Quota::with_period(period).unwrap_or_else(|| Quota::per_second(count)).allow_burst(count)
}

/// Who a request counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(String),
    Ip(IpAddr),
    /// A well-formed API key (`<tenant>/<key id>`), and the peer's IP when known: both count.
    ApiKey(String, Option<IpAddr>),
    Unknown,
}

impl RateLimiter {
    pub fn new(user: Option<RateLimit>, ip: Option<RateLimit>) -> RateLimiter {
        RateLimiter { by_user: user.map(|l| Gcra::keyed(quota(l))), by_ip: ip.map(|l| Gcra::keyed(quota(l))) }
    }

    /// Counts a request; `Err(wait)` when the caller is over its limit.
    pub fn check(&self, caller: &Caller) -> Result<(), Duration> {
        match caller {
            Caller::User(key) => check_in(self.by_user.as_ref(), key),
            Caller::Ip(ip) => check_in(self.by_ip.as_ref(), ip),
            Caller::ApiKey(key, ip) => {
                if let Some(ip) = ip {
                    check_in(self.by_ip.as_ref(), ip)?;
                }
                check_in(self.by_user.as_ref(), &format!("key:{key}"))
            }
            Caller::Unknown => Ok(()),
        }
    }
}

/// Counts a request in `limiter`'s bucket for `key` (nothing when the limit is off).
fn check_in<K: std::hash::Hash + Eq + Clone>(
    limiter: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), Duration> {
    let Some(l) = limiter else { return Ok(()) };
    sweep_if_over(l, SWEEP_AT);
    let now = DefaultClock::default().now();
    l.check_key(key).map_err(|n| n.wait_time_from(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_limited_whatever_the_ip_and_an_ip_whatever_the_account() {
        let limiter = LoginLimiter::new(
            RateLimit { count: 3, per: Duration::from_secs(180) },
            RateLimit { count: 2, per: Duration::from_secs(120) },
        );
        let (a, b): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        assert!(limiter.check(Some(a), "t", "x@t.test").is_ok());
        assert!(limiter.check(Some(b), "T", " X@t.test").is_ok());
        let wait = limiter.check(Some(b), "t", "x@t.test").expect_err("account limited");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60), "{wait:?}");
        assert!(limiter.check(Some(a), "t", "y@t.test").is_ok());
        assert!(limiter.check(Some(a), "t", "z@t.test").is_ok());
        assert!(limiter.check(Some(a), "t", "v@t.test").is_err(), "ip limited after 3");
        assert!(limiter.check(None, "t", "w@t.test").is_ok(), "no ip: only the account counts");
    }

    #[test]
    fn a_caller_over_its_limit_waits_and_others_do_not() {
        let limiter = RateLimiter::new(
            Some(RateLimit { count: 2, per: Duration::from_secs(60) }),
            Some(RateLimit { count: 1, per: Duration::from_secs(60) }),
        );
        let alice = Caller::User("t/alice".into());
        assert!(limiter.check(&alice).is_ok());
        assert!(limiter.check(&alice).is_ok());
        let wait = limiter.check(&alice).expect_err("limited");
        assert!(wait > Duration::from_secs(20) && wait <= Duration::from_secs(30), "{wait:?}");
        assert!(limiter.check(&Caller::User("t/bob".into())).is_ok());
        let ip = Caller::Ip([192, 0, 2, 1].into());
        assert!(limiter.check(&ip).is_ok());
        assert!(limiter.check(&ip).is_err());
        assert!(limiter.check(&Caller::Unknown).is_ok());
        // An API key counts against its own bucket and its IP's.
        let key = |id: &str, ip: [u8; 4]| Caller::ApiKey(format!("t/{id}"), Some(ip.into()));
        let fresh = RateLimiter::new(
            Some(RateLimit { count: 2, per: Duration::from_secs(60) }),
            Some(RateLimit { count: 3, per: Duration::from_secs(60) }),
        );
        assert!(fresh.check(&key("k1", [192, 0, 2, 1])).is_ok());
        assert!(fresh.check(&key("k1", [192, 0, 2, 2])).is_ok());
        assert!(fresh.check(&key("k1", [192, 0, 2, 3])).is_err(), "the key's bucket is empty, whatever the IP");
        assert!(fresh.check(&key("k2", [192, 0, 2, 1])).is_ok());
        assert!(fresh.check(&key("k3", [192, 0, 2, 1])).is_ok());
        assert!(fresh.check(&key("k4", [192, 0, 2, 1])).is_err(), "a new key buys no fresh IP bucket");
        let off = RateLimiter::new(None, None);
        for _ in 0..100 {
            assert!(off.check(&alice).is_ok());
        }
    }
}
