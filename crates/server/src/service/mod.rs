//! `MfaService`: the one interface the portal talks to.
//!
//! [`InProcessService`] implements it over the store and the engine, for a portal running in
//! the server (`twofold serve`). A portal on its own host will implement it over the Web
//! Service SDK. The administration commands use the same in-process service, so a change made
//! from the CLI follows the same rules and lands in the same audit log.

mod admin;
pub mod admin_users;
pub mod admins;
pub mod app;
mod attempts;
mod authentications;
pub(crate) mod blocking;
mod bypass;
pub mod directory_sync;
mod factors;
pub mod inbound;
pub mod invitations;
mod oath;
mod operations;
pub mod phones;
pub mod portal;
mod question_text;
mod questions;
pub mod remote;
pub mod reports;
mod sdk;
pub mod telephony;
pub mod token_imports;

pub use attempts::AttemptLimits;
pub use factors::{DEFAULT_QUESTIONS, FactorsView, QuestionView, SoftwareEnrollment, TokenSummary};
pub use operations::MfaService;
pub use portal::{
    AppCheck, PhoneCheck, PhoneInput, PhoneWait, PortalSession, SessionView, SignInOutcome, Stage,
    Verification,
};
pub use sdk::{PORTAL_ROLE, SDK_ROLE, ServiceAccountSecret, engine_method};
pub use telephony::{CallTurn, DeliveryStatus, PhoneChoice, PhoneTarget};

use crate::directory::{Directory, DirectoryOutcome, LocalDirectory};
use crate::secrets::Keyring;
use crate::store::{NewUser, Store, StoreError, UserChanges, UserRecord};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
use twofold_engine::password::PasswordHasher;
use twofold_engine::{Clock, DomainError, Language, Settings, UnixTime, Username, sign_in};

/// Who is asking, as the portal or the SDK saw them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientContext {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// Who acts, when not the user themselves: `sdk:<service account>`. Set by the server
    /// from the authenticated caller, never read from a request: it does not cross the wire.
    #[serde(skip)]
    pub actor: Option<String>,
}

impl ClientContext {
    fn audit(&self) -> (Option<String>, Option<String>) {
        (self.ip.map(|ip| ip.to_string()), self.user_agent.clone())
    }
}

/// A user who passed the password step.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub username: String,
    pub language: Option<Language>,
}

/// What the account page shows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    pub username: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Option<Language>,
    pub created_at: UnixTime,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the MFA service is unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) | StoreError::ReadOnly(m) => ServiceError::Unavailable(m),
            StoreError::NotFound => ServiceError::Domain(DomainError::UserNotFound),
            other => ServiceError::Internal(other.to_string()),
        }
    }
}

/// How long settings read from the store are reused before being read again. A change made
/// on one node reaches the others within this time.
const SETTINGS_TTL: Duration = Duration::from_secs(2);

type AuditSender = tokio::sync::mpsc::UnboundedSender<(
    AuditEvent,
    tokio::sync::oneshot::Sender<Result<(), String>>,
)>;

/// Starts the audit log's writer: it takes every event queued, writes them in one
/// transaction, and tells each waiting request the outcome. On SQLite the store groups
/// commits too; the writer still pays there, since its batch of events is one job for the
/// store instead of one per event (measured: sending each event to the store on its own
/// cost 5 to 10% of the SDK's verifications per second).
fn spawn_audit_writer(store: &Store) -> Option<AuditSender> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(
        AuditEvent,
        tokio::sync::oneshot::Sender<Result<(), String>>,
    )>();
    let store = store.clone();
    runtime.spawn(async move {
        let mut batch = Vec::new();
        while receiver.recv_many(&mut batch, 512).await > 0 {
            let events: Vec<AuditEvent> = batch.iter().map(|(e, _)| e.clone()).collect();
            let result = store
                .append_audit_batch(&events)
                .await
                .map_err(|e| e.to_string());
            for (_, done) in batch.drain(..) {
                let _ = done.send(result.clone());
            }
        }
    });
    Some(sender)
}

/// The service over the local store and engine.
pub struct InProcessService {
    store: Store,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    /// argon2 (passwords, PINs, answers) runs here, one job per core at a time.
    hashing: blocking::BlockingPool,
    /// Token files (a password-protected PSKC file's PBKDF2) are read here, one at a time,
    /// so that imports never hold every core that sign-ins need.
    imports: blocking::BlockingPool,
    keyring: Keyring,
    settings_cache: RwLock<Option<(Instant, Settings)>>,
    /// The group-commit writer of the audit log (absent outside a Tokio runtime).
    audit_writer: Option<AuditSender>,
    /// Service accounts recently read, by name, with when they were read.
    accounts_cache: std::sync::Mutex<
        std::collections::HashMap<String, (crate::store::ServiceAccountRecord, Instant)>,
    >,
    /// This node's rate limits on second-factor attempts.
    attempt_limits: AttemptLimits,
    /// Where passwords are checked (`primary_authentication`).
    directory: Arc<dyn Directory>,
    /// `[[sync]]`: which directory users belong, and the defaults new ones get.
    sync_items: Vec<crate::config::SyncItem>,
    /// Where calls, texts and emails go (`[channels]`).
    channels: crate::channels::Channels,
    /// The authenticator app's service: `[app]`, the long-polls held, the server's key.
    app: Arc<app::AppRuntime>,
}

impl InProcessService {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        keyring: Keyring,
    ) -> Result<Self, ServiceError> {
        let hasher = PasswordHasher::new().map_err(|e| ServiceError::Internal(e.to_string()))?;
        let store_for_writer = store.clone();
        let clock_for_channels = clock.clone();
        let hashing = blocking::BlockingPool::per_core();
        let directory = Arc::new(LocalDirectory::new(
            store.clone(),
            hasher.clone(),
            hashing.clone(),
        ));
        Ok(Self {
            store,
            clock,
            hasher,
            hashing,
            directory,
            imports: blocking::BlockingPool::new(1),
            keyring,
            settings_cache: RwLock::new(None),
            accounts_cache: std::sync::Mutex::new(std::collections::HashMap::new()),
            audit_writer: spawn_audit_writer(&store_for_writer),
            attempt_limits: AttemptLimits::default(),
            sync_items: Vec::new(),
            channels: crate::channels::Channels::console(clock_for_channels),
            app: Arc::new(app::AppRuntime::default()),
        })
    }

    /// Serves the authenticator app with `[app]`; `own_url` is this server's address, given
    /// with activation codes when neither `[app] public_url` nor `portal_url` is set.
    pub fn with_app(mut self, config: crate::config::AppConfig, own_url: String) -> Self {
        self.app = Arc::new(app::AppRuntime::new(config, own_url));
        self
    }

    /// Sends calls, texts and emails through `channels` (by default, all to the console).
    pub fn with_channels(mut self, channels: crate::channels::Channels) -> Self {
        self.channels = channels;
        self
    }

    /// The channels calls, texts and emails go through.
    pub fn channels(&self) -> &crate::channels::Channels {
        &self.channels
    }

    /// The `[[sync]]` items: the defaults of users created at their first sign-in.
    pub fn with_sync_items(mut self, items: Vec<crate::config::SyncItem>) -> Self {
        self.sync_items = items;
        self
    }

    /// Checks passwords in `directory` instead of the local accounts.
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.directory = directory;
        self
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// Appends an event to the audit log (logging, not failing, when the store refuses).
    pub async fn record(&self, event: AuditEvent) {
        self.audit(event).await
    }

    /// Writes an event and waits until it is committed. Concurrent events share one
    /// transaction (group commit): nothing waits longer than the write in progress, and
    /// under load the store sees one write where there were many.
    async fn audit(&self, event: AuditEvent) {
        let action = event.action.as_str();
        let result = match &self.audit_writer {
            Some(writer) => {
                let (done, wait) = tokio::sync::oneshot::channel();
                match writer.send((event, done)) {
                    Ok(()) => wait
                        .await
                        .unwrap_or_else(|_| Err("the audit writer stopped".to_owned())),
                    Err(tokio::sync::mpsc::error::SendError((event, _))) => self
                        .store
                        .append_audit(&event)
                        .await
                        .map_err(|e| e.to_string()),
                }
            }
            None => self
                .store
                .append_audit(&event)
                .await
                .map_err(|e| e.to_string()),
        };
        if let Err(e) = result {
            // The audit log is part of the record: its loss is an error in the log, loudly.
            tracing::error!(error = %e, action, "could not write the audit log");
        }
    }

    /// The password step: every attempt is audited and counts towards lockout. `console`:
    /// an administrator at the admin console, whom `allow_user_login = false` (the portal's
    /// switch) does not keep out.
    #[tracing::instrument(skip_all, fields(client_ip = ?client.ip))]
    async fn check_password(
        &self,
        username: &str,
        password: &str,
        client: &ClientContext,
        console: bool,
    ) -> Result<Identity, ServiceError> {
        let settings = self.settings().await?;
        let now = self.clock.now();
        let (ip, ua) = client.audit();
        let failure = |subject: &str, reason: &str| {
            AuditEvent::new(
                now,
                AuditAction::SignIn,
                AuditOutcome::Failure,
                client.actor.clone().unwrap_or_else(|| "portal".to_owned()),
            )
            .subject(subject.chars().take(160).collect::<String>())
            .client(ip.clone(), ua.clone())
            .detail(reason)
        };

        // Refuse an over-long password before any hashing.
        if let Err(e) = PasswordHasher::check_length(password) {
            self.audit(failure(username, "password_too_long")).await;
            return Err(DomainError::Password(e).into());
        }
        // A username that cannot exist still costs one verification, like a wrong password.
        let Ok(login) = Username::parse(username) else {
            let hasher = self.hasher.clone();
            let password_owned = password.to_owned();
            let _same_work = self
                .hashing
                .run(move || hasher.verify(&password_owned, None))
                .await?;
            self.audit(failure(username, "invalid_credentials")).await;
            return Err(DomainError::InvalidCredentials.into());
        };
        // The account the name designates (`CORP\\alice` and `alice@corp.example` are
        // `alice` to a directory that accepts those forms): one person, one lockout counter.
        let name = self.directory.account_name(&login);
        // A locked username is refused without a write; otherwise the attempt is counted
        // before the password is checked, so that concurrent guesses cannot outrun the lock.
        let policy = settings.lockout_policy();
        let lockout = self.store.lockout(name.as_str()).await?;
        let allowed = settings.allow_user_login || console;
        if let Err(e) = sign_in::may_attempt(allowed, &lockout.state, now, policy) {
            self.audit(failure(name.as_str(), e.code())).await;
            return Err(e.into());
        }
        if let Err(e) = self.reserve_attempt(name.as_str(), &settings, client).await {
            if let ServiceError::Domain(d) = &e {
                self.audit(failure(name.as_str(), d.code())).await;
            }
            return Err(e);
        }

        // The directory checks the password. When it cannot answer, nobody signs in and no
        // failure is counted: the user did nothing wrong, and must not be told they did.
        let outcome = match self.directory.check_password(&login, password).await {
            Ok(outcome) => outcome,
            Err(e) => {
                self.release_attempt(name.as_str()).await?;
                tracing::warn!(directory = self.directory.kind(), error = %e, "sign-in refused: the directory cannot check passwords");
                self.audit(failure(name.as_str(), "directory_unavailable"))
                    .await;
                return Err(DomainError::DirectoryUnavailable.into());
            }
        };
        // Only an account the directory accepted, that Twofold holds and has not disabled,
        // signs in; any other answer counts as a wrong password.
        let user = match &outcome {
            DirectoryOutcome::Accepted(account) => {
                let found = match Username::parse(&account.username) {
                    Ok(username) => match self.store.user_by_username(&username).await {
                        Ok(None) if settings.create_users_on_sign_in => {
                            self.create_user_at_sign_in(account).await
                        }
                        other => other,
                    },
                    Err(_) => Ok(None),
                };
                match found {
                    Ok(user) => user.filter(|u| u.enabled),
                    Err(e) => {
                        self.release_attempt(name.as_str()).await?;
                        return Err(e.into());
                    }
                }
            }
            _ => None,
        };

        // A right password does not clear the failure count: the second factor may still
        // fail, and guesses at codes must add up across sign-ins. Its own attempt is handed
        // back; the count is cleared when a whole sign-in succeeds.
        let Some(user) = user else {
            let reason = match &outcome {
                DirectoryOutcome::Accepted(_) => "invalid_credentials",
                other => other.code(),
            };
            // What the directory said about the account, it says only after the right
            // password (Active Directory does): the user may be told.
            let refusal = match outcome {
                DirectoryOutcome::AccountDisabled => DomainError::AccountDisabled,
                DirectoryOutcome::PasswordExpired => DomainError::PasswordExpired,
                DirectoryOutcome::Accepted(_) | DirectoryOutcome::Rejected => {
                    DomainError::InvalidCredentials
                }
            };
            let e = self
                .failed_attempt(name.as_str(), refusal.clone(), &settings, client)
                .await?;
            let detail = if e == refusal { reason } else { e.code() };
            self.audit(failure(name.as_str(), detail)).await;
            return Err(e.into());
        };
        self.release_attempt(name.as_str()).await?;
        // Told only after the right password: a guess learns nothing of the block.
        if let Err(e) = not_fraud_blocked(&user, now) {
            self.audit(failure(name.as_str(), "fraud_blocked")).await;
            return Err(e.into());
        }
        self.audit(
            AuditEvent::new(
                now,
                AuditAction::PasswordVerified,
                AuditOutcome::Success,
                client.actor.clone().unwrap_or_else(|| "portal".to_owned()),
            )
            .subject(name.as_str())
            .client(ip.clone(), ua.clone())
            .detail("password"),
        )
        .await;
        Ok(Identity {
            language: language_of(&user),
            user_id: user.id,
            username: user.username,
        })
    }

    // ---- administration (the CLI) ----

    pub async fn add_user(
        &self,
        actor: &str,
        username: &str,
        email: Option<String>,
        phone: Option<String>,
        password: Option<&str>,
    ) -> Result<UserRecord, ServiceError> {
        let username = Username::parse(username).map_err(DomainError::from)?;
        let region = self.settings_now().await?.default_region;
        // Checked before the (slow) password hash.
        let (email, phone) = (clean_email(email)?, clean_phone(phone, &region)?);
        let extension = phone.as_ref().and_then(|p| p.extension.clone());
        let phone = phone.map(|p| p.number);
        let password_hash = match password {
            Some(p) => Some(self.hash_new_password(p).await?),
            None => None,
        };
        let new = NewUser {
            username: username.clone(),
            email,
            phone,
            password_hash,
        };
        let now = self.clock.now();
        let user = match self.store.create_user(new, now).await {
            Ok(u) => u,
            Err(StoreError::Conflict(_)) => return Err(DomainError::UserExists.into()),
            Err(e) => return Err(e.into()),
        };
        let user = match extension {
            Some(extension) => {
                let changes = UserChanges {
                    extension: Some(Some(extension)),
                    ..UserChanges::default()
                };
                self.store.update_user(&username, changes, now).await?
            }
            None => user,
        };
        self.audit(
            AuditEvent::new(now, AuditAction::UserCreated, AuditOutcome::Success, actor)
                .subject(username.as_str())
                .detail(if user.password_hash.is_some() {
                    "with password"
                } else {
                    "without password"
                }),
        )
        .await;
        Ok(user)
    }

    /// A new password's argon2 hash, computed in the hashing pool.
    async fn hash_new_password(&self, password: &str) -> Result<String, ServiceError> {
        let hasher = self.hasher.clone();
        let password = password.to_owned();
        Ok(self
            .hashing
            .run(move || hasher.hash_new(&password))
            .await?
            .map_err(DomainError::from)?)
    }

    pub async fn find_user(&self, username: &str) -> Result<UserRecord, ServiceError> {
        let username = Username::parse(username).map_err(DomainError::from)?;
        self.store
            .user_by_username(&username)
            .await?
            .ok_or(ServiceError::Domain(DomainError::UserNotFound))
    }

    pub async fn list_users(
        &self,
        limit: i64,
        after: Option<&str>,
    ) -> Result<Vec<UserRecord>, ServiceError> {
        Ok(self.store.list_users(limit, after).await?)
    }

    /// Changes a user. A new password or disabling ends the user's sessions.
    pub async fn update_user(
        &self,
        actor: &str,
        username: &str,
        mut changes: UserChanges,
        new_password: Option<&str>,
    ) -> Result<UserRecord, ServiceError> {
        let username = Username::parse(username).map_err(DomainError::from)?;
        changes.email = changes.email.map(clean_email).transpose()?;
        if let Some(phone) = changes.phone.take() {
            let region = self.settings_now().await?.default_region;
            let phone = clean_phone(phone, &region)?;
            // A number given again replaces its extension (`x890` written after it).
            changes.extension = Some(phone.as_ref().and_then(|p| p.extension.clone()));
            changes.phone = Some(phone.map(|p| p.number));
        }
        if let Some(p) = new_password {
            changes.password_hash = Some(Some(self.hash_new_password(p).await?));
        }
        if let Some(Some(lang)) = &changes.language
            && Language::from_tag(lang).is_none()
        {
            return Err(ServiceError::Domain(DomainError::InvalidSetting(format!(
                "language {lang:?}: use one of en, fr"
            ))));
        }
        let mut what = Vec::new();
        for (name, changed) in [
            ("email", changes.email.is_some()),
            ("phone", changes.phone.is_some()),
            ("language", changes.language.is_some()),
            ("password", changes.password_hash.is_some()),
            ("enabled", changes.enabled.is_some()),
        ] {
            if changed {
                what.push(name);
            }
        }
        let ends_sessions = changes.password_hash.is_some() || changes.enabled == Some(false);
        let now = self.clock.now();
        let user = self.store.update_user(&username, changes, now).await?;
        if ends_sessions {
            self.store.delete_user_sessions(&user.id).await?;
        }
        self.audit(
            AuditEvent::new(now, AuditAction::UserUpdated, AuditOutcome::Success, actor)
                .subject(username.as_str())
                .detail(format!("changed: {}", what.join(", "))),
        )
        .await;
        Ok(user)
    }

    pub async fn delete_user(&self, actor: &str, username: &str) -> Result<(), ServiceError> {
        let username = Username::parse(username).map_err(DomainError::from)?;
        if !self.store.delete_user(&username).await? {
            return Err(DomainError::UserNotFound.into());
        }
        self.store.clear_lockout(username.as_str()).await?;
        self.audit(
            self.done_by(AuditAction::UserDeleted, actor)
                .subject(username.as_str()),
        )
        .await;
        Ok(())
    }

    /// Releases a lockout at once, the hard lock included, and clears the counters. `false`
    /// when the username was not locked.
    pub async fn unlock_user(&self, actor: &str, username: &str) -> Result<bool, ServiceError> {
        let username = Username::parse(username).map_err(DomainError::from)?;
        let now = self.clock.now();
        let state = self.store.lockout(username.as_str()).await?.state;
        let lock = state.lock(now);
        self.store.clear_lockout(username.as_str()).await?;
        self.audit(
            AuditEvent::new(now, AuditAction::UserUnlocked, AuditOutcome::Success, actor)
                .subject(username.as_str())
                .detail(match lock {
                    Some(twofold_engine::lockout::Lock::UntilReleased) => format!(
                        "hard lock released ({} consecutive failures)",
                        state.consecutive
                    ),
                    Some(twofold_engine::lockout::Lock::Until(_)) => "lock released".to_owned(),
                    None => "was not locked; counters cleared".to_owned(),
                }),
        )
        .await;
        Ok(lock.is_some())
    }

    /// When `username` is under a lock that ends by itself, until when.
    pub async fn locked_until(&self, username: &str) -> Result<Option<UnixTime>, ServiceError> {
        Ok(match self.lock(username).await? {
            Some(twofold_engine::lockout::Lock::Until(until)) => Some(until),
            _ => None,
        })
    }

    /// The lock on `username` now, if any (a hard lock first), and its consecutive failures.
    pub async fn lock(
        &self,
        username: &str,
    ) -> Result<Option<twofold_engine::lockout::Lock>, ServiceError> {
        let username = Username::parse(username).map_err(DomainError::from)?;
        Ok(self
            .store
            .lockout(username.as_str())
            .await?
            .state
            .lock(self.clock.now()))
    }

    /// Sets one setting from its command-line text form; returns the stored JSON value.
    pub async fn set_setting(
        &self,
        actor: &str,
        key: &str,
        raw: &str,
    ) -> Result<serde_json::Value, ServiceError> {
        let current = self.store.settings().await?;
        let (_, value) = current
            .with_value(key, raw)
            .map_err(|e| DomainError::InvalidSetting(e.to_string()))?;
        let now = self.clock.now();
        self.store.set_setting(key, &value, now).await?;
        *self.settings_cache.write().await = None;
        self.audit(
            AuditEvent::new(
                now,
                AuditAction::SettingChanged,
                AuditOutcome::Success,
                actor,
            )
            .subject(key)
            .detail(format!("{key} = {value}")),
        )
        .await;
        Ok(value)
    }
}

fn clean_optional(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// A trimmed email address, `None` for an empty one; refused when it cannot be one.
fn clean_email(value: Option<String>) -> Result<Option<String>, DomainError> {
    let value = clean_optional(value);
    if let Some(email) = &value {
        twofold_engine::contact::check_email(email)?;
    }
    Ok(value)
}

/// A phone number read in E.164 (with the extension written after it, `x890`), `None`
/// for an empty one; refused when it cannot be one. `region` is the `default_region`
/// setting, for numbers written without their country code.
fn clean_phone(
    value: Option<String>,
    region: &str,
) -> Result<Option<twofold_engine::phone::Phone>, DomainError> {
    match clean_optional(value) {
        None => Ok(None),
        Some(number) => {
            let region = Some(region).filter(|r| !r.is_empty());
            Ok(Some(twofold_engine::phone::parse(&number, None, region)?))
        }
    }
}

/// Refuses a user blocked by a fraud report, until the block ends.
fn not_fraud_blocked(user: &UserRecord, now: UnixTime) -> Result<(), DomainError> {
    match user.fraud_blocked_until {
        Some(until) if until > now => Err(DomainError::FraudBlocked { until }),
        _ => Ok(()),
    }
}

fn language_of(user: &UserRecord) -> Option<Language> {
    user.language.as_deref().and_then(Language::from_tag)
}

impl InProcessService {
    /// The password step and where the sign-in goes next (for the portal and the tests).
    /// The password step: the user behind `username`, when `password` is theirs.
    pub async fn password_step(
        &self,
        username: &str,
        password: &str,
        client: &ClientContext,
    ) -> Result<Identity, ServiceError> {
        self.password_step_of(username, password, client, false)
            .await
    }

    /// The password step of the portal, or (`console`) of the admin console.
    pub async fn password_step_of(
        &self,
        username: &str,
        password: &str,
        client: &ClientContext,
        console: bool,
    ) -> Result<Identity, ServiceError> {
        let result = self
            .check_password(username, password, client, console)
            .await;
        let label = match &result {
            Ok(_) => None,
            Err(ServiceError::Domain(
                DomainError::UserLocked { .. } | DomainError::UserHardLocked,
            )) => Some("locked"),
            Err(ServiceError::Domain(_)) => Some("failure"),
            Err(_) => Some("error"),
        };
        if let Some(label) = label {
            metrics::counter!("twofold_sign_ins_total", "result" => label).increment(1);
        }
        result
    }

    async fn profile_of(&self, user_id: &str) -> Result<Profile, ServiceError> {
        let user = self.user(user_id).await?;
        Ok(Profile {
            language: language_of(&user),
            username: user.username,
            email: user.email,
            phone: user.phone,
            created_at: user.created_at,
        })
    }

    async fn change_language(
        &self,
        user_id: &str,
        language: Language,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let user = self.user(user_id).await?;
        let username = Username::parse(&user.username).map_err(DomainError::from)?;
        let now = self.clock.now();
        let changes = UserChanges {
            language: Some(Some(language.tag().to_owned())),
            ..UserChanges::default()
        };
        self.store.update_user(&username, changes, now).await?;
        let (ip, ua) = client.audit();
        self.audit(
            AuditEvent::new(
                now,
                AuditAction::LanguageChanged,
                AuditOutcome::Success,
                format!("user:{username}"),
            )
            .subject(username.as_str())
            .client(ip, ua)
            .detail(language.tag()),
        )
        .await;
        Ok(())
    }
}

impl InProcessService {
    /// An audit event of something `actor` did, done now.
    pub(super) fn done_by(&self, action: AuditAction, actor: impl Into<String>) -> AuditEvent {
        AuditEvent::new(self.clock.now(), action, AuditOutcome::Success, actor)
    }

    /// The settings in force, read again from the store at most every [`SETTINGS_TTL`].
    async fn settings_in_force(&self) -> Result<Settings, ServiceError> {
        if let Some((at, settings)) = self.settings_cache.read().await.as_ref()
            && at.elapsed() < SETTINGS_TTL
        {
            return Ok(settings.clone());
        }
        let settings = self.store.settings().await?;
        *self.settings_cache.write().await = Some((Instant::now(), settings.clone()));
        Ok(settings)
    }

    async fn check_ready(&self) -> Result<Option<String>, ServiceError> {
        tokio::time::timeout(
            Duration::from_secs(2),
            self.store.check_ready(self.clock.now()),
        )
        .await
        .map_err(|_| ServiceError::Unavailable("the store did not answer within 2 s".into()))??;
        if self.directory.kind() == "local" {
            return Ok(None);
        }
        let directory = match self.directory.health().await {
            Ok(()) => "ok",
            Err(e) => {
                tracing::warn!(directory = self.directory.kind(), error = %e, "not ready: the directory does not answer");
                "unavailable"
            }
        };
        Ok(Some(directory.to_owned()))
    }
}
