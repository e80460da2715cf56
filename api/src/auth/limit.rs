//! Rate limits on login attempts, per client IP and per (tenant, email), so a password cannot
//! be guessed quickly from one address nor against one account from many. In-process (each
//! server counts its own attempts); GCRA buckets from `governor`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Keys kept before forgotten buckets (full again) are swept.
const SWEEP_AT: usize = 10_000;

/// How many attempts a key may make at once (`burst`), and how fast it earns one back.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub burst: u32,
    pub every: Duration,
}

impl Limit {
    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.every.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// Per IP: 20 attempts, then one every 3 s (20 a minute).
pub const PER_IP: Limit = Limit { burst: 20, every: Duration::from_secs(3) };
/// Per tenant and email: 5 attempts, then one every 12 s (5 a minute).
pub const PER_ACCOUNT: Limit = Limit { burst: 5, every: Duration::from_secs(12) };

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
        LoginLimiter::new(PER_IP, PER_ACCOUNT)
    }
}

impl LoginLimiter {
    pub fn new(per_ip: Limit, per_account: Limit) -> LoginLimiter {
        LoginLimiter { by_ip: RateLimiter::keyed(per_ip.quota()), by_account: RateLimiter::keyed(per_account.quota()) }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_limited_whatever_the_ip_and_an_ip_whatever_the_account() {
        let limiter = LoginLimiter::new(
            Limit { burst: 3, every: Duration::from_secs(60) },
            Limit { burst: 2, every: Duration::from_secs(60) },
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
}
