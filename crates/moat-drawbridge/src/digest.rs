//! Content digests (`sha256:<hex>`, `sha512:<hex>`) and the hashers that check them while bytes
//! stream in. Only these two algorithms are accepted: the spec names them, and a registry that
//! stored content under an algorithm it cannot verify would serve unchecked bytes.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// The digest of a whole byte string.
    pub fn digest(self, bytes: &[u8]) -> Digest {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// Why a string is not a digest this registry accepts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("digest `{0}` has no `algorithm:` prefix")]
    MissingAlgorithm(String),
    #[error("digest algorithm `{0}` is not supported (sha256 and sha512 are)")]
    UnsupportedAlgorithm(String),
    #[error("digest `{0}` is not lower-case hex of the algorithm's length")]
    BadEncoding(String),
}

/// A verified-shape digest: algorithm plus lower-case hex of the right length.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let shown: String = s.chars().take(160).collect();
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::MissingAlgorithm(shown.clone()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                let other: String = other.chars().take(40).collect();
                return Err(DigestError::UnsupportedAlgorithm(other));
            }
        };
        let well_formed = hex.len() == algorithm.hex_len()
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !well_formed {
            return Err(DigestError::BadEncoding(shown));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

/// A running hash of one of the accepted algorithms.
#[derive(Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Sha512(h) => h.update(bytes),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn finish(self) -> Digest {
        let (algorithm, hex) = match self {
            Hasher::Sha256(h) => (Algorithm::Sha256, hex::encode(h.finalize())),
            Hasher::Sha512(h) => (Algorithm::Sha512, hex::encode(h.finalize())),
        };
        Digest { algorithm, hex }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_algorithms_and_round_trips() {
        let d256 = Algorithm::Sha256.digest(b"hello");
        let d512 = Algorithm::Sha512.digest(b"hello");
        assert_eq!(d256.to_string().parse::<Digest>().unwrap(), d256);
        assert_eq!(d512.to_string().parse::<Digest>().unwrap(), d512);
        assert_eq!(
            d256.to_string(),
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
    }

    #[test]
    fn rejects_bad_digests() {
        let good = Algorithm::Sha256.digest(b"x").to_string();
        let cases = [
            ("", DigestError::MissingAlgorithm(String::new())),
            ("abc", DigestError::MissingAlgorithm("abc".into())),
        ];
        for (input, want) in cases {
            assert_eq!(input.parse::<Digest>().unwrap_err(), want);
        }
        assert!(matches!(
            "md5:00".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        // Truncated, upper case, non-hex, too long.
        for bad in [
            good[..good.len() - 1].to_string(),
            good.to_uppercase().replace("SHA256", "sha256"),
            format!("sha256:g{}", &good["sha256:".len() + 1..]),
            format!("{good}0"),
        ] {
            assert!(
                matches!(bad.parse::<Digest>(), Err(DigestError::BadEncoding(_))),
                "{bad}"
            );
        }
    }
}
