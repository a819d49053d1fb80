//! `twofold serve`: everything on one host.

use crate::channels::Channels;
use crate::config::{Config, ConfigError, DatabaseTarget};
use crate::directory::Breaker;
use crate::secrets::Keyring;
use crate::service::InProcessService;
use crate::service::inbound::ConsoleInbound;
use crate::store::{Backend, Store, StoreError};
use crate::telemetry::{self, LogGuard};
use crate::tls::{self, CertificateOrigin};
use crate::web::dev_inbox::DevInboxParts;
use crate::web::{self, WebParts, ratelimit::SignInLimits};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use twofold_engine::{Clock, SystemClock};

mod first_steps;
use first_steps::{Invocation, StartHint};

/// Why the server could not start. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Database(String),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{0}")]
    Listen(String),
    #[error("{0}")]
    Secrets(String),
    #[error("{0}")]
    Internal(String),
}

/// Opens the store named by the configuration, applies migrations, and seeds settings. Used
/// by `serve` and by every administration command.
pub async fn open_store(config: &Config, clock: &dyn Clock) -> Result<Store, StartError> {
    let target = config.database_target()?;
    let described = describe_target(&target);
    let store = Store::connect(
        &target,
        config.database.max_connections,
        Duration::from_secs(config.database.connect_timeout_seconds),
    )
    .await
    .map_err(|e| database_error(&described, e))?;
    let report = store
        .migrate()
        .await
        .map_err(|e| database_error(&described, e))?;
    report_upgrade(&described, &report);
    store
        .seed_settings(&config.seed_settings()?, clock.now())
        .await
        .map_err(|e| database_error(&described, e))?;
    store
        .seed_questions(crate::service::DEFAULT_QUESTIONS, clock.now())
        .await
        .map_err(|e| database_error(&described, e))?;
    store
        .check_ready(clock.now())
        .await
        .map_err(|e| database_error(&described, e))?;
    Ok(store)
}

/// The keyring that seals OATH seeds, from `[secrets]` or `data_dir/keys/`.
pub fn open_keyring(config: &Config) -> Result<Keyring, StartError> {
    Keyring::load(
        &config.data_dir,
        config.secrets.key.as_ref().map(|k| k.expose()),
        config.secrets.key_file.as_deref(),
    )
    .map_err(|e| StartError::Secrets(e.to_string()))
}

/// The store, migrated and seeded, with the keyring: what `serve` and every administration
/// command work through.
pub async fn open_service(
    config: &Config,
    clock: Arc<dyn Clock>,
) -> Result<InProcessService, StartError> {
    let store = open_store(config, clock.as_ref()).await?;
    let keyring = open_keyring(config)?;
    InProcessService::new(store, clock, keyring).map_err(|e| StartError::Internal(e.to_string()))
}

/// Says on standard error (which reaches the journal) what an upgrade did, and where the
/// copy from before it is.
fn report_upgrade(described: &str, report: &crate::store::MigrationReport) {
    let Some(to) = report.applied.iter().copied().max() else {
        return;
    };
    if report.from == 0 {
        return;
    }
    match &report.backup {
        Some(copy) => eprintln!(
            "Upgraded the store ({described}) from schema version {} to {to}. A copy of it as \
             it was is in {}: keep it until you are sure of this release.",
            report.from,
            copy.display()
        ),
        None => eprintln!(
            "Upgraded the store ({described}) from schema version {} to {to}.",
            report.from
        ),
    }
    tracing::info!(from = report.from, to, backup = ?report.backup, "store upgraded");
}

pub fn describe_target(target: &DatabaseTarget) -> String {
    match target {
        DatabaseTarget::Sqlite(path) => format!("SQLite at {}", path.display()),
        DatabaseTarget::Postgres(url) => {
            // Never print the password.
            match url::Url::parse(url.expose()) {
                Ok(u) => format!(
                    "PostgreSQL at {}:{}{}",
                    u.host_str().unwrap_or("?"),
                    u.port().unwrap_or(5432),
                    u.path()
                ),
                Err(_) => "PostgreSQL".to_owned(),
            }
        }
    }
}

fn database_error(described: &str, e: StoreError) -> StartError {
    StartError::Database(match e {
        StoreError::Unavailable(m) => format!(
            "the database ({described}) cannot be reached: {m}. \
             Fix: check database.url or database.url_file (TWOFOLD_DATABASE__URL), that the server is running and accepts connections, \
             or for SQLite that data_dir is a writable directory."
        ),
        StoreError::ReadOnly(m) => format!(
            "the database ({described}) is read-only: {m}. \
             Fix: give Twofold a writable database (for PostgreSQL, the primary, not a standby; \
             for SQLite, a writable file and directory)."
        ),
        StoreError::Schema(m) => format!("the database ({described}): {m}."),
        other => format!("the database ({described}) could not be prepared: {other}."),
    })
}

/// The process-wide Prometheus recorder (metrics are per process by nature).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ])
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<(), StartError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let target = config.database_target()?;
    let store = open_store(&config, clock.as_ref()).await?;
    // Held while the server runs: `twofold restore` will not replace the store under it.
    let _serving = match store.sqlite_path() {
        Some(path) => Some(
            crate::store::backup::lock_for_serving(path)
                .map_err(|e| StartError::Database(e.to_string()))?,
        ),
        None => None,
    };
    let settings = store
        .settings()
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let log_dir = settings
        .enable_logging
        .then(|| config.data_dir.join("logs"));
    let _guard: LogGuard = telemetry::init(&config.log, log_dir.as_deref());

    let csrf_hex = store
        .server_secret("csrf_key", clock.now(), || {
            hex::encode(rand::random::<[u8; 32]>())
        })
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    let csrf_key: [u8; 32] = hex::decode(&csrf_hex)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| StartError::Database("the stored CSRF key is damaged".into()))?;

    let listener = bind(&config)?;
    let channels = Channels::from_config(
        &config.channels,
        config.smtp.as_ref(),
        config.twilio.as_ref(),
        clock.clone(),
    )?;
    let mut service = InProcessService::new(store.clone(), clock.clone(), open_keyring(&config)?)
        .map_err(|e| StartError::Internal(e.to_string()))?
        .with_channels(channels.clone())
        .with_attempt_limits(
            config.limits.second_factor_per_user_per_minute,
            config.limits.second_factor_per_ip_per_minute,
        )
        .with_app(config.app.clone(), own_url(&config, &listener));
    if let Some(directory) = build_directory(&config, &settings)? {
        service = service
            .with_directory(directory)
            .with_sync_items(config.sync.clone());
    }
    let service = Arc::new(service);
    let limits = Arc::new(SignInLimits::new(
        config.limits.sign_in_per_ip_per_minute,
        config.limits.sign_in_per_username_per_minute,
    ));
    warn_about_console_channels(&config);
    // The inbox's answers go to the service as a provider's webhooks would.
    let dev_inbox = channels.dev_inbox.clone().map(|inbox| DevInboxParts {
        events: Arc::new(ConsoleInbound::new(service.clone(), inbox.clone())),
        inbox,
    });
    let app = web::router(WebParts {
        service: service.clone(),
        clock: clock.clone(),
        csrf_key,
        http: config.http.clone(),
        limits: limits.clone(),
        metrics: if config.metrics.enabled {
            metrics_handle()
        } else {
            None
        },
        sdk: Some(service.clone()),
        tls: config.tls.enabled,
        dev_inbox,
        twilio: channels.twilio.clone(),
    });

    spawn_housekeeping(service.clone(), limits);
    crate::service::app::spawn_long_poll_watch(service.clone());
    spawn_directory_jobs(service.clone(), &config, channels.email.clone());
    let users = store
        .list_users(1, None)
        .await
        .map(|u| u.len())
        .unwrap_or(1);
    // While nobody administers the server: a one-time link that makes the first owner.
    let hint = if users == 0 {
        StartHint::NoUsers
    } else {
        match service.new_bootstrap_link().await {
            Ok(Some(path)) => StartHint::Bootstrap(path),
            Ok(None) => StartHint::None,
            Err(e) => {
                tracing::warn!(error = %e, "no bootstrap link for the first administrator");
                StartHint::None
            }
        }
    };
    let banner = vec![format!("  store:       {}", describe_target(&target))];
    listen_and_serve(&config, listener, app, "Twofold", banner, hint).await?;
    store.close().await;
    if store.backend() == Backend::Sqlite {
        tracing::info!("SQLite store closed");
    }
    Ok(())
}

/// This server's own address, as a device would reach it (`https://127.0.0.1:8443`).
fn own_url(config: &Config, listener: &std::net::TcpListener) -> String {
    let scheme = if config.tls.enabled { "https" } else { "http" };
    let local = listener.local_addr().unwrap_or(config.listen);
    format!("{scheme}://{local}")
}

/// How often a node looks for invitations to send, and whether a sync is due.
const DIRECTORY_JOBS_TICK: Duration = Duration::from_secs(10);

/// The jobs that keep users in step with the directory, each run by one node at a time
/// (whichever holds its lease in the store): sending the invitations imports queued, and
/// the `[[sync]]` every `sync_interval_minutes`.
fn spawn_directory_jobs(
    service: Arc<InProcessService>,
    config: &Config,
    email: Arc<dyn crate::channels::EmailChannel>,
) {
    use crate::service::directory_sync::{NoProgress, directory_source};
    let items = config.sync.clone();
    let source = match directory_source(config) {
        Ok(source) => Some(source),
        Err(e) => {
            if !items.is_empty() {
                tracing::warn!(error = %e, "[[sync]] items are configured but users cannot be synced");
            }
            None
        }
    };
    let node = crate::store::new_id();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(DIRECTORY_JOBS_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = service.store().clone();
            let now = service.now();
            let due = matches!(store.due_invitations(1).await, Ok(d) if !d.is_empty());
            if due && let Ok(true) = store.take_lease("invitations", &node, 600, now).await {
                if let Err(e) = service.send_due_invitations(email.as_ref()).await {
                    tracing::warn!(error = %e, "invitations could not be sent now");
                }
                let _ = store.release_lease("invitations", &node).await;
            }
            let Some(source) = source.as_ref().filter(|_| !items.is_empty()) else {
                continue;
            };
            let interval = match store.settings().await {
                Ok(s) if s.sync_interval_minutes > 0 => i64::from(s.sync_interval_minutes) * 60,
                _ => continue,
            };
            // The lease outlives a sync that runs long; once the sync is done it is kept
            // until the next one is due, so that the nodes sync once per interval between
            // them.
            let hold = (2 * interval).max(3600);
            if !matches!(
                store.take_lease("directory_sync", &node, hold, now).await,
                Ok(true)
            ) {
                continue;
            }
            match service
                .sync_users(
                    "system:sync",
                    source.as_ref(),
                    &items,
                    false,
                    false,
                    &NoProgress,
                )
                .await
            {
                Ok(summary) => {
                    tracing::info!(summary = %summary.counts(), "directory sync done");
                    if let Some(held) = summary.held_back_message() {
                        tracing::warn!("{held}");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "the directory sync failed"),
            }
            let _ = store
                .hold_lease_until("directory_sync", &node, service.now() + interval)
                .await;
        }
    });
}

/// The console channel delivers nothing: said once at start, and loudly when the server
/// listens beyond this machine (where it looks like a production server).
fn warn_about_console_channels(config: &Config) {
    let kinds = config.channels.console_kinds();
    if kinds.is_empty() {
        return;
    }
    let keys = kinds
        .iter()
        .map(|k| format!("channels.{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    if config.listen.ip().to_canonical().is_loopback() {
        tracing::info!(
            channels = %keys,
            "console channel: messages go to the log and to /dev/inbox (this machine only), not to anyone"
        );
    } else {
        tracing::warn!(
            channels = %keys,
            listen = %config.listen,
            "a console channel runs on a listen address that is not loopback: calls, text messages \
             and emails are not delivered, they go to the log and to /dev/inbox (served to this \
             machine only). Fix: for development, listen on a loopback address \
             (listen = \"127.0.0.1:8443\"); in production, set [channels] to a delivery provider \
             (calls and texts: channels.voice/sms = \"twilio\" with [twilio]; emails: channels.email = \"smtp\" with [smtp])"
        );
    }
}

/// The directory `primary_authentication` names, when it is not the local one.
fn build_directory(
    config: &Config,
    settings: &twofold_engine::Settings,
) -> Result<Option<Arc<dyn crate::directory::Directory>>, StartError> {
    use twofold_engine::settings::PrimaryAuthentication;
    match settings.primary_authentication {
        PrimaryAuthentication::Radius => {
            let radius = config.radius.as_ref().ok_or_else(|| {
                ConfigError(
                    "primary_authentication is \"radius\" but the configuration has no [radius] section. \
                     Fix: add [radius] with servers and secret (see twofold.example.toml), or \
                     `twofold settings set primary_authentication local`."
                        .into(),
                )
            })?;
            let directory = crate::directory::RadiusDirectory::from_config(radius)?;
            tracing::info!(servers = ?radius.servers, "passwords are checked by RADIUS");
            // Every server, every attempt, each its timeout: the longest a check can take.
            let attempts = u32::try_from(radius.servers.len())
                .unwrap_or(u32::MAX)
                .saturating_mul(radius.retries.saturating_add(1));
            let deadline = Duration::from_secs(radius.timeout_seconds)
                .saturating_mul(attempts)
                .saturating_add(Duration::from_secs(1));
            Ok(Some(Arc::new(Breaker::new(Box::new(directory), deadline))))
        }
        PrimaryAuthentication::Ldap => {
            let ldap = config.ldap.as_ref().ok_or_else(|| {
                ConfigError(
                    "settings.primary_authentication is \"ldap\" but the configuration has no [ldap] section: \
                     nobody could sign in. Fix: add [ldap] with url, bind_dn, bind_password_file and base_dn \
                     (see twofold.example.toml), or `twofold settings set primary_authentication local`"
                        .into(),
                )
            })?;
            let directory = crate::directory::LdapDirectory::from_config(ldap)?;
            tracing::info!(url = %ldap.url, "passwords are checked by LDAP");
            // Each operation has its own timeout; the whole check (a search, then a bind)
            // is held to two of them, whatever happens inside.
            let deadline = Duration::from_secs(ldap.timeout_seconds).saturating_mul(2);
            Ok(Some(Arc::new(Breaker::new(Box::new(directory), deadline))))
        }
        PrimaryAuthentication::Local => Ok(None),
    }
}

/// `twofold portal`: the portal alone, reaching the MFA server through the SDK. It holds no
/// database: sessions and everything else go through the server.
pub async fn portal(config: Config) -> Result<(), StartError> {
    let client_config = config.sdk.client_config()?;
    let _guard: LogGuard = telemetry::init(&config.log, None);
    let server_url = client_config.url.clone();
    let client = twofold_sdk::client::SdkClient::new(&client_config)
        .map_err(|e| StartError::Config(ConfigError(e.to_string())))?;
    let remote = Arc::new(crate::service::remote::RemoteService::new(client));
    // Every portal with the same service account derives the same CSRF key, so several
    // portals can stand behind one load balancer.
    let csrf_key: [u8; 32] = {
        use hmac::Mac;
        let mut mac =
            <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(client_config.password.as_bytes())
                .map_err(|e| StartError::Internal(e.to_string()))?;
        mac.update(b"twofold portal csrf key");
        mac.finalize().into_bytes().into()
    };
    {
        use crate::service::MfaService;
        if let Err(e) = remote.ready().await {
            tracing::warn!(error = %e, "the MFA server does not answer yet; the portal shows an 'unavailable' page until it does");
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let limits = Arc::new(SignInLimits::new(
        config.limits.sign_in_per_ip_per_minute,
        config.limits.sign_in_per_username_per_minute,
    ));
    let housekeeping_limits = limits.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            housekeeping_limits.forget_idle();
        }
    });
    let app = web::router(WebParts {
        service: remote,
        clock,
        csrf_key,
        http: config.http.clone(),
        limits,
        metrics: if config.metrics.enabled {
            metrics_handle()
        } else {
            None
        },
        sdk: None,
        tls: config.tls.enabled,
        dev_inbox: None,
        twilio: None,
    });
    let banner = vec![format!(
        "  MFA server:  {server_url} (through the Web Service SDK)"
    )];
    let listener = bind(&config)?;
    listen_and_serve(
        &config,
        listener,
        app,
        "Twofold portal",
        banner,
        StartHint::None,
    )
    .await
}

/// Binds the configured address (before the service is built: a port chosen by the system,
/// `:0`, is known only once bound, and the app's activation codes name it).
fn bind(config: &Config) -> Result<std::net::TcpListener, StartError> {
    let listener = std::net::TcpListener::bind(config.listen).map_err(|e| {
        StartError::Listen(format!(
            "listen = \"{}\": cannot listen there ({e}). Fix: choose a free address and port \
             (TWOFOLD_LISTEN=127.0.0.1:9443), or stop what is using it.",
            config.listen
        ))
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|e| StartError::Listen(e.to_string()))?;
    Ok(listener)
}

/// Prints the banner (address, certificate and fingerprint), and serves on `listener` until
/// SIGINT or SIGTERM.
async fn listen_and_serve(
    config: &Config,
    listener: std::net::TcpListener,
    app: axum::Router,
    title: &str,
    banner: Vec<String>,
    hint: StartHint,
) -> Result<(), StartError> {
    let local: SocketAddr = listener
        .local_addr()
        .map_err(|e| StartError::Listen(e.to_string()))?;
    let handle = axum_server::Handle::new();
    spawn_shutdown_on_signal(handle.clone());
    // Ready once connections are accepted (the store, where there is one, is open and
    // migrated before): under systemd (Type=notify) `systemctl start` returns only then.
    let listening = handle.clone();
    let status = format!("{title}: listening on {local}");
    tokio::spawn(async move {
        if listening.listening().await.is_some() {
            notify_service_manager(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status(&status),
            ]);
        }
    });
    println!("{title} {}", env!("CARGO_PKG_VERSION"));
    for line in banner {
        println!("{line}");
    }
    let make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    if config.tls.enabled {
        let material = tls::prepare(config)?;
        let origin = match &material.origin {
            CertificateOrigin::Configured(p) => format!("{} (configured)", p.display()),
            CertificateOrigin::Generated(p) => {
                format!("{} (self-signed, generated now)", p.display())
            }
            CertificateOrigin::Reused(p) => format!("{} (self-signed)", p.display()),
        };
        println!("  certificate: {origin}");
        println!("  SHA-256:     {}", material.fingerprint);
        println!("  portal:      https://{local}/");
        println!("  admin:       https://{local}/admin");
        print_hint(config, &hint, &format!("https://{local}"));
        tracing::info!(%local, "listening (HTTPS)");
        let tls_config = axum_server::tls_rustls::RustlsConfig::from_config(material.server_config);
        // TCP_NODELAY: a response's last TLS record goes out at once instead of waiting,
        // through Nagle's algorithm, for the client's delayed acknowledgement (40 ms).
        let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(tls_config)
            .acceptor(axum_server::accept::NoDelayAcceptor::new());
        axum_server::from_tcp(listener)
            .acceptor(acceptor)
            .handle(handle)
            .serve(make_service)
            .await
            .map_err(|e| StartError::Listen(e.to_string()))
    } else {
        println!("  TLS:         off (tls.enabled = false): put a TLS-terminating proxy in front");
        println!("  portal:      http://{local}/");
        println!("  admin:       http://{local}/admin");
        print_hint(config, &hint, &format!("http://{local}"));
        tracing::info!(%local, "listening (plain HTTP behind a proxy)");
        axum_server::from_tcp(listener)
            .acceptor(axum_server::accept::NoDelayAcceptor::new())
            .handle(handle)
            .serve(make_service)
            .await
            .map_err(|e| StartError::Listen(e.to_string()))
    }
}

/// Prints what to do first, worded for how this server was started. Standard output is
/// line-buffered, so under systemd each line reaches the journal as it is printed.
fn print_hint(config: &Config, hint: &StartHint, base: &str) {
    let lines = Invocation::current(config.source_file.as_deref()).lines(hint, base);
    if lines.is_empty() {
        println!();
        return;
    }
    println!();
    for line in lines {
        println!("{line}");
    }
    if matches!(hint, StartHint::Bootstrap(_)) {
        tracing::info!("no administrator yet: the bootstrap link is printed on standard output");
    }
    println!();
}

/// Tells the service manager (systemd's `Type=notify`) about the server's state, when it
/// started the server with NOTIFY_SOCKET; without the variable nothing is sent.
fn notify_service_manager(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "could not notify the service manager through NOTIFY_SOCKET");
    }
}

/// Every minute: forget rate-limit keys back to a full budget; every five: drop expired
/// sessions and authentications a day past their expiry.
fn spawn_housekeeping(service: Arc<InProcessService>, limits: Arc<SignInLimits>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let mut minutes: u64 = 0;
        loop {
            tick.tick().await;
            limits.forget_idle();
            service.forget_idle_attempt_limits();
            minutes += 1;
            if minutes % 5 != 1 {
                continue;
            }
            match service.store().delete_expired_sessions(service.now()).await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "expired sessions removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not remove expired sessions"),
            }
            // Authentications are kept a day past their expiry (an application may still
            // poll for the outcome), then forgotten.
            let before = service.now() - 24 * 3600;
            match service.store().delete_old_authentications(before).await {
                Ok(n) if n > 0 => tracing::debug!(removed = n, "old authentications removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not remove old authentications"),
            }
            // Sends count for an hour and a webhook is replayed within minutes: a day is
            // plenty for both.
            if let Err(e) = service.store().delete_old_phone_records(before).await {
                tracing::warn!(error = %e, "could not remove old phone records");
            }
        }
    });
}

fn spawn_shutdown_on_signal(handle: axum_server::Handle) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = terminate => {},
        }
        tracing::info!("shutting down");
        notify_service_manager(&[sd_notify::NotifyState::Stopping]);
        handle.graceful_shutdown(Some(Duration::from_secs(10)));
    });
}
