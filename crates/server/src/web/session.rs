//! Cookies, portal sessions and CSRF tokens.
//!
//! - `__Host-twofold-session`: a random 256-bit id; the store keeps only its SHA-256. It is
//!   replaced at every sign-in and ends after the idle timeout or the maximum lifetime.
//! - `__Host-twofold-pre`: a random nonce for visitors not signed in, so that the sign-in form
//!   and the language switcher carry a CSRF token without writing anything to the store.
//! - `__Host-twofold-lang`: the language picked with the switcher.
//!
//! All are `Secure; HttpOnly; SameSite=Lax; Path=/` (the `__Host-` prefix makes browsers
//! insist on that). A CSRF token is HMAC-SHA256(key, binding) where the binding is the
//! session id or the pre-session nonce, compared in constant time.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "__Host-twofold-session";
pub const PRE_COOKIE: &str = "__Host-twofold-pre";
pub const LANG_COOKIE: &str = "__Host-twofold-lang";

/// The value of cookie `name` in the request, if it is there and well-formed.
pub fn read_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
}

/// A `Set-Cookie` value. `max_age: None` makes a cookie that ends with the browser session.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn clear_cookie(name: &str) -> HeaderValue {
    set_cookie(name, "", Some(0))
}

/// A fresh random token: 256 bits, URL-safe.
pub fn new_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// What the store keeps in place of a session id.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Makes and checks CSRF tokens with the key all nodes share.
#[derive(Clone)]
pub struct Csrf {
    key: [u8; 32],
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf(****)")
    }
}

impl Csrf {
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub fn token(&self, binding: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(binding))
    }

    pub fn verify(&self, binding: &str, token: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(token.trim()) else {
            return false;
        };
        let expected = self.mac(binding);
        given.len() == expected.len() && bool::from(given.ct_eq(&expected))
    }

    fn mac(&self, binding: &str) -> Vec<u8> {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.key) else {
            return Vec::new();
        };
        mac.update(b"twofold-csrf\0");
        mac.update(binding.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_fits_only_its_own_binding_and_key() {
        let csrf = Csrf::new([7; 32]);
        let token = csrf.token("session-a");
        assert!(csrf.verify("session-a", &token));
        assert!(!csrf.verify("session-b", &token));
        assert!(!Csrf::new([8; 32]).verify("session-a", &token));
        assert!(!csrf.verify("session-a", ""));
        assert!(!csrf.verify("session-a", "not base64 !!"));
    }

    #[test]
    fn cookies_are_read_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-twofold-session=abc; b=2"),
        );
        assert_eq!(read_cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(read_cookie(&h, PRE_COOKIE), None);
    }

    #[test]
    fn cookies_carry_the_secure_attributes() {
        let v = set_cookie(SESSION_COOKIE, "x", None);
        let s = v.to_str().unwrap_or_default();
        assert!(
            s.contains("Secure")
                && s.contains("HttpOnly")
                && s.contains("SameSite=Lax")
                && s.contains("Path=/")
        );
    }
}
