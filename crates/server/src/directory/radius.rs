//! RADIUS: passwords checked by the operator's RADIUS server with a PAP Access-Request
//! (RFC 2865), `primary_authentication = "radius"`.
//!
//! The packet code is small and written here, so that the one check that matters is in
//! plain sight: every answer must carry a valid Message-Authenticator. That check is the
//! defence against forged answers (BlastRADIUS, CVE-2024-3596: an attacker on the path turns
//! an Access-Reject into an Access-Accept by an MD5 collision on the Response Authenticator;
//! the HMAC-MD5 Message-Authenticator, keyed with the shared secret, cannot be forged that
//! way). So every request carries a Message-Authenticator as its first attribute, and every
//! answer without a valid one is dropped as forged.
//!
//! A request: User-Name as the user typed it, User-Password hidden with the shared secret and
//! a random Request Authenticator, NAS-Identifier. Servers are tried in order, each
//! `1 + retries` times, each attempt waiting `timeout_seconds`; a packet that is not a valid
//! answer to the request (another identifier, a wrong authenticator, no Message-Authenticator)
//! is logged and ignored, and the wait goes on. A server where nothing listens (ICMP port
//! unreachable) ends its attempt at once. No valid answer from any server is
//! [`DirectoryError::Unavailable`], never a wrong password.
//!
//! Each attempt sends from its own socket (a fresh source port, connected to the server), so
//! concurrent sign-ins never share the 256 identifiers of one port, and only the server's
//! address can answer.

use super::{Directory, DirectoryAccount, DirectoryError, DirectoryOutcome, account_part};
use crate::config::{ConfigError, Secret};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use twofold_engine::Username;

/// `[radius]`: the RADIUS servers that check passwords.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// `host:port` of each server, tried in order (`"radius1.example.com:1812"`).
    pub servers: Vec<String>,
    /// The shared secret this client has on the servers.
    pub secret: Option<Secret>,
    /// A file holding the shared secret; wins over `secret`.
    pub secret_file: Option<PathBuf>,
    /// How long one attempt waits for an answer.
    pub timeout_seconds: u64,
    /// Attempts per server beyond the first.
    pub retries: u32,
    /// The NAS-Identifier the requests carry (what the server's logs and policies see).
    pub nas_identifier: String,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            secret: None,
            secret_file: None,
            timeout_seconds: 3,
            retries: 1,
            nas_identifier: "twofold".into(),
        }
    }
}

impl RadiusConfig {
    /// The longest `timeout_seconds` accepted.
    pub const MAX_TIMEOUT_SECONDS: u64 = 60;
    /// The most `retries` accepted.
    pub const MAX_RETRIES: u32 = 10;

    /// Refuses values that cannot work, naming the key, the value and the fix.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return Err(ConfigError(
                "radius.servers is empty: RADIUS needs at least one server. \
                 Fix: set servers = [\"radius.example.com:1812\"]."
                    .into(),
            ));
        }
        for server in &self.servers {
            if split_host_port(server).is_none() {
                return Err(ConfigError(format!(
                    "radius.servers: {server:?} is not host:port. \
                     Fix: write each server as \"radius.example.com:1812\" (\"[2001:db8::1]:1812\" for IPv6)."
                )));
            }
        }
        if self.secret.is_none() && self.secret_file.is_none() {
            return Err(ConfigError(
                "radius.secret is not set: requests are signed with the shared secret. \
                 Fix: set radius.secret, or radius.secret_file to a file holding it \
                 (the secret of this client on the RADIUS server)."
                    .into(),
            ));
        }
        if let Some(secret) = &self.secret
            && self.secret_file.is_none()
            && secret.expose().is_empty()
        {
            return Err(ConfigError(
                "radius.secret is empty. Fix: set it to this client's shared secret on the RADIUS server.".into(),
            ));
        }
        if self.timeout_seconds == 0 || self.timeout_seconds > Self::MAX_TIMEOUT_SECONDS {
            return Err(ConfigError(format!(
                "radius.timeout_seconds = {}: out of range. Fix: use 1 to {} (3 is usual).",
                self.timeout_seconds,
                Self::MAX_TIMEOUT_SECONDS
            )));
        }
        if self.retries > Self::MAX_RETRIES {
            return Err(ConfigError(format!(
                "radius.retries = {}: too many (a sign-in would wait minutes). Fix: use 0 to {} (1 is usual).",
                self.retries,
                Self::MAX_RETRIES
            )));
        }
        if self.nas_identifier.is_empty() || self.nas_identifier.len() > MAX_ATTRIBUTE_VALUE {
            return Err(ConfigError(format!(
                "radius.nas_identifier = {:?}: it must be 1 to {MAX_ATTRIBUTE_VALUE} bytes. \
                 Fix: use a short name such as \"twofold\".",
                self.nas_identifier
            )));
        }
        Ok(())
    }

    /// The shared secret, read from `secret_file` when it is set.
    pub fn shared_secret(&self) -> Result<Secret, ConfigError> {
        let secret = match &self.secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Secret::new(s.trim_end_matches(['\r', '\n'])))
                .map_err(|e| {
                    ConfigError(format!(
                        "radius.secret_file = {}: cannot be read ({e}). \
                         Fix: point it at a readable file holding the shared secret.",
                        path.display()
                    ))
                })?,
            None => self.secret.clone().unwrap_or_default(),
        };
        if secret.expose().is_empty() {
            return Err(ConfigError(
                "the RADIUS shared secret is empty. Fix: set radius.secret or fill radius.secret_file.".into(),
            ));
        }
        Ok(secret)
    }
}

/// `host:port` into its parts; `[v6]:port` for IPv6 addresses.
fn split_host_port(server: &str) -> Option<(&str, u16)> {
    let (host, port) = server.rsplit_once(':')?;
    let host = match host.strip_prefix('[') {
        Some(inner) => inner.strip_suffix(']')?,
        None if host.contains(':') => return None,
        None => host,
    };
    let port: u16 = port.parse().ok()?;
    (!host.is_empty() && port != 0).then_some((host, port))
}

/// The longest value of one attribute.
const MAX_ATTRIBUTE_VALUE: usize = 253;
/// The longest password PAP can carry (RFC 2865, 5.2).
pub const MAX_PAP_PASSWORD: usize = 128;
/// The largest RADIUS packet.
const MAX_PACKET: usize = 4096;
const HEADER: usize = 20;

mod code {
    pub const ACCESS_REQUEST: u8 = 1;
    pub const ACCESS_ACCEPT: u8 = 2;
    pub const ACCESS_REJECT: u8 = 3;
    pub const ACCESS_CHALLENGE: u8 = 11;
}

mod attribute {
    pub const USER_NAME: u8 = 1;
    pub const USER_PASSWORD: u8 = 2;
    pub const NAS_IDENTIFIER: u8 = 32;
    pub const MESSAGE_AUTHENTICATOR: u8 = 80;
}

/// What a server answered, once the answer is proven to come from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Reject,
    Challenge,
}

/// Why a packet received is not an answer to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Discarded {
    #[error("malformed packet")]
    Malformed,
    #[error("identifier does not match the request")]
    WrongIdentifier,
    #[error("not an Access-Accept, Access-Reject or Access-Challenge")]
    UnexpectedCode,
    #[error("wrong Response Authenticator (another shared secret, or forged)")]
    WrongResponseAuthenticator,
    #[error("no Message-Authenticator (required against forged answers, CVE-2024-3596)")]
    NoMessageAuthenticator,
    #[error("wrong Message-Authenticator (another shared secret, or forged)")]
    WrongMessageAuthenticator,
}

/// One Access-Request, ready to send, and what checking its answer needs.
pub struct AccessRequest {
    pub identifier: u8,
    pub authenticator: [u8; 16],
    pub bytes: Vec<u8>,
}

/// Why a request cannot be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("the password is longer than PAP's {MAX_PAP_PASSWORD} bytes")]
    PasswordTooLong,
    #[error("the username is longer than {MAX_ATTRIBUTE_VALUE} bytes")]
    UsernameTooLong,
}

impl AccessRequest {
    /// A PAP Access-Request with the given identifier and Request Authenticator (random in
    /// use; fixed in tests).
    pub fn new(
        identifier: u8,
        authenticator: [u8; 16],
        secret: &[u8],
        username: &str,
        password: &[u8],
        nas_identifier: &str,
    ) -> Result<AccessRequest, RequestError> {
        if password.len() > MAX_PAP_PASSWORD {
            return Err(RequestError::PasswordTooLong);
        }
        if username.is_empty() || username.len() > MAX_ATTRIBUTE_VALUE {
            return Err(RequestError::UsernameTooLong);
        }
        let hidden = hide_password(password, secret, &authenticator);
        let mut bytes = Vec::with_capacity(HEADER + 18 + 2 * 3 + username.len() + hidden.len());
        bytes.extend_from_slice(&[code::ACCESS_REQUEST, identifier, 0, 0]);
        bytes.extend_from_slice(&authenticator);
        // Message-Authenticator first, zeroed while the HMAC is computed.
        bytes.extend_from_slice(&[attribute::MESSAGE_AUTHENTICATOR, 18]);
        bytes.extend_from_slice(&[0; 16]);
        push_attribute(&mut bytes, attribute::USER_NAME, username.as_bytes());
        push_attribute(&mut bytes, attribute::USER_PASSWORD, &hidden);
        push_attribute(
            &mut bytes,
            attribute::NAS_IDENTIFIER,
            &nas_identifier.as_bytes()[..nas_identifier.len().min(MAX_ATTRIBUTE_VALUE)],
        );
        let length = u16::try_from(bytes.len()).unwrap_or(u16::MAX);
        bytes[2..4].copy_from_slice(&length.to_be_bytes());
        let mac = hmac_md5(secret, &bytes);
        bytes[HEADER + 2..HEADER + 18].copy_from_slice(&mac);
        Ok(AccessRequest {
            identifier,
            authenticator,
            bytes,
        })
    }

    /// Checks that `packet` is this request's answer from a server holding `secret`.
    pub fn check_answer(&self, packet: &[u8], secret: &[u8]) -> Result<Answer, Discarded> {
        if packet.len() < HEADER {
            return Err(Discarded::Malformed);
        }
        let length = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
        if !(HEADER..=MAX_PACKET).contains(&length) || length > packet.len() {
            return Err(Discarded::Malformed);
        }
        // Octets beyond Length are padding (RFC 2865, 3).
        let packet = &packet[..length];
        if packet[1] != self.identifier {
            return Err(Discarded::WrongIdentifier);
        }
        let answer = match packet[0] {
            code::ACCESS_ACCEPT => Answer::Accept,
            code::ACCESS_REJECT => Answer::Reject,
            code::ACCESS_CHALLENGE => Answer::Challenge,
            _ => return Err(Discarded::UnexpectedCode),
        };
        // Response Authenticator = MD5(Code+ID+Length+RequestAuth+Attributes+Secret).
        let mut md5 = Md5::new();
        md5.update(&packet[..4]);
        md5.update(self.authenticator);
        md5.update(&packet[HEADER..]);
        md5.update(secret);
        let expected: [u8; 16] = md5.finalize().into();
        if !bool::from(expected.ct_eq(&packet[4..HEADER])) {
            return Err(Discarded::WrongResponseAuthenticator);
        }
        // Message-Authenticator: HMAC-MD5 over the packet with the Request Authenticator in
        // place of the Response Authenticator and the attribute's value zeroed (RFC 3579, 3.2).
        let mut found = None;
        let mut offset = HEADER;
        while offset < packet.len() {
            let (Some(&kind), Some(&len)) = (packet.get(offset), packet.get(offset + 1)) else {
                return Err(Discarded::Malformed);
            };
            let len = usize::from(len);
            if len < 2 || offset + len > packet.len() {
                return Err(Discarded::Malformed);
            }
            if kind == attribute::MESSAGE_AUTHENTICATOR {
                if len != 18 || found.is_some() {
                    return Err(Discarded::Malformed);
                }
                found = Some(offset + 2);
            }
            offset += len;
        }
        let Some(value_at) = found else {
            return Err(Discarded::NoMessageAuthenticator);
        };
        let mut copy = packet.to_vec();
        copy[4..HEADER].copy_from_slice(&self.authenticator);
        copy[value_at..value_at + 16].fill(0);
        let mac = hmac_md5(secret, &copy);
        if !bool::from(mac.ct_eq(&packet[value_at..value_at + 16])) {
            return Err(Discarded::WrongMessageAuthenticator);
        }
        Ok(answer)
    }
}

fn push_attribute(bytes: &mut Vec<u8>, kind: u8, value: &[u8]) {
    // Callers bound every value to 253 bytes.
    bytes.push(kind);
    bytes.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
    bytes.extend_from_slice(value);
}

fn hmac_md5(key: &[u8], data: &[u8]) -> [u8; 16] {
    // HMAC takes a key of any length: this cannot fail.
    match <Hmac<Md5> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 16],
    }
}

/// User-Password hiding (RFC 2865, 5.2): the password padded with zeros to a multiple of 16
/// bytes, each block XORed with MD5(secret + the previous block), the first with
/// MD5(secret + Request Authenticator).
pub fn hide_password(password: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let blocks = password.len().div_ceil(16).max(1);
    let mut out = vec![0u8; blocks * 16];
    out[..password.len()].copy_from_slice(password);
    let mut previous: [u8; 16] = *authenticator;
    for block in out.chunks_mut(16) {
        let mut md5 = Md5::new();
        md5.update(secret);
        md5.update(previous);
        let b: [u8; 16] = md5.finalize().into();
        for (c, k) in block.iter_mut().zip(b) {
            *c ^= k;
        }
        previous.copy_from_slice(block);
    }
    out
}

/// The inverse of [`hide_password`], as a server reads it (padding zeros removed).
pub fn reveal_password(hidden: &[u8], secret: &[u8], authenticator: &[u8; 16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hidden.len());
    let mut previous: Vec<u8> = authenticator.to_vec();
    for block in hidden.chunks(16) {
        let mut md5 = Md5::new();
        md5.update(secret);
        md5.update(&previous);
        let b: [u8; 16] = md5.finalize().into();
        out.extend(block.iter().zip(b).map(|(c, k)| c ^ k));
        previous = block.to_vec();
    }
    while out.last() == Some(&0) {
        out.pop();
    }
    out
}

/// Passwords checked by RADIUS servers.
pub struct RadiusDirectory {
    servers: Vec<String>,
    secret: Secret,
    timeout: Duration,
    attempts_per_server: u32,
    nas_identifier: String,
}

impl RadiusDirectory {
    /// The directory `[radius]` describes (checked, its secret file read).
    pub fn from_config(config: &RadiusConfig) -> Result<RadiusDirectory, ConfigError> {
        config.check()?;
        Ok(RadiusDirectory {
            servers: config.servers.clone(),
            secret: config.shared_secret()?,
            timeout: Duration::from_secs(config.timeout_seconds),
            attempts_per_server: config.retries.saturating_add(1),
            nas_identifier: config.nas_identifier.clone(),
        })
    }

    /// One attempt against one server: `Ok(None)` when no valid answer came in time.
    async fn attempt(
        &self,
        server: SocketAddr,
        request: &AccessRequest,
    ) -> Result<Option<Answer>, std::io::Error> {
        let local: SocketAddr = if server.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let socket = UdpSocket::bind(local).await?;
        // A connected socket receives only what the server's address sends.
        socket.connect(server).await?;
        socket.send(&request.bytes).await?;
        let deadline = Instant::now() + self.timeout;
        let mut buffer = vec![0u8; MAX_PACKET];
        loop {
            let received = match tokio::time::timeout_at(deadline, socket.recv(&mut buffer)).await {
                Err(_elapsed) => return Ok(None),
                // ICMP port unreachable (nothing listens there) shows as ConnectionRefused.
                Ok(Err(e)) => return Err(e),
                Ok(Ok(n)) => n,
            };
            match request.check_answer(&buffer[..received], self.secret.expose().as_bytes()) {
                Ok(answer) => return Ok(Some(answer)),
                Err(why) => {
                    tracing::warn!(%server, reason = %why, "RADIUS packet ignored");
                }
            }
        }
    }
}

#[async_trait]
impl Directory for RadiusDirectory {
    fn kind(&self) -> &'static str {
        "radius"
    }

    fn account_name(&self, login: &Username) -> Username {
        Username::parse(account_part(login.as_str())).unwrap_or_else(|_| login.clone())
    }

    #[tracing::instrument(skip_all, fields(directory = "radius"))]
    async fn check_password(
        &self,
        username: &Username,
        password: &str,
    ) -> Result<DirectoryOutcome, DirectoryError> {
        if password.len() > MAX_PAP_PASSWORD {
            tracing::info!("password refused: longer than PAP's 128 bytes");
            return Ok(DirectoryOutcome::Rejected);
        }
        let secret = self.secret.expose().as_bytes();
        let mut problems: Vec<String> = Vec::new();
        for server in &self.servers {
            let Some((host, port)) = split_host_port(server) else {
                problems.push(format!("{server}: not host:port"));
                continue;
            };
            let address = match tokio::net::lookup_host((host, port)).await {
                Ok(mut found) => match found.next() {
                    Some(address) => address,
                    None => {
                        problems.push(format!("{server}: the name has no address"));
                        continue;
                    }
                },
                Err(e) => {
                    problems.push(format!("{server}: the name does not resolve ({e})"));
                    continue;
                }
            };
            for attempt in 1..=self.attempts_per_server {
                let mut authenticator = [0u8; 16];
                rand::rngs::OsRng.fill_bytes(&mut authenticator);
                let identifier = (rand::rngs::OsRng.next_u32() & 0xff) as u8;
                let request = match AccessRequest::new(
                    identifier,
                    authenticator,
                    secret,
                    username.as_str(),
                    password.as_bytes(),
                    &self.nas_identifier,
                ) {
                    Ok(request) => request,
                    Err(e) => {
                        tracing::info!(error = %e, "sign-in refused before asking RADIUS");
                        return Ok(DirectoryOutcome::Rejected);
                    }
                };
                match self.attempt(address, &request).await {
                    Ok(Some(Answer::Accept)) => {
                        return Ok(DirectoryOutcome::Accepted(DirectoryAccount {
                            username: account_part(username.as_str()).to_lowercase(),
                            ..Default::default()
                        }));
                    }
                    Ok(Some(Answer::Reject)) => return Ok(DirectoryOutcome::Rejected),
                    Ok(Some(Answer::Challenge)) => {
                        tracing::warn!(
                            %server,
                            "RADIUS answered Access-Challenge, which sign-in does not support: \
                             refused. Fix: make the RADIUS server accept or reject this client's \
                             PAP requests without a challenge"
                        );
                        return Ok(DirectoryOutcome::Rejected);
                    }
                    Ok(None) => {
                        tracing::warn!(%server, attempt, "no valid RADIUS answer in time");
                        problems.push(format!(
                            "{server}: no valid answer within {}s",
                            self.timeout.as_secs()
                        ));
                    }
                    Err(e) => {
                        tracing::warn!(%server, attempt, error = %e, "RADIUS request failed");
                        problems.push(format!("{server}: {e}"));
                    }
                }
            }
        }
        problems.dedup();
        Err(DirectoryError::Unavailable {
            directory: "radius",
            reason: problems.join("; "),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    const SECRET: &[u8] = b"xyzzy5461";

    #[test]
    fn hidden_passwords_of_every_length_come_back_as_they_were() {
        let authenticator = *b"0123456789abcdef";
        for length in [1usize, 15, 16, 17, 32, 127, 128] {
            let password: Vec<u8> = (0..length).map(|i| b'a' + (i % 26) as u8).collect();
            let hidden = hide_password(&password, SECRET, &authenticator);
            assert_eq!(hidden.len(), length.div_ceil(16) * 16, "length {length}");
            assert_ne!(&hidden[..length], &password[..], "length {length}");
            assert_eq!(
                reveal_password(&hidden, SECRET, &authenticator),
                password,
                "length {length}"
            );
        }
    }

    #[test]
    fn password_hiding_matches_the_rfc_2865_example() {
        // RFC 2865, 7.1: "arctangent" with secret "xyzzy5461" and this Request Authenticator.
        let authenticator = [
            0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4,
            0x22, 0x7a,
        ];
        let hidden = hide_password(b"arctangent", SECRET, &authenticator);
        assert_eq!(hex::encode(hidden), "0dbe708d93d413ce3196e43f782a0aee");
    }

    #[test]
    fn a_password_longer_than_pap_allows_is_not_sent() {
        let long = vec![b'p'; 129];
        assert_eq!(
            AccessRequest::new(1, [0; 16], SECRET, "alice", &long, "twofold").err(),
            Some(RequestError::PasswordTooLong)
        );
        assert!(AccessRequest::new(1, [0; 16], SECRET, "alice", &long[..128], "twofold").is_ok());
    }

    #[test]
    fn requests_carry_a_valid_message_authenticator_first() {
        let request =
            AccessRequest::new(7, [9; 16], SECRET, "alice", b"secret", "twofold").unwrap();
        let bytes = &request.bytes;
        assert_eq!(bytes[0], code::ACCESS_REQUEST);
        assert_eq!(bytes[1], 7);
        assert_eq!(
            usize::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            bytes.len()
        );
        assert_eq!(bytes[HEADER], attribute::MESSAGE_AUTHENTICATOR);
        let mut zeroed = bytes.clone();
        zeroed[HEADER + 2..HEADER + 18].fill(0);
        assert_eq!(hmac_md5(SECRET, &zeroed), bytes[HEADER + 2..HEADER + 18]);
    }

    /// An answer to `request` as a server holding `secret` would build it.
    pub(super) fn answer(
        request: &AccessRequest,
        code: u8,
        identifier: u8,
        secret: &[u8],
        message_authenticator: bool,
    ) -> Vec<u8> {
        let mut packet = vec![code, identifier, 0, 0];
        packet.extend_from_slice(&request.authenticator);
        if message_authenticator {
            packet.extend_from_slice(&[attribute::MESSAGE_AUTHENTICATOR, 18]);
            packet.extend_from_slice(&[0; 16]);
        }
        push_attribute(&mut packet, 18, b"Hello");
        let length = packet.len() as u16;
        packet[2..4].copy_from_slice(&length.to_be_bytes());
        if message_authenticator {
            let mac = hmac_md5(secret, &packet);
            packet[HEADER + 2..HEADER + 18].copy_from_slice(&mac);
        }
        let mut md5 = Md5::new();
        md5.update(&packet);
        md5.update(secret);
        let response: [u8; 16] = md5.finalize().into();
        packet[4..HEADER].copy_from_slice(&response);
        packet
    }

    #[test]
    fn only_a_signed_answer_to_the_request_counts() {
        let request =
            AccessRequest::new(42, [3; 16], SECRET, "alice", b"secret", "twofold").unwrap();
        let good = answer(&request, code::ACCESS_ACCEPT, 42, SECRET, true);
        assert_eq!(request.check_answer(&good, SECRET), Ok(Answer::Accept));
        let reject = answer(&request, code::ACCESS_REJECT, 42, SECRET, true);
        assert_eq!(request.check_answer(&reject, SECRET), Ok(Answer::Reject));

        let unsigned = answer(&request, code::ACCESS_ACCEPT, 42, SECRET, false);
        assert_eq!(
            request.check_answer(&unsigned, SECRET),
            Err(Discarded::NoMessageAuthenticator)
        );
        let other_id = answer(&request, code::ACCESS_ACCEPT, 43, SECRET, true);
        assert_eq!(
            request.check_answer(&other_id, SECRET),
            Err(Discarded::WrongIdentifier)
        );
        let other_secret = answer(&request, code::ACCESS_ACCEPT, 42, b"guess", true);
        assert_eq!(
            request.check_answer(&other_secret, SECRET),
            Err(Discarded::WrongResponseAuthenticator)
        );
        // A Reject turned into an Accept with the Response Authenticator recomputed (what a
        // collision attack achieves) still fails on the Message-Authenticator.
        let mut forged = answer(&request, code::ACCESS_REJECT, 42, SECRET, true);
        forged[0] = code::ACCESS_ACCEPT;
        forged[4..HEADER].copy_from_slice(&request.authenticator);
        let mut md5 = Md5::new();
        md5.update(&forged);
        md5.update(SECRET);
        let response: [u8; 16] = md5.finalize().into();
        forged[4..HEADER].copy_from_slice(&response);
        assert_eq!(
            request.check_answer(&forged, SECRET),
            Err(Discarded::WrongMessageAuthenticator)
        );
        assert_eq!(
            request.check_answer(&good[..HEADER - 1], SECRET),
            Err(Discarded::Malformed)
        );
    }

    #[test]
    fn a_bad_radius_section_names_the_key_and_the_fix() {
        let good = RadiusConfig {
            servers: vec!["127.0.0.1:1812".into()],
            secret: Some(Secret::new("s3cret")),
            ..RadiusConfig::default()
        };
        assert!(good.check().is_ok());
        let cases: Vec<(RadiusConfig, &str)> = vec![
            (
                RadiusConfig {
                    servers: vec![],
                    ..good.clone()
                },
                "radius.servers",
            ),
            (
                RadiusConfig {
                    servers: vec!["radius.example.com".into()],
                    ..good.clone()
                },
                "radius.servers",
            ),
            (
                RadiusConfig {
                    secret: None,
                    ..good.clone()
                },
                "radius.secret",
            ),
            (
                RadiusConfig {
                    timeout_seconds: 0,
                    ..good.clone()
                },
                "radius.timeout_seconds",
            ),
            (
                RadiusConfig {
                    retries: 99,
                    ..good.clone()
                },
                "radius.retries",
            ),
            (
                RadiusConfig {
                    nas_identifier: String::new(),
                    ..good.clone()
                },
                "radius.nas_identifier",
            ),
        ];
        for (config, key) in cases {
            let message = config.check().unwrap_err().0;
            assert!(message.contains(key), "{message}");
            assert!(message.contains("Fix:"), "{message}");
        }
        assert_eq!(split_host_port("[::1]:1812"), Some(("::1", 1812)));
        assert_eq!(split_host_port("::1:1812"), None);
    }

    /// A UDP server that answers each request with the packets `reply` builds for it.
    async fn answering_server(
        reply: impl Fn(&[u8]) -> Vec<Vec<u8>> + Send + 'static,
    ) -> SocketAddr {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; MAX_PACKET];
            while let Ok((n, from)) = socket.recv_from(&mut buffer).await {
                for packet in reply(&buffer[..n]) {
                    let _ = socket.send_to(&packet, from).await;
                }
            }
        });
        address
    }

    /// The request a server received, rebuilt enough to answer it.
    fn received(bytes: &[u8]) -> AccessRequest {
        AccessRequest {
            identifier: bytes[1],
            authenticator: bytes[4..HEADER].try_into().unwrap(),
            bytes: bytes.to_vec(),
        }
    }

    fn directory(servers: Vec<String>, timeout_seconds: u64, retries: u32) -> RadiusDirectory {
        RadiusDirectory::from_config(&RadiusConfig {
            servers,
            secret: Some(Secret::new(String::from_utf8(SECRET.to_vec()).unwrap())),
            timeout_seconds,
            retries,
            ..RadiusConfig::default()
        })
        .unwrap()
    }

    /// What an attacker on the path sends: Access-Accepts without a Message-Authenticator,
    /// with a wrong one, with a wrong Response Authenticator, and for another identifier.
    fn forged_accepts(request: &AccessRequest) -> Vec<Vec<u8>> {
        let id = request.identifier;
        let mut bad_mac = answer(request, code::ACCESS_ACCEPT, id, SECRET, true);
        bad_mac[HEADER + 5] ^= 1;
        let mut bad_response = answer(request, code::ACCESS_ACCEPT, id, SECRET, true);
        bad_response[6] ^= 1;
        vec![
            answer(request, code::ACCESS_ACCEPT, id, SECRET, false),
            bad_mac,
            bad_response,
            answer(
                request,
                code::ACCESS_ACCEPT,
                id.wrapping_add(1),
                SECRET,
                true,
            ),
        ]
    }

    /// A server that accepts every request, signed as it should be.
    async fn accepting_server() -> SocketAddr {
        answering_server(|bytes| {
            let request = received(bytes);
            vec![answer(
                &request,
                code::ACCESS_ACCEPT,
                request.identifier,
                SECRET,
                true,
            )]
        })
        .await
    }

    #[tokio::test]
    async fn forged_accepts_are_ignored_and_the_real_answer_is_read() {
        // The attacker's packets arrive first; the server's real Access-Reject comes last.
        let server = answering_server(|bytes| {
            let request = received(bytes);
            let mut packets = forged_accepts(&request);
            packets.push(answer(
                &request,
                code::ACCESS_REJECT,
                request.identifier,
                SECRET,
                true,
            ));
            packets
        })
        .await;
        let radius = directory(vec![server.to_string()], 2, 0);
        let alice = Username::parse("alice").unwrap();
        assert_eq!(
            radius.check_password(&alice, "guess").await,
            Ok(DirectoryOutcome::Rejected)
        );
    }

    #[tokio::test]
    async fn only_forged_accepts_leave_the_directory_unavailable() {
        let server = answering_server(|bytes| forged_accepts(&received(bytes))).await;
        let radius = directory(vec![server.to_string()], 1, 0);
        let alice = Username::parse("alice").unwrap();
        let outcome = radius.check_password(&alice, "guess").await;
        assert!(
            matches!(
                outcome,
                Err(DirectoryError::Unavailable {
                    directory: "radius",
                    ..
                })
            ),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn an_accept_names_the_account_part_and_the_request_carries_the_name_as_typed() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let seen_by_server = seen.clone();
        let server = answering_server(move |bytes| {
            let request = received(bytes);
            // User-Name follows the Message-Authenticator.
            let name_len = usize::from(bytes[HEADER + 19]) - 2;
            let name = &bytes[HEADER + 20..HEADER + 20 + name_len];
            seen_by_server
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(name).into_owned());
            vec![answer(
                &request,
                code::ACCESS_ACCEPT,
                request.identifier,
                SECRET,
                true,
            )]
        })
        .await;
        let radius = directory(vec![server.to_string()], 2, 0);
        let typed = Username::parse("corp\\alice").unwrap();
        assert_eq!(
            radius.check_password(&typed, "right").await,
            Ok(DirectoryOutcome::Accepted(DirectoryAccount {
                username: "alice".into(),
                ..Default::default()
            }))
        );
        assert_eq!(seen.lock().unwrap().as_slice(), ["corp\\alice"]);
        assert_eq!(radius.account_name(&typed).as_str(), "alice");
    }

    #[tokio::test]
    async fn a_password_longer_than_pap_allows_is_refused_without_asking() {
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = asked.clone();
        let server = answering_server(move |bytes| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let request = received(bytes);
            vec![answer(
                &request,
                code::ACCESS_ACCEPT,
                request.identifier,
                SECRET,
                true,
            )]
        })
        .await;
        let radius = directory(vec![server.to_string()], 2, 0);
        let alice = Username::parse("alice").unwrap();
        let long = "p".repeat(MAX_PAP_PASSWORD + 1);
        assert_eq!(
            radius.check_password(&alice, &long).await,
            Ok(DirectoryOutcome::Rejected)
        );
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 0);
        let longest = "p".repeat(MAX_PAP_PASSWORD);
        assert!(matches!(
            radius.check_password(&alice, &longest).await,
            Ok(DirectoryOutcome::Accepted(_))
        ));
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_first_server_where_nothing_listens_hands_over_without_waiting() {
        let closed = UdpSocket::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let second = accepting_server().await;
        // The closed port answers with ICMP port unreachable: no need to wait 5 s.
        let radius = directory(vec![closed.to_string(), second.to_string()], 5, 1);
        let alice = Username::parse("alice").unwrap();
        let started = std::time::Instant::now();
        assert!(matches!(
            radius.check_password(&alice, "right").await,
            Ok(DirectoryOutcome::Accepted(_))
        ));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_silent_first_server_hands_over_to_the_second() {
        // A socket that reads and never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let silent_address = silent.local_addr().unwrap();
        let second = accepting_server().await;
        let radius = directory(vec![silent_address.to_string(), second.to_string()], 1, 0);
        let alice = Username::parse("alice").unwrap();
        assert!(matches!(
            radius.check_password(&alice, "right").await,
            Ok(DirectoryOutcome::Accepted(_))
        ));
        drop(silent);
    }
}
