//! The authenticator app (`/app/v1`, `docs/mobile-app.md`): activation codes and devices,
//! requests sent to devices with the number to match, signed requests and answers, the
//! long-poll that delivers requests on any node, and UnifiedPush wake-ups.
//!
//! A request is one more way to finish an authentication: the authentication waits on
//! [`Step::MobileApp`], its `message_id` names the current request, and its `code_hash` holds
//! the keyed hash of the number to match, so that an approval is checked like a texted code
//! (by [`InProcessService::check_phone_answer`]) and counted like any answer.

use super::authentications::Answer;
use super::{ClientContext, InProcessService, ServiceError};
use crate::channels::unified_push::WakeSender;
use crate::config::AppConfig;
use crate::store::{
    DeviceAdmission, DeviceRecord, NewToken, PushAdmission, PushLimits, PushRequestRecord,
    TokenKind, TokenStatus, UserRecord, new_id,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use twofold_engine::app::{self, AppError, DeviceKey, KeyAlgorithm};
use twofold_engine::audit::{AuditAction, AuditOutcome};
use twofold_engine::authentication::{
    AppAnswer, Authentication, Event, Origin, Reason, State, Step,
};
use twofold_engine::oath::{self, Algorithm, OathKind, OathParams, OathState};
use twofold_engine::{DomainError, Settings, UnixTime};
use zeroize::Zeroizing;

/// The `channel` of an authentication that went to the app.
pub const APP_CHANNEL: &str = "app";

/// An activation code with what goes with it, to show once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activation {
    /// The code, in four groups (`7K3M-Q9TX-2HBW-V4RD`).
    pub code: String,
    /// The server's address for the app.
    pub url: String,
    /// `twofold://activate?url=…&code=…`, what the QR code carries.
    pub uri: String,
    /// The QR code of `uri`, as an SVG image.
    pub qr_svg: String,
    pub expires_at: UnixTime,
}

/// An activated device, as its user and administrators see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: String,
    pub name: String,
    /// `ed25519` or `p256`.
    pub algorithm: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    /// The device makes offline codes (it brought the user's OATH token).
    pub offline_codes: bool,
    /// It gave a UnifiedPush endpoint for wake-ups.
    pub push_endpoint: bool,
}

/// Where an authentication's request to the app stands, for the page that waits and the
/// SDK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushStatus {
    /// The number the page shows (absent without number matching, or when no request
    /// went out).
    pub number: Option<u8>,
    /// A request is waiting for the app's answer now.
    pub waiting: bool,
    /// The current request expired unanswered (the page may send another).
    pub expired: bool,
    pub expires_at: Option<UnixTime>,
}

/// `POST /app/v1/activate`'s body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    pub code: String,
    pub algorithm: String,
    pub public_key: String,
    pub name: String,
    #[serde(default)]
    pub push_endpoint: Option<String>,
    pub proof: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AccountView {
    pub username: String,
    pub label: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ServerKeyView {
    pub url: String,
    pub algorithm: String,
    pub public_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct OathSeedView {
    pub secret: String,
    pub algorithm: String,
    pub digits: u8,
    pub period: u64,
}

/// `POST /app/v1/activate`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ActivateReply {
    pub device_id: String,
    pub account: AccountView,
    pub server: ServerKeyView,
    pub oath: Option<OathSeedView>,
}

/// Where a request comes from, as the app shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RequestContext {
    pub application: String,
    pub address: Option<String>,
    pub time: UnixTime,
    pub username: String,
    /// `sign_in`, `confirm_change` or `activation_test`.
    pub purpose: String,
}

/// One request waiting for the app.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AppRequestView {
    pub id: String,
    pub nonce: String,
    pub numbers: Vec<u8>,
    pub number_matching: bool,
    pub pin_required: bool,
    pub context: RequestContext,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct RequestsReply {
    pub requests: Vec<AppRequestView>,
}

/// `POST /app/v1/requests/{id}/answer`'s body.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerBody {
    pub nonce: String,
    pub answer: String,
    #[serde(default)]
    pub number: Option<u8>,
    #[serde(default)]
    pub pin: Option<String>,
}

/// What became of the sign-in the app answered.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct AnswerReply {
    /// `approved`, `denied` or `fraud`.
    pub outcome: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `GET /app/v1/device`'s answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct DeviceInfo {
    pub device_id: String,
    pub name: String,
    pub algorithm: String,
    pub username: String,
    pub created_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
}

/// A request as a device signed it (the web layer collects the parts).
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub device_id: &'a str,
    pub timestamp: &'a str,
    pub nonce: &'a str,
    pub signature: &'a str,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

/// What a device's sealed record holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealedDeviceKey {
    public_key: String,
    #[serde(default)]
    push_endpoint: Option<String>,
}

fn device_aad(id: &str) -> Vec<u8> {
    format!("devices:{id}").into_bytes()
}

const SERVER_KEY_AAD: &[u8] = b"app_server_keys:current";

/// The long-polls this node holds, by user: a new request for the user wakes them.
#[derive(Debug, Default)]
pub struct PushHub {
    waiting: Mutex<HashMap<String, Arc<Notify>>>,
}

impl PushHub {
    fn subscribe(&self, user_id: &str) -> Arc<Notify> {
        let mut map = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(user_id.to_owned())
            .or_insert_with(|| Arc::new(Notify::new()))
            .clone()
    }

    /// Wakes the long-polls of `user_id` on this node.
    pub fn wake(&self, user_id: &str) {
        let map = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get(user_id) {
            n.notify_waiters();
        }
    }

    /// Forgets users nobody waits for; whether anyone still waits.
    fn prune(&self) -> bool {
        let mut map = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, n| Arc::strong_count(n) > 1);
        !map.is_empty()
    }

    /// How many users this node holds long-polls for.
    pub fn users_waiting(&self) -> usize {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// What the app service keeps for this node.
pub struct AppRuntime {
    config: AppConfig,
    /// The server's own address, for activation codes when no URL is configured.
    fallback_url: String,
    pub hub: PushHub,
    server_key: tokio::sync::OnceCell<ed25519_dalek::SigningKey>,
    wake: WakeSender,
}

impl AppRuntime {
    pub fn new(config: AppConfig, fallback_url: String) -> AppRuntime {
        let wake = WakeSender::new(config.allow_private_push_endpoints);
        AppRuntime {
            config,
            fallback_url,
            hub: PushHub::default(),
            server_key: tokio::sync::OnceCell::new(),
            wake,
        }
    }
}

impl Default for AppRuntime {
    fn default() -> Self {
        AppRuntime::new(AppConfig::default(), "https://127.0.0.1:8443".into())
    }
}

fn internal(e: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(e.to_string())
}

fn app_error(e: AppError) -> ServiceError {
    ServiceError::Domain(DomainError::App(e))
}

fn purpose_of(origin: Origin) -> &'static str {
    match origin {
        Origin::StepUp => "confirm_change",
        Origin::AppCheck => "activation_test",
        Origin::Portal | Origin::Sdk | Origin::PhoneCheck | Origin::Admin => "sign_in",
    }
}

fn limits_of(settings: &Settings) -> PushLimits {
    PushLimits {
        denials: settings.push_denials_before_cooldown,
        cooldown_seconds: i64::from(settings.push_cooldown_minutes) * 60,
    }
}

/// A device name as given, trimmed, or why it cannot be one.
fn clean_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > app::MAX_DEVICE_NAME {
        return Err(DomainError::InvalidRequest(format!(
            "name: give the device a name of 1 to {} characters",
            app::MAX_DEVICE_NAME
        ))
        .into());
    }
    if name.chars().any(char::is_control) {
        return Err(
            DomainError::InvalidRequest("name: control characters are not allowed".into()).into(),
        );
    }
    Ok(name.to_owned())
}

fn device_view(d: &DeviceRecord, push_endpoint: bool) -> DeviceView {
    DeviceView {
        id: d.id.clone(),
        name: d.name.clone(),
        algorithm: d.algorithm.clone(),
        created_at: d.created_at,
        last_used_at: d.last_used_at,
        offline_codes: d.token_id.is_some(),
        push_endpoint,
    }
}

/// Activation, devices.
impl InProcessService {
    /// The URL given with activation codes.
    fn app_url(&self, settings: &Settings) -> String {
        let configured = self.app.config.public_url.trim();
        let url = if !configured.is_empty() {
            configured
        } else if !settings.portal_url.trim().is_empty() {
            settings.portal_url.trim()
        } else {
            self.app.fallback_url.as_str()
        };
        url.trim_end_matches('/').to_owned()
    }

    /// Creates a one-time activation code for `user_id` (the user's earlier unused one stops
    /// working). Refused when the user has as many devices as the limit allows.
    pub(super) async fn create_activation(
        &self,
        user_id: &str,
        client: &ClientContext,
    ) -> Result<Activation, ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(user_id).await?;
        let count = self.store.device_count(&user.id).await?;
        if count >= u32::from(settings.mobile_app_device_limit) {
            return Err(app_error(AppError::DeviceLimit {
                limit: settings.mobile_app_device_limit,
            }));
        }
        let raw = app::activation_code(rand::random());
        let code = app::grouped(&raw);
        let hash = self
            .keyring
            .code_hash(b"activation", raw.as_bytes())
            .map_err(internal)?;
        let now = self.clock.now();
        let expires_at = now + i64::from(settings.app_activation_minutes) * 60;
        let created_by = client
            .actor
            .clone()
            .unwrap_or_else(|| format!("user:{}", user.username));
        self.store
            .create_activation_code(&hash, &user.id, &created_by, now, expires_at)
            .await?;
        let url = self.app_url(&settings);
        let uri = app::activation_uri(&url, &code);
        let qr_svg = super::factors::qr_svg(&uri)?;
        self.audit(self.succeeded(AuditAction::AppActivationCreated, &user, client))
            .await;
        Ok(Activation {
            code,
            url,
            uri,
            qr_svg,
            expires_at,
        })
    }

    /// A user's devices.
    pub(super) async fn devices_of(&self, user_id: &str) -> Result<Vec<DeviceView>, ServiceError> {
        let devices = self.store.devices_of(user_id).await?;
        Ok(devices
            .iter()
            .map(|d| {
                let push = self
                    .open_device_key(d)
                    .map(|k| k.push_endpoint.is_some())
                    .unwrap_or(false);
                device_view(d, push)
            })
            .collect())
    }

    /// Removes one of a user's devices (and the offline token it brought); its requests are
    /// refused from now on.
    pub(super) async fn remove_device_of(
        &self,
        user_id: &str,
        device_id: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.user(user_id).await?;
        let removed = self
            .store
            .remove_device(&user.id, device_id)
            .await?
            .ok_or(app_error(AppError::UnknownDevice))?;
        if let Some(token) = &removed.token_id {
            self.store.delete_device_token(&user.id, token).await?;
        }
        // Its long-polls on this node end now; other nodes' at their next look.
        self.app.hub.wake(&user.id);
        self.audit(
            self.succeeded(AuditAction::DeviceRemoved, &user, client)
                .detail(format!("device {} ({})", removed.id, removed.name)),
        )
        .await;
        Ok(())
    }

    fn open_device_key(&self, d: &DeviceRecord) -> Result<SealedDeviceKey, ServiceError> {
        let plain = self
            .keyring
            .open(&d.key_sealed, &device_aad(&d.id))
            .map_err(internal)?;
        serde_json::from_slice(&plain).map_err(internal)
    }

    /// The server's signing key, the same on every node (made by the first that needs it).
    async fn server_key(&self) -> Result<&ed25519_dalek::SigningKey, ServiceError> {
        self.app
            .server_key
            .get_or_try_init(|| async {
                let candidate = ed25519_dalek::SigningKey::from_bytes(&rand::random());
                let public = URL_SAFE_NO_PAD.encode(candidate.verifying_key().to_bytes());
                let sealed = self
                    .keyring
                    .seal(&candidate.to_bytes(), SERVER_KEY_AAD)
                    .map_err(internal)?;
                let (_, stored) = self
                    .store
                    .app_server_key((&public, &sealed), self.clock.now())
                    .await?;
                let plain = Zeroizing::new(
                    self.keyring
                        .open(&stored, SERVER_KEY_AAD)
                        .map_err(internal)?
                        .to_vec(),
                );
                let bytes: [u8; 32] = plain
                    .as_slice()
                    .try_into()
                    .map_err(|_| internal("the stored app server key is damaged"))?;
                Ok::<_, ServiceError>(ed25519_dalek::SigningKey::from_bytes(&bytes))
            })
            .await
    }

    /// The server's public key (base64url), as the activation answer gives it.
    pub async fn app_server_public_key(&self) -> Result<String, ServiceError> {
        Ok(URL_SAFE_NO_PAD.encode(self.server_key().await?.verifying_key().to_bytes()))
    }

    /// Signs the answer to a signed request (`Twofold-Signature`).
    pub async fn sign_app_response(
        &self,
        nonce: &str,
        body: &[u8],
    ) -> Result<String, ServiceError> {
        let key = self.server_key().await?;
        let message = app::response_signing_string(nonce, body);
        Ok(URL_SAFE_NO_PAD.encode(key.sign(message.as_bytes()).to_bytes()))
    }

    /// Activates a device with a one-time code (`POST /app/v1/activate`).
    pub async fn activate_device(
        &self,
        body: ActivateBody,
        client: &ClientContext,
    ) -> Result<ActivateReply, ServiceError> {
        let algorithm = KeyAlgorithm::parse(&body.algorithm).ok_or_else(|| {
            ServiceError::from(DomainError::InvalidRequest(format!(
                "algorithm {:?}: use \"ed25519\" or \"p256\"",
                body.algorithm
            )))
        })?;
        let key = DeviceKey::parse(algorithm, &body.public_key).map_err(app_error)?;
        let name = clean_name(&body.name)?;
        let code = app::normalize_activation_code(&body.code)
            .ok_or(app_error(AppError::InvalidActivationCode))?;
        let proof = app::activation_proof_string(&code, body.public_key.trim());
        if !key.verifies(proof.as_bytes(), &body.proof) {
            return Err(app_error(AppError::BadSignature));
        }
        let hash = self
            .keyring
            .code_hash(b"activation", code.as_bytes())
            .map_err(internal)?;
        let now = self.clock.now();
        // Only a caller holding a valid code gets the endpoint's host looked up.
        if !self.store.activation_code_waiting(&hash, now).await? {
            return Err(app_error(AppError::InvalidActivationCode));
        }
        let push_endpoint = match body.push_endpoint.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(endpoint) => {
                self.app
                    .wake
                    .resolve(endpoint)
                    .await
                    .map_err(|e| app_error(AppError::InvalidPushEndpoint(e)))?;
                Some(endpoint.to_owned())
            }
        };
        let user_id = self
            .store
            .take_activation_code(&hash, now)
            .await?
            .ok_or(app_error(AppError::InvalidActivationCode))?;
        let user = self.user(&user_id).await?;
        super::not_fraud_blocked(&user, now)?;
        if !user.enabled {
            return Err(DomainError::AccountDisabled.into());
        }
        let settings = self.settings_now().await?;
        let id = new_id();
        let sealed = serde_json::to_vec(&SealedDeviceKey {
            public_key: body.public_key.trim().to_owned(),
            push_endpoint,
        })
        .map_err(internal)?;
        let device = DeviceRecord {
            id: id.clone(),
            user_id: user.id.clone(),
            name,
            algorithm: algorithm.as_str().to_owned(),
            key_sealed: self
                .keyring
                .seal(&sealed, &device_aad(&id))
                .map_err(internal)?,
            token_id: None,
            created_at: now,
            last_used_at: None,
        };
        let limit = u32::from(settings.mobile_app_device_limit);
        if self.store.add_device(&device, limit).await? == DeviceAdmission::LimitReached {
            return Err(app_error(AppError::DeviceLimit {
                limit: settings.mobile_app_device_limit,
            }));
        }
        let oath = self.offline_codes_for(&user, &device).await?;
        let mut client = client.clone();
        client
            .actor
            .get_or_insert_with(|| format!("user:{}", user.username));
        self.audit(
            self.succeeded(AuditAction::DeviceActivated, &user, &client)
                .detail(format!(
                    "device {} ({}, {})",
                    device.id, device.name, device.algorithm
                )),
        )
        .await;
        Ok(ActivateReply {
            device_id: id,
            account: AccountView {
                username: user.username.clone(),
                label: format!("{}: {}", settings.organisation_name, user.username),
            },
            server: ServerKeyView {
                url: self.app_url(&settings),
                algorithm: "ed25519".into(),
                public_key: self.app_server_public_key().await?,
            },
            oath,
        })
    }

    /// The device's offline codes: when the user holds no OATH token, a new TOTP seed
    /// becomes their token (the OATH fallback), and goes with the device.
    async fn offline_codes_for(
        &self,
        user: &UserRecord,
        device: &DeviceRecord,
    ) -> Result<Option<OathSeedView>, ServiceError> {
        if self
            .store
            .user_token(&user.id, TokenStatus::Active)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let secret = Zeroizing::new(oath::generate_secret());
        let token_id = new_id();
        let params = OathParams::default();
        let token = NewToken {
            id: token_id.clone(),
            serial: None,
            user_id: Some(user.id.clone()),
            kind: TokenKind::Software,
            params,
            counter: 0,
            secret_sealed: self
                .keyring
                .seal(&secret, &super::factors::token_aad(&token_id))
                .map_err(internal)?,
            key_id: self.keyring.current_id().to_owned(),
            status: TokenStatus::Pending,
        };
        let now = self.clock.now();
        self.store.create_pending_token(&token, now).await?;
        let Some(record) = self.store.token(&token_id).await? else {
            return Ok(None);
        };
        if !self
            .store
            .activate_token(
                &token_id,
                &user.id,
                record.version,
                &OathState::default(),
                now,
            )
            .await?
        {
            return Ok(None);
        }
        self.store.set_device_token(&device.id, &token_id).await?;
        let period = match params.kind {
            OathKind::Totp { period } => u64::from(period),
            OathKind::Hotp => 30,
        };
        Ok(Some(OathSeedView {
            secret: oath::encode_base32(&secret),
            algorithm: match params.algorithm {
                Algorithm::Sha1 => "SHA1",
                Algorithm::Sha256 => "SHA256",
                Algorithm::Sha512 => "SHA512",
            }
            .into(),
            digits: params.digits,
            period,
        }))
    }
}

/// Signed requests and requests to devices.
impl InProcessService {
    /// Checks a signed request: a device that exists, a timestamp within the window, a
    /// signature that verifies, and a nonce never used (recorded only once the signature
    /// verified, so that nobody else can spend a device's nonces).
    pub async fn verify_device_request(
        &self,
        request: SignedRequest<'_>,
    ) -> Result<DeviceRecord, ServiceError> {
        if !app::valid_nonce(request.nonce) {
            return Err(DomainError::InvalidRequest(
                "Twofold-Nonce: give 16 to 64 characters of base64url, new for every request"
                    .into(),
            )
            .into());
        }
        let device = self
            .store
            .device(request.device_id)
            .await?
            .ok_or(app_error(AppError::UnknownDevice))?;
        let now = self.clock.now();
        if !app::timestamp_in_window(request.timestamp, now) {
            return Err(app_error(AppError::StaleTimestamp));
        }
        let algorithm = KeyAlgorithm::parse(&device.algorithm)
            .ok_or_else(|| internal("a stored device has an unknown algorithm"))?;
        let sealed = self.open_device_key(&device)?;
        let key = DeviceKey::parse(algorithm, &sealed.public_key).map_err(app_error)?;
        let message = app::request_signing_string(
            request.method,
            request.path_and_query,
            request.timestamp,
            request.nonce,
            request.body,
        );
        if !key.verifies(message.as_bytes(), request.signature) {
            return Err(app_error(AppError::BadSignature));
        }
        if !self
            .store
            .take_device_nonce(&device.id, request.nonce, now)
            .await?
        {
            return Err(app_error(AppError::ReplayedNonce));
        }
        Ok(device)
    }

    /// `GET /app/v1/device`.
    pub async fn device_info(&self, device: &DeviceRecord) -> Result<DeviceInfo, ServiceError> {
        let user = self.user(&device.user_id).await?;
        Ok(DeviceInfo {
            device_id: device.id.clone(),
            name: device.name.clone(),
            algorithm: device.algorithm.clone(),
            username: user.username,
            created_at: device.created_at,
            last_used_at: device.last_used_at,
        })
    }

    /// `DELETE /app/v1/device`: the device removes itself.
    pub async fn remove_own_device(
        &self,
        device: &DeviceRecord,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let mut client = client.clone();
        client.actor = Some(format!("device:{}", device.id));
        self.remove_device_of(&device.user_id, &device.id, &client)
            .await
    }

    /// The requests waiting for the device's user now.
    pub async fn device_requests(
        &self,
        device: &DeviceRecord,
    ) -> Result<Vec<AppRequestView>, ServiceError> {
        let now = self.clock.now();
        let pending = self
            .store
            .pending_push_requests(&device.user_id, now)
            .await?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let settings = self.settings_now().await?;
        let user = self.user(&device.user_id).await?;
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            let Some(a) = self.store.authentication(&p.authentication_id).await? else {
                continue;
            };
            out.push(request_view(&p, &a, &settings, &user));
        }
        Ok(out)
    }

    /// The long-poll: the requests waiting now, or, when there are none, the first to
    /// arrive within `wait` seconds (at most `[app] long_poll_seconds`), on whichever node
    /// it was started.
    pub async fn wait_for_requests(
        &self,
        device: &DeviceRecord,
        wait: u64,
    ) -> Result<Vec<AppRequestView>, ServiceError> {
        let wait = wait.min(self.app.config.long_poll_seconds);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
        let notify = self.app.hub.subscribe(&device.user_id);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let requests = self.device_requests(device).await?;
            let now = tokio::time::Instant::now();
            if !requests.is_empty() || now >= deadline {
                return Ok(requests);
            }
            // A removed device's long-poll ends at once here, at its next look elsewhere.
            let look = (deadline - now).min(Duration::from_secs(10));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep(look) => {}
            }
            if self.store.device(&device.id).await?.is_none() {
                return Err(app_error(AppError::UnknownDevice));
            }
        }
    }

    /// Wakes this node's long-polls of users another node sent a request to since `since`.
    /// Returns whether any long-poll is held here.
    pub async fn wake_long_polls_since(&self, since: UnixTime) -> Result<bool, ServiceError> {
        if !self.app.hub.prune() {
            return Ok(false);
        }
        for user in self.store.users_pushed_since(since).await? {
            self.app.hub.wake(&user);
        }
        Ok(true)
    }

    /// How many users this node holds long-polls for.
    pub fn long_polls_held(&self) -> usize {
        self.app.hub.users_waiting()
    }

    /// Takes the app's answer to a request (`POST /app/v1/requests/{id}/answer`).
    pub async fn answer_app_request(
        &self,
        device: &DeviceRecord,
        request_id: &str,
        body: AnswerBody,
        client: &ClientContext,
    ) -> Result<AnswerReply, ServiceError> {
        use subtle::ConstantTimeEq;
        let now = self.clock.now();
        let request = self
            .store
            .push_request(request_id)
            .await?
            .filter(|r| r.user_id == device.user_id)
            .ok_or(app_error(AppError::RequestNotFound))?;
        if request.answered_at.is_some() {
            return Err(app_error(AppError::RequestAnswered));
        }
        if now >= request.expires_at {
            return Err(app_error(AppError::RequestExpired));
        }
        if !bool::from(request.nonce.as_bytes().ct_eq(body.nonce.as_bytes())) {
            return Err(DomainError::InvalidRequest(
                "nonce: it is not this request's; answer with the nonce the request came with"
                    .into(),
            )
            .into());
        }
        let a = self
            .store
            .authentication(&request.authentication_id)
            .await?
            .ok_or(app_error(AppError::RequestNotFound))?;
        if a.message_id.as_deref() != Some(request.id.as_str())
            || a.state_at(now) != State::Pending(Step::MobileApp)
        {
            return Err(app_error(AppError::RequestExpired));
        }
        let settings = self.settings_now().await?;
        let user = self.user(&a.user_id).await?;
        // The answer is the sign-in's: audited and rate-limited at the address the sign-in
        // came from, not the phone's.
        let mut client = client.clone();
        client.actor = Some(format!("device:{}", device.id));
        client.ip = a.client_ip.as_deref().and_then(|ip| ip.parse().ok());
        let reply = match body.answer.as_str() {
            "approve" => {
                let matching = a.code_hash.is_some();
                if matching && body.number.is_none() {
                    return Err(DomainError::InvalidRequest(
                        "number: approving needs the number the sign-in page shows".into(),
                    )
                    .into());
                }
                let pin_mode = settings.pin_required && user.pin_hash.is_some();
                if pin_mode && body.pin.as_deref().is_none_or(str::is_empty) {
                    return Err(DomainError::InvalidRequest(
                        "pin: this request needs the user's PIN".into(),
                    )
                    .into());
                }
                if !self
                    .store
                    .answer_push_request(&request.id, &device.id, "approve", now)
                    .await?
                {
                    return Err(app_error(AppError::RequestAnswered));
                }
                self.store.touch_device(&device.id, now).await?;
                let answer = Answer::App {
                    number: if matching {
                        body.number.map(|n| n.to_string())
                    } else {
                        None
                    },
                    pin: if pin_mode { body.pin } else { None },
                };
                match self.answer_authentication(&a, answer, &client).await {
                    Ok(done) => outcome_of(&done.state),
                    Err(ServiceError::Domain(_)) => {
                        self.store.set_push_answer(&request.id, "wrong").await?;
                        match self.store.authentication(&a.id).await? {
                            Some(now_a) => outcome_of(&now_a.state),
                            None => AnswerReply {
                                outcome: "denied".into(),
                                reason: Some(Reason::InvalidCode.as_str().into()),
                            },
                        }
                    }
                    Err(other) => return Err(other),
                }
            }
            word @ ("deny" | "not_me") => {
                if !self
                    .store
                    .answer_push_request(&request.id, &device.id, word, now)
                    .await?
                {
                    return Err(app_error(AppError::RequestAnswered));
                }
                self.store.touch_device(&device.id, now).await?;
                let event = if word == "deny" {
                    Event::App(AppAnswer::Deny)
                } else {
                    Event::App(AppAnswer::NotMe)
                };
                let done = self.move_authentication(a.clone(), event).await?;
                if done.state == State::Fraud {
                    self.fraud_reported(&user, &done, &settings).await?;
                } else {
                    self.audit(
                        self.event(AuditAction::SignIn, AuditOutcome::Failure, &user, &client)
                            .detail(format!("declined in the app (authentication {})", a.id)),
                    )
                    .await;
                }
                outcome_of(&done.state)
            }
            other => {
                return Err(DomainError::InvalidRequest(format!(
                    "answer {other:?}: use \"approve\", \"deny\" or \"not_me\""
                ))
                .into());
            }
        };
        Ok(reply)
    }
}

fn outcome_of(state: &State) -> AnswerReply {
    match state {
        State::Fraud => AnswerReply {
            outcome: "fraud".into(),
            reason: None,
        },
        State::Denied { reason } => AnswerReply {
            outcome: "denied".into(),
            reason: Some(reason.as_str().into()),
        },
        State::Expired => AnswerReply {
            outcome: "denied".into(),
            reason: Some("expired".into()),
        },
        // Approved, or approved and on to the wizard's remaining steps.
        State::Approved { .. } | State::Pending(_) => AnswerReply {
            outcome: "approved".into(),
            reason: None,
        },
    }
}

fn request_view(
    p: &PushRequestRecord,
    a: &Authentication,
    settings: &Settings,
    user: &UserRecord,
) -> AppRequestView {
    let application = a
        .context
        .as_deref()
        .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
        .and_then(|v| {
            v.get("application")
                .and_then(|x| x.as_str())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| match a.origin {
            Origin::Sdk => a
                .started_by
                .strip_prefix("sdk:")
                .unwrap_or("an application")
                .to_owned(),
            _ => format!("{} portal", settings.organisation_name),
        });
    let matching = a.code_hash.is_some();
    AppRequestView {
        id: p.id.clone(),
        nonce: p.nonce.clone(),
        numbers: if matching {
            p.choices.clone()
        } else {
            Vec::new()
        },
        number_matching: matching,
        pin_required: settings.pin_required && user.pin_hash.is_some(),
        context: RequestContext {
            application,
            address: a.client_ip.clone(),
            time: p.created_at,
            username: user.username.clone(),
            purpose: purpose_of(a.origin).into(),
        },
        created_at: p.created_at,
        expires_at: p.expires_at,
    }
}

/// Sending requests: a new authentication that waits on the app, a switch to it, and a
/// request sent again.
impl InProcessService {
    /// A new request for `a` (which is updated to name it): the number, the choices, the
    /// nonce, the expiry.
    fn prepare_push(
        &self,
        a: &mut Authentication,
        settings: &Settings,
    ) -> Result<PushRequestRecord, ServiceError> {
        let now = self.clock.now();
        let (number, choices) = app::matching_numbers(rand::random());
        let expires_at = a
            .expires_at
            .min(now + i64::from(settings.push_request_seconds));
        // A portal sign-in may send again while its page is open; anything else ends with
        // its request.
        if !matches!(a.origin, Origin::Portal | Origin::Admin) {
            a.expires_at = expires_at;
        }
        let id = new_id();
        a.channel = Some(APP_CHANNEL.into());
        a.message_id = Some(id.clone());
        a.code_hash = if settings.push_number_matching {
            Some(
                self.keyring
                    .code_hash(a.id.as_bytes(), number.to_string().as_bytes())
                    .map_err(internal)?,
            )
        } else {
            None
        };
        Ok(PushRequestRecord {
            id,
            authentication_id: a.id.clone(),
            user_id: a.user_id.clone(),
            number,
            choices: choices.to_vec(),
            nonce: URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
            created_at: now,
            expires_at,
            answered_at: None,
            answer: None,
            device_id: None,
        })
    }

    /// Stores a new authentication waiting on the app with its first request, or, when the
    /// limits against push bombing refuse one, denied (`rate_limited`).
    pub(super) async fn start_with_push(
        &self,
        mut a: Authentication,
        user: &UserRecord,
        settings: &Settings,
        client: &ClientContext,
    ) -> Result<Authentication, ServiceError> {
        let push = self.prepare_push(&mut a, settings)?;
        let now = self.clock.now();
        match self
            .store
            .create_authentication_with_push(&a, &push, limits_of(settings), now)
            .await?
        {
            PushAdmission::Sent => {
                self.push_sent(user, &push, client).await;
                Ok(a)
            }
            refused => {
                a.state = State::Denied {
                    reason: Reason::RateLimited,
                };
                a.channel = None;
                a.message_id = None;
                a.code_hash = None;
                self.store.create_authentication(&a).await?;
                self.push_refused(user, refused, client).await;
                Ok(a)
            }
        }
    }

    /// Moves `a` to `moved` (waiting on the app) with a new request: a switch to the app, or
    /// a request sent again. Refused (nothing changes) while the limits hold.
    pub(super) async fn move_to_push(
        &self,
        a: Authentication,
        mut moved: Authentication,
        user: &UserRecord,
        settings: &Settings,
        client: &ClientContext,
    ) -> Result<Authentication, ServiceError> {
        let push = self.prepare_push(&mut moved, settings)?;
        let now = self.clock.now();
        match self
            .store
            .move_authentication_with_push(&a, &moved, &push, limits_of(settings), now)
            .await?
        {
            PushAdmission::Sent => {
                self.push_sent(user, &push, client).await;
                Ok(moved)
            }
            PushAdmission::Moved => Err(ServiceError::Unavailable(
                "the authentication is being answered elsewhere; try again".into(),
            )),
            refused => {
                self.push_refused(user, refused, client).await;
                Err(app_error(AppError::PushLimited))
            }
        }
    }

    /// Sends the request of a portal sign-in waiting on the app again (a new number), when
    /// the one before expired unanswered.
    pub(super) async fn send_push_again(
        &self,
        a: Authentication,
        client: &ClientContext,
    ) -> Result<Authentication, ServiceError> {
        let now = self.clock.now();
        if a.state_at(now) != State::Pending(Step::MobileApp) {
            return Err(DomainError::WrongStep.into());
        }
        let user = self.user(&a.user_id).await?;
        let settings = self.settings_now().await?;
        let moved = Authentication {
            version: a.version + 1,
            ..a.clone()
        };
        self.move_to_push(a, moved, &user, &settings, client).await
    }

    /// Where `a`'s request to the app stands.
    pub(super) async fn push_status(&self, a: &Authentication) -> Result<PushStatus, ServiceError> {
        let none = PushStatus {
            number: None,
            waiting: false,
            expired: false,
            expires_at: None,
        };
        if a.channel.as_deref() != Some(APP_CHANNEL) {
            return Ok(none);
        }
        let Some(id) = a.message_id.as_deref() else {
            return Ok(none);
        };
        let Some(p) = self.store.push_request(id).await? else {
            return Ok(none);
        };
        let now = self.clock.now();
        let expired = p.answered_at.is_none() && now >= p.expires_at;
        Ok(PushStatus {
            number: a.code_hash.is_some().then_some(p.number),
            waiting: p.answered_at.is_none() && !expired && a.state_at(now).is_pending(),
            expired,
            expires_at: Some(p.expires_at),
        })
    }

    async fn push_sent(&self, user: &UserRecord, push: &PushRequestRecord, client: &ClientContext) {
        self.app.hub.wake(&user.id);
        self.audit(
            self.succeeded(AuditAction::PushSent, user, client)
                .detail(format!(
                    "request {} for authentication {}",
                    push.id, push.authentication_id
                )),
        )
        .await;
        self.send_wake_ups(&user.id).await;
    }

    async fn push_refused(
        &self,
        user: &UserRecord,
        refused: PushAdmission,
        client: &ClientContext,
    ) {
        let why = match refused {
            PushAdmission::AlreadyPending => "a request is already waiting".to_owned(),
            PushAdmission::CoolingDown { until } => format!("cooling down until {until}"),
            PushAdmission::Sent | PushAdmission::Moved => "moved".to_owned(),
        };
        self.audit(
            self.event(AuditAction::PushSent, AuditOutcome::Failure, user, client)
                .detail(format!("not sent: {why}")),
        )
        .await;
    }

    /// Posts a wake-up to each of the user's devices that gave a UnifiedPush endpoint, in
    /// the background: a failure is logged and changes nothing (the long-poll delivers).
    async fn send_wake_ups(&self, user_id: &str) {
        let devices = match self.store.devices_of(user_id).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "devices not read for wake-ups");
                return;
            }
        };
        for d in devices {
            let Ok(SealedDeviceKey {
                push_endpoint: Some(endpoint),
                ..
            }) = self.open_device_key(&d)
            else {
                continue;
            };
            let wake = self.app.wake.clone();
            let device = d.id.clone();
            tokio::spawn(async move {
                match wake.wake(&endpoint).await {
                    Ok(()) => tracing::debug!(device = %device, "wake-up delivered"),
                    Err(e) => tracing::warn!(device = %device, error = %e, "wake-up not delivered"),
                }
            });
        }
    }
}

/// How often a node looks for requests another node sent, while it holds long-polls.
pub const LONG_POLL_LOOK: Duration = Duration::from_millis(500);

/// Wakes the long-polls a node holds when another node sends their user a request: one
/// query per look for the whole node, and none while it holds no long-poll.
pub fn spawn_long_poll_watch(service: Arc<InProcessService>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(LONG_POLL_LOOK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_cleanup = service.now();
        loop {
            tick.tick().await;
            let now = service.now();
            // Requests made in the last few seconds: nodes' clocks differ a little, and
            // waking a long-poll twice costs one query.
            if let Err(e) = service.wake_long_polls_since(now - 3).await {
                tracing::debug!(error = %e, "long-polls not woken");
            }
            if now - last_cleanup >= 300 {
                last_cleanup = now;
                let store = service.store().clone();
                if let Err(e) = store
                    .delete_old_app_records(now - app::NONCE_MEMORY_SECONDS, now - 86_400, now)
                    .await
                {
                    tracing::debug!(error = %e, "old app records not deleted");
                }
            }
        }
    });
}
