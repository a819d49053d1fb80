//! OATH one-time passwords: HOTP (RFC 4226) and TOTP (RFC 6238).
//!
//! The store keeps an [`OathState`] per token; [`verify`] takes it and returns the state to
//! write back, so that a code is accepted once: a TOTP step at or below the last used one, or
//! an HOTP counter below the next expected one, is refused as a replay.
//!
//! Choices made here:
//! - The HMAC is keyed once per verification and cloned for each candidate step or counter,
//!   and candidates are compared as numbers (the truncated value modulo 10^digits, which
//!   with a fixed number of digits is the code itself), so a verification allocates nothing.
//! - Every candidate in the window is computed and compared with `subtle` before anything is
//!   decided: how long a verification takes says nothing about which candidate matched.
//! - Two candidates can share a code (about one window in 300,000 for six digits). A code
//!   is then taken at the first step or counter that is still fresh, so a collision with a
//!   used step cannot turn a genuine code into a "replayed" one.
//! - Typed codes are read strictly: ASCII digits only, surrounding spaces and one space or
//!   dash in the middle allowed ("123 456", "1234-5678"); anything else is malformed, and
//!   input over 64 bytes is refused before it is looked at.
//! - The cost of a verification is one HMAC per candidate, so the window settings bound it;
//!   they are expected to be small (the defaults are ±1 step and 10 counters ahead).

use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// The HMAC hash function of a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

/// Time-based (with its period in seconds) or counter-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "type")]
pub enum OathKind {
    Totp { period: u32 },
    Hotp,
}

/// What a token computes: algorithm, number of digits (6 or 8) and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OathParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub kind: OathKind,
}

impl Default for OathParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            kind: OathKind::Totp { period: 30 },
        }
    }
}

/// What the store remembers of a token between verifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct OathState {
    /// HOTP: the next counter value expected (codes below it are used up).
    pub counter: u64,
    /// TOTP: the last time step whose code was accepted.
    pub last_step: Option<u64>,
    /// TOTP: the token's clock offset, in steps, as last observed.
    pub drift: i64,
}

/// How far from the expected value a code may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// TOTP: steps accepted either side of the expected one (a setting; 1 by default).
    pub totp_steps: u32,
    /// HOTP: counter values accepted ahead of the expected one (a setting; 10 by default).
    pub hotp_look_ahead: u32,
}

impl Default for Window {
    fn default() -> Self {
        Self {
            totp_steps: 1,
            hotp_look_ahead: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OathError {
    /// Not the right number of digits, or not digits at all.
    #[error("the code must be {digits} digits")]
    Malformed { digits: u8 },
    #[error("the code is not valid")]
    WrongCode,
    #[error("the code has already been used")]
    Replayed,
    #[error("the token's parameters are not supported")]
    Unsupported,
}

impl OathError {
    pub fn code(&self) -> &'static str {
        match self {
            OathError::Malformed { .. } => "invalid_code_format",
            OathError::WrongCode => "invalid_code",
            OathError::Replayed => "code_already_used",
            OathError::Unsupported => "unsupported_token",
        }
    }
}

/// How many random bytes a new secret has: 160 bits, the length RFC 4226 recommends.
pub const SECRET_LEN: usize = 20;

/// Typed input longer than this is refused before it is looked at.
const MAX_CODE_INPUT: usize = 64;

/// How many counters below the expected one are checked to tell a replayed HOTP code from a
/// wrong one.
const HOTP_REPLAY_LOOK_BEHIND: u64 = 10;

/// The HOTP value (RFC 4226) of `secret` at `counter`: dynamic truncation, zero-padded to
/// `digits`, which must be 6 or 8.
pub fn hotp(
    secret: &[u8],
    counter: u64,
    algorithm: Algorithm,
    digits: u8,
) -> Result<String, OathError> {
    let generator = CodeGenerator::new(secret, algorithm, digits)?;
    Ok(format_code(generator.code(counter), digits))
}

/// The TOTP time step (RFC 6238, T0 = 0) of Unix time `now` for a period in seconds.
/// Times before the epoch and a period of 0 give step 0.
pub fn totp_step(now: i64, period: u32) -> u64 {
    if period == 0 {
        return 0;
    }
    u64::try_from(now).map_or(0, |seconds| seconds / u64::from(period))
}

/// A code as typed, reduced to its `digits` ASCII digits: spaces around it and one space or
/// dash in the middle ("123 456", "1234-5678") are dropped; anything else, including digits
/// of other scripts and input over 64 bytes, is `Malformed`. `digits` must be 6 or 8.
pub fn normalize_code(input: &str, digits: u8) -> Result<String, OathError> {
    let value = parse_code(input, digits)?;
    Ok(format_code(value, digits))
}

/// Checks a typed `code` against a token and returns the state to store if it is accepted.
///
/// TOTP: the steps within `window.totp_steps` of the expected one (the current step moved by
/// the remembered drift) are candidates; a step at or below the last accepted one is a
/// replay. The accepted step becomes the last one and its distance from the current step the
/// new drift. HOTP: the counters from the expected one to `window.hotp_look_ahead` beyond it
/// are candidates; the next expected counter becomes the one after the accepted one. A code
/// matching one of the ten counters just below the expected one is reported as a replay.
pub fn verify(
    secret: &[u8],
    params: &OathParams,
    state: &OathState,
    code: &str,
    now: i64,
    window: Window,
) -> Result<OathState, OathError> {
    let generator = CodeGenerator::for_params(secret, params)?;
    let typed = parse_code(code, params.digits)?;
    match params.kind {
        OathKind::Totp { period } => {
            let current = totp_step(now, period);
            let expected = current.saturating_add_signed(state.drift);
            let width = u64::from(window.totp_steps);
            let mut fresh = FirstMatch::default();
            let mut seen = Choice::from(0);
            for step in expected.saturating_sub(width)..=expected.saturating_add(width) {
                let hit = generator.matches(step, typed);
                fresh.offer(step, hit & is_after(step, state.last_step));
                seen |= hit;
            }
            if let Some(step) = fresh.found() {
                Ok(OathState {
                    last_step: Some(step),
                    drift: steps_between(step, current),
                    ..*state
                })
            } else if bool::from(seen) {
                Err(OathError::Replayed)
            } else {
                Err(OathError::WrongCode)
            }
        }
        OathKind::Hotp => {
            let first = state.counter;
            let last = first.saturating_add(u64::from(window.hotp_look_ahead));
            let mut accepted = FirstMatch::default();
            for counter in first..=last {
                accepted.offer(counter, generator.matches(counter, typed));
            }
            if let Some(counter) = accepted.found() {
                return Ok(OathState {
                    counter: counter.checked_add(1).ok_or(OathError::Unsupported)?,
                    ..*state
                });
            }
            let mut used = Choice::from(0);
            for counter in first.saturating_sub(HOTP_REPLAY_LOOK_BEHIND)..first {
                used |= generator.matches(counter, typed);
            }
            Err(if bool::from(used) {
                OathError::Replayed
            } else {
                OathError::WrongCode
            })
        }
    }
}

/// Resynchronises a token from two consecutive codes, `first` then `second`, searched far
/// wider than a verification looks.
///
/// TOTP: a step `s` within `search` steps of the current one (ignoring the remembered drift),
/// after the last accepted step, with `first` at `s` and `second` at `s + 1`; the new state
/// has `s + 1` as its last step and its distance from the current step as its drift. HOTP: a
/// counter `c` from the expected one to `search` beyond it with `first` at `c` and `second`
/// at `c + 1`; the next expected counter becomes `c + 2`. Without such a pair, `WrongCode`.
pub fn resync(
    secret: &[u8],
    params: &OathParams,
    state: &OathState,
    first: &str,
    second: &str,
    now: i64,
    search: u32,
) -> Result<OathState, OathError> {
    let generator = CodeGenerator::for_params(secret, params)?;
    let first = parse_code(first, params.digits)?;
    let second = parse_code(second, params.digits)?;
    let search = u64::from(search);
    match params.kind {
        OathKind::Totp { period } => {
            let current = totp_step(now, period);
            let lowest = current.saturating_sub(search);
            let highest = current.saturating_add(search);
            let pair = find_pair(&generator, lowest, highest, first, second, |step| {
                is_after(step, state.last_step)
            });
            let last_step = pair
                .and_then(|step| step.checked_add(1))
                .ok_or(OathError::WrongCode)?;
            Ok(OathState {
                last_step: Some(last_step),
                drift: steps_between(last_step, current),
                ..*state
            })
        }
        OathKind::Hotp => {
            let lowest = state.counter;
            let highest = lowest.saturating_add(search);
            let pair = find_pair(&generator, lowest, highest, first, second, |_| {
                Choice::from(1)
            });
            let counter = pair
                .and_then(|counter| counter.checked_add(2))
                .ok_or(OathError::WrongCode)?;
            Ok(OathState { counter, ..*state })
        }
    }
}

/// A new random secret of [`SECRET_LEN`] bytes from the operating system.
pub fn generate_secret() -> Vec<u8> {
    generate_secret_with(&mut rand::rngs::OsRng)
}

/// A new random secret of [`SECRET_LEN`] bytes from the given generator.
pub fn generate_secret_with<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> Vec<u8> {
    let mut secret = vec![0; SECRET_LEN];
    rng.fill_bytes(&mut secret);
    secret
}

/// RFC 4648 base32, upper case, without padding: what authenticator apps expect.
pub fn encode_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// Reads base32 as people and token vendors write it: either case, spaces anywhere, `=`
/// padding at the end (its amount is not checked), unused trailing bits ignored. `None` for
/// any other character, `=` before the end, or a length no byte string encodes to. An empty
/// text gives an empty secret; refusing short secrets is the caller's decision.
pub fn decode_base32(text: &str) -> Option<Vec<u8>> {
    // Wiped if the text turns out malformed half way; never reallocated, so never copied.
    let mut secret = zeroize::Zeroizing::new(Vec::with_capacity(text.len() * 5 / 8));
    let mut bits: u32 = 0;
    let mut pending: u8 = 0;
    let mut symbols: usize = 0;
    let mut padding = false;
    for character in text.bytes() {
        let value = match character {
            b' ' => continue,
            b'=' => {
                padding = true;
                continue;
            }
            _ if padding => return None,
            b'A'..=b'Z' => character - b'A',
            b'a'..=b'z' => character - b'a',
            b'2'..=b'7' => character - b'2' + 26,
            _ => return None,
        };
        symbols += 1;
        bits = (bits << 5) | u32::from(value);
        pending += 5;
        if pending >= 8 {
            pending -= 8;
            secret.push((bits >> pending) as u8);
            bits &= (1 << pending) - 1;
        }
    }
    // Five bits or more left over means a symbol that encodes no byte at all.
    if (symbols * 5) % 8 >= 5 {
        return None;
    }
    Some(std::mem::take(&mut *secret))
}

/// The Key Uri Format (`otpauth://`) that authenticator apps read from a QR code:
/// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`,
/// or for HOTP `otpauth://hotp/…&counter=N` with the given `counter` (ignored for TOTP).
/// Issuer and account are percent-encoded (a space as `%20`, a `:` as `%3A`); without an
/// issuer the label is the account alone and the `issuer` parameter is left out.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret: &[u8],
    params: &OathParams,
    counter: u64,
) -> String {
    let kind = match params.kind {
        OathKind::Totp { .. } => "totp",
        OathKind::Hotp => "hotp",
    };
    let issuer = percent_encode(issuer);
    let account = percent_encode(account);
    let mut uri = format!("otpauth://{kind}/");
    if !issuer.is_empty() {
        uri.push_str(&issuer);
        uri.push(':');
    }
    uri.push_str(&account);
    uri.push_str("?secret=");
    uri.push_str(&encode_base32(secret));
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        uri.push_str(&issuer);
    }
    uri.push_str("&algorithm=");
    uri.push_str(algorithm_uri_name(params.algorithm));
    uri.push_str(&format!("&digits={}", params.digits));
    match params.kind {
        OathKind::Totp { period } => uri.push_str(&format!("&period={period}")),
        OathKind::Hotp => uri.push_str(&format!("&counter={counter}")),
    }
    uri
}

fn algorithm_uri_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::Sha1 => "SHA1",
        Algorithm::Sha256 => "SHA256",
        Algorithm::Sha512 => "SHA512",
    }
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(text: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    encoded
}

/// 10^digits for the supported numbers of digits.
fn modulus(digits: u8) -> Result<u32, OathError> {
    match digits {
        6 => Ok(1_000_000),
        8 => Ok(100_000_000),
        _ => Err(OathError::Unsupported),
    }
}

fn format_code(value: u32, digits: u8) -> String {
    format!("{value:0width$}", width = usize::from(digits))
}

/// Reads a typed code as its numeric value (see [`normalize_code`] for what is accepted).
/// How long this takes depends on the typed input only, never on the secret.
fn parse_code(input: &str, digits: u8) -> Result<u32, OathError> {
    let malformed = OathError::Malformed { digits };
    if input.len() > MAX_CODE_INPUT {
        return Err(malformed);
    }
    modulus(digits)?;
    let width = usize::from(digits);
    let middle = width / 2;
    let mut value: u32 = 0;
    let mut count = 0;
    for (index, byte) in input.trim_matches(' ').bytes().enumerate() {
        match byte {
            b'0'..=b'9' if count < width => {
                value = value * 10 + u32::from(byte - b'0');
                count += 1;
            }
            // Only reachable with `middle` digits before it: any other byte returned.
            b' ' | b'-' if index == middle => {}
            _ => return Err(malformed),
        }
    }
    if count == width {
        Ok(value)
    } else {
        Err(malformed)
    }
}

/// Whether `step` comes after the last accepted one, as a `Choice` to mix with secret ones.
fn is_after(step: u64, last_step: Option<u64>) -> Choice {
    Choice::from(u8::from(last_step.is_none_or(|last| step > last)))
}

/// `step - current`, saturated to the range of `i64`.
fn steps_between(step: u64, current: u64) -> i64 {
    let difference = i128::from(step) - i128::from(current);
    i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
}

/// The lowest `s` in `lowest..=highest` (with `allowed(s)`) where `first` is the code at `s`
/// and `second` the code at `s + 1`. One HMAC per position, all computed, compared in
/// constant time.
fn find_pair(
    generator: &CodeGenerator,
    lowest: u64,
    highest: u64,
    first: u32,
    second: u32,
    allowed: impl Fn(u64) -> Choice,
) -> Option<u64> {
    let mut pair = FirstMatch::default();
    let mut previous_is_first = Choice::from(0);
    for position in lowest..=highest.saturating_add(1) {
        let code = generator.code(position);
        if position > lowest {
            let start = position - 1;
            pair.offer(
                start,
                previous_is_first & code.ct_eq(&second) & allowed(start),
            );
        }
        previous_is_first = code.ct_eq(&first);
    }
    pair.found()
}

/// Remembers the first position offered with a true `Choice`, without branching on it.
struct FirstMatch {
    found: Choice,
    position: u64,
}

impl Default for FirstMatch {
    fn default() -> Self {
        Self {
            found: Choice::from(0),
            position: 0,
        }
    }
}

impl FirstMatch {
    fn offer(&mut self, position: u64, hit: Choice) {
        self.position
            .conditional_assign(&position, hit & !self.found);
        self.found |= hit;
    }

    fn found(&self) -> Option<u64> {
        bool::from(self.found).then_some(self.position)
    }
}

/// An HMAC keyed once with the token's secret.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// Computes a token's codes as numbers below 10^digits.
struct CodeGenerator {
    mac: KeyedMac,
    modulus: u32,
}

impl CodeGenerator {
    /// Refuses an empty secret: anyone could compute its codes.
    fn new(secret: &[u8], algorithm: Algorithm, digits: u8) -> Result<Self, OathError> {
        let modulus = modulus(digits)?;
        if secret.is_empty() {
            return Err(OathError::Unsupported);
        }
        let unsupported = |_| OathError::Unsupported;
        let mac = match algorithm {
            Algorithm::Sha1 => KeyedMac::Sha1(Hmac::new_from_slice(secret).map_err(unsupported)?),
            Algorithm::Sha256 => {
                KeyedMac::Sha256(Hmac::new_from_slice(secret).map_err(unsupported)?)
            }
            Algorithm::Sha512 => {
                KeyedMac::Sha512(Hmac::new_from_slice(secret).map_err(unsupported)?)
            }
        };
        Ok(Self { mac, modulus })
    }

    /// Also refuses a TOTP period of 0.
    fn for_params(secret: &[u8], params: &OathParams) -> Result<Self, OathError> {
        if params.kind == (OathKind::Totp { period: 0 }) {
            return Err(OathError::Unsupported);
        }
        Self::new(secret, params.algorithm, params.digits)
    }

    fn code(&self, counter: u64) -> u32 {
        let truncated = match &self.mac {
            KeyedMac::Sha1(mac) => truncate(mac, counter),
            KeyedMac::Sha256(mac) => truncate(mac, counter),
            KeyedMac::Sha512(mac) => truncate(mac, counter),
        };
        truncated % self.modulus
    }

    fn matches(&self, counter: u64, typed: u32) -> Choice {
        self.code(counter).ct_eq(&typed)
    }
}

/// RFC 4226 section 5.3: HMAC of the big-endian counter, then dynamic truncation to 31 bits.
fn truncate<M: Mac + Clone>(keyed: &M, counter: u64) -> u32 {
    let mut mac = keyed.clone();
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    // The offset is at most 15 and every digest here has at least 20 bytes, so the four
    // bytes read are always there; reading them through an iterator avoids any indexing.
    let offset = digest.last().map_or(0, |last| usize::from(last & 0x0f));
    let value = digest
        .iter()
        .skip(offset)
        .take(4)
        .fold(0u32, |value, byte| (value << 8) | u32::from(*byte));
    value & 0x7fff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
    /// 2023-11-14T22:13:20Z: twenty seconds into its 30-second step.
    const NOW: i64 = 1_700_000_000;

    fn totp() -> OathParams {
        OathParams::default()
    }

    fn hotp_params() -> OathParams {
        OathParams {
            kind: OathKind::Hotp,
            ..OathParams::default()
        }
    }

    fn current() -> u64 {
        totp_step(NOW, 30)
    }

    /// The SHA-1, six-digit code of the test seed at a step or counter.
    fn code_at(step: u64) -> String {
        hotp(SEED_SHA1, step, Algorithm::Sha1, 6).unwrap()
    }

    fn verify_totp(state: &OathState, code: &str) -> Result<OathState, OathError> {
        verify(SEED_SHA1, &totp(), state, code, NOW, Window::default())
    }

    fn verify_hotp(state: &OathState, code: &str) -> Result<OathState, OathError> {
        verify(
            SEED_SHA1,
            &hotp_params(),
            state,
            code,
            NOW,
            Window::default(),
        )
    }

    #[test]
    fn rfc4226_appendix_d_values() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in (0u64..).zip(expected) {
            assert_eq!(hotp(SEED_SHA1, counter, Algorithm::Sha1, 6).unwrap(), code);
        }
    }

    #[test]
    fn rfc6238_appendix_b_values() {
        let rows: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in rows {
            for (algorithm, seed, code) in [
                (Algorithm::Sha1, SEED_SHA1, sha1),
                (Algorithm::Sha256, SEED_SHA256, sha256),
                (Algorithm::Sha512, SEED_SHA512, sha512),
            ] {
                let step = totp_step(time, 30);
                assert_eq!(
                    hotp(seed, step, algorithm, 8).unwrap(),
                    code,
                    "{algorithm:?} at {time}"
                );
                let params = OathParams {
                    algorithm,
                    digits: 8,
                    kind: OathKind::Totp { period: 30 },
                };
                let state = verify(
                    seed,
                    &params,
                    &OathState::default(),
                    code,
                    time,
                    Window::default(),
                )
                .unwrap();
                assert_eq!(state.last_step, Some(step));
                assert_eq!(state.drift, 0);
            }
        }
    }

    #[test]
    fn only_six_or_eight_digits_are_supported() {
        for digits in [0, 1, 5, 7, 9, 10, 255] {
            assert_eq!(
                hotp(SEED_SHA1, 0, Algorithm::Sha1, digits),
                Err(OathError::Unsupported)
            );
            assert_eq!(
                normalize_code("123456", digits),
                Err(OathError::Unsupported)
            );
            let params = OathParams {
                digits,
                ..OathParams::default()
            };
            assert_eq!(
                verify(
                    SEED_SHA1,
                    &params,
                    &OathState::default(),
                    "123456",
                    NOW,
                    Window::default()
                ),
                Err(OathError::Unsupported)
            );
        }
    }

    #[test]
    fn an_empty_secret_or_a_zero_period_is_unsupported() {
        assert_eq!(
            hotp(&[], 0, Algorithm::Sha1, 6),
            Err(OathError::Unsupported)
        );
        assert_eq!(
            verify(
                &[],
                &totp(),
                &OathState::default(),
                "123456",
                NOW,
                Window::default()
            ),
            Err(OathError::Unsupported)
        );
        let no_period = OathParams {
            kind: OathKind::Totp { period: 0 },
            ..OathParams::default()
        };
        assert_eq!(
            verify(
                SEED_SHA1,
                &no_period,
                &OathState::default(),
                "123456",
                NOW,
                Window::default()
            ),
            Err(OathError::Unsupported)
        );
        assert_eq!(
            resync(
                SEED_SHA1,
                &no_period,
                &OathState::default(),
                "123456",
                "654321",
                NOW,
                10
            ),
            Err(OathError::Unsupported)
        );
    }

    #[test]
    fn time_steps_count_whole_periods_and_survive_zero_period_or_negative_time() {
        assert_eq!(totp_step(0, 30), 0);
        assert_eq!(totp_step(29, 30), 0);
        assert_eq!(totp_step(30, 30), 1);
        assert_eq!(totp_step(59, 30), 1);
        assert_eq!(totp_step(NOW, 60), 28_333_333);
        assert_eq!(totp_step(-1, 30), 0);
        assert_eq!(totp_step(i64::MIN, 30), 0);
        assert_eq!(totp_step(NOW, 0), 0);
        assert_eq!(totp_step(i64::MAX, 1), i64::MAX as u64);
    }

    #[test]
    fn codes_typed_with_spaces_or_a_middle_separator_are_normalized() {
        for typed in [
            "123456",
            " 123456",
            "123456  ",
            "123 456",
            "123-456",
            "  123 456 ",
        ] {
            assert_eq!(normalize_code(typed, 6).unwrap(), "123456", "{typed:?}");
        }
        for typed in ["01234567", "0123 4567", "0123-4567"] {
            assert_eq!(normalize_code(typed, 8).unwrap(), "01234567", "{typed:?}");
        }
        assert_eq!(normalize_code("000000", 6).unwrap(), "000000");
    }

    #[test]
    fn misplaced_separators_and_wrong_lengths_are_malformed() {
        let malformed = Err(OathError::Malformed { digits: 6 });
        for typed in [
            "", " ", "12345", "1234567", "12 3456", "1234 56", "123  456", "123--456", "123 -456",
            "-123456", "123456-", "12-34-56", "123\t456", "123456\n", "12a456", "+12345",
            "123_456", "123.456",
        ] {
            assert_eq!(normalize_code(typed, 6), malformed, "{typed:?}");
        }
        assert_eq!(
            normalize_code("123 456", 8),
            Err(OathError::Malformed { digits: 8 })
        );
        assert_eq!(
            normalize_code("123456", 8),
            Err(OathError::Malformed { digits: 8 })
        );
        assert_eq!(normalize_code("12345678", 6), malformed);
    }

    #[test]
    fn overlong_or_non_ascii_codes_are_malformed() {
        let malformed = Err(OathError::Malformed { digits: 6 });
        assert_eq!(normalize_code(&"1".repeat(65), 6), malformed);
        assert_eq!(normalize_code(&"1".repeat(10_000), 6), malformed);
        assert_eq!(normalize_code(&format!("{:>65}", "123456"), 6), malformed);
        assert_eq!(
            normalize_code(&format!("{:>64}", "123456"), 6).unwrap(),
            "123456"
        );
        for typed in [
            "١٢٣٤٥٦",       // Arabic-Indic
            "۱۲۳۴۵۶",       // Extended Arabic-Indic
            "１２３４５６", // full-width
            "१२३४५६",       // Devanagari
            "12345٦",
            "¹23456",
            "123\u{a0}456", // no-break space
            "123\u{2013}456",
            "123456\u{200b}",
            "\u{0}123456",
        ] {
            assert_eq!(normalize_code(typed, 6), malformed, "{typed:?}");
            assert_eq!(
                verify_totp(&OathState::default(), typed),
                Err(OathError::Malformed { digits: 6 }),
                "{typed:?}"
            );
        }
    }

    #[test]
    fn a_code_for_the_current_step_is_accepted_and_remembered() {
        let state = OathState {
            counter: 7,
            ..OathState::default()
        };
        let next = verify_totp(&state, &code_at(current())).unwrap();
        assert_eq!(
            next,
            OathState {
                counter: 7,
                last_step: Some(current()),
                drift: 0,
            }
        );
        // As people type it.
        let code = code_at(current());
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify_totp(&state, &spaced), Ok(next));
    }

    #[test]
    fn a_code_from_the_next_step_is_accepted_and_drift_remembered() {
        let state = verify_totp(&OathState::default(), &code_at(current() + 1)).unwrap();
        assert_eq!(state.last_step, Some(current() + 1));
        assert_eq!(state.drift, 1);
        // Ten minutes later the token is still a step ahead: the window is centred there, so
        // two steps ahead of the clock is now within reach.
        let later = NOW + 600;
        let step = totp_step(later, 30);
        let again = verify(
            SEED_SHA1,
            &totp(),
            &state,
            &code_at(step + 2),
            later,
            Window::default(),
        )
        .unwrap();
        assert_eq!(again.last_step, Some(step + 2));
        assert_eq!(again.drift, 2);
    }

    #[test]
    fn codes_at_the_window_edges_are_accepted_and_beyond_refused() {
        let fresh = OathState::default();
        let behind = verify_totp(&fresh, &code_at(current() - 1)).unwrap();
        assert_eq!((behind.last_step, behind.drift), (Some(current() - 1), -1));
        let ahead = verify_totp(&fresh, &code_at(current() + 1)).unwrap();
        assert_eq!((ahead.last_step, ahead.drift), (Some(current() + 1), 1));
        assert_eq!(
            verify_totp(&fresh, &code_at(current() - 2)),
            Err(OathError::WrongCode)
        );
        assert_eq!(
            verify_totp(&fresh, &code_at(current() + 2)),
            Err(OathError::WrongCode)
        );

        let wide = Window {
            totp_steps: 2,
            ..Window::default()
        };
        for step in [current() - 2, current() + 2] {
            let state = verify(SEED_SHA1, &totp(), &fresh, &code_at(step), NOW, wide).unwrap();
            assert_eq!(state.last_step, Some(step));
        }
        let exact = Window {
            totp_steps: 0,
            ..Window::default()
        };
        assert!(verify(SEED_SHA1, &totp(), &fresh, &code_at(current()), NOW, exact).is_ok());
        assert_eq!(
            verify(
                SEED_SHA1,
                &totp(),
                &fresh,
                &code_at(current() + 1),
                NOW,
                exact
            ),
            Err(OathError::WrongCode)
        );
    }

    #[test]
    fn remembered_drift_moves_the_window() {
        let state = OathState {
            drift: 5,
            ..OathState::default()
        };
        assert_eq!(
            verify_totp(&state, &code_at(current())),
            Err(OathError::WrongCode)
        );
        let next = verify_totp(&state, &code_at(current() + 6)).unwrap();
        assert_eq!((next.last_step, next.drift), (Some(current() + 6), 6));

        let slow = OathState {
            drift: -3,
            ..OathState::default()
        };
        let next = verify_totp(&slow, &code_at(current() - 4)).unwrap();
        assert_eq!((next.last_step, next.drift), (Some(current() - 4), -4));
    }

    #[test]
    fn replayed_totp_code_is_rejected() {
        let code = code_at(current());
        let state = verify_totp(&OathState::default(), &code).unwrap();
        assert_eq!(verify_totp(&state, &code), Err(OathError::Replayed));
        // Still refused later in the same step and in the next one, while in the window.
        for later in [NOW + 5, NOW + 30] {
            assert_eq!(
                verify(SEED_SHA1, &totp(), &state, &code, later, Window::default()),
                Err(OathError::Replayed)
            );
        }
    }

    #[test]
    fn an_earlier_step_after_a_later_one_is_rejected_as_replayed() {
        let state = verify_totp(&OathState::default(), &code_at(current() + 1)).unwrap();
        assert_eq!(
            verify_totp(&state, &code_at(current())),
            Err(OathError::Replayed)
        );
        assert_eq!(
            verify_totp(&state, &code_at(current() + 1)),
            Err(OathError::Replayed)
        );
        let next = verify_totp(&state, &code_at(current() + 2)).unwrap();
        assert_eq!(next.last_step, Some(current() + 2));
    }

    #[test]
    fn a_wrong_totp_code_is_refused() {
        let state = OathState::default();
        assert_eq!(
            verify_totp(&state, &code_at(current() + 100)),
            Err(OathError::WrongCode)
        );
        assert_eq!(
            verify_totp(&state, &code_at(current() - 100)),
            Err(OathError::WrongCode)
        );
    }

    #[test]
    fn hotp_accepts_the_expected_counter_and_moves_past_it() {
        let state = verify_hotp(&OathState::default(), "755224").unwrap();
        assert_eq!(state.counter, 1);
        let state = verify_hotp(&state, "287 082").unwrap();
        assert_eq!(
            state,
            OathState {
                counter: 2,
                ..OathState::default()
            }
        );
    }

    #[test]
    fn hotp_look_ahead_accepts_counter_plus_ten_but_not_eleven() {
        let state = OathState {
            counter: 100,
            ..OathState::default()
        };
        assert_eq!(verify_hotp(&state, &code_at(110)).unwrap().counter, 111);
        assert_eq!(
            verify_hotp(&state, &code_at(111)),
            Err(OathError::WrongCode)
        );
        let narrow = Window {
            hotp_look_ahead: 0,
            ..Window::default()
        };
        assert!(
            verify(
                SEED_SHA1,
                &hotp_params(),
                &state,
                &code_at(100),
                NOW,
                narrow
            )
            .is_ok()
        );
        assert_eq!(
            verify(
                SEED_SHA1,
                &hotp_params(),
                &state,
                &code_at(101),
                NOW,
                narrow
            ),
            Err(OathError::WrongCode)
        );
    }

    #[test]
    fn replayed_hotp_code_is_rejected() {
        let state = verify_hotp(&OathState::default(), &code_at(3)).unwrap();
        assert_eq!(state.counter, 4);
        // The code just used, and the ones skipped over, are used up.
        for counter in 0..4 {
            assert_eq!(
                verify_hotp(&state, &code_at(counter)),
                Err(OathError::Replayed)
            );
        }
        // Long-used codes are simply wrong.
        let far = OathState {
            counter: 50,
            ..OathState::default()
        };
        assert_eq!(verify_hotp(&far, &code_at(40)), Err(OathError::Replayed));
        assert_eq!(verify_hotp(&far, &code_at(39)), Err(OathError::WrongCode));
    }

    #[test]
    fn extreme_states_and_times_do_not_panic() {
        let code = code_at(0);
        for state in [
            OathState {
                counter: u64::MAX,
                last_step: Some(u64::MAX),
                drift: i64::MAX,
            },
            OathState {
                counter: 0,
                last_step: Some(0),
                drift: i64::MIN,
            },
        ] {
            for now in [i64::MIN, -1, 0, i64::MAX] {
                let _ = verify(SEED_SHA1, &totp(), &state, &code, now, Window::default());
                let _ = verify(
                    SEED_SHA1,
                    &hotp_params(),
                    &state,
                    &code,
                    now,
                    Window::default(),
                );
                let _ = resync(SEED_SHA1, &totp(), &state, &code, &code, now, 10);
                let _ = resync(SEED_SHA1, &hotp_params(), &state, &code, &code, now, 10);
            }
        }
        // A counter that cannot move on is not accepted.
        let last = OathState {
            counter: u64::MAX,
            ..OathState::default()
        };
        assert_eq!(
            verify_hotp(&last, &code_at(u64::MAX)),
            Err(OathError::Unsupported)
        );
    }

    #[test]
    fn totp_resync_finds_two_consecutive_codes_far_from_the_window() {
        let fresh = OathState::default();
        assert_eq!(
            verify_totp(&fresh, &code_at(current() + 40)),
            Err(OathError::WrongCode)
        );
        let first = code_at(current() + 40);
        let second = code_at(current() + 41);
        let state = resync(SEED_SHA1, &totp(), &fresh, &first, &second, NOW, 100).unwrap();
        assert_eq!((state.last_step, state.drift), (Some(current() + 41), 41));
        // The token now verifies normally, and the resync codes are used up.
        assert!(verify_totp(&state, &code_at(current() + 42)).is_ok());
        assert_eq!(verify_totp(&state, &second), Err(OathError::Replayed));

        // A token whose clock is behind.
        let first = code_at(current() - 50);
        let second = code_at(current() - 49);
        let state = resync(SEED_SHA1, &totp(), &fresh, &first, &second, NOW, 100).unwrap();
        assert_eq!((state.last_step, state.drift), (Some(current() - 49), -49));
    }

    #[test]
    fn resync_refuses_codes_that_are_not_consecutive_or_out_of_reach() {
        let fresh = OathState::default();
        let (a, b, c) = (
            code_at(current() + 40),
            code_at(current() + 41),
            code_at(current() + 42),
        );
        for (first, second) in [(&a, &c), (&b, &a), (&a, &a)] {
            assert_eq!(
                resync(SEED_SHA1, &totp(), &fresh, first, second, NOW, 100),
                Err(OathError::WrongCode)
            );
        }
        assert_eq!(
            resync(SEED_SHA1, &totp(), &fresh, &a, &b, NOW, 39),
            Err(OathError::WrongCode)
        );
        assert!(resync(SEED_SHA1, &totp(), &fresh, &a, &b, NOW, 40).is_ok());
        assert_eq!(
            resync(SEED_SHA1, &totp(), &fresh, "12345", &b, NOW, 100),
            Err(OathError::Malformed { digits: 6 })
        );
    }

    #[test]
    fn totp_resync_does_not_return_to_used_steps() {
        let used = OathState {
            last_step: Some(current() + 5),
            ..OathState::default()
        };
        let (first, second) = (code_at(current() + 4), code_at(current() + 5));
        assert_eq!(
            resync(SEED_SHA1, &totp(), &used, &first, &second, NOW, 100),
            Err(OathError::WrongCode)
        );
        let (first, second) = (code_at(current() + 6), code_at(current() + 7));
        let state = resync(SEED_SHA1, &totp(), &used, &first, &second, NOW, 100).unwrap();
        assert_eq!(state.last_step, Some(current() + 7));
    }

    #[test]
    fn hotp_resync_finds_two_consecutive_codes_beyond_the_look_ahead() {
        let state = OathState {
            counter: 10,
            ..OathState::default()
        };
        assert_eq!(verify_hotp(&state, &code_at(60)), Err(OathError::WrongCode));
        let next = resync(
            SEED_SHA1,
            &hotp_params(),
            &state,
            &code_at(60),
            &code_at(61),
            NOW,
            100,
        )
        .unwrap();
        assert_eq!(
            next,
            OathState {
                counter: 62,
                ..state
            }
        );
        // The pair may start at counter + search, not after it, nor before the counter.
        assert!(
            resync(
                SEED_SHA1,
                &hotp_params(),
                &state,
                &code_at(110),
                &code_at(111),
                NOW,
                100
            )
            .is_ok()
        );
        assert_eq!(
            resync(
                SEED_SHA1,
                &hotp_params(),
                &state,
                &code_at(111),
                &code_at(112),
                NOW,
                100
            ),
            Err(OathError::WrongCode)
        );
        assert_eq!(
            resync(
                SEED_SHA1,
                &hotp_params(),
                &state,
                &code_at(8),
                &code_at(9),
                NOW,
                100
            ),
            Err(OathError::WrongCode)
        );
    }

    #[test]
    fn base32_round_trip() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(encode_base32(plain.as_bytes()), encoded);
            assert_eq!(decode_base32(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(encode_base32(SEED_SHA1), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for len in 0..=64 {
            let mut secret = vec![0; len];
            rng.fill_bytes(&mut secret);
            assert_eq!(decode_base32(&encode_base32(&secret)).unwrap(), secret);
        }
    }

    #[test]
    fn base32_is_read_in_either_case_with_spaces_and_padding() {
        let foobar = Some(b"foobar".to_vec());
        assert_eq!(decode_base32("mzxw6ytboi"), foobar);
        assert_eq!(decode_base32("MZXW 6YTB OI"), foobar);
        assert_eq!(decode_base32("mzxw6ytboi======"), foobar);
        assert_eq!(decode_base32(" MZXW6YTBOI = = "), foobar);
        // Non-zero unused bits, as some generators leave them, are ignored.
        assert_eq!(decode_base32("MZ"), decode_base32("M3"));
    }

    #[test]
    fn malformed_base32_is_refused() {
        for text in [
            "M",
            "MZX",
            "MZXW6Y",
            "MZXW6YTBO",
            "MZXW1",
            "MZXW0",
            "MZ=XW",
            "MZXW-6",
            "MZXWÖ",
        ] {
            assert_eq!(decode_base32(text), None, "{text:?}");
        }
    }

    #[test]
    fn generated_secrets_are_160_bits_and_differ() {
        let one = generate_secret();
        let two = generate_secret();
        assert_eq!(one.len(), 20);
        assert_eq!(two.len(), 20);
        assert_ne!(one, two);
        let seeded = |seed| generate_secret_with(&mut rand::rngs::StdRng::seed_from_u64(seed));
        assert_eq!(seeded(3), seeded(3));
        assert_ne!(seeded(3), seeded(4));
    }

    #[test]
    fn otpauth_uri_for_totp_has_the_key_uri_shape() {
        assert_eq!(
            otpauth_uri("Example Corp", "alice@example.com", SEED_SHA1, &totp(), 9),
            "otpauth://totp/Example%20Corp:alice%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Corp\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn otpauth_uri_for_hotp_carries_the_counter() {
        let params = OathParams {
            algorithm: Algorithm::Sha256,
            digits: 8,
            kind: OathKind::Hotp,
        };
        assert_eq!(
            otpauth_uri("Twofold", "bob", b"foobar", &params, 42),
            "otpauth://hotp/Twofold:bob?secret=MZXW6YTBOI&issuer=Twofold\
             &algorithm=SHA256&digits=8&counter=42"
        );
        let sha512 = OathParams {
            algorithm: Algorithm::Sha512,
            kind: OathKind::Totp { period: 60 },
            ..OathParams::default()
        };
        assert!(
            otpauth_uri("T", "b", b"f", &sha512, 0)
                .ends_with("&algorithm=SHA512&digits=6&period=60")
        );
    }

    #[test]
    fn otpauth_labels_encode_colons_and_other_reserved_characters() {
        assert_eq!(
            otpauth_uri("A:B&C", "c:d é?#/", b"f", &totp(), 0),
            "otpauth://totp/A%3AB%26C:c%3Ad%20%C3%A9%3F%23%2F?secret=MY&issuer=A%3AB%26C\
             &algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(
            otpauth_uri("", "alice", b"f", &totp(), 0),
            "otpauth://totp/alice?secret=MY&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn serde_forms_are_stable() {
        let params = OathParams::default();
        let json = serde_json::to_string(&params).unwrap();
        assert_eq!(
            json,
            r#"{"algorithm":"sha1","digits":6,"kind":{"type":"totp","period":30}}"#
        );
        assert_eq!(serde_json::from_str::<OathParams>(&json).unwrap(), params);
        assert_eq!(
            serde_json::to_string(&OathKind::Hotp).unwrap(),
            r#"{"type":"hotp"}"#
        );
        assert_eq!(
            serde_json::to_string(&Algorithm::Sha512).unwrap(),
            r#""sha512""#
        );
        let state = OathState {
            counter: 3,
            last_step: Some(9),
            drift: -1,
        };
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            r#"{"counter":3,"last_step":9,"drift":-1}"#
        );
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(
            OathError::Malformed { digits: 6 }.code(),
            "invalid_code_format"
        );
        assert_eq!(OathError::WrongCode.code(), "invalid_code");
        assert_eq!(OathError::Replayed.code(), "code_already_used");
        assert_eq!(OathError::Unsupported.code(), "unsupported_token");
    }
}
