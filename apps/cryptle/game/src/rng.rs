//! Randomness: where secrets and session tokens come from.
//!
//! Tokens come from an [`Entropy`] source the driver provides (the OS or WASI `random_get`), so
//! this crate stays free of I/O. Secret words come from a [`SecretPicker`], a small deterministic
//! generator seeded once from entropy: deterministic so that a test build can choose the seed
//! and know which word to look for in a Keep's memory (see the `cryptle` crate's `test-seed`
//! feature); normal builds seed it from entropy and never expose the seed.

use crate::words::{self, Word};

/// A source of unpredictable bytes.
pub trait Entropy: Send {
    fn fill(&mut self, buf: &mut [u8]);
}

/// Picks single-player secrets: SplitMix64 over a seed, mapped onto the answer list.
#[derive(Clone)]
pub struct SecretPicker {
    state: u64,
}

impl SecretPicker {
    pub fn new(seed: u64) -> SecretPicker {
        SecretPicker { state: seed }
    }

    /// The next secret word.
    pub fn next_secret(&mut self) -> Word {
        let n = words::answer_count() as u64;
        // Multiply-shift maps 64 random bits onto 0..n with negligible bias for n this small.
        let index = ((self.next_u64() as u128 * n as u128) >> 64) as usize;
        words::answer(index)
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl std::fmt::Debug for SecretPicker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretPicker(..)")
    }
}

/// A 128-bit session token as 32 lower-case hex digits.
pub fn new_token(entropy: &mut dyn Entropy) -> String {
    let mut raw = [0u8; 16];
    entropy.fill(&mut raw);
    let mut out = String::with_capacity(32);
    for b in raw {
        out.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
        out.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picker_is_deterministic_per_seed_and_spreads() {
        let a: Vec<Word> = (0..20)
            .scan(SecretPicker::new(7), |p, _| Some(p.next_secret()))
            .collect();
        let b: Vec<Word> = (0..20)
            .scan(SecretPicker::new(7), |p, _| Some(p.next_secret()))
            .collect();
        assert_eq!(a, b);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 10);
        assert!(a.iter().all(|w| w.is_answer()));
    }
}
