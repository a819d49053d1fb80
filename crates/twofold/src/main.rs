//! `twofold`: the server, and the commands that administer it.

mod audit_line;
mod backup;
mod users_import;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use twofold_engine::{Clock, SystemClock};
use twofold_server::config::Config;
use twofold_server::serve::{self, StartError};
use twofold_server::service::InProcessService;
use twofold_server::store::{AuditRow, UserChanges, UserRecord};

/// Twofold: a self-hosted multi-factor authentication server with a self-service portal.
///
/// Every command reads the same configuration: the file given with --config (or
/// TWOFOLD_CONFIG), then TWOFOLD_<SECTION>__<KEY> environment variables. See
/// twofold.example.toml for every key.
#[derive(Debug, Parser)]
#[command(name = "twofold", version, about, long_about)]
struct Cli {
    /// The TOML configuration file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "TWOFOLD_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: portal, Web Service SDK, operational endpoints, everything on one host.
    Serve,
    /// Run the portal alone (an internet-facing host), reaching the MFA server through the
    /// Web Service SDK configured in [sdk]. It keeps no database.
    Portal,
    /// Apply the database migrations and exit (the server also applies them at start). A
    /// SQLite store is copied to backups/ beside it first; a failure changes nothing.
    Migrate,
    /// Copy the SQLite store to FILE while the server runs (a consistent copy). The sealing
    /// keys are not in it: back them up separately. For PostgreSQL, use pg_dump.
    Backup {
        /// The new file (never overwritten).
        file: PathBuf,
    },
    /// Replace the SQLite store with a backup made by `twofold backup`. Stop the server
    /// first; the store as it was is kept in backups/ beside it.
    Restore {
        /// The backup file.
        file: PathBuf,
    },
    /// Add, list, show, change, delete and unlock users.
    #[command(subcommand)]
    User(UserCommand),
    /// Import users from a CSV file or the directory, and sync them with the directory.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Make users administrators of the admin console (/admin), list them, take their
    /// rights away.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Put users in local groups (an administrator's grant may be scoped to a group).
    #[command(subcommand)]
    Group(GroupCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Show and change the portal settings kept in the store.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Import and list OATH tokens (third-party hardware tokens).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the security question catalogue.
    #[command(subcommand)]
    Questions(QuestionsCommand),
    /// Manage the key that seals OATH seeds at rest.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the service accounts that call the Web Service SDK.
    #[command(subcommand, name = "service-account")]
    ServiceAccount(ServiceAccountCommand),
    /// Check the email channel.
    #[command(subcommand)]
    Email(EmailCommand),
    /// Check the setup before it goes live, changing nothing: the configuration, the TLS
    /// certificate, the store and its migrations, the sealing key, the directory, SMTP,
    /// Twilio, portal_url and the clock. One line per check, with the fix for each failure.
    ///
    /// Exit code 0: nothing failed; 1: a check failed; 2: the configuration does not parse.
    Doctor {
        /// A directory user to look up as a sign-in would ([ldap]).
        #[arg(long, value_name = "USERNAME")]
        user: Option<String>,
        /// Print the checks as a JSON array of {check, status, detail, fix}.
        #[arg(long)]
        json: bool,
    },
    /// Write the manual pages (twofold.1, twofold-serve.1, ...) into DIR, from this help.
    #[command(name = "man-pages", hide = true)]
    ManPages { dir: PathBuf },
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Make USERNAME (an existing user) an administrator, or replace their rights: a role,
    /// or permissions, or both, for all users or for the members of one group.
    ///
    /// Roles: owner (everything), administrator (all but admins.manage), user-manager
    /// (users.*, tokens.import, directory.sync), help-desk (users.read, users.update,
    /// users.factors, users.credentials, users.bypass, users.block), auditor (users.read,
    /// audit.read, audit.export, reports.read). Administrators sign in at /admin with their
    /// second factor, always.
    Add {
        username: String,
        /// A preset role.
        #[arg(long, required_unless_present = "permissions")]
        role: Option<String>,
        /// A permission (repeat for more): users.read, users.create, users.update,
        /// users.delete, users.factors, users.credentials, users.bypass, users.block,
        /// tokens.import, directory.sync, audit.read, audit.export, reports.read,
        /// settings.write, admins.manage.
        #[arg(long = "permission", value_name = "P")]
        permissions: Vec<String>,
        /// `all` (the default) or `group:NAME`: the users the grant reaches. Only the users.*
        /// permissions may be scoped to a group.
        #[arg(long, value_name = "SCOPE")]
        scope: Option<String>,
        /// The longest one-time bypass this administrator may start (60 to 86400 seconds;
        /// default: settings.one_time_bypass_max_seconds).
        #[arg(long, value_name = "SECONDS")]
        bypass_max_seconds: Option<u32>,
    },
    /// List the administrators and their rights.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Take every right of an administrator away (the last owner stays).
    Remove { username: String },
    /// While no administrator exists: print a one-time link (valid for an hour) that makes
    /// the signed-in user who opens it the first owner.
    Bootstrap,
    /// List the admin console's pages and forms with the permission each needs.
    Routes {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Add users to a group (created by its first member).
    Add {
        group: String,
        #[arg(required = true)]
        usernames: Vec<String>,
    },
    /// Take users out of a group.
    Remove {
        group: String,
        #[arg(required = true)]
        usernames: Vec<String>,
    },
    /// List the groups and how many members each has.
    List,
}

#[derive(Debug, Subcommand)]
enum EmailCommand {
    /// Send a short test email to ADDRESS through the configured email channel and say
    /// what happened (exit code 1 when it was not sent).
    Test { address: String },
}

#[derive(Debug, Subcommand)]
enum ServiceAccountCommand {
    /// Create an account and print its secret, once (the store keeps only a hash).
    Add {
        name: String,
        /// `sdk` may call the SDK (applications); `portal` may call only the portal's RPC
        /// (`twofold portal` on its own host); any other role is refused by both.
        #[arg(long, default_value = "sdk")]
        role: String,
    },
    List,
    Delete {
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Import hardware tokens from a PSKC (RFC 6030) or CSV file: all of them, or none.
    ///
    /// CSV: serial,secret,type,digits,period_or_counter[,algorithm]; the secret in hex or
    /// base32 (or prefixed hex: / base32:).
    Import {
        file: PathBuf,
        /// The PSKC file's pre-shared key, in hex.
        #[arg(long, conflicts_with = "password_stdin")]
        key: Option<String>,
        /// Read the PSKC file's password (PBKDF2) from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List tokens: serial, type, status, and the user each is assigned to.
    List {
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Resynchronise a token that drifted, with two consecutive codes.
    Resync {
        /// The token's serial number, or the username of its owner.
        token: String,
        first: String,
        second: String,
    },
}

#[derive(Debug, Subcommand)]
enum QuestionsCommand {
    /// List the catalogue, with ids, languages and order.
    List {
        #[arg(long)]
        language: Option<String>,
    },
    /// Add a question at the end of its language's list.
    Add {
        #[arg(long, default_value = "en")]
        language: String,
        text: String,
    },
    /// Stop offering a question (users who chose it keep it).
    Disable {
        id: String,
    },
    Enable {
        id: String,
    },
    /// Move a question to a position in its language's list (0 is first).
    Move {
        id: String,
        position: i64,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a new key current and re-encrypt every sealed secret under it.
    Rotate,
    /// Re-encrypt sealed secrets that are not under the current key (after a rotation that
    /// was interrupted, or with a new key given in the configuration).
    Reencrypt,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. Without --password-stdin the user has no local password.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        phone: Option<String>,
        /// Read the password from standard input (one line; prompted when a terminal).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users in username order.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Start after this username (for paging).
        #[arg(long)]
        after: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one user.
    Show {
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Change a user.
    Set(SetArgs),
    /// Delete a user and end their sessions.
    Delete { username: String },
    /// Release a lockout now.
    Unlock { username: String },
    /// Lift a fraud block (a user who typed the fraud code during a verification call is
    /// blocked for settings.fraud_block_days).
    Unblock { username: String },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Import users: from a CSV file (columns username,email,phone,mobile_phone,language,
    /// with a header row) or from the directory ([ldap]). A user already there is updated;
    /// a new user with an email address is invited to the portal (settings.portal_url).
    Import {
        /// The CSV file to read.
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "ldap",
            required_unless_present = "ldap"
        )]
        csv: Option<PathBuf>,
        /// Read the users from the directory: the [[sync]] items, or --group.
        #[arg(long)]
        ldap: bool,
        /// With --ldap: the members of this group only.
        #[arg(long, value_name = "DN", requires = "ldap")]
        group: Option<String>,
        /// Say what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the [[sync]] items once: add and update users from the directory, disable those
    /// who left it (and delete them after settings.sync_delete_after_days).
    Sync {
        /// Disable the users who left even when they are more than
        /// settings.sync_removal_threshold.
        #[arg(long)]
        approve: bool,
        /// Say what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct SetArgs {
    username: String,
    #[arg(long, conflicts_with = "clear_email")]
    email: Option<String>,
    #[arg(long)]
    clear_email: bool,
    /// The primary phone: with its country code (+33 6 12 34 56 78), or national when
    /// settings.default_region names the country; stored in E.164. Without --extension,
    /// the new number has none (unless written after it: "+1 555 0100 x890").
    #[arg(long, value_name = "NUMBER", conflicts_with = "clear_phone")]
    phone: Option<String>,
    /// The extension dialled once a call to the primary phone is answered (1 to 10 digits).
    #[arg(long, value_name = "DIGITS", conflicts_with = "clear_phone")]
    extension: Option<String>,
    /// Remove both phones (refused while the method is phone_call or sms).
    #[arg(long)]
    clear_phone: bool,
    /// The backup phone, read like --phone.
    #[arg(
        long,
        value_name = "NUMBER",
        conflicts_with_all = ["clear_phone", "clear_backup_phone"]
    )]
    backup_phone: Option<String>,
    /// The extension of the backup phone.
    #[arg(
        long,
        value_name = "DIGITS",
        conflicts_with_all = ["clear_phone", "clear_backup_phone"]
    )]
    backup_extension: Option<String>,
    /// Remove the backup phone.
    #[arg(long)]
    clear_backup_phone: bool,
    /// The primary method: phone_call, sms or oath (phone_call and sms need a phone, oath
    /// an active OATH token).
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// The user's language: en or fr.
    #[arg(long)]
    language: Option<String>,
    /// Read a new password from standard input; ends the user's sessions.
    #[arg(long)]
    password_stdin: bool,
    /// Remove the local password.
    #[arg(long, conflicts_with = "password_stdin")]
    clear_password: bool,
    /// Allow the user to sign in again.
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Refuse the user's sign-ins and end their sessions.
    #[arg(long)]
    disable: bool,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Show the newest events, oldest first.
    Tail {
        /// How many events.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: i64,
        /// Keep printing events as they arrive.
        #[arg(short, long)]
        follow: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SettingsCommand {
    /// Print every setting and its value.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Change one setting: a JSON value (3, true, "text", ["10.0.0.0/8"]) or bare text.
    Set { key: String, value: String },
}

/// mimalloc instead of the system allocator: the server allocates from both worker threads
/// at once, where glibc's malloc spends its time on arena locks.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The doctor loads the configuration itself: a configuration that does not parse is one
    // of its findings (exit code 2), not an error.
    if let Command::Doctor { user, json } = &cli.command {
        return runtime.block_on(doctor(cli.config.as_deref(), user.clone(), *json));
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::ManPages { dir } = &cli.command {
        return write_man_pages(dir);
    }
    let config = Config::load(cli.config.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))?;
    match cli.command {
        Command::Serve => serve::serve(config).await.map_err(start_error),
        Command::Portal => {
            if cli.config.is_none() && std::env::var_os("TWOFOLD_SDK__URL").is_none() {
                bail!(
                    "twofold portal needs --config FILE with an [sdk] section (url, username, password or password_file, ca_file); see twofold.example.toml"
                );
            }
            serve::portal(config).await.map_err(start_error)
        }
        Command::Migrate => {
            let store = serve::open_store(&config, &SystemClock)
                .await
                .map_err(start_error)?;
            let status = store
                .schema_status()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "migrations applied: {} is at schema version {}, current for Twofold {}",
                serve::describe_target(
                    &config
                        .database_target()
                        .map_err(|e| anyhow::anyhow!("{e}"))?
                ),
                status.version(),
                twofold_server::store::RELEASE
            );
            store.close().await;
            Ok(())
        }
        Command::Backup { file } => backup::backup(&config, &file).await,
        Command::Restore { file } => backup::restore(&config, &file).await,
        Command::User(cmd) => user_command(&config, cmd).await,
        Command::Users(cmd) => users_command(&config, cmd).await,
        Command::Admin(cmd) => admin_command(&config, cmd).await,
        Command::Group(cmd) => group_command(&config, cmd).await,
        Command::Audit(cmd) => audit_command(&config, cmd).await,
        Command::Settings(cmd) => settings_command(&config, cmd).await,
        Command::Token(cmd) => token_command(&config, cmd).await,
        Command::Questions(cmd) => questions_command(&config, cmd).await,
        Command::Key(cmd) => key_command(&config, cmd).await,
        Command::ServiceAccount(cmd) => service_account_command(&config, cmd).await,
        Command::Email(EmailCommand::Test { address }) => email_test(&config, &address).await,
        // Run by main() before the configuration is loaded.
        Command::Doctor { .. } => Ok(()),
        Command::ManPages { dir } => write_man_pages(&dir),
    }
}

/// `twofold doctor`: the checks are the server's ([`twofold_server::doctor`]); this prints
/// them and gives their exit code.
async fn doctor(config: Option<&std::path::Path>, user: Option<String>, json: bool) -> ExitCode {
    let options = twofold_server::doctor::Options { test_user: user };
    let report = twofold_server::doctor::examine(config, &options).await;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        );
    } else {
        let stdout = std::io::stdout();
        let colour = stdout.is_terminal() && std::env::var_os("NO_COLOR").is_none();
        print!("{}", report.render_text(colour));
    }
    ExitCode::from(report.exit_code())
}

/// `twofold man-pages DIR` (hidden; the package's build runs it): one page for `twofold`
/// and one per command, `twofold-user-add.1` and so on.
fn write_man_pages(dir: &std::path::Path) -> Result<()> {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the directory {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing the manual pages into {}", dir.display()))?;
    Ok(())
}

/// `twofold email test ADDRESS`.
async fn email_test(config: &Config, address: &str) -> Result<()> {
    use twofold_server::channels::{Email, EmailChannel, SmtpChannel};
    use twofold_server::config::ChannelProvider;
    let smtp = match (config.channels.email, &config.smtp) {
        (ChannelProvider::Smtp, Some(smtp)) => smtp,
        (ChannelProvider::Smtp, None) => {
            bail!("channels.email = \"smtp\" but there is no [smtp] section")
        }
        (ChannelProvider::Twilio, _) => {
            bail!("channels.email = \"twilio\": Twilio sends no emails; use \"smtp\"")
        }
        (ChannelProvider::Console, _) => {
            println!(
                "channels.email is \"console\": emails are not sent to anyone, the server writes them \
                 to its log and to /dev/inbox. Nothing was sent to {address}. To send real email, set \
                 channels.email = \"smtp\" and an [smtp] section (see twofold.example.toml)."
            );
            return Ok(());
        }
    };
    let channel = SmtpChannel::from_config(smtp).map_err(|e| anyhow::anyhow!("{e}"))?;
    let email = Email {
        to: address.to_owned(),
        subject: "Twofold test email".to_owned(),
        text_body: format!(
            "This is a test email from Twofold, sent with `twofold email test` through {}.\n\n\
             If you can read it, Twofold can send emails.\n",
            channel.describe()
        ),
    };
    match channel.send_email(&email).await {
        Ok(id) => {
            println!(
                "sent to {address} through {} (Message-ID {id})",
                channel.describe()
            );
            Ok(())
        }
        Err(e) => bail!(
            "the test email to {address} was not sent through {}: {}",
            channel.describe(),
            match e {
                twofold_server::channels::DeliveryError::Permanent(m)
                | twofold_server::channels::DeliveryError::Transient(m) => m,
            }
        ),
    }
}

fn start_error(e: StartError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

async fn open_service(config: &Config) -> Result<InProcessService> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    serve::open_service(config, clock)
        .await
        .map_err(start_error)
}

/// Who the audit log names for a command-line change.
fn actor() -> String {
    let user = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password: ").context("reading the password")?;
        let second = rpassword::prompt_password("Again: ").context("reading the password")?;
        if first != second {
            bail!("the two passwords differ; nothing was changed");
        }
        return Ok(first);
    }
    let mut buffer = String::new();
    stdin
        .lock()
        .take(64 * 1024)
        .read_to_string(&mut buffer)
        .context("reading the password from standard input")?;
    let password = buffer.strip_suffix('\n').unwrap_or(&buffer);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.contains('\n') {
        bail!("standard input holds more than one line; give the password alone on one line");
    }
    Ok(password.to_owned())
}

async fn user_command(config: &Config, cmd: UserCommand) -> Result<()> {
    // Read secrets before touching the store, so a bad password changes nothing.
    let service = |config| open_service(config);
    match cmd {
        UserCommand::Add {
            username,
            email,
            phone,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            if let Some(p) = &password {
                twofold_engine::PasswordHasher::check_new(p)
                    .map_err(|e| anyhow::anyhow!("{e}; the user was not added"))?;
            }
            let service = service(config).await?;
            let user = service
                .add_user(&actor(), &username, email, phone, password.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("cannot add {username:?}: {e}"))?;
            println!("added user {}", user.username);
            if user.password_hash.is_none() {
                println!(
                    "note: {} has no password yet; set one with `twofold user set {} --password-stdin`",
                    user.username, user.username
                );
            }
            Ok(())
        }
        UserCommand::List { limit, after, json } => {
            let service = service(config).await?;
            let users = service
                .list_users(limit.clamp(1, 10_000), after.as_deref())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                let views: Vec<_> = users.iter().map(|u| view(u, None)).collect();
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else if users.is_empty() {
                println!("no users");
            } else {
                println!("{:<32} {:<32} {:<16} STATUS", "USERNAME", "EMAIL", "PHONE");
                for u in &users {
                    println!(
                        "{:<32} {:<32} {:<16} {}",
                        u.username,
                        u.email.as_deref().unwrap_or("-"),
                        u.phone.as_deref().unwrap_or("-"),
                        if u.enabled { "enabled" } else { "disabled" }
                    );
                }
            }
            Ok(())
        }
        UserCommand::Show { username, json } => {
            let service = service(config).await?;
            let user = service
                .find_user(&username)
                .await
                .map_err(|e| anyhow::anyhow!("{username:?}: {e}"))?;
            let lock = service
                .lock(&username)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let v = view(&user, lock);
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("username:  {}", v.username);
                println!("email:     {}", v.email.as_deref().unwrap_or("-"));
                println!(
                    "phone:     {}",
                    shown_phone(v.phone.as_deref(), v.extension.as_deref())
                );
                println!(
                    "backup:    {}",
                    shown_phone(v.backup_phone.as_deref(), v.backup_extension.as_deref())
                );
                println!("method:    {}", v.method.as_deref().unwrap_or("-"));
                println!("language:  {}", v.language.as_deref().unwrap_or("-"));
                println!(
                    "password:  {}",
                    if v.has_password { "set" } else { "not set" }
                );
                println!(
                    "status:    {}",
                    if v.enabled { "enabled" } else { "disabled" }
                );
                println!("created:   {}", format_time(v.created_at));
                match v.locked_until {
                    _ if v.hard_locked => println!(
                        "locked:    until an administrator unlocks it: too many failures in a row \
                         (release with `twofold user unlock {}`)",
                        v.username
                    ),
                    Some(t) => println!(
                        "locked:    until {} (release with `twofold user unlock {}`)",
                        format_time(t),
                        v.username
                    ),
                    None => println!("locked:    no"),
                }
                match v.fraud_blocked_until {
                    Some(t) => println!(
                        "blocked:   after a fraud report, until {} (lift with `twofold user unblock {}`)",
                        format_time(t),
                        v.username
                    ),
                    None => println!("blocked:   no"),
                }
            }
            Ok(())
        }
        UserCommand::Set(args) => {
            let password = if args.password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            if let Some(p) = &password {
                twofold_engine::PasswordHasher::check_new(p)
                    .map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))?;
            }
            let method = args.method.as_deref().map(parse_method).transpose()?;
            let phones_given = args.phone.is_some()
                || args.extension.is_some()
                || args.clear_phone
                || args.backup_phone.is_some()
                || args.backup_extension.is_some()
                || args.clear_backup_phone;
            let changes = UserChanges {
                email: if args.clear_email {
                    Some(None)
                } else {
                    args.email.clone().map(Some)
                },
                language: args.language.clone().map(Some),
                password_hash: if args.clear_password {
                    Some(None)
                } else {
                    None
                },
                enabled: if args.enable {
                    Some(true)
                } else if args.disable {
                    Some(false)
                } else {
                    None
                },
                ..UserChanges::default()
            };
            if changes.is_empty() && password.is_none() && !phones_given && method.is_none() {
                bail!("nothing to change; see `twofold user set --help`");
            }
            let service = service(config).await?;
            let cannot = |e: &dyn std::fmt::Display| {
                anyhow::anyhow!(
                    "cannot change {:?}: {e}; nothing was changed",
                    args.username
                )
            };
            let current = service
                .find_user(&args.username)
                .await
                .map_err(|e| cannot(&e))?;
            // Every value is checked before anything is stored.
            let phones = if phones_given {
                Some(new_phones(&service, &current, &args).await?)
            } else {
                None
            };
            let mut user = current;
            if !changes.is_empty() || password.is_some() {
                user = service
                    .update_user(&actor(), &args.username, changes, password.as_deref())
                    .await
                    .map_err(|e| cannot(&e))?;
            }
            let client = twofold_server::service::ClientContext {
                actor: Some(actor()),
                ..Default::default()
            };
            if let Some((primary, backup)) = phones {
                user = service
                    .set_user_phones(&user.username, primary.as_ref(), backup.as_ref(), &client)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("cannot change the phones of {:?}: {e}", user.username)
                    })?;
            }
            if let Some(method) = method {
                user = service
                    .set_user_method(&user.username, method, &client)
                    .await
                    .map_err(|e| match e {
                        twofold_server::service::ServiceError::Domain(
                            twofold_engine::DomainError::NotEnrolled,
                        ) => anyhow::anyhow!(
                            "--method: {}",
                            twofold_server::service::phones::missing_for(method)
                        ),
                        e => anyhow::anyhow!("--method: {e}"),
                    })?;
            }
            println!("updated user {}", user.username);
            Ok(())
        }
        UserCommand::Delete { username } => {
            let service = service(config).await?;
            service
                .delete_user(&actor(), &username)
                .await
                .map_err(|e| anyhow::anyhow!("cannot delete {username:?}: {e}"))?;
            println!("deleted user {username}");
            Ok(())
        }
        UserCommand::Unblock { username } => {
            let service = service(config).await?;
            let was_blocked = service
                .unblock_user(&actor(), &username)
                .await
                .map_err(|e| anyhow::anyhow!("cannot unblock {username:?}: {e}"))?;
            if was_blocked {
                println!("unblocked {username}");
            } else {
                println!("{username} was not blocked");
            }
            Ok(())
        }
        UserCommand::Unlock { username } => {
            let service = service(config).await?;
            let was_locked = service
                .unlock_user(&actor(), &username)
                .await
                .map_err(|e| anyhow::anyhow!("cannot unlock {username:?}: {e}"))?;
            if was_locked {
                println!("unlocked {username}");
            } else {
                println!("{username} was not locked; its failure count is reset");
            }
            Ok(())
        }
    }
}

async fn users_command(config: &Config, cmd: UsersCommand) -> Result<()> {
    use std::collections::HashMap;
    use twofold_server::directory::EntryScope;
    use twofold_server::service::directory_sync::directory_source;
    use twofold_server::store::UserOrigin;
    use users_import::{CliProgress, print_summary, read_csv};
    let json_logs = config.log.format == twofold_server::config::LogFormat::Json;
    let (summary, row_errors, lines, json) = match cmd {
        UsersCommand::Import {
            csv: Some(path),
            dry_run,
            json,
            ..
        } => {
            let file = read_csv(&path)?;
            let service = open_service(config).await?;
            let lines: HashMap<String, usize> = file
                .rows
                .iter()
                .map(|(line, row)| (row.username.clone(), *line))
                .collect();
            let entries: Vec<_> = file.rows.into_iter().map(|(_, row)| row).collect();
            let summary =
                import_entries(config, &service, &entries, UserOrigin::Csv, dry_run).await?;
            (summary, file.errors, lines, json || json_logs)
        }
        UsersCommand::Import {
            group,
            dry_run,
            json,
            ..
        } => {
            let source = directory_source(config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let scopes: Vec<EntryScope> = match group {
                Some(group) => vec![EntryScope::Group(group)],
                None if config.sync.is_empty() => vec![EntryScope::Base(None)],
                None => config.sync.iter().map(|item| item.scope()).collect(),
            };
            let mut entries = Vec::new();
            // A user in two groups is listed twice: imported once.
            let mut seen = std::collections::HashSet::new();
            for scope in &scopes {
                let listed = source
                    .entries(scope)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}; nothing was imported"))?;
                entries.extend(listed.into_iter().filter(|e| seen.insert(e.dn.clone())));
            }
            let service = open_service(config).await?;
            let summary =
                import_entries(config, &service, &entries, UserOrigin::Ldap, dry_run).await?;
            (summary, Vec::new(), HashMap::new(), json || json_logs)
        }
        UsersCommand::Sync {
            approve,
            dry_run,
            json,
        } => {
            let source = directory_source(config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let service = open_service(config).await?;
            let progress = CliProgress::new(config, "syncing");
            let summary = service
                .sync_users(
                    &actor(),
                    source.as_ref(),
                    &config.sync,
                    approve,
                    dry_run,
                    &progress,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            send_invitations(config, &service, &summary).await;
            (summary, Vec::new(), HashMap::new(), json || json_logs)
        }
    };
    print_summary(&summary, &row_errors, &lines, json);
    let failed = row_errors.len() + summary.errors.len();
    if failed > 0 {
        bail!("{failed} users were not imported (see the errors above); the others were");
    }
    Ok(())
}

/// Imports `entries` with the command's progress, then sends the invitations it queued.
async fn import_entries(
    config: &Config,
    service: &InProcessService,
    entries: &[twofold_server::directory::DirectoryAccount],
    origin: twofold_server::store::UserOrigin,
    dry_run: bool,
) -> Result<twofold_server::service::directory_sync::Summary> {
    let progress = crate::users_import::CliProgress::new(config, "importing");
    let summary = service
        .import_users(&actor(), entries, origin, &config.sync, dry_run, &progress)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "the import stopped: {e}; the users written so far stay, rerun to carry on"
            )
        })?;
    send_invitations(config, service, &summary).await;
    Ok(summary)
}

/// Sends the invitations an import queued, through the configured email channel. With the
/// console channel they are left to `twofold serve`, whose development inbox shows them.
async fn send_invitations(
    config: &Config,
    service: &InProcessService,
    summary: &twofold_server::service::directory_sync::Summary,
) {
    if summary.invitations_queued == 0 {
        return;
    }
    if config.channels.console_kinds().contains(&"email") {
        println!(
            "the console email channel delivers nothing from this command: `twofold serve` sends the invitations (see /dev/inbox)"
        );
        return;
    }
    let channels = match twofold_server::channels::Channels::from_config(
        &config.channels,
        config.smtp.as_ref(),
        config.twilio.as_ref(),
        Arc::new(SystemClock),
    ) {
        Ok(channels) => channels,
        Err(e) => {
            println!(
                "warning: invitations cannot be sent from here ({e}); `twofold serve` sends them"
            );
            return;
        }
    };
    match service.send_due_invitations(channels.email.as_ref()).await {
        Ok(round) => {
            println!("invitations sent: {}", round.sent);
            if round.deferred > 0 {
                println!(
                    "warning: {} invitations could not be sent now; `twofold serve` tries again",
                    round.deferred
                );
            }
            if round.given_up > 0 {
                println!(
                    "warning: {} invitations were refused by the email provider (see the log)",
                    round.given_up
                );
            }
        }
        Err(e) => println!(
            "warning: invitations could not be sent now ({e}); `twofold serve` tries again"
        ),
    }
}

fn view(u: &UserRecord, lock: Option<twofold_engine::lockout::Lock>) -> twofold_sdk::UserView {
    use twofold_engine::lockout::Lock;
    twofold_sdk::UserView {
        username: u.username.clone(),
        email: u.email.clone(),
        phone: u.phone.clone(),
        language: u.language.clone(),
        has_password: u.password_hash.is_some(),
        enabled: u.enabled,
        created_at: u.created_at,
        locked_until: match lock {
            Some(Lock::Until(until)) => Some(until),
            _ => None,
        },
        hard_locked: lock == Some(Lock::UntilReleased),
        extension: u.extension.clone(),
        backup_phone: u.backup_phone.clone(),
        backup_extension: u.backup_extension.clone(),
        method: u.method.clone(),
        fraud_blocked_until: u.fraud_blocked_until.filter(|until| *until > now()),
    }
}

fn now() -> i64 {
    SystemClock.now()
}

/// A stored phone as `user show` prints it: `+33 6 12 34 56 78 ext. 890`.
fn shown_phone(number: Option<&str>, extension: Option<&str>) -> String {
    match (number, extension) {
        (None, _) => "-".to_owned(),
        (Some(n), None) => twofold_engine::phone::display(n),
        (Some(n), Some(e)) => format!("{} ext. {e}", twofold_engine::phone::display(n)),
    }
}

/// `--method`: the methods an administrator may set.
fn parse_method(text: &str) -> Result<twofold_engine::settings::Method> {
    use twofold_engine::settings::Method;
    match text.trim() {
        "phone_call" => Ok(Method::PhoneCall),
        "sms" => Ok(Method::Sms),
        "oath" => Ok(Method::Oath),
        "mobile_app" => Ok(Method::MobileApp),
        other => bail!("--method {other:?}: use phone_call, sms, mobile_app or oath"),
    }
}

type PhoneEntry = twofold_server::service::phones::PhoneEntry;

/// The phones `user set` stores: the flags given over the user's current phones, each read
/// now (with settings.default_region) so that a bad one names its flag and changes nothing.
async fn new_phones(
    service: &InProcessService,
    user: &UserRecord,
    args: &SetArgs,
) -> Result<(Option<PhoneEntry>, Option<PhoneEntry>)> {
    use twofold_server::service::MfaService;
    if args.clear_phone {
        if let Some(method @ ("phone_call" | "sms")) = user.method.as_deref() {
            bail!(
                "--clear-phone: the method of {} is {method}, which needs a phone; choose another with --method first",
                user.username
            );
        }
        return Ok((None, None));
    }
    let settings = service
        .settings()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let region = Some(settings.default_region.as_str()).filter(|r| !r.is_empty());
    // A new number comes with its own extension (or none); an extension alone changes the
    // current number's.
    let pick = |number: &Option<String>,
                extension: &Option<String>,
                current: Option<&String>,
                current_extension: Option<&String>|
     -> Option<PhoneEntry> {
        match (number, extension) {
            (Some(n), e) => Some(PhoneEntry {
                number: n.clone(),
                extension: e.clone(),
            }),
            (None, Some(e)) => current.map(|n| PhoneEntry {
                number: n.clone(),
                extension: Some(e.clone()),
            }),
            (None, None) => current.map(|n| PhoneEntry {
                number: n.clone(),
                extension: current_extension.cloned(),
            }),
        }
    };
    let check = |entry: &PhoneEntry, number_flag: &str, extension_flag: &str| -> Result<()> {
        match twofold_engine::phone::parse(&entry.number, entry.extension.as_deref(), region) {
            Ok(_) => Ok(()),
            Err(e @ twofold_engine::phone::PhoneError::Extension(_)) => {
                bail!("{extension_flag}: {e}; nothing was changed")
            }
            Err(e) => bail!("{number_flag}: {e}; nothing was changed"),
        }
    };
    let primary = pick(
        &args.phone,
        &args.extension,
        user.phone.as_ref(),
        user.extension.as_ref(),
    );
    let backup = if args.clear_backup_phone {
        None
    } else {
        pick(
            &args.backup_phone,
            &args.backup_extension,
            user.backup_phone.as_ref(),
            user.backup_extension.as_ref(),
        )
    };
    match &primary {
        Some(p) => check(p, "--phone", "--extension")?,
        None if args.extension.is_some() => {
            bail!(
                "--extension: {} has no phone; give --phone too",
                user.username
            )
        }
        None if backup.is_some() => {
            bail!("--backup-phone: a backup phone needs a primary phone; give --phone too")
        }
        None => {}
    }
    match &backup {
        Some(b) => check(b, "--backup-phone", "--backup-extension")?,
        None if args.backup_extension.is_some() => bail!(
            "--backup-extension: {} has no backup phone; give --backup-phone too",
            user.username
        ),
        None => {}
    }
    Ok((primary, backup))
}

fn format_time(at: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| at.to_string())
}

fn print_audit(row: &AuditRow, json: bool) -> Result<()> {
    if json {
        let value = serde_json::json!({
            "id": row.id, "at": row.at, "action": row.action, "outcome": row.outcome,
            "actor": row.actor, "subject": row.subject, "client_ip": row.client_ip,
            "user_agent": row.user_agent, "detail": row.detail,
        });
        println!("{value}");
    } else {
        println!("{}", audit_line::text_line(row, &format_time(row.at)));
    }
    Ok(())
}

async fn audit_command(config: &Config, cmd: AuditCommand) -> Result<()> {
    let AuditCommand::Tail {
        lines,
        follow,
        json,
    } = cmd;
    let service = open_service(config).await?;
    let rows = service
        .audit_tail(lines)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut last = rows.last().map(|r| r.id).unwrap_or(0);
    for row in &rows {
        print_audit(row, json)?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rows = service
            .audit_since(last, 1000)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for row in &rows {
            print_audit(row, json)?;
            last = row.id;
        }
    }
}

async fn settings_command(config: &Config, cmd: SettingsCommand) -> Result<()> {
    let service = open_service(config).await?;
    match cmd {
        SettingsCommand::Show { json } => {
            let settings = service
                .stored_settings()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let entries = settings.to_entries();
            if json {
                println!("{}", serde_json::to_string_pretty(&entries)?);
            } else {
                for (key, value) in entries {
                    println!("{key} = {value}");
                }
            }
        }
        SettingsCommand::Set { key, value } => {
            let stored = service
                .set_setting(&actor(), &key, &value)
                .await
                .map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))?;
            println!("{key} = {stored}");
        }
    }
    Ok(())
}

async fn token_command(config: &Config, cmd: TokenCommand) -> Result<()> {
    use twofold_engine::token_import::{self, PskcKey};
    match cmd {
        TokenCommand::Import {
            file,
            key,
            password_stdin,
        } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let key = match (key, password_stdin) {
                (Some(hex_key), _) => Some(PskcKey::PreShared(
                    hex_decode(hex_key.trim())
                        .context("--key must be the pre-shared key in hex")?,
                )),
                (None, true) => Some(PskcKey::Password(read_password()?)),
                (None, false) => None,
            };
            let name = file.display().to_string();
            // PBKDF2 may take a while: off the async worker, like the server does it.
            let parsed = tokio::task::spawn_blocking({
                let name = name.clone();
                move || token_import::parse_file(&name, &bytes, key.as_ref())
            })
            .await
            .context("reading the token file stopped")?;
            let tokens = match parsed {
                Ok(tokens) => tokens,
                Err(problems) => {
                    for p in &problems {
                        eprintln!("{name}: {}: {}", p.location, p.reason);
                    }
                    bail!(
                        "{} problem(s) in {name}; nothing was imported",
                        problems.len()
                    );
                }
            };
            let service = open_service(config).await?;
            let count = service
                .import_tokens(&actor(), &tokens)
                .await
                .map_err(|e| anyhow::anyhow!("{e}; nothing was imported"))?;
            println!("imported {count} token(s) from {name}");
            Ok(())
        }
        TokenCommand::List { limit } => {
            let service = open_service(config).await?;
            let tokens = service
                .list_tokens(limit)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if tokens.is_empty() {
                println!("no tokens");
                return Ok(());
            }
            println!(
                "{:<24} {:<9} {:<22} {:<10} ASSIGNED TO",
                "SERIAL", "KIND", "TYPE", "STATUS"
            );
            for t in tokens {
                let kind = match t.params.kind {
                    twofold_engine::oath::OathKind::Totp { period } => format!("totp/{period}s"),
                    twofold_engine::oath::OathKind::Hotp => "hotp".to_owned(),
                };
                let algorithm = serde_json::to_value(t.params.algorithm)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                println!(
                    "{:<24} {:<9} {:<22} {:<10} {}",
                    t.serial.as_deref().unwrap_or("-"),
                    t.kind.as_str(),
                    format!("{kind} {} digits {algorithm}", t.params.digits),
                    t.status.as_str(),
                    t.username.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }
        TokenCommand::Resync {
            token,
            first,
            second,
        } => {
            let service = open_service(config).await?;
            service
                .resync_token(&actor(), &token, &first, &second)
                .await
                .map_err(|e| anyhow::anyhow!("cannot resynchronise {token:?}: {e}"))?;
            println!("resynchronised {token}");
            Ok(())
        }
    }
}

fn hex_decode(text: &str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|e| anyhow::anyhow!("{e}"))
}

async fn questions_command(config: &Config, cmd: QuestionsCommand) -> Result<()> {
    let service = open_service(config).await?;
    let failed = |e: twofold_server::service::ServiceError| anyhow::anyhow!("{e}");
    match cmd {
        QuestionsCommand::List { language } => {
            let questions = service
                .list_questions(language.as_deref())
                .await
                .map_err(failed)?;
            for q in questions {
                println!(
                    "{:<16} {:<3} {:>3} {:<8} {}",
                    q.id,
                    q.language,
                    q.position,
                    if q.enabled { "enabled" } else { "disabled" },
                    q.text
                );
            }
        }
        QuestionsCommand::Add { language, text } => {
            let Some(language) = twofold_engine::Language::from_tag(&language) else {
                bail!("--language {language:?}: use one of en, fr");
            };
            let id = service
                .add_question(&actor(), language, &text)
                .await
                .map_err(failed)?;
            println!("added {id}");
        }
        QuestionsCommand::Disable { id } => {
            service
                .set_question_enabled(&actor(), &id, false)
                .await
                .map_err(failed)?;
            println!("disabled {id}");
        }
        QuestionsCommand::Enable { id } => {
            service
                .set_question_enabled(&actor(), &id, true)
                .await
                .map_err(failed)?;
            println!("enabled {id}");
        }
        QuestionsCommand::Move { id, position } => {
            service
                .move_question(&actor(), &id, position)
                .await
                .map_err(failed)?;
            println!("moved {id} to position {position}");
        }
    }
    Ok(())
}

async fn key_command(config: &Config, cmd: KeyCommand) -> Result<()> {
    use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
    match cmd {
        KeyCommand::Rotate => {
            // Only a new current key here: servers already running keep the keyring they
            // loaded and could not open values sealed under a key they have never seen.
            let mut keyring = serve::open_keyring(config).map_err(start_error)?;
            let id = keyring
                .rotate(&config.data_dir)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let service = open_service(config).await?;
            service
                .record(
                    AuditEvent::new(
                        service.now(),
                        AuditAction::KeyRotated,
                        AuditOutcome::Success,
                        actor(),
                    )
                    .detail(format!("new current key {id}")),
                )
                .await;
            println!(
                "new current key {id} in {}",
                config.data_dir.join("keys").display()
            );
            println!(
                "next: copy that folder to every node, restart the servers, then run `twofold key reencrypt`"
            );
        }
        KeyCommand::Reencrypt => {
            let service = open_service(config).await?;
            let keyring = serve::open_keyring(config).map_err(start_error)?;
            let count = twofold_server::secrets::reencrypt_all(service.store(), &keyring)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            service
                .record(
                    AuditEvent::new(
                        service.now(),
                        AuditAction::KeyRotated,
                        AuditOutcome::Success,
                        actor(),
                    )
                    .detail(format!(
                        "{count} secrets re-encrypted under key {}",
                        keyring.current_id()
                    )),
                )
                .await;
            println!(
                "re-encrypted {count} secret(s) under key {}",
                keyring.current_id()
            );
        }
    }
    Ok(())
}

async fn admin_command(config: &Config, cmd: AdminCommand) -> Result<()> {
    use twofold_server::service::admins::{Grantor, describe, rights_of};
    if let AdminCommand::Routes { json } = cmd {
        let routes = twofold_server::web::admin::declared_routes();
        for r in routes {
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "method": r.method.as_str(), "path": r.path, "needs": r.need.as_str() })
                );
            } else {
                println!(
                    "{:<5} {:<48} {}",
                    r.method.as_str(),
                    r.path,
                    r.need.as_str()
                );
            }
        }
        return Ok(());
    }
    let service = open_service(config).await?;
    let operator = actor();
    match cmd {
        AdminCommand::Add {
            username,
            role,
            permissions,
            scope,
            bypass_max_seconds,
        } => {
            let rights = rights_of(
                role.as_deref(),
                &permissions,
                scope.as_deref(),
                bypass_max_seconds,
            )
            .map_err(|e| anyhow::anyhow!("{e}; nothing was changed"))?;
            let admin = service
                .grant_admin(Grantor::Operator(&operator), &username, &rights)
                .await
                .map_err(|e| anyhow::anyhow!("cannot make {username:?} an administrator: {e}"))?;
            println!(
                "{} is an administrator: {}. They sign in at /admin with their password and second factor.",
                admin.username,
                describe(&admin.rights)
            );
        }
        AdminCommand::List { json } => {
            let admins = service
                .list_admins()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                let list: Vec<serde_json::Value> = admins
                    .iter()
                    .map(|a| {
                        serde_json::json!({
                            "username": a.username,
                            "role": a.rights.role().map(|r| r.as_str()),
                            "grants": a.rights.grants.iter().map(|g| serde_json::json!({
                                "permission": g.permission.as_str(),
                                "scope": g.scope.as_string(),
                            })).collect::<Vec<_>>(),
                            "bypass_max_seconds": a.rights.bypass_max_seconds,
                            "created_at": a.created_at,
                            "created_by": a.created_by,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else if admins.is_empty() {
                println!(
                    "no administrators; make the first with `twofold admin add USERNAME --role owner`"
                );
            } else {
                for a in admins {
                    println!("{:<32} {}", a.username, describe(&a.rights));
                }
            }
        }
        AdminCommand::Remove { username } => {
            service
                .revoke_admin(Grantor::Operator(&operator), &username)
                .await
                .map_err(|e| anyhow::anyhow!("cannot remove {username:?}: {e}"))?;
            println!("{username} is no longer an administrator");
        }
        AdminCommand::Routes { .. } => {}
        AdminCommand::Bootstrap => {
            match service
                .new_bootstrap_link()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                Some(path) => println!(
                    "open https://<this server>{path} within the hour, signed in to the portal as the user who is to be the first owner (it works once)"
                ),
                None => bail!("an administrator exists already; `twofold admin add` makes more"),
            }
        }
    }
    Ok(())
}

async fn group_command(config: &Config, cmd: GroupCommand) -> Result<()> {
    let service = open_service(config).await?;
    let operator = actor();
    let (group, usernames, adding) = match cmd {
        GroupCommand::List => {
            let groups = service.groups().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if groups.is_empty() {
                println!("no groups; `twofold group add GROUP USERNAME...` makes one");
            }
            for (name, members) in groups {
                println!("{name:<40} {members} member(s)");
            }
            return Ok(());
        }
        GroupCommand::Add { group, usernames } => (group, usernames, true),
        GroupCommand::Remove { group, usernames } => (group, usernames, false),
    };
    let name = twofold_engine::admin::group_name(&group).map_err(|e| anyhow::anyhow!("{e}"))?;
    for username in usernames {
        let user = service
            .find_user(&username)
            .await
            .map_err(|e| anyhow::anyhow!("{username}: {e}"))?;
        let mut groups = service
            .user_groups(&user.id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        groups.retain(|g| *g != name);
        if adding {
            groups.push(name.clone());
        }
        let now = service
            .set_user_groups(&operator, &username, &groups)
            .await
            .map_err(|e| anyhow::anyhow!("{username}: {e}"))?;
        println!(
            "{username}: {}",
            if now.is_empty() {
                "no groups".to_owned()
            } else {
                now.join(", ")
            }
        );
    }
    Ok(())
}

async fn service_account_command(config: &Config, cmd: ServiceAccountCommand) -> Result<()> {
    let service = open_service(config).await?;
    match cmd {
        ServiceAccountCommand::Add { name, role } => {
            let secret = service
                .add_service_account(&actor(), &name, &role)
                .await
                .map_err(|e| anyhow::anyhow!("cannot add {name:?}: {e}"))?;
            eprintln!("service account {name} (role {role}) created; its secret, shown only now:");
            println!("{}", secret.0);
        }
        ServiceAccountCommand::List => {
            let accounts = service
                .list_service_accounts()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if accounts.is_empty() {
                println!("no service accounts");
            }
            for a in accounts {
                println!(
                    "{:<32} {:<8} created {}",
                    a.name,
                    a.role,
                    format_time(a.created_at)
                );
            }
        }
        ServiceAccountCommand::Delete { name } => {
            if !service
                .delete_service_account(&actor(), &name)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                bail!("no service account {name:?}");
            }
            println!("deleted service account {name}");
        }
    }
    Ok(())
}
