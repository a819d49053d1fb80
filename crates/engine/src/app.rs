//! The authenticator app's protocol rules (`/app/v1`, see `docs/mobile-app.md`): activation
//! codes, the numbers to match, what a device signs and what the server signs, and the
//! checks of a device's key and signature. Pure: the randomness comes from the caller.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::clock::UnixTime;

/// The first line of everything signed in this protocol.
pub const PROTOCOL: &str = "twofold-app-v1";
/// How far a signed request's time may be from the server's, in seconds.
pub const CLOCK_WINDOW_SECONDS: i64 = 60;
/// How long a signed request's nonce is remembered (longer than the window both ways).
pub const NONCE_MEMORY_SECONDS: i64 = 600;
/// Characters of an activation code: 16 of Crockford's base32, 80 bits.
pub const ACTIVATION_CODE_CHARS: usize = 16;
/// The longest device name.
pub const MAX_DEVICE_NAME: usize = 64;

const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Why the app's request was refused (stable codes, as problems show them).
#[derive(Debug, Clone, PartialEq, Eq, Error, serde::Serialize, serde::Deserialize)]
pub enum AppError {
    #[error(
        "the activation code is not valid, was used already, or has expired; generate a new one"
    )]
    InvalidActivationCode,
    #[error(
        "this account has {limit} activated devices already, the most allowed; remove one first"
    )]
    DeviceLimit { limit: u8 },
    #[error("activating the mobile app is turned off")]
    ActivationDisabled,
    #[error("no such device: it was never activated or has been removed")]
    UnknownDevice,
    #[error(
        "the request's timestamp is more than 60 seconds from the server's time; check the device's clock"
    )]
    StaleTimestamp,
    #[error("the request's nonce was used before; every request needs a new one")]
    ReplayedNonce,
    #[error("the signature does not verify with the device's key")]
    BadSignature,
    #[error("the device key is not valid: {0}")]
    InvalidKey(String),
    #[error("no such request for this device")]
    RequestNotFound,
    #[error("this request was answered already")]
    RequestAnswered,
    #[error("this request has expired; sign in again")]
    RequestExpired,
    #[error("the push endpoint is refused: {0}")]
    InvalidPushEndpoint(String),
    #[error(
        "a request is already waiting in the app, or too many were denied lately; try again in a few minutes"
    )]
    PushLimited,
}

impl AppError {
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidActivationCode => "invalid_activation_code",
            AppError::DeviceLimit { .. } => "device_limit",
            AppError::ActivationDisabled => "activation_disabled",
            AppError::UnknownDevice => "unknown_device",
            AppError::StaleTimestamp => "stale_timestamp",
            AppError::ReplayedNonce => "replayed_nonce",
            AppError::BadSignature => "bad_signature",
            AppError::InvalidKey(_) => "invalid_request",
            AppError::RequestNotFound => "request_not_found",
            AppError::RequestAnswered => "request_answered",
            AppError::RequestExpired => "request_expired",
            AppError::InvalidPushEndpoint(_) => "invalid_push_endpoint",
            AppError::PushLimited => "rate_limited",
        }
    }
}

/// A new activation code from 10 random bytes: 16 characters of Crockford's base32.
pub fn activation_code(random: [u8; 10]) -> String {
    let mut bits: u128 = 0;
    for b in random {
        bits = (bits << 8) | u128::from(b);
    }
    (0..ACTIVATION_CODE_CHARS)
        .rev()
        .map(|i| char::from(CROCKFORD[((bits >> (i * 5)) & 31) as usize]))
        .collect()
}

/// An activation code as shown: four groups of four (`7K3M-Q9TX-2HBW-V4RD`).
pub fn grouped(code: &str) -> String {
    code.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// An activation code as typed, normalised (upper case, no dashes or spaces; `O` is `0`,
/// `I` and `L` are `1`), or `None` when it cannot be one.
pub fn normalize_activation_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(ACTIVATION_CODE_CHARS);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' | '\t' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        };
        if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
            return None;
        }
        out.push(c);
    }
    (out.len() == ACTIVATION_CODE_CHARS).then_some(out)
}

/// The activation URI a QR code carries.
pub fn activation_uri(url: &str, code: &str) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    format!("twofold://activate?url={}&code={}", enc(url), enc(code))
}

/// The number the page shows and the three the app offers, from random bytes: three
/// different two-digit numbers (10 to 99) in random order, one of them the page's.
pub fn matching_numbers(random: [u8; 8]) -> (u8, [u8; 3]) {
    let mut choices = [0u8; 3];
    let mut filled = 0;
    let mut i = 0;
    let mut extra = u64::from_le_bytes(random);
    while filled < 3 {
        let byte = if i < random.len() {
            random[i]
        } else {
            // More than eight draws are needed only after collisions: mix further bits.
            extra = extra
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (extra >> 56) as u8
        };
        i += 1;
        // 90 numbers; reject the top of the byte range so each is equally likely.
        if byte >= 180 {
            continue;
        }
        let n = 10 + byte % 90;
        if !choices[..filled].contains(&n) {
            choices[filled] = n;
            filled += 1;
        }
    }
    let pick = usize::from(random[7] % 3);
    (choices[pick], choices)
}

/// The lower-case hex SHA-256 of a body.
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// What a device signs for one request.
pub fn request_signing_string(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{PROTOCOL}\n{}\n{path_and_query}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        body_digest(body)
    )
}

/// What the server signs for its answer to the request that carried `nonce`.
pub fn response_signing_string(nonce: &str, body: &[u8]) -> String {
    format!("{PROTOCOL}\nresponse\n{nonce}\n{}", body_digest(body))
}

/// What a device signs at activation, proving it holds its key.
pub fn activation_proof_string(normalized_code: &str, public_key: &str) -> String {
    format!("{PROTOCOL}\nactivate\n{normalized_code}\n{public_key}")
}

/// Whether a signed request's time is close enough to the server's.
pub fn timestamp_in_window(timestamp: &str, now: UnixTime) -> bool {
    timestamp
        .parse::<i64>()
        .is_ok_and(|t| (t - now).abs() <= CLOCK_WINDOW_SECONDS)
}

/// Whether a nonce has the protocol's form (16 to 64 characters of base64url).
pub fn valid_nonce(nonce: &str) -> bool {
    (16..=64).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The signature algorithms a device key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyAlgorithm {
    Ed25519,
    P256,
}

impl KeyAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::P256 => "p256",
        }
    }

    pub fn parse(s: &str) -> Option<KeyAlgorithm> {
        match s {
            "ed25519" => Some(KeyAlgorithm::Ed25519),
            "p256" => Some(KeyAlgorithm::P256),
            _ => None,
        }
    }
}

/// A device's public key, parsed.
#[derive(Debug, Clone)]
pub enum DeviceKey {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
}

impl DeviceKey {
    /// Reads a public key as the protocol sends it (base64url).
    pub fn parse(algorithm: KeyAlgorithm, public_key: &str) -> Result<DeviceKey, AppError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(public_key.trim())
            .map_err(|_| AppError::InvalidKey("the public key is not base64url".into()))?;
        match algorithm {
            KeyAlgorithm::Ed25519 => {
                let raw: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                    AppError::InvalidKey("an Ed25519 public key is 32 bytes".into())
                })?;
                ed25519_dalek::VerifyingKey::from_bytes(&raw)
                    .map(DeviceKey::Ed25519)
                    .map_err(|_| AppError::InvalidKey("not an Ed25519 public key".into()))
            }
            KeyAlgorithm::P256 => p256::ecdsa::VerifyingKey::from_sec1_bytes(&bytes)
                .map(DeviceKey::P256)
                .map_err(|_| {
                    AppError::InvalidKey("not a P-256 public key in SEC1 encoding".into())
                }),
        }
    }

    /// Whether `signature` (base64url; 64 bytes for both algorithms) signs `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(sig) = URL_SAFE_NO_PAD.decode(signature.trim()) else {
            return false;
        };
        let Ok(raw): Result<[u8; 64], _> = sig.as_slice().try_into() else {
            return false;
        };
        match self {
            DeviceKey::Ed25519(key) => key
                .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&raw))
                .is_ok(),
            DeviceKey::P256(key) => {
                use p256::ecdsa::signature::Verifier;
                match p256::ecdsa::Signature::from_slice(&raw) {
                    Ok(s) => key.verify(message, &s).is_ok(),
                    Err(_) => false,
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ed25519_dalek::Signer;

    #[test]
    fn an_activation_code_is_sixteen_crockford_characters_shown_in_groups() {
        let code = activation_code([0xff; 10]);
        assert_eq!(code, "ZZZZZZZZZZZZZZZZ");
        let code = activation_code([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(code.len(), 16);
        assert_eq!(grouped(&code).len(), 19);
        assert_eq!(normalize_activation_code(&grouped(&code)), Some(code));
    }

    #[test]
    fn a_typed_code_forgives_case_dashes_and_look_alike_letters() {
        assert_eq!(
            normalize_activation_code("7k3m-q9tx 2hbw-v4rd"),
            Some("7K3MQ9TX2HBWV4RD".into())
        );
        assert_eq!(
            normalize_activation_code("OOOO-IIII-LLLL-0000"),
            Some("0000111111110000".into())
        );
        assert_eq!(normalize_activation_code("7K3M-Q9TX-2HBW"), None);
        assert_eq!(normalize_activation_code("7K3M-Q9TX-2HBW-V4RU"), None);
        assert_eq!(normalize_activation_code("7K3M-Q9TX-2HBW-V4RDé"), None);
    }

    #[test]
    fn the_activation_uri_percent_encodes_its_parts() {
        assert_eq!(
            activation_uri("https://mfa.example.com:8443/", "7K3M-Q9TX"),
            "twofold://activate?url=https%3A%2F%2Fmfa.example.com%3A8443%2F&code=7K3M-Q9TX"
        );
    }

    #[test]
    fn matching_offers_three_different_two_digit_numbers_including_the_pages() {
        for seed in 0..2000u64 {
            let mut random = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes();
            random[0] = (seed % 256) as u8;
            let (number, choices) = matching_numbers(random);
            assert!(choices.contains(&number));
            assert!(choices.iter().all(|c| (10..=99).contains(c)));
            assert!(
                choices[0] != choices[1] && choices[1] != choices[2] && choices[0] != choices[2]
            );
        }
        // Colliding draws still give three numbers.
        let (_, choices) = matching_numbers([5, 5, 5, 5, 5, 5, 5, 5]);
        assert!(choices[0] != choices[1] && choices[1] != choices[2] && choices[0] != choices[2]);
    }

    #[test]
    fn the_signed_string_is_the_six_lines_of_the_specification() {
        let s = request_signing_string(
            "get",
            "/app/v1/requests?wait=25",
            "1796032800",
            "AAAAAAAAAAAAAAAAAAAAAA",
            b"",
        );
        assert_eq!(
            s,
            "twofold-app-v1\nGET\n/app/v1/requests?wait=25\n1796032800\nAAAAAAAAAAAAAAAAAAAAAA\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn only_timestamps_within_a_minute_are_accepted() {
        assert!(timestamp_in_window("1000", 1060));
        assert!(timestamp_in_window("1060", 1000));
        assert!(!timestamp_in_window("1000", 1061));
        assert!(!timestamp_in_window("1061", 1000));
        assert!(!timestamp_in_window("soon", 1000));
    }

    #[test]
    fn nonces_must_be_sixteen_to_sixty_four_base64url_characters() {
        assert!(valid_nonce("abcdefghijklmnop"));
        assert!(!valid_nonce("short"));
        assert!(!valid_nonce("abcdefghijklmnop!"));
        assert!(!valid_nonce(&"a".repeat(65)));
    }

    #[test]
    fn an_ed25519_signature_verifies_and_a_changed_message_does_not() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        let device = DeviceKey::parse(KeyAlgorithm::Ed25519, &public).unwrap();
        let sig = URL_SAFE_NO_PAD.encode(key.sign(b"hello").to_bytes());
        assert!(device.verifies(b"hello", &sig));
        assert!(!device.verifies(b"hellO", &sig));
        assert!(!device.verifies(b"hello", "AAAA"));
    }

    #[test]
    fn a_p256_signature_in_fixed_length_form_verifies() {
        use p256::ecdsa::signature::Signer as _;
        let key = p256::ecdsa::SigningKey::from_slice(&[9; 32]).unwrap();
        let public = URL_SAFE_NO_PAD.encode(key.verifying_key().to_encoded_point(false).as_bytes());
        let device = DeviceKey::parse(KeyAlgorithm::P256, &public).unwrap();
        let sig: p256::ecdsa::Signature = key.sign(b"hello");
        let sig = URL_SAFE_NO_PAD.encode(sig.to_bytes());
        assert!(device.verifies(b"hello", &sig));
        assert!(!device.verifies(b"other", &sig));
    }

    #[test]
    fn keys_that_do_not_parse_are_refused_with_the_reason() {
        assert!(matches!(
            DeviceKey::parse(KeyAlgorithm::Ed25519, "AAAA"),
            Err(AppError::InvalidKey(_))
        ));
        assert!(matches!(
            DeviceKey::parse(KeyAlgorithm::P256, "not base64!"),
            Err(AppError::InvalidKey(_))
        ));
    }
}
