//! A typed client of the Web Service SDK.
//!
//! TLS with rustls (ring): the server's certificate is checked against the system-less root
//! store built from `ca_file` (the original's "import the self-signed certificate into the
//! trusted root store"), and, when `pin_sha256` is given, the leaf certificate's SHA-256
//! fingerprint must match too (with a pin and no CA file, the pin alone decides: the way to
//! trust a self-signed certificate without copying it).
//! Idempotent calls (GET, PUT, DELETE) are retried on connection failures and 502/503/504;
//! POSTs are not, so that nothing happens twice.

use crate::*;
pub use reqwest::Method as HttpMethod;
use reqwest::{Method, StatusCode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach the server.
#[derive(Clone)]
pub struct ClientConfig {
    /// `https://mfa.example.com:8443` (the `/sdk/v1` prefix is added).
    pub url: String,
    pub username: String,
    pub password: String,
    /// PEM certificates to trust (the server's self-signed certificate, or your CA).
    pub ca_file: Option<PathBuf>,
    /// The server certificate's SHA-256 fingerprint, `AB:CD:…` or plain hex.
    pub pin_sha256: Option<String>,
    pub timeout: Duration,
    /// Extra attempts for idempotent calls.
    pub retries: u32,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("ca_file", &self.ca_file)
            .field("pin_sha256", &self.pin_sha256)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The server could not be reached or did not answer in time.
    #[error("the MFA server cannot be reached: {0}")]
    Unavailable(String),
    /// The server answered with a problem.
    #[error("{} ({}): {}", .0.title, .0.code, .0.detail.clone().unwrap_or_default())]
    Problem(Box<Problem>),
    /// The answer could not be read.
    #[error("unexpected answer from the MFA server: {0}")]
    Protocol(String),
    /// The client's own configuration is unusable.
    #[error("{0}")]
    Config(String),
}

impl SdkError {
    /// The problem's stable code, when the server sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            SdkError::Problem(p) => Some(&p.code),
            _ => None,
        }
    }
}

/// A client of one server. Cheap to clone; keeps its connections alive.
#[derive(Clone, Debug)]
pub struct SdkClient {
    http: reqwest::Client,
    base: url::Url,
    username: String,
    password: Arc<str>,
    retries: u32,
}

#[derive(Debug)]
struct PinnedVerifier {
    inner: Option<Arc<dyn ServerCertVerifier>>,
    pin: Option<Vec<u8>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(pin) = &self.pin {
            let seen = Sha256::digest(end_entity.as_ref());
            if seen.as_slice() != pin.as_slice() {
                return Err(rustls::Error::General(format!(
                    "the server's certificate fingerprint {} is not the pinned one",
                    hex::encode_upper(seen)
                )));
            }
        }
        match &self.inner {
            Some(inner) => {
                inner.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn parse_pin(pin: &str) -> Result<Vec<u8>, SdkError> {
    let cleaned: String = pin.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    match hex::decode(&cleaned) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes),
        _ => Err(SdkError::Config(format!(
            "pin_sha256 {pin:?} is not a SHA-256 fingerprint: give 64 hex digits, as `twofold serve` prints them"
        ))),
    }
}

impl SdkClient {
    pub fn new(config: &ClientConfig) -> Result<Self, SdkError> {
        let mut base = url::Url::parse(config.url.trim_end_matches('/')).map_err(|e| {
            SdkError::Config(format!(
                "sdk url {:?}: {e}; use https://host:port",
                config.url
            ))
        })?;
        if base.scheme() != "https" {
            return Err(SdkError::Config(format!(
                "sdk url {:?}: the SDK is reached over https:// only",
                config.url
            )));
        }
        let path = format!("{}/sdk/v1/", base.path().trim_end_matches('/'));
        base.set_path(&path);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let inner: Option<Arc<dyn ServerCertVerifier>> = match &config.ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| {
                    SdkError::Config(format!(
                        "sdk ca_file {}: cannot be read ({e})",
                        path.display()
                    ))
                })?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                    let cert = cert.map_err(|e| {
                        SdkError::Config(format!("sdk ca_file {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        SdkError::Config(format!("sdk ca_file {}: {e}", path.display()))
                    })?;
                }
                if roots.is_empty() {
                    return Err(SdkError::Config(format!(
                        "sdk ca_file {}: holds no PEM certificate",
                        path.display()
                    )));
                }
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider.clone(),
                )
                .build()
                .map_err(|e| SdkError::Config(e.to_string()))?;
                Some(verifier)
            }
            None => None,
        };
        let pin = config.pin_sha256.as_deref().map(parse_pin).transpose()?;
        if inner.is_none() && pin.is_none() {
            return Err(SdkError::Config(
                "the SDK client needs ca_file (the server's certificate or its CA) or pin_sha256 (its fingerprint)".into(),
            ));
        }
        let verifier = Arc::new(PinnedVerifier {
            inner,
            pin,
            provider: provider.clone(),
        });
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SdkError::Config(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| SdkError::Config(e.to_string()))?;
        Ok(Self {
            http,
            base,
            username: config.username.clone(),
            password: Arc::from(config.password.as_str()),
            retries: config.retries,
        })
    }

    fn url(&self, path: &str) -> Result<url::Url, SdkError> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| SdkError::Config(e.to_string()))
    }

    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, SdkError> {
        let idempotent = matches!(method, Method::GET | Method::PUT | Method::DELETE);
        let attempts = if idempotent { self.retries + 1 } else { 1 };
        let url = self.url(path)?;
        let mut last = SdkError::Unavailable("no attempt made".into());
        for attempt in 0..attempts {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(100 * 3u64.pow(attempt - 1))).await;
            }
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .basic_auth(&self.username, Some(&*self.password));
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response)
                    if idempotent
                        && matches!(
                            response.status(),
                            StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        ) =>
                {
                    last = problem_of(response).await;
                }
                Ok(response) => return Ok(response),
                Err(e) => last = SdkError::Unavailable(describe(&e)),
            }
        }
        Err(last)
    }

    async fn call<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, SdkError> {
        let response = self.send(method, path, body).await?;
        if !response.status().is_success() {
            return Err(problem_of(response).await);
        }
        response
            .json::<T>()
            .await
            .map_err(|e| SdkError::Protocol(e.to_string()))
    }

    async fn call_empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), SdkError> {
        let response = self.send(method, path, body).await?;
        if !response.status().is_success() {
            return Err(problem_of(response).await);
        }
        Ok(())
    }

    pub async fn create_user(&self, body: &UserCreate) -> Result<User, SdkError> {
        self.call(Method::POST, "users", Some(body)).await
    }
    pub async fn user(&self, username: &str) -> Result<User, SdkError> {
        self.call::<_, ()>(Method::GET, &format!("users/{}", seg(username)), None)
            .await
    }
    pub async fn patch_user(&self, username: &str, body: &UserPatch) -> Result<User, SdkError> {
        self.call(
            Method::PATCH,
            &format!("users/{}", seg(username)),
            Some(body),
        )
        .await
    }
    pub async fn delete_user(&self, username: &str) -> Result<(), SdkError> {
        self.call_empty::<()>(Method::DELETE, &format!("users/{}", seg(username)), None)
            .await
    }
    pub async fn list_users(
        &self,
        query: &str,
        cursor: Option<&str>,
    ) -> Result<UserList, SdkError> {
        let mut path = format!("users?query={}", seg(query));
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", seg(c)));
        }
        self.call::<_, ()>(Method::GET, &path, None).await
    }
    /// Sets both phones at once (`primary: None` clears both); returns the user.
    pub async fn set_phones(&self, username: &str, body: &PhonesSet) -> Result<User, SdkError> {
        self.call(
            Method::PUT,
            &format!("users/{}/phones", seg(username)),
            Some(body),
        )
        .await
    }
    /// Sets the primary method; returns the user.
    pub async fn set_method(
        &self,
        username: &str,
        method: crate::Method,
    ) -> Result<User, SdkError> {
        self.call(
            Method::PUT,
            &format!("users/{}/method", seg(username)),
            Some(&MethodSet { method }),
        )
        .await
    }
    /// Lifts a fraud block (nothing happens when there is none).
    pub async fn unblock(&self, username: &str) -> Result<(), SdkError> {
        self.call_empty::<()>(
            Method::POST,
            &format!("users/{}/unblock", seg(username)),
            None,
        )
        .await
    }
    pub async fn set_pin(&self, username: &str, pin: &str) -> Result<(), SdkError> {
        self.call_empty(
            Method::PUT,
            &format!("users/{}/pin", seg(username)),
            Some(&PinSet {
                pin: pin.to_owned(),
            }),
        )
        .await
    }
    pub async fn enroll_oath(
        &self,
        username: &str,
        body: &OathEnroll,
    ) -> Result<OathEnrollment, SdkError> {
        self.call(
            Method::POST,
            &format!("users/{}/oath", seg(username)),
            Some(body),
        )
        .await
    }
    pub async fn verify_oath(
        &self,
        username: &str,
        code: &str,
        pin: Option<&str>,
    ) -> Result<Verified, SdkError> {
        let body = CodeCheck {
            code: code.to_owned(),
            pin: pin.map(str::to_owned),
        };
        self.call(
            Method::POST,
            &format!("users/{}/oath/verify", seg(username)),
            Some(&body),
        )
        .await
    }
    pub async fn security_questions(
        &self,
        lang: Option<&str>,
    ) -> Result<Vec<SecurityQuestion>, SdkError> {
        let path = match lang {
            Some(l) => format!("security-questions?lang={}", seg(l)),
            None => "security-questions".to_owned(),
        };
        self.call::<_, ()>(Method::GET, &path, None).await
    }
    pub async fn set_security_answers(
        &self,
        username: &str,
        answers: &[SecurityAnswer],
    ) -> Result<(), SdkError> {
        let body = SecurityAnswers {
            answers: answers.to_vec(),
        };
        self.call_empty(
            Method::PUT,
            &format!("users/{}/security-answers", seg(username)),
            Some(&body),
        )
        .await
    }
    pub async fn bypass(&self, username: &str, body: &BypassCreate) -> Result<Bypass, SdkError> {
        self.call(
            Method::POST,
            &format!("users/{}/bypass", seg(username)),
            Some(body),
        )
        .await
    }
    pub async fn start_authentication(
        &self,
        body: &AuthenticationStart,
    ) -> Result<Authentication, SdkError> {
        self.call(Method::POST, "authentications", Some(body)).await
    }
    pub async fn authentication(&self, id: &str) -> Result<Authentication, SdkError> {
        self.call::<_, ()>(Method::GET, &format!("authentications/{}", seg(id)), None)
            .await
    }
    pub async fn answer(
        &self,
        id: &str,
        answer: &AuthenticationAnswer,
    ) -> Result<Authentication, SdkError> {
        self.call(
            Method::POST,
            &format!("authentications/{}/answer", seg(id)),
            Some(answer),
        )
        .await
    }
    pub async fn import_tokens(&self, body: &TokenImport) -> Result<TokenImportResult, SdkError> {
        self.call(Method::POST, "tokens/import", Some(body)).await
    }
    pub async fn settings(&self) -> Result<serde_json::Value, SdkError> {
        self.call::<_, ()>(Method::GET, "settings", None).await
    }

    /// Any other call of the SDK (the portal's own operations).
    pub async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, SdkError> {
        self.call(method, path, body).await
    }

    /// Like [`SdkClient::json`] for calls that answer with no body.
    pub async fn empty<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), SdkError> {
        self.call_empty(method, path, body).await
    }
}

/// A path segment, percent-encoded.
pub fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn problem_of(response: reqwest::Response) -> SdkError {
    let status = response.status();
    match response.json::<Problem>().await {
        Ok(problem) => SdkError::Problem(Box::new(problem)),
        Err(_)
            if matches!(
                status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ) =>
        {
            SdkError::Unavailable(format!("HTTP {status}"))
        }
        Err(e) => SdkError::Protocol(format!("HTTP {status} without a problem body ({e})")),
    }
}
