//! Offline codes: TOTP (RFC 6238) over HMAC-SHA1, SHA-256 or SHA-512.

use hmac::{Hmac, Mac};

use crate::protocol::OathSeed;

/// Why a seed cannot make codes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    #[error("the OATH secret is not base32")]
    Secret,
    #[error("the OATH secret is empty")]
    EmptySecret,
    #[error("unknown OATH algorithm {0:?} (SHA1, SHA256 or SHA512)")]
    Algorithm(String),
    #[error("codes of {0} digits are not supported (6 to 10)")]
    Digits(u32),
    #[error("a period of {0} seconds is not supported")]
    Period(u64),
}

/// The HMAC of a TOTP seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha1,
    Sha256,
    Sha512,
}

impl Hash {
    /// Reads `SHA1`, `SHA256`, `SHA512` (any case, with or without a dash).
    pub fn parse(name: &str) -> Result<Self, TotpError> {
        match name.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Hash::Sha1),
            "SHA256" => Ok(Hash::Sha256),
            "SHA512" => Ok(Hash::Sha512),
            _ => Err(TotpError::Algorithm(name.into())),
        }
    }
}

/// A seed ready to make codes.
#[derive(Clone)]
pub struct Totp {
    key: Vec<u8>,
    hash: Hash,
    digits: u32,
    period: u64,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("hash", &self.hash)
            .field("digits", &self.digits)
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl Totp {
    pub fn new(key: Vec<u8>, hash: Hash, digits: u32, period: u64) -> Result<Self, TotpError> {
        if key.is_empty() {
            return Err(TotpError::EmptySecret);
        }
        if !(6..=10).contains(&digits) {
            return Err(TotpError::Digits(digits));
        }
        if period == 0 || period > 86_400 {
            return Err(TotpError::Period(period));
        }
        Ok(Totp {
            key,
            hash,
            digits,
            period,
        })
    }

    /// The seed the server gave at activation (a base32 secret, any case, padding optional).
    pub fn from_seed(seed: &OathSeed) -> Result<Self, TotpError> {
        let cleaned: String = seed
            .secret
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '=' && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let key = data_encoding::BASE32_NOPAD
            .decode(cleaned.as_bytes())
            .map_err(|_| TotpError::Secret)?;
        Totp::new(key, Hash::parse(&seed.algorithm)?, seed.digits, seed.period)
    }

    pub fn period(&self) -> u64 {
        self.period
    }

    /// The code at Unix time `unix_seconds`, zero-padded to the seed's digits.
    pub fn code_at(&self, unix_seconds: u64) -> String {
        let counter = (unix_seconds / self.period).to_be_bytes();
        let mac = match self.hash {
            Hash::Sha1 => hmac_bytes::<Hmac<sha1::Sha1>>(&self.key, &counter),
            Hash::Sha256 => hmac_bytes::<Hmac<sha2::Sha256>>(&self.key, &counter),
            Hash::Sha512 => hmac_bytes::<Hmac<sha2::Sha512>>(&self.key, &counter),
        };
        // Dynamic truncation (RFC 4226 §5.3).
        let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
        let mut word = [0u8; 4];
        if let Some(bytes) = mac.get(offset..offset + 4) {
            word.copy_from_slice(bytes);
        }
        let binary = u64::from(u32::from_be_bytes(word) & 0x7fff_ffff);
        let code = binary % 10u64.pow(self.digits);
        format!("{code:0width$}", width = self.digits as usize)
    }

    /// Seconds until the code at `unix_seconds` changes.
    pub fn seconds_left(&self, unix_seconds: u64) -> u64 {
        self.period - unix_seconds % self.period
    }
}

fn hmac_bytes<M: Mac + hmac::digest::KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
    match <M as hmac::digest::KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(message);
            mac.finalize().into_bytes().to_vec()
        }
        // HMAC takes keys of any length; this cannot happen.
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// RFC 6238, appendix B: time, SHA1, SHA256, SHA512 (8 digits, 30 s).
    const VECTORS: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1111111109, "07081804", "68084774", "25091201"),
        (1111111111, "14050471", "67062674", "99943326"),
        (1234567890, "89005924", "91819424", "93441116"),
        (2000000000, "69279037", "90698825", "38618901"),
        (20000000000, "65353130", "77737706", "47863826"),
    ];

    fn rfc_seed(len: usize) -> Vec<u8> {
        b"1234567890".iter().copied().cycle().take(len).collect()
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let sha1 = Totp::new(rfc_seed(20), Hash::Sha1, 8, 30).unwrap();
        let sha256 = Totp::new(rfc_seed(32), Hash::Sha256, 8, 30).unwrap();
        let sha512 = Totp::new(rfc_seed(64), Hash::Sha512, 8, 30).unwrap();
        for (time, one, two_five_six, five_one_two) in VECTORS {
            assert_eq!(sha1.code_at(time), one, "SHA1 at {time}");
            assert_eq!(sha256.code_at(time), two_five_six, "SHA256 at {time}");
            assert_eq!(sha512.code_at(time), five_one_two, "SHA512 at {time}");
        }
    }

    #[test]
    fn a_seed_from_the_server_makes_six_digit_codes_from_its_base32_secret() {
        let seed = OathSeed {
            // "12345678901234567890" in base32, lower case with padding removed.
            secret: "gezdgnbvgy3tqojqgezdgnbvgy3tqojq".into(),
            algorithm: "SHA1".into(),
            digits: 6,
            period: 30,
        };
        let totp = Totp::from_seed(&seed).unwrap();
        assert_eq!(totp.code_at(59), "287082");
        assert_eq!(totp.code_at(1111111109), "081804");
        assert_eq!(totp.seconds_left(59), 1);
        assert_eq!(totp.seconds_left(60), 30);
    }

    #[test]
    fn a_bad_seed_is_refused() {
        let seed = |secret: &str, algorithm: &str, digits: u32, period: u64| OathSeed {
            secret: secret.into(),
            algorithm: algorithm.into(),
            digits,
            period,
        };
        assert_eq!(
            Totp::from_seed(&seed("not base32!", "SHA1", 6, 30)).unwrap_err(),
            TotpError::Secret
        );
        assert_eq!(
            Totp::from_seed(&seed("GEZDGNBV", "MD5", 6, 30)).unwrap_err(),
            TotpError::Algorithm("MD5".into())
        );
        assert_eq!(
            Totp::from_seed(&seed("GEZDGNBV", "sha-256", 4, 30)).unwrap_err(),
            TotpError::Digits(4)
        );
        assert_eq!(
            Totp::from_seed(&seed("GEZDGNBV", "SHA512", 6, 0)).unwrap_err(),
            TotpError::Period(0)
        );
        assert_eq!(
            Totp::from_seed(&seed("", "SHA1", 6, 30)).unwrap_err(),
            TotpError::EmptySecret
        );
    }
}
