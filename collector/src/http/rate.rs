//! Request rate limits: token buckets per source address (checked before authentication, so a
//! flood of junk never reaches the store) and per principal (checked once the token is known,
//! so one noisy agent or dashboard cannot starve the others). Over the limit the answer is
//! `429 Too Many Requests` with `Retry-After`, which agents honour.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};

use super::error::ApiError;

/// Buckets kept per limiter at most. Buckets that have refilled completely carry no state (a
/// new one would be the same) and are dropped first; past the cap new keys are not tracked
/// (let through) rather than letting a spray of source addresses grow memory without bound.
const MAX_KEYS: usize = 65_536;

/// One limit: `per_second` sustained, bursts of up to `burst` requests. `per_second = 0`
/// turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    fn enabled(self) -> bool {
        self.per_second > 0.0 && self.burst > 0
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets for one kind of key.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key` at `now`; `Err(wait)` when the bucket is empty, with how long
    /// until a token is back.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if !self.rate.enabled() {
            return Ok(());
        }
        let burst = f64::from(self.rate.burst);
        let refill = |bucket: &Bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            (bucket.tokens + elapsed * self.rate.per_second).min(burst)
        };
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still numbers, so keep limiting with them.
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= MAX_KEYS {
            buckets.retain(|_, bucket| refill(bucket) < burst);
            if buckets.len() >= MAX_KEYS {
                return Ok(());
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let tokens = refill(bucket);
        bucket.updated = now;
        if tokens >= 1.0 {
            bucket.tokens = tokens - 1.0;
            Ok(())
        } else {
            bucket.tokens = tokens;
            Err(Duration::from_secs_f64(
                (1.0 - tokens) / self.rate.per_second,
            ))
        }
    }
}

/// The collector's two limiters, shared by every request.
#[derive(Debug)]
pub struct RateLimits {
    pub per_address: Limiter<IpAddr>,
    pub per_principal: Limiter<String>,
}

impl RateLimits {
    pub fn new(per_address: Rate, per_principal: Rate) -> Arc<RateLimits> {
        Arc::new(RateLimits {
            per_address: Limiter::new(per_address),
            per_principal: Limiter::new(per_principal),
        })
    }
}

/// The 429 answer: whole seconds in `Retry-After`, rounded up (never 0, which would invite an
/// immediate retry).
pub fn too_many_requests(what: &str, wait: Duration) -> ApiError {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests from this {what}; retry in {seconds} s (server.rate_limit)"),
    );
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        error = error.with_header_value(header::RETRY_AFTER, value);
    }
    error
}

/// Adds the limits to a router: the per-address check as the outermost layer, and the
/// limiters as an extension for the per-principal check in authentication
/// ([`super::auth::Caller`]). Serve the router with connect info (`SocketAddr`) for the
/// per-address limit to apply.
pub fn with_rate_limits(router: Router, limits: Arc<RateLimits>) -> Router {
    router
        .layer(middleware::from_fn(limit_address))
        .layer(Extension(limits))
}

async fn limit_address(request: Request, next: Next) -> Response {
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    if let (Some(address), Some(limits)) = (address, request.extensions().get::<Arc<RateLimits>>())
        && let Err(wait) = limits.per_address.check(&address, Instant::now())
    {
        tracing::info!(%address, "rate limited (source address)");
        return too_many_requests("address", wait).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_the_sustained_rate() {
        let limiter = Limiter::new(Rate {
            per_second: 2.0,
            burst: 3,
        });
        let t = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", t), Ok(()));
        }
        let wait = limiter.check(&"a", t).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 0.5).abs() < 1e-6,
            "one token takes 0.5 s at 2/s: {wait:?}"
        );
        // Other keys have their own bucket.
        assert_eq!(limiter.check(&"b", t), Ok(()));
        // Half a second later one token is back, not more.
        let later = t + Duration::from_millis(500);
        assert_eq!(limiter.check(&"a", later), Ok(()));
        assert!(limiter.check(&"a", later).is_err());
        // A long pause refills up to the burst, never beyond.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check(&"a", much_later), Ok(()));
        }
        assert!(limiter.check(&"a", much_later).is_err());
    }

    #[test]
    fn a_zero_rate_is_no_limit() {
        let limiter = Limiter::new(Rate {
            per_second: 0.0,
            burst: 1,
        });
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(limiter.check(&1u32, t), Ok(()));
        }
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_keys() {
        let limiter = Limiter::new(Rate {
            per_second: 1.0,
            burst: 1,
        });
        let t = Instant::now();
        for key in 0..(MAX_KEYS as u64 + 10) {
            let _ = limiter.check(&key, t);
        }
        assert!(limiter.buckets.lock().unwrap().len() <= MAX_KEYS);
        // Once the buckets have refilled they are dropped to make room.
        let later = t + Duration::from_secs(2);
        assert_eq!(limiter.check(&u64::MAX, later), Ok(()));
        assert!(limiter.buckets.lock().unwrap().len() < 10);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        let error = too_many_requests("address", Duration::from_millis(200));
        let response = error.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let response = too_many_requests("agent", Duration::from_millis(2500)).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
