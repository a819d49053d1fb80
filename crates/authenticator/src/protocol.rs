//! The wire format of `/app/v1`: bodies, the strings that are signed, activation codes and
//! activation links (`twofold://activate?url=…&code=…`).

use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::keys::{Algorithm, b64};

/// The first line of every signed string.
pub const VERSION_LINE: &str = "twofold-app-v1";

/// A sign-in request waits at most this long on the server (the `wait` of a long poll).
pub const LONG_POLL_SECONDS: u64 = 25;

/// Why an activation code or link cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    #[error(
        "an activation code has 16 letters and digits (like 7K3M-Q9TX-2HBW-V4RD); this one has {0} after removing dashes and spaces"
    )]
    CodeLength(usize),
    #[error("an activation code has only letters and digits (like 7K3M-Q9TX-2HBW-V4RD)")]
    CodeCharacters,
    #[error("it is not a Twofold activation link (twofold://activate?url=…&code=…)")]
    NotActivationLink,
    #[error("the activation link has no {0}")]
    MissingParameter(&'static str),
    #[error("the server address {0:?} is not an http:// or https:// URL")]
    BadServerUrl(String),
}

/// An activation code as the server compares it: no dashes or spaces, upper case, `O` read
/// as `0` and `I`/`L` as `1`. Refuses what cannot be a code (16 letters and digits).
pub fn normalise_code(code: &str) -> Result<String, LinkError> {
    let normalised: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect();
    let len = normalised.chars().count();
    if len != 16 {
        return Err(LinkError::CodeLength(len));
    }
    if !normalised.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(LinkError::CodeCharacters);
    }
    Ok(normalised)
}

/// Checks that `url` is a server address the app can talk to, and gives it back without a
/// trailing `/`.
pub fn server_base_url(url: &str) -> Result<String, LinkError> {
    let trimmed = url.trim();
    let parsed = url::Url::parse(trimmed).map_err(|_| LinkError::BadServerUrl(url.into()))?;
    if !matches!(parsed.scheme(), "https" | "http")
        || parsed.host_str().is_none()
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(LinkError::BadServerUrl(url.into()));
    }
    Ok(trimmed.trim_end_matches('/').to_owned())
}

/// What an activation QR code holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationLink {
    /// The server's base URL, without a trailing `/`.
    pub url: String,
    /// The activation code as written in the link.
    pub code: String,
}

impl ActivationLink {
    /// Reads `twofold://activate?url=<percent-encoded URL>&code=<code>`.
    pub fn parse(text: &str) -> Result<Self, LinkError> {
        let parsed = url::Url::parse(text.trim()).map_err(|_| LinkError::NotActivationLink)?;
        let path = parsed.path().trim_matches('/');
        if !parsed.scheme().eq_ignore_ascii_case("twofold")
            || parsed.host_str() != Some("activate")
            || !path.is_empty()
        {
            return Err(LinkError::NotActivationLink);
        }
        let mut url = None;
        let mut code = None;
        for (name, value) in parsed.query_pairs() {
            match name.as_ref() {
                "url" => url = Some(value.into_owned()),
                "code" => code = Some(value.into_owned()),
                _ => {} // Later versions may add parameters.
            }
        }
        let url = url
            .filter(|u| !u.is_empty())
            .ok_or(LinkError::MissingParameter("url"))?;
        let code = code
            .filter(|c| !c.is_empty())
            .ok_or(LinkError::MissingParameter("code"))?;
        normalise_code(&code)?;
        Ok(ActivationLink {
            url: server_base_url(&url)?,
            code,
        })
    }
}

/// Lower-case hex SHA-256 of `body`.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// A new request nonce: 16 random bytes, base64url (22 characters).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    b64(&bytes)
}

/// What the device key signs at activation, proving the app holds it.
pub fn activation_proof_string(normalised_code: &str, public_key_b64: &str) -> String {
    format!("{VERSION_LINE}\nactivate\n{normalised_code}\n{public_key_b64}")
}

/// What the device key signs for every other request: six lines, no trailing newline.
pub fn request_signing_string(
    method: &str,
    path_and_query: &str,
    timestamp: i64,
    nonce: &str,
    body: &[u8],
) -> String {
    format!(
        "{VERSION_LINE}\n{}\n{path_and_query}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        sha256_hex(body)
    )
}

/// What the server key signs in a `200` answer to a signed request.
pub fn response_signing_string(request_nonce: &str, body: &[u8]) -> String {
    format!(
        "{VERSION_LINE}\nresponse\n{request_nonce}\n{}",
        sha256_hex(body)
    )
}

/// `POST /app/v1/activate`.
#[derive(Debug, Clone, Serialize)]
pub struct ActivateRequest {
    pub code: String,
    pub algorithm: Algorithm,
    pub public_key: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub push_endpoint: Option<String>,
    pub proof: String,
}

/// The `201` answer to an activation.
#[derive(Debug, Clone, Deserialize)]
pub struct ActivateResponse {
    pub device_id: String,
    pub account: AccountInfo,
    pub server: ServerInfo,
    #[serde(default)]
    pub oath: Option<OathSeed>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountInfo {
    pub username: String,
    pub label: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerInfo {
    pub url: String,
    pub algorithm: String,
    pub public_key: String,
}

/// The offline codes' seed (TOTP, RFC 6238), when the device became the user's OATH token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OathSeed {
    /// Base32.
    pub secret: String,
    /// `SHA1`, `SHA256` or `SHA512`.
    pub algorithm: String,
    pub digits: u32,
    pub period: u64,
}

/// `GET /app/v1/requests`.
#[derive(Debug, Clone, Deserialize)]
pub struct RequestsResponse {
    pub requests: Vec<PendingRequest>,
}

/// A sign-in (or confirmation) waiting for the user's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    pub id: String,
    pub nonce: String,
    #[serde(default)]
    pub numbers: Vec<u8>,
    pub number_matching: bool,
    pub pin_required: bool,
    pub context: RequestContext,
    pub created_at: i64,
    pub expires_at: i64,
}

/// Where a request comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestContext {
    pub application: String,
    #[serde(default)]
    pub address: Option<String>,
    pub time: i64,
    #[serde(default)]
    pub username: Option<String>,
    pub purpose: String,
}

impl RequestContext {
    /// The purpose in words.
    pub fn purpose_text(&self) -> &str {
        match self.purpose.as_str() {
            "sign_in" => "sign-in",
            "confirm_change" => "confirming a change",
            "activation_test" => "activation test",
            other => other,
        }
    }
}

/// The user's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Approve,
    Deny,
    NotMe,
}

/// `POST /app/v1/requests/{id}/answer`.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerRequest {
    pub nonce: String,
    pub answer: Answer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pin: Option<String>,
}

/// The `200` answer to an answer.
#[derive(Debug, Clone, Deserialize)]
pub struct AnswerResponse {
    pub outcome: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl AnswerResponse {
    /// `approved`, `denied (invalid_code)`, `fraud reported`.
    pub fn describe(&self) -> String {
        match (self.outcome.as_str(), &self.reason) {
            ("fraud", _) => "fraud reported".to_owned(),
            (outcome, Some(reason)) => format!("{outcome} ({reason})"),
            (outcome, None) => outcome.to_owned(),
        }
    }
}

/// `GET /app/v1/device`.
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceInfo {
    pub device_id: String,
    pub name: String,
    pub algorithm: String,
    pub username: String,
    pub created_at: i64,
    #[serde(default)]
    pub last_used_at: Option<i64>,
}

/// An `application/problem+json` refusal.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Problem {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn a_code_is_read_without_dashes_spaces_or_case_and_with_look_alikes_mapped() {
        assert_eq!(
            normalise_code("7k3m-q9tx 2hbw-v4rd").unwrap(),
            "7K3MQ9TX2HBWV4RD"
        );
        assert_eq!(
            normalise_code(" oOiI-lL00-1111-ABCD ").unwrap(),
            "001111001111ABCD"
        );
        assert_eq!(
            normalise_code("ABCD-EFGH-JKLM-NPQ"),
            Err(LinkError::CodeLength(15))
        );
        assert_eq!(
            normalise_code("ABCD-EFGH-JKLM-NPQ!"),
            Err(LinkError::CodeCharacters)
        );
    }

    #[test]
    fn the_activation_proof_signs_the_normalised_code_and_the_key_as_sent() {
        assert_eq!(
            activation_proof_string("7K3MQ9TX2HBWV4RD", "AAECAw"),
            "twofold-app-v1\nactivate\n7K3MQ9TX2HBWV4RD\nAAECAw"
        );
    }

    #[test]
    fn a_get_signs_six_lines_with_the_hash_of_the_empty_body() {
        assert_eq!(
            request_signing_string(
                "get",
                "/app/v1/requests?wait=25",
                1796032800,
                "bm9uY2Utbm9uY2U",
                b""
            ),
            "twofold-app-v1\nGET\n/app/v1/requests?wait=25\n1796032800\nbm9uY2Utbm9uY2U\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn a_post_signs_the_hash_of_its_body() {
        let body = br#"{"nonce":"n","answer":"deny"}"#;
        let signed = request_signing_string(
            "POST",
            "/app/v1/requests/p_1/answer",
            7,
            "abcdefghijklmnop",
            body,
        );
        let lines: Vec<&str> = signed.split('\n').collect();
        assert_eq!(
            lines,
            [
                "twofold-app-v1",
                "POST",
                "/app/v1/requests/p_1/answer",
                "7",
                "abcdefghijklmnop",
                &sha256_hex(body),
            ]
        );
        assert!(!signed.ends_with('\n'));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_response_signature_covers_the_request_nonce_and_the_body() {
        assert_eq!(
            response_signing_string("n0nce", b"abc"),
            "twofold-app-v1\nresponse\nn0nce\nba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_nonce_is_16_random_bytes_in_base64url() {
        let one = new_nonce();
        assert_eq!(one.len(), 22);
        assert!(
            one.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(one, new_nonce());
    }

    #[test]
    fn an_activation_link_gives_the_url_and_the_code() {
        let link = ActivationLink::parse(
            "twofold://activate?url=https%3A%2F%2Fmfa.example.com%2Ftwofold%2F&code=7K3M-Q9TX-2HBW-V4RD",
        )
        .unwrap();
        assert_eq!(link.url, "https://mfa.example.com/twofold");
        assert_eq!(link.code, "7K3M-Q9TX-2HBW-V4RD");

        // Parameters in any order, and unknown ones ignored.
        let link = ActivationLink::parse(
            "twofold://activate?code=7K3MQ9TX2HBWV4RD&v=2&url=https%3A%2F%2F127.0.0.1%3A8443",
        )
        .unwrap();
        assert_eq!(link.url, "https://127.0.0.1:8443");
    }

    #[test]
    fn other_links_are_not_taken_for_activation_links() {
        for text in [
            "otpauth://totp/Contoso:ada?secret=JBSWY3DPEHPK3PXP",
            "https://mfa.example.com/?code=7K3MQ9TX2HBWV4RD",
            "twofold://enrol?url=https%3A%2F%2Fmfa.example.com&code=7K3MQ9TX2HBWV4RD",
            "twofold://activate/more?url=https%3A%2F%2Fmfa.example.com&code=7K3MQ9TX2HBWV4RD",
            "hello",
        ] {
            assert_eq!(
                ActivationLink::parse(text),
                Err(LinkError::NotActivationLink),
                "{text}"
            );
        }
        assert_eq!(
            ActivationLink::parse("twofold://activate?code=7K3MQ9TX2HBWV4RD"),
            Err(LinkError::MissingParameter("url"))
        );
        assert_eq!(
            ActivationLink::parse("twofold://activate?url=https%3A%2F%2Fmfa.example.com"),
            Err(LinkError::MissingParameter("code"))
        );
        assert_eq!(
            ActivationLink::parse(
                "twofold://activate?url=ftp%3A%2F%2Fmfa.example.com&code=7K3MQ9TX2HBWV4RD"
            ),
            Err(LinkError::BadServerUrl("ftp://mfa.example.com".into()))
        );
    }

    #[test]
    fn answers_serialise_as_the_protocol_names_them() {
        let approve = AnswerRequest {
            nonce: "n".into(),
            answer: Answer::Approve,
            number: Some(47),
            pin: Some("1234".into()),
        };
        assert_eq!(
            serde_json::to_string(&approve).unwrap(),
            r#"{"nonce":"n","answer":"approve","number":47,"pin":"1234"}"#
        );
        let not_me = AnswerRequest {
            nonce: "n".into(),
            answer: Answer::NotMe,
            number: None,
            pin: None,
        };
        assert_eq!(
            serde_json::to_string(&not_me).unwrap(),
            r#"{"nonce":"n","answer":"not_me"}"#
        );
    }

    #[test]
    fn outcomes_read_as_the_user_expects() {
        let read = |json: &str| {
            serde_json::from_str::<AnswerResponse>(json)
                .unwrap()
                .describe()
        };
        assert_eq!(read(r#"{"outcome":"approved"}"#), "approved");
        assert_eq!(
            read(r#"{"outcome":"denied","reason":"invalid_code"}"#),
            "denied (invalid_code)"
        );
        assert_eq!(read(r#"{"outcome":"fraud"}"#), "fraud reported");
    }

    #[test]
    fn a_pending_request_is_read_with_unknown_fields_ignored() {
        let json = r#"{"requests":[{"id":"p_1","nonce":"abc","numbers":[47,12,83],
            "number_matching":true,"pin_required":false,"future":1,
            "context":{"application":"Contoso VPN","address":"203.0.113.9","time":1796032800,
            "username":"ada","purpose":"sign_in"},"created_at":1796032800,"expires_at":1796032920}]}"#;
        let read: RequestsResponse = serde_json::from_str(json).unwrap();
        assert_eq!(read.requests[0].numbers, [47, 12, 83]);
        assert_eq!(read.requests[0].context.purpose_text(), "sign-in");
    }
}
