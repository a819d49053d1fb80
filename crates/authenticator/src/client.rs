//! HTTP to the server: activation, then signed requests whose answers are checked with the
//! server's key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use crate::keys::{DeviceKey, KeyError, ServerKey};
use crate::protocol::{
    self, ActivateRequest, ActivateResponse, AnswerRequest, AnswerResponse, DeviceInfo,
    PendingRequest, Problem, RequestsResponse,
};
use crate::store::Account;

/// The protocol's headers.
pub const HEADER_DEVICE: &str = "Twofold-Device";
pub const HEADER_TIMESTAMP: &str = "Twofold-Timestamp";
pub const HEADER_NONCE: &str = "Twofold-Nonce";
pub const HEADER_SIGNATURE: &str = "Twofold-Signature";

/// The largest answer read from a server.
const MAX_BODY: usize = 1 << 20;
/// How long a request may take beyond the time the server may hold it.
const SLACK: Duration = Duration::from_secs(20);

/// What can go wrong talking to a server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--ca-file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error(
        "the system has no trusted CA certificates: install them (the ca-certificates package) or give the server's with --ca-file"
    )]
    NoRoots,
    #[error("TLS cannot be set up: {0}")]
    Tls(String),
    #[error("{0} is not a URL the app talks to (https://, or http:// to this machine only)")]
    Url(String),
    #[error("{url}: {detail}")]
    Network { url: String, detail: String },
    #[error("the server refused (HTTP {status}): {}", describe_problem(.problem))]
    Problem { status: u16, problem: Problem },
    #[error("the server answered HTTP {status} (not the protocol's answer): {snippet}")]
    Unexpected { status: u16, snippet: String },
    #[error("the server's answer carries no Twofold-Signature: it was dropped")]
    MissingSignature,
    #[error("the server's answer is not signed by the server's key ({0}): it was dropped")]
    BadSignature(KeyError),
    #[error("the server's answer cannot be read: {0}")]
    Decode(serde_json::Error),
    #[error("the server's key is not Ed25519 ({0:?})")]
    ServerAlgorithm(String),
    #[error("the server's public key cannot be used: {0}")]
    ServerKey(KeyError),
    #[error("the saved account is damaged: {0}")]
    Key(KeyError),
}

impl ClientError {
    /// The problem's stable `code`, when the server refused with one.
    pub fn problem_code(&self) -> Option<&str> {
        match self {
            ClientError::Problem { problem, .. } => problem.code.as_deref(),
            _ => None,
        }
    }

    /// The server could not be reached, or did not answer in time: trying again may help.
    pub fn is_network(&self) -> bool {
        matches!(self, ClientError::Network { .. })
            || matches!(self, ClientError::Unexpected { status, .. } if *status >= 500)
            || matches!(self, ClientError::Problem { status, .. } if *status >= 500 || *status == 429)
    }
}

fn describe_problem(problem: &Problem) -> String {
    let detail = problem
        .detail
        .as_deref()
        .or(problem.title.as_deref())
        .unwrap_or("no detail given");
    match &problem.code {
        Some(code) => format!("{detail} (code: {code})"),
        None => detail.to_owned(),
    }
}

/// TLS with ring: the system's trusted roots, plus the PEM certificates of `ca_file`.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(found.certs);
    if let Some(path) = ca_file {
        let bad = |reason: String| ClientError::CaFile {
            path: path.to_owned(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot be read ({e})")))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not PEM certificates ({e})")))?;
        if certs.is_empty() {
            return Err(bad("holds no certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| bad(format!("a certificate cannot be used ({e})")))?;
        }
    }
    if roots.is_empty() {
        return Err(ClientError::NoRoots);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// `{base_url}/app/v1/{rest}`. Only `https://`, or `http://` to a loopback address (a test
/// server on this machine): an activation code or an answer never crosses a network in
/// clear.
pub fn endpoint(base_url: &str, rest: &str) -> Result<Url, ClientError> {
    let text = format!("{}/app/v1/{rest}", base_url.trim_end_matches('/'));
    let url = Url::parse(&text).map_err(|_| ClientError::Url(base_url.into()))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ClientError::Url(base_url.into())),
    }
}

/// The path and query of `url` exactly as sent: what the signature covers.
pub fn path_and_query(url: &Url) -> String {
    match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The four headers of a signed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    pub device: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
}

/// Signs a request to `url` made at `timestamp` with `nonce`.
pub fn sign_request(
    key: &DeviceKey,
    device_id: &str,
    method: &Method,
    url: &Url,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> SignedHeaders {
    let signed = protocol::request_signing_string(
        method.as_str(),
        &path_and_query(url),
        timestamp,
        nonce,
        body,
    );
    SignedHeaders {
        device: device_id.to_owned(),
        timestamp: timestamp.to_string(),
        nonce: nonce.to_owned(),
        signature: key.sign_b64(signed.as_bytes()),
    }
}

/// Checks a `200` answer's `Twofold-Signature` against the request's nonce and the body.
pub fn verify_response(
    server_key: &ServerKey,
    request_nonce: &str,
    signature: Option<&str>,
    body: &[u8],
) -> Result<(), ClientError> {
    let signature = signature.ok_or(ClientError::MissingSignature)?;
    let signed = protocol::response_signing_string(request_nonce, body);
    server_key
        .verify(signed.as_bytes(), signature)
        .map_err(ClientError::BadSignature)
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An HTTP client for every server the app talks to.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Http {
    pub fn new(ca_file: Option<&Path>) -> Result<Self, ClientError> {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls_config(ca_file)?)
            .user_agent(concat!("twofold-authenticator/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A redirect would change the signed path; the protocol has none.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Tls(error_chain(&e)))?;
        Ok(Http { client })
    }

    /// `POST {base_url}/app/v1/activate` (not signed: the code is the credential).
    pub async fn activate(
        &self,
        base_url: &str,
        request: &ActivateRequest,
    ) -> Result<ActivateResponse, ClientError> {
        let url = endpoint(base_url, "activate")?;
        let body = serde_json::to_vec(request).map_err(ClientError::Decode)?;
        let sent = self
            .client
            .post(url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(SLACK)
            .body(body)
            .send()
            .await;
        let (status, _, body) = read(&url, sent).await?;
        if !status.is_success() {
            return Err(refusal(status, &body));
        }
        let answer: ActivateResponse =
            serde_json::from_slice(&body).map_err(ClientError::Decode)?;
        if answer.server.algorithm != "ed25519" {
            return Err(ClientError::ServerAlgorithm(answer.server.algorithm));
        }
        ServerKey::from_b64(&answer.server.public_key).map_err(ClientError::ServerKey)?;
        Ok(answer)
    }
}

/// One account's device, making signed requests to its server.
#[derive(Debug)]
pub struct Device {
    http: Http,
    base_url: String,
    device_id: String,
    key: DeviceKey,
    server_key: ServerKey,
}

impl Device {
    pub fn new(http: &Http, account: &Account) -> Result<Self, ClientError> {
        Ok(Device {
            http: http.clone(),
            base_url: account.server_url.clone(),
            device_id: account.device_id.clone(),
            key: account.device_key().map_err(ClientError::Key)?,
            server_key: account.server_key().map_err(ClientError::Key)?,
        })
    }

    /// `GET /app/v1/requests?wait=N`: the requests waiting now, or the first to arrive
    /// within `wait` seconds.
    pub async fn requests(&self, wait: u64) -> Result<Vec<PendingRequest>, ClientError> {
        let body = self
            .signed(
                Method::GET,
                &format!("requests?wait={wait}"),
                Vec::new(),
                Duration::from_secs(wait) + SLACK,
            )
            .await?;
        Ok(decode::<RequestsResponse>(&body)?.requests)
    }

    /// `POST /app/v1/requests/{id}/answer`.
    pub async fn answer(
        &self,
        request_id: &str,
        answer: &AnswerRequest,
    ) -> Result<AnswerResponse, ClientError> {
        let body = serde_json::to_vec(answer).map_err(ClientError::Decode)?;
        let rest = format!("requests/{}/answer", percent_encode_segment(request_id));
        let body = self.signed(Method::POST, &rest, body, SLACK).await?;
        decode(&body)
    }

    /// `GET /app/v1/device`: this device as the server knows it.
    pub async fn info(&self) -> Result<DeviceInfo, ClientError> {
        let body = self
            .signed(Method::GET, "device", Vec::new(), SLACK)
            .await?;
        decode(&body)
    }

    /// Sends a signed request and gives the body of its `200` answer once its signature
    /// checks out.
    async fn signed(
        &self,
        method: Method,
        rest: &str,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, ClientError> {
        let url = endpoint(&self.base_url, rest)?;
        let nonce = protocol::new_nonce();
        let headers = sign_request(
            &self.key,
            &self.device_id,
            &method,
            &url,
            &body,
            unix_now(),
            &nonce,
        );
        let mut request = self
            .http
            .client
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(HEADER_DEVICE, headers.device)
            .header(HEADER_TIMESTAMP, headers.timestamp)
            .header(HEADER_NONCE, headers.nonce)
            .header(HEADER_SIGNATURE, headers.signature)
            .timeout(timeout);
        if !body.is_empty() {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let (status, signature, body) = read(&url, request.send().await).await?;
        if status == StatusCode::OK {
            verify_response(&self.server_key, &nonce, signature.as_deref(), &body)?;
            Ok(body)
        } else if status.is_success() {
            Ok(body)
        } else {
            Err(refusal(status, &body))
        }
    }
}

/// Reads an answer: its status, its `Twofold-Signature`, and its body (at most 1 MiB).
async fn read(
    url: &Url,
    sent: Result<reqwest::Response, reqwest::Error>,
) -> Result<(StatusCode, Option<String>, Vec<u8>), ClientError> {
    let network = |e: reqwest::Error| {
        let mut detail = error_chain(&e.without_url());
        if detail.contains("certificate") {
            detail.push_str(
                " (a server with a self-signed certificate needs --ca-file with that certificate)",
            );
        }
        ClientError::Network {
            url: url.to_string(),
            detail,
        }
    };
    let mut response = sent.map_err(network)?;
    let status = response.status();
    let signature = response
        .headers()
        .get(HEADER_SIGNATURE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ClientError::Unexpected {
                status: status.as_u16(),
                snippet: "an answer larger than 1 MiB".into(),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, signature, body))
}

/// The error for a refusal: the problem+json when there is one.
fn refusal(status: StatusCode, body: &[u8]) -> ClientError {
    match serde_json::from_slice::<Problem>(body) {
        Ok(problem) if problem.code.is_some() || problem.detail.is_some() => ClientError::Problem {
            status: status.as_u16(),
            problem,
        },
        _ => ClientError::Unexpected {
            status: status.as_u16(),
            snippet: String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>()
                .trim()
                .to_owned(),
        },
    }
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(ClientError::Decode)
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// A request id as one path segment (ids are `p_…`; anything else, dots too, is escaped).
fn percent_encode_segment(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::keys::{Algorithm, b64, unb64};

    #[test]
    fn a_signed_request_signs_the_path_as_sent_under_the_base_url() {
        let key = DeviceKey::generate(Algorithm::Ed25519);
        let url = endpoint("https://mfa.example.com/twofold/", "requests?wait=25").unwrap();
        assert_eq!(
            url.as_str(),
            "https://mfa.example.com/twofold/app/v1/requests?wait=25"
        );
        let headers = sign_request(
            &key,
            "d_1",
            &Method::GET,
            &url,
            b"",
            1796032800,
            "bm9uY2Vub25jZW5vbmNl",
        );
        assert_eq!(headers.device, "d_1");
        assert_eq!(headers.timestamp, "1796032800");

        let expected = "twofold-app-v1\nGET\n/twofold/app/v1/requests?wait=25\n1796032800\nbm9uY2Vub25jZW5vbmNl\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let public: [u8; 32] = unb64(&key.public_key_b64()).unwrap().try_into().unwrap();
        let verifier = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
        let signature =
            ed25519_dalek::Signature::from_slice(&unb64(&headers.signature).unwrap()).unwrap();
        verifier
            .verify_strict(expected.as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn an_answer_signs_its_body_with_a_p256_key() {
        use p256::ecdsa::signature::Verifier as _;
        let key = DeviceKey::generate(Algorithm::P256);
        let url = endpoint("https://mfa.example.com", "requests/p_1/answer").unwrap();
        let body = br#"{"nonce":"n","answer":"approve","number":47}"#;
        let headers = sign_request(
            &key,
            "d_2",
            &Method::POST,
            &url,
            body,
            5,
            "abcdefghijklmnopqrstuv",
        );
        let expected = protocol::request_signing_string(
            "POST",
            "/app/v1/requests/p_1/answer",
            5,
            "abcdefghijklmnopqrstuv",
            body,
        );
        let verifier =
            p256::ecdsa::VerifyingKey::from_sec1_bytes(&unb64(&key.public_key_b64()).unwrap())
                .unwrap();
        let signature =
            p256::ecdsa::Signature::from_slice(&unb64(&headers.signature).unwrap()).unwrap();
        verifier.verify(expected.as_bytes(), &signature).unwrap();
    }

    #[test]
    fn an_answer_not_signed_by_the_server_key_is_dropped() {
        use ed25519_dalek::Signer as _;
        let server = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let server_key = ServerKey::from_b64(&b64(server.verifying_key().as_bytes())).unwrap();
        let body = br#"{"requests":[]}"#;
        let good = b64(&server
            .sign(protocol::response_signing_string("nonce-1", body).as_bytes())
            .to_bytes());

        verify_response(&server_key, "nonce-1", Some(&good), body).unwrap();
        // Missing, for another request (a replayed answer), or over another body.
        assert!(matches!(
            verify_response(&server_key, "nonce-1", None, body),
            Err(ClientError::MissingSignature)
        ));
        assert!(matches!(
            verify_response(&server_key, "nonce-2", Some(&good), body),
            Err(ClientError::BadSignature(_))
        ));
        assert!(matches!(
            verify_response(&server_key, "nonce-1", Some(&good), br#"{"requests":[{}]}"#),
            Err(ClientError::BadSignature(_))
        ));
        let other = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let forged = b64(&other
            .sign(protocol::response_signing_string("nonce-1", body).as_bytes())
            .to_bytes());
        assert!(matches!(
            verify_response(&server_key, "nonce-1", Some(&forged), body),
            Err(ClientError::BadSignature(_))
        ));
    }

    #[test]
    fn only_https_or_http_to_this_machine_is_used() {
        assert!(endpoint("https://mfa.example.com", "activate").is_ok());
        assert!(endpoint("http://127.0.0.1:8080", "activate").is_ok());
        assert!(endpoint("http://localhost:8080/", "activate").is_ok());
        assert!(endpoint("http://[::1]:8080", "activate").is_ok());
        assert!(matches!(
            endpoint("http://mfa.example.com", "activate"),
            Err(ClientError::Url(_))
        ));
        assert!(matches!(
            endpoint("ftp://mfa.example.com", "activate"),
            Err(ClientError::Url(_))
        ));
    }

    #[test]
    fn a_refusal_shows_the_problem_detail_and_code() {
        let error = refusal(
            StatusCode::GONE,
            br#"{"type":"about:blank","title":"Gone","status":410,"detail":"The request has expired.","code":"request_expired"}"#,
        );
        assert_eq!(error.problem_code(), Some("request_expired"));
        assert_eq!(
            error.to_string(),
            "the server refused (HTTP 410): The request has expired. (code: request_expired)"
        );
        let error = refusal(StatusCode::BAD_GATEWAY, b"<html>Bad gateway</html>");
        assert!(error.is_network());
        assert!(error.to_string().contains("HTTP 502"));
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_with_its_name() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("ca.pem");
        std::fs::write(&path, b"not a certificate\n").unwrap();
        let error = tls_config(Some(&path)).unwrap_err();
        assert!(matches!(error, ClientError::CaFile { .. }), "{error}");
        assert!(error.to_string().contains("ca.pem"));
    }

    #[test]
    fn request_ids_stay_one_path_segment() {
        assert_eq!(percent_encode_segment("p_Ab-9"), "p_Ab-9");
        assert_eq!(percent_encode_segment("../x?y"), "%2E%2E%2Fx%3Fy");
    }
}
