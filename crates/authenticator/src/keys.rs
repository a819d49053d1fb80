//! Device keys (Ed25519 or ECDSA P-256) and the check of the server's signatures.
//!
//! Encodings follow the protocol: an Ed25519 public key is its 32 raw bytes, a P-256 public
//! key its SEC1 encoding (65 bytes, uncompressed), and every signature is 64 bytes (for
//! P-256 the fixed-length `r || s`, not DER). Keys and signatures travel as base64url
//! without padding.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};

/// What can go wrong with a key or a signature.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not base64url ({0})")]
    Base64(base64::DecodeError),
    #[error("a {algorithm} private key must be 32 bytes, this one has {len}")]
    PrivateKeyLength { algorithm: Algorithm, len: usize },
    #[error("the {0} private key is not valid")]
    InvalidPrivateKey(Algorithm),
    #[error("the server's public key is not a valid Ed25519 key")]
    InvalidServerKey,
    #[error("the signature is not 64 bytes")]
    SignatureLength,
    #[error("the signature does not verify")]
    BadSignature,
}

/// The signature algorithm of a device key, as the protocol names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Ed25519,
    P256,
}

impl Algorithm {
    /// The name used on the wire and in the accounts file.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::P256 => "p256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Base64url without padding (RFC 4648 §5), the protocol's binary encoding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn unb64(text: &str) -> Result<Vec<u8>, KeyError> {
    URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(KeyError::Base64)
}

/// The device's private key. It never leaves the device.
pub enum DeviceKey {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the private key.
        write!(
            f,
            "DeviceKey({}, {})",
            self.algorithm(),
            self.public_key_b64()
        )
    }
}

impl DeviceKey {
    /// Makes a new key from the operating system's random numbers.
    pub fn generate(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Ed25519 => {
                DeviceKey::Ed25519(ed25519_dalek::SigningKey::generate(&mut OsRng))
            }
            Algorithm::P256 => DeviceKey::P256(p256::ecdsa::SigningKey::random(&mut OsRng)),
        }
    }

    /// Reads a key saved with [`DeviceKey::private_key_b64`].
    pub fn from_private_b64(algorithm: Algorithm, text: &str) -> Result<Self, KeyError> {
        let bytes = unb64(text)?;
        match algorithm {
            Algorithm::Ed25519 => {
                let seed: [u8; 32] =
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| KeyError::PrivateKeyLength {
                            algorithm,
                            len: bytes.len(),
                        })?;
                Ok(DeviceKey::Ed25519(ed25519_dalek::SigningKey::from_bytes(
                    &seed,
                )))
            }
            Algorithm::P256 => {
                if bytes.len() != 32 {
                    return Err(KeyError::PrivateKeyLength {
                        algorithm,
                        len: bytes.len(),
                    });
                }
                p256::ecdsa::SigningKey::from_slice(&bytes)
                    .map(DeviceKey::P256)
                    .map_err(|_| KeyError::InvalidPrivateKey(algorithm))
            }
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            DeviceKey::Ed25519(_) => Algorithm::Ed25519,
            DeviceKey::P256(_) => Algorithm::P256,
        }
    }

    /// The private key as saved in the accounts file (32 bytes, base64url).
    pub fn private_key_b64(&self) -> String {
        match self {
            DeviceKey::Ed25519(key) => b64(&key.to_bytes()),
            DeviceKey::P256(key) => b64(&key.to_bytes()),
        }
    }

    /// The public key as the protocol sends it: 32 raw bytes for Ed25519, the uncompressed
    /// SEC1 point (65 bytes) for P-256.
    pub fn public_key_bytes(&self) -> Vec<u8> {
        match self {
            DeviceKey::Ed25519(key) => key.verifying_key().to_bytes().to_vec(),
            DeviceKey::P256(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
        }
    }

    pub fn public_key_b64(&self) -> String {
        b64(&self.public_key_bytes())
    }

    /// Signs `message`: 64 bytes, `r || s` for P-256 (ECDSA with SHA-256).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        match self {
            DeviceKey::Ed25519(key) => {
                use ed25519_dalek::Signer as _;
                key.sign(message).to_bytes().to_vec()
            }
            DeviceKey::P256(key) => {
                use p256::ecdsa::signature::Signer as _;
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_bytes().to_vec()
            }
        }
    }

    /// Signs `message` and encodes the signature as base64url.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        b64(&self.sign(message))
    }
}

/// The server's Ed25519 public key, given at activation.
#[derive(Debug, Clone)]
pub struct ServerKey(ed25519_dalek::VerifyingKey);

impl ServerKey {
    pub fn from_b64(text: &str) -> Result<Self, KeyError> {
        let bytes = unb64(text)?;
        let raw: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::InvalidServerKey)?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map(ServerKey)
            .map_err(|_| KeyError::InvalidServerKey)
    }

    /// Checks the base64url `signature` over `message` (strictly: no malleable or
    /// small-order forms).
    pub fn verify(&self, message: &[u8], signature_b64: &str) -> Result<(), KeyError> {
        let bytes = unb64(signature_b64)?;
        let raw: [u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::SignatureLength)?;
        let signature = ed25519_dalek::Signature::from_bytes(&raw);
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| KeyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn an_ed25519_signature_verifies_with_the_public_key_as_sent() {
        let key = DeviceKey::generate(Algorithm::Ed25519);
        let public = unb64(&key.public_key_b64()).unwrap();
        assert_eq!(public.len(), 32);
        let message = b"twofold-app-v1\nGET\n/app/v1/device\n1\nnonce\nhash";
        let signature = unb64(&key.sign_b64(message)).unwrap();
        assert_eq!(signature.len(), 64);

        let verifier =
            ed25519_dalek::VerifyingKey::from_bytes(&public.as_slice().try_into().unwrap())
                .unwrap();
        let signature = ed25519_dalek::Signature::from_slice(&signature).unwrap();
        verifier.verify_strict(message, &signature).unwrap();
        assert!(
            verifier
                .verify_strict(b"another message", &signature)
                .is_err()
        );
    }

    #[test]
    fn a_p256_signature_is_64_byte_r_s_and_verifies_with_the_sec1_key_as_sent() {
        use p256::ecdsa::signature::Verifier as _;
        let key = DeviceKey::generate(Algorithm::P256);
        let public = unb64(&key.public_key_b64()).unwrap();
        assert_eq!(public.len(), 65);
        assert_eq!(public[0], 0x04, "uncompressed SEC1 point");
        let message = b"twofold-app-v1\nactivate\n7K3MQ9TX2HBWV4RD\nkey";
        let signature = unb64(&key.sign_b64(message)).unwrap();
        assert_eq!(signature.len(), 64, "fixed-length r || s, not DER");

        let verifier = p256::ecdsa::VerifyingKey::from_sec1_bytes(&public).unwrap();
        let signature = p256::ecdsa::Signature::from_slice(&signature).unwrap();
        verifier.verify(message, &signature).unwrap();
        assert!(verifier.verify(b"another message", &signature).is_err());
    }

    #[test]
    fn a_saved_private_key_reads_back_as_the_same_key() {
        for algorithm in [Algorithm::Ed25519, Algorithm::P256] {
            let key = DeviceKey::generate(algorithm);
            let again = DeviceKey::from_private_b64(algorithm, &key.private_key_b64()).unwrap();
            assert_eq!(again.public_key_b64(), key.public_key_b64());
            assert_eq!(again.algorithm(), algorithm);
        }
        assert!(matches!(
            DeviceKey::from_private_b64(Algorithm::Ed25519, &b64(&[1; 31])),
            Err(KeyError::PrivateKeyLength { len: 31, .. })
        ));
    }

    #[test]
    fn the_server_key_accepts_its_signatures_and_refuses_others() {
        use ed25519_dalek::Signer as _;
        let server = ed25519_dalek::SigningKey::generate(&mut OsRng);
        let key = ServerKey::from_b64(&b64(server.verifying_key().as_bytes())).unwrap();
        let signature = b64(&server.sign(b"answer").to_bytes());
        key.verify(b"answer", &signature).unwrap();
        assert!(matches!(
            key.verify(b"changed answer", &signature),
            Err(KeyError::BadSignature)
        ));
        assert!(matches!(
            key.verify(b"answer", "c2hvcnQ"),
            Err(KeyError::SignatureLength)
        ));
        assert!(ServerKey::from_b64("AAAA").is_err());
    }

    #[test]
    fn the_debug_form_of_a_key_hides_the_private_key() {
        let key = DeviceKey::generate(Algorithm::Ed25519);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.private_key_b64()));
        assert!(shown.contains(&key.public_key_b64()));
    }
}
