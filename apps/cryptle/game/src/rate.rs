//! A token bucket: how per-connection and per-session request rates are bounded.
//!
//! Time comes from the caller in milliseconds, so the bucket works the same under tests,
//! natively and in the Keep.

/// Requests allowed per second and how many may come in one burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

/// One client's bucket. Counts in thousandths of a request so refills are exact.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: Rate,
    milli_tokens: u64,
    last_ms: u64,
}

impl Bucket {
    pub fn new(rate: Rate, now_ms: u64) -> Bucket {
        Bucket {
            rate,
            milli_tokens: rate.burst as u64 * 1000,
            last_ms: now_ms,
        }
    }

    /// Take one request's worth; false when the client is over its rate.
    pub fn allow(&mut self, now_ms: u64) -> bool {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let cap = self.rate.burst as u64 * 1000;
        self.milli_tokens = (self.milli_tokens + elapsed * self.rate.per_second as u64).min(cap);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut b = Bucket::new(
            Rate {
                per_second: 10,
                burst: 3,
            },
            0,
        );
        assert!(b.allow(0) && b.allow(0) && b.allow(0));
        assert!(!b.allow(0));
        assert!(!b.allow(50));
        assert!(b.allow(100));
        assert!(!b.allow(100));
        // A clock that goes backwards never adds tokens.
        assert!(!b.allow(10));
    }
}
