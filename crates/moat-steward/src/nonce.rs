//! Nonces for evidence freshness, stateless so that replicas agree, plus a bounded replay cache.
//!
//! A nonce is `version (1) || expiry (8, big-endian Unix seconds) || random (16) || tag (16)`,
//! where `tag` is HMAC-SHA-256 (truncated to 16 bytes) over the first 25 bytes under a key
//! derived from the CA key (HKDF-SHA-256). Any replica that holds the same CA key recognises
//! any replica's nonces without shared storage. The Keep folds the nonce into `report_data`
//! (`SHA-384(SPKI || nonce)`) and sends it in its CSR.
//!
//! A used nonce is remembered until it expires, so it cannot be used twice on this replica. The
//! cache is bounded: when it is full of unexpired nonces, requests are refused as "busy" rather
//! than forgetting a nonce early (which would reopen the replay). Across replicas a nonce could
//! be used once per replica within its lifetime; the lifetime is short for that reason.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{NonceError, Rejection};

/// Length of a nonce in bytes.
pub const NONCE_LEN: usize = 1 + 8 + 16 + 16;
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;
/// Default capacity of the replay cache (used, unexpired nonces remembered).
pub const DEFAULT_REPLAY_CAPACITY: usize = 100_000;

/// Issues and checks nonces.
pub struct NonceAuthority {
    key: hmac::Key,
    lifetime: Duration,
    rng: SystemRandom,
    used: Mutex<ReplayCache>,
}

impl std::fmt::Debug for NonceAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceAuthority")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

struct ReplayCache {
    capacity: usize,
    set: HashSet<[u8; 16]>,
    /// Insertion order = expiry order, because every nonce has the same lifetime.
    order: VecDeque<(u64, [u8; 16])>,
}

/// A freshly issued nonce.
#[derive(Debug, Clone)]
pub struct IssuedNonce {
    pub bytes: [u8; NONCE_LEN],
    /// Unix seconds after which the nonce is refused.
    pub expires_at: u64,
}

impl NonceAuthority {
    /// A nonce authority whose key is derived from `secret` (the CA's PKCS#8 key).
    pub fn new(secret: &[u8], lifetime: Duration, capacity: usize) -> Self {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"moat-steward nonce salt v1");
        let prk = salt.extract(secret);
        let okm = prk
            .expand(&[b"moat-steward nonce key v1"], hmac::HMAC_SHA256)
            .expect("HMAC key length is valid for HKDF-SHA256");
        NonceAuthority {
            key: hmac::Key::from(okm),
            lifetime,
            rng: SystemRandom::new(),
            used: Mutex::new(ReplayCache {
                capacity,
                set: HashSet::new(),
                order: VecDeque::new(),
            }),
        }
    }

    /// Issues a nonce valid for the configured lifetime from `now`.
    pub fn issue(&self, now: SystemTime) -> Result<IssuedNonce, Rejection> {
        let expires_at = unix(now) + self.lifetime.as_secs();
        let mut bytes = [0u8; NONCE_LEN];
        bytes[0] = VERSION;
        bytes[1..9].copy_from_slice(&expires_at.to_be_bytes());
        self.rng
            .fill(&mut bytes[9..25])
            .map_err(|_| Rejection::Internal("random number generator failed".into()))?;
        let tag = hmac::sign(&self.key, &bytes[..25]);
        bytes[25..].copy_from_slice(&tag.as_ref()[..TAG_LEN]);
        Ok(IssuedNonce { bytes, expires_at })
    }

    /// Checks that `nonce` was issued here (by any replica with the same key) and is unexpired.
    /// Returns its identity for [`Self::consume`]. Does not consume it.
    pub fn check(&self, nonce: &[u8], now: SystemTime) -> Result<NonceId, NonceError> {
        if nonce.len() != NONCE_LEN || nonce[0] != VERSION {
            return Err(NonceError::Unknown);
        }
        let tag = hmac::sign(&self.key, &nonce[..25]);
        // Constant-time comparison: the tag is the secret-derived part.
        let diff = tag.as_ref()[..TAG_LEN]
            .iter()
            .zip(&nonce[25..])
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(NonceError::Unknown);
        }
        let expires_at = u64::from_be_bytes(nonce[1..9].try_into().expect("8 bytes"));
        if unix(now) > expires_at {
            return Err(NonceError::Expired);
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&nonce[9..25]);
        if self.lock().set.contains(&id) {
            return Err(NonceError::Replayed);
        }
        Ok(NonceId { id, expires_at })
    }

    /// Marks a checked nonce used; fails if it was used meanwhile (two concurrent requests with
    /// one nonce: exactly one wins) or if the cache is full of unexpired nonces.
    pub fn consume(&self, nonce: &NonceId, now: SystemTime) -> Result<(), Rejection> {
        let now = unix(now);
        let mut cache = self.lock();
        while let Some(&(exp, id)) = cache.order.front() {
            if exp >= now {
                break;
            }
            cache.order.pop_front();
            cache.set.remove(&id);
        }
        if cache.set.contains(&nonce.id) {
            return Err(Rejection::Nonce(NonceError::Replayed));
        }
        if cache.set.len() >= cache.capacity {
            return Err(Rejection::Busy);
        }
        cache.set.insert(nonce.id);
        cache.order.push_back((nonce.expires_at, nonce.id));
        Ok(())
    }

    /// Number of used nonces remembered.
    pub fn cache_len(&self) -> usize {
        self.lock().set.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayCache> {
        // A panic while holding this lock cannot leave the cache inconsistent in a way that
        // matters more than refusing service, so recover the guard.
        self.used.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A nonce that passed [`NonceAuthority::check`].
#[derive(Debug, Clone, Copy)]
pub struct NonceId {
    id: [u8; 16],
    expires_at: u64,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authority(cap: usize) -> NonceAuthority {
        NonceAuthority::new(b"secret", Duration::from_secs(60), cap)
    }

    #[test]
    fn issued_nonce_checks_once() {
        let a = authority(10);
        let now = SystemTime::now();
        let n = a.issue(now).unwrap();
        let id = a.check(&n.bytes, now).unwrap();
        a.consume(&id, now).unwrap();
        assert_eq!(a.check(&n.bytes, now).unwrap_err(), NonceError::Replayed);
        assert!(matches!(
            a.consume(&id, now),
            Err(Rejection::Nonce(NonceError::Replayed))
        ));
    }

    #[test]
    fn replicas_with_the_same_key_agree() {
        let now = SystemTime::now();
        let n = authority(10).issue(now).unwrap();
        assert!(authority(10).check(&n.bytes, now).is_ok());
        let other = NonceAuthority::new(b"other", Duration::from_secs(60), 10);
        assert_eq!(other.check(&n.bytes, now).unwrap_err(), NonceError::Unknown);
    }

    #[test]
    fn expired_and_mutated_nonces_are_refused() {
        let a = authority(10);
        let now = SystemTime::now();
        let n = a.issue(now).unwrap();
        assert_eq!(
            a.check(&n.bytes, now + Duration::from_secs(61))
                .unwrap_err(),
            NonceError::Expired
        );
        for i in 0..NONCE_LEN {
            let mut m = n.bytes;
            m[i] ^= 1;
            assert_eq!(
                a.check(&m, now).unwrap_err(),
                NonceError::Unknown,
                "byte {i}"
            );
        }
        assert_eq!(
            a.check(&n.bytes[1..], now).unwrap_err(),
            NonceError::Unknown
        );
        assert_eq!(a.check(&[], now).unwrap_err(), NonceError::Unknown);
    }

    #[test]
    fn full_cache_refuses_instead_of_forgetting() {
        let a = authority(2);
        let now = SystemTime::now();
        for _ in 0..2 {
            let id = a.check(&a.issue(now).unwrap().bytes, now).unwrap();
            a.consume(&id, now).unwrap();
        }
        let id = a.check(&a.issue(now).unwrap().bytes, now).unwrap();
        assert!(matches!(a.consume(&id, now), Err(Rejection::Busy)));
        // Once the old ones expire there is room again.
        let later = now + Duration::from_secs(120);
        let id = a.check(&a.issue(later).unwrap().bytes, later).unwrap();
        a.consume(&id, later).unwrap();
        assert_eq!(a.cache_len(), 1);
    }
}
