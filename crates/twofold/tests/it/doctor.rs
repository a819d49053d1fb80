//! `twofold doctor` against real peers: a good setup passes every check that applies, and a
//! setup broken in one place fails that check alone, with its fix, and exit code 1 (2 when
//! the configuration does not parse). Nothing a doctor run touches is changed.

use crate::email::{PASSWORD as SMTP_PASSWORD, USERNAME as SMTP_USERNAME, smtp_env};
use crate::slapd::{SERVICE_PASSWORD, Slapd};
use crate::smtp;
use crate::support::*;
use crate::twilio_standin::TwilioStandIn;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const PORTAL: &str = "https://mfa.example.com/";
const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";
const TWILIO_TOKEN: &str = "doctor-twilio-token-5e1d";

/// What one doctor run said.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    /// With `--json`: each check's status, detail and fix, by name.
    checks: BTreeMap<String, Found>,
}

#[derive(Debug, Clone)]
struct Found {
    status: String,
    detail: String,
    fix: Option<String>,
}

impl Outcome {
    fn get(&self, check: &str) -> &Found {
        self.checks
            .get(check)
            .unwrap_or_else(|| panic!("no {check} check in:\n{}", self.stdout))
    }

    fn names(&self, status: &str) -> Vec<&str> {
        self.checks
            .iter()
            .filter(|(_, f)| f.status == status)
            .map(|(n, _)| n.as_str())
            .collect()
    }

    /// Asserts that `check` alone failed, with a fix containing `fix`, and exit code 1;
    /// returns its detail.
    fn only_failure(&self, check: &str, fix: &str) -> String {
        assert_eq!(
            self.names("fail"),
            [check],
            "exactly {check} should fail:\n{}{}",
            self.stdout,
            self.stderr
        );
        assert_eq!(self.code, 1, "{}", self.stdout);
        let found = self.get(check);
        let given = found.fix.as_deref().unwrap_or_default();
        assert!(given.contains(fix), "{check}'s fix {given:?} lacks {fix:?}");
        found.detail.clone()
    }
}

/// Runs `twofold doctor --json ARGS` in the environment of `env` (`prefix` before the
/// binary: `faketime`); asynchronously, so that peers in this process (the Twilio
/// stand-in) keep answering.
async fn doctor_with(env: &Env, prefix: &[&str], args: &[&str]) -> Outcome {
    let (program, mut all): (&str, Vec<&str>) = match prefix.split_first() {
        Some((first, rest)) => (first, rest.to_vec()),
        None => (BIN, Vec::new()),
    };
    if !prefix.is_empty() {
        all.push(BIN);
    }
    all.push("doctor");
    all.extend_from_slice(args);
    let out = tokio::process::Command::new(program)
        .args(&all)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("USER", "tester")
        .envs(&env.vars)
        .current_dir(env.dir.path())
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program} cannot run ({e})"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut checks = BTreeMap::new();
    if args.contains(&"--json") {
        let parsed: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{stdout}\n{stderr}"));
        for item in parsed.as_array().expect("an array") {
            let name = item["check"].as_str().expect("check").to_owned();
            let previous = checks.insert(
                name.clone(),
                Found {
                    status: item["status"].as_str().expect("status").to_owned(),
                    detail: item["detail"].as_str().expect("detail").to_owned(),
                    fix: item["fix"].as_str().map(str::to_owned),
                },
            );
            assert!(previous.is_none(), "{name} twice");
        }
    }
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout,
        stderr,
        checks,
    }
}

async fn doctor(env: &Env, args: &[&str]) -> Outcome {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    doctor_with(env, &[], &all).await
}

/// An environment whose only findings are what each test changes: portal_url is an https
/// address, nothing else is configured, and the store does not exist yet.
async fn base(backend: Backend) -> Env {
    Env::new(backend)
        .await
        .set("TWOFOLD_SETTINGS__PORTAL_URL", PORTAL)
        .set("TWOFOLD_DATABASE__CONNECT_TIMEOUT_SECONDS", "2")
}

/// A self-signed certificate for 127.0.0.1 valid `days` days from now, and its key
/// (openssl, as an operator would make one).
fn certificate(dir: &Path, name: &str, days: u32) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args([
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-days", &days.to_string(), "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (cert, key)
}

fn with_certificate(env: Env, cert: &Path, key: &Path) -> Env {
    env.set("TWOFOLD_TLS__CERT_FILE", &cert.display().to_string())
        .set("TWOFOLD_TLS__KEY_FILE", &key.display().to_string())
}

fn with_twilio(env: Env, stand_in: &TwilioStandIn, token: &str) -> Env {
    env.set("TWOFOLD_CHANNELS__SMS", "twilio")
        .set("TWOFOLD_TWILIO__ACCOUNT_SID", stand_in.account_sid())
        .set("TWOFOLD_TWILIO__AUTH_TOKEN", token)
        .set("TWOFOLD_TWILIO__FROM", "+15005550006")
        .set("TWOFOLD_TWILIO__API_BASE", &stand_in.api_base())
        .set("TWOFOLD_TWILIO__PUBLIC_URL", "https://mfa.example.com")
}

fn with_directory(mut env: Env, directory: &Slapd) -> Env {
    for (key, value) in directory.twofold_env(false) {
        env = env.set(&key, &value);
    }
    env
}

/// Imports one hardware token, so that the store holds a sealed OATH seed.
fn import_a_token(env: &Env) {
    let csv = env.dir.path().join("token.csv");
    std::fs::write(
        &csv,
        "HW-1,hex:3132333435363738393031323334353637383930,totp,6,30\n",
    )
    .unwrap();
    env.cli_ok(&["token", "import", &csv.display().to_string()], "");
}

fn key_id(key_hex: &str) -> String {
    use sha2::Digest;
    let key = hex_decode(key_hex);
    sha2::Sha256::digest(key)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Every file under `dir`, with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else {
            files.insert(path.clone(), std::fs::read(&path).unwrap());
        }
    }
    files
}

#[tokio::test]
async fn a_good_setup_passes_every_check_that_applies_on_sqlite_and_postgresql() {
    let directory = Slapd::new();
    let stand_in = TwilioStandIn::start(TWILIO_SID, TWILIO_TOKEN).await;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let env = base(backend).await;
        let mail = smtp::start(&env.dir.path().join("smtp"), SMTP_USERNAME, SMTP_PASSWORD);
        let (cert, key) = certificate(&env.dir.path().join("tls"), "server", 90);
        let env = with_certificate(env, &cert, &key);
        let env = with_directory(env, &directory);
        let env = smtp_env(env, &mail, SMTP_PASSWORD, true);
        let env = with_twilio(env, &stand_in, TWILIO_TOKEN);
        import_a_token(&env);

        let out = doctor(&env, &["--user", "alice"]).await;
        assert_eq!(out.code, 0, "{backend:?}:\n{}{}", out.stdout, out.stderr);
        let mut passed = vec![
            "config",
            "directory",
            "directory_user",
            "migrations",
            "portal_url",
            "sealing_key",
            "smtp",
            "store",
            "tls",
            "twilio",
        ];
        if backend == Backend::Postgres {
            passed.insert(0, "clock");
        } else {
            assert_eq!(out.names("skip"), ["clock"], "{backend:?}: {}", out.stdout);
            assert!(out.get("clock").detail.contains("timedatectl"));
        }
        assert_eq!(out.names("pass"), passed, "{backend:?}:\n{}", out.stdout);
        assert!(out.get("tls").detail.contains("days)"), "{}", out.stdout);
        assert!(out.get("sealing_key").detail.contains("OATH seed"));
        assert!(
            out.get("directory_user")
                .detail
                .contains("uid=alice,ou=people,dc=corp,dc=example")
        );
        assert!(out.get("smtp").detail.contains("sign-in"));
        assert!(out.get("twilio").detail.contains("active"));
        assert!(
            out.checks.values().all(|c| c.fix.is_none()),
            "a fix without a failure: {}",
            out.stdout
        );
        // Nothing was sent, and only a read of the account reached Twilio.
        assert!(mail.received().is_empty());
        assert!(
            stand_in
                .requests()
                .iter()
                .all(|r| r.path.ends_with(&format!("Accounts/{TWILIO_SID}.json"))),
            "{:?}",
            stand_in.requests()
        );
    }
}

#[tokio::test]
async fn the_text_report_has_one_aligned_line_per_check_and_a_summary_and_changes_nothing() {
    let env = base(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PORTAL_URL", "");
    let out = doctor_with(&env, &[], &[]).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.starts_with("pass  config"))
        .unwrap();
    // Every check's line puts its detail in the same column, the fix under it.
    let column = lines[first].find("no file given").unwrap();
    for line in lines.iter().take_while(|l| !l.is_empty()) {
        let status = &line[..4];
        assert!(["pass", "fail", "skip", "    "].contains(&status), "{line}");
        assert_ne!(&line[column..=column], " ", "{line}");
        assert_eq!(&line[column - 1..column], " ", "{line}");
    }
    assert!(out.stdout.contains("fail  portal_url"), "{}", out.stdout);
    assert!(out.stdout.contains("fix: set it to the https address"));
    assert!(!out.stdout.contains('\x1b'), "no colour into a pipe");
    assert!(
        out.stdout.ends_with("3 passed, 1 failed, 7 skipped.\n"),
        "{}",
        out.stdout
    );
    // A fresh setup stays as it was: no database, no key, no certificate.
    assert!(
        !env.data_dir().exists(),
        "doctor created {:?}",
        snapshot(&env.data_dir())
    );
}

#[tokio::test]
async fn a_configuration_that_does_not_parse_is_the_only_finding_with_exit_code_2() {
    let env = base(Backend::Sqlite).await;
    let broken = env.dir.path().join("broken.toml");
    std::fs::write(&broken, "listen = \"127.0.0.1:8443\n[tls\n").unwrap();
    let out = doctor(&env, &["--config", &broken.display().to_string()]).await;
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert_eq!(out.checks.keys().collect::<Vec<_>>(), ["config"]);
    assert_eq!(out.get("config").status, "fail");
    assert!(
        out.get("config").detail.contains("line"),
        "{:?}",
        out.get("config")
    );
    assert!(out.get("config").fix.as_deref().unwrap().contains("TOML"));

    let misspelt = env.dir.path().join("misspelt.toml");
    std::fs::write(&misspelt, "[database]\nurll = \"postgres://x\"\n").unwrap();
    let text = doctor_with(&env, &[], &["--config", &misspelt.display().to_string()]).await;
    assert_eq!(text.code, 2);
    assert!(text.stdout.starts_with("fail  config"), "{}", text.stdout);
    assert!(text.stdout.contains("database.urll"), "{}", text.stdout);
    assert!(
        text.stdout.contains("fix: check its spelling"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("no other check could run"),
        "{}",
        text.stdout
    );
}

#[tokio::test]
async fn a_key_that_is_not_the_certificates_fails_the_tls_check() {
    let env = base(Backend::Sqlite).await;
    let dir = env.dir.path().join("tls");
    let (cert, _) = certificate(&dir, "server", 90);
    let (_, other_key) = certificate(&dir, "other", 90);
    let env = with_certificate(env, &cert, &other_key);
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("tls", "openssl pkey -pubout");
    assert!(detail.contains("does not belong"), "{detail}");
    assert!(
        detail.contains(&other_key.display().to_string()),
        "{detail}"
    );
}

#[tokio::test]
async fn a_certificate_expiring_in_ten_days_fails_the_tls_check() {
    let env = base(Backend::Sqlite).await;
    let (cert, key) = certificate(&env.dir.path().join("tls"), "server", 10);
    let env = with_certificate(env, &cert, &key);
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("tls", "renew the certificate");
    assert!(
        detail.contains("expires on")
            && detail.contains("in 10 days")
            && detail.contains("less than 30"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_postgresql_url_to_a_closed_port_fails_the_store_check() {
    let port = crate::ports::free_tcp_port();
    let env = base(Backend::Sqlite).await.set(
        "TWOFOLD_DATABASE__URL",
        &format!("postgres://twofold:secret-pw@127.0.0.1:{port}/twofold"),
    );
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("store", "check database.url");
    assert!(
        detail.contains(&format!(
            "PostgreSQL at 127.0.0.1:{port}/twofold cannot be reached"
        )),
        "{detail}"
    );
    assert!(
        !out.stdout.contains("secret-pw"),
        "the password never shows"
    );
    // What needs the store says it could not look, rather than passing.
    for check in ["migrations", "sealing_key", "clock"] {
        assert_eq!(out.get(check).status, "skip", "{check}: {}", out.stdout);
    }
}

#[tokio::test]
async fn a_postgresql_role_that_may_only_read_fails_the_store_check() {
    use sqlx::Connection;
    let env = base(Backend::Postgres).await;
    env.cli_ok(&["migrate"], "");
    let owner_url = env.vars["TWOFOLD_DATABASE__URL"].clone();
    let database = url::Url::parse(&owner_url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_owned();
    let role = format!("reader_{database}");
    postgres_admin(&format!("CREATE ROLE {role} LOGIN PASSWORD 'reader-pw'")).await;
    let mut conn = sqlx::PgConnection::connect(&owner_url).await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.ok();
    let mut reader_url = url::Url::parse(&owner_url).unwrap();
    reader_url.set_username(&role).unwrap();
    reader_url.set_password(Some("reader-pw")).unwrap();
    let env = env.set("TWOFOLD_DATABASE__URL", reader_url.as_str());
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("store", "GRANT SELECT, INSERT, UPDATE, DELETE");
    assert!(detail.contains("refuses writes"), "{detail}");
    assert!(detail.contains("permission denied"), "{detail}");
    assert_eq!(out.get("clock").status, "pass", "{}", out.stdout);
}

#[tokio::test]
async fn a_sealing_key_that_did_not_seal_the_stored_seeds_fails_naming_the_key() {
    let sealing = "11".repeat(32);
    let other = "22".repeat(32);
    let env = base(Backend::Sqlite)
        .await
        .set("TWOFOLD_SECRETS__KEY", &sealing);
    import_a_token(&env);
    let out = doctor(&env, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.get("sealing_key").detail.contains(&key_id(&sealing)));

    let env = env.set("TWOFOLD_SECRETS__KEY", &other);
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("sealing_key", "restore");
    assert!(
        detail.contains(&format!("sealed under key {}", key_id(&sealing))),
        "{detail}"
    );
    assert!(detail.contains("oath_tokens row"), "{detail}");
    assert!(
        detail.contains("[secrets] key_file") && detail.contains("keys"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_wrong_bind_password_an_unknown_user_and_an_unreachable_directory_each_fail() {
    let directory = Slapd::new();
    let env = with_directory(base(Backend::Sqlite).await, &directory);

    let out = doctor(&env, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(out.get("directory").status, "pass");
    assert_eq!(out.get("directory_user").status, "skip");
    assert!(out.get("directory_user").detail.contains("--user NAME"));

    let out = doctor(&env, &["--user", "nobody"]).await;
    let detail = out.only_failure("directory_user", "ldap.group_dn");
    assert!(detail.contains("no entry for \"nobody\""), "{detail}");
    // carol exists, but outside the group that may sign in.
    let out = doctor(&env, &["--user", "carol"]).await;
    out.only_failure("directory_user", "member of that group");

    let wrong = env.set("TWOFOLD_LDAP__BIND_PASSWORD", "not the service password");
    assert_ne!(SERVICE_PASSWORD, "not the service password");
    let out = doctor(&wrong, &["--user", "alice"]).await;
    let detail = out.only_failure("directory", "check ldap.bind_dn and its password");
    assert!(detail.contains("result 49"), "{detail}");
    assert_eq!(out.get("directory_user").status, "skip");

    let closed = crate::ports::free_tcp_port();
    let env = with_directory(base(Backend::Sqlite).await, &directory)
        .set("TWOFOLD_LDAP__URL", &format!("ldap://127.0.0.1:{closed}"));
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("directory", "check ldap.url");
    assert!(detail.contains(&format!("127.0.0.1:{closed}")), "{detail}");
}

#[tokio::test]
async fn an_smtp_server_that_refuses_the_login_fails_the_smtp_check() {
    let env = base(Backend::Sqlite).await;
    let mail = smtp::start(&env.dir.path().join("smtp"), SMTP_USERNAME, SMTP_PASSWORD);
    let env = smtp_env(env, &mail, "not the mailer password", true);
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("smtp", "check smtp.username and smtp.password");
    assert!(
        detail.contains(&format!("refused the sign-in as {SMTP_USERNAME}")),
        "{detail}"
    );
    assert!(!out.stdout.contains("not the mailer password"));
    assert!(mail.received().is_empty());
}

#[tokio::test]
async fn twilio_refusing_the_credentials_or_a_suspended_account_fails_the_twilio_check() {
    let stand_in = TwilioStandIn::start(TWILIO_SID, TWILIO_TOKEN).await;
    let env = with_twilio(base(Backend::Sqlite).await, &stand_in, "not-the-auth-token");
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("twilio", "check twilio.account_sid and twilio.auth_token");
    assert!(detail.contains("HTTP 401: 20003 Authenticate"), "{detail}");
    assert!(!out.stdout.contains("not-the-auth-token"));
    let read = stand_in.requests();
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(
        read[0].path,
        format!("/2010-04-01/Accounts/{TWILIO_SID}.json")
    );
    assert_eq!(read[0].status, 401);

    let env = env.set("TWOFOLD_TWILIO__AUTH_TOKEN", TWILIO_TOKEN);
    stand_in.set_account_status("suspended");
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("twilio", "Twilio console");
    assert!(detail.contains("is suspended"), "{detail}");
    assert!(
        !out.stdout.contains(TWILIO_TOKEN),
        "Twilio's answer holds the token"
    );
}

#[tokio::test]
async fn portal_url_over_http_or_unset_fails_the_portal_url_check() {
    let env = base(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PORTAL_URL", "http://mfa.example.com/");
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("portal_url", "https://mfa.example.com/");
    assert!(detail.contains("does not use https"), "{detail}");

    // Once the store holds the setting, the fix is the command that changes it there.
    let env = env.set("TWOFOLD_SETTINGS__PORTAL_URL", "");
    env.cli_ok(&["migrate"], "");
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("portal_url", "twofold settings set portal_url https://");
    assert!(detail.contains("not set in the store"), "{detail}");
    env.cli_ok(&["settings", "set", "portal_url", PORTAL], "");
    assert_eq!(doctor(&env, &[]).await.code, 0);
}

#[tokio::test]
async fn a_clock_ten_minutes_ahead_of_postgresql_fails_the_clock_check() {
    let env = base(Backend::Postgres).await;
    env.cli_ok(&["migrate"], "");
    let on_time = doctor(&env, &[]).await;
    assert_eq!(on_time.code, 0, "{}", on_time.stdout);
    assert_eq!(on_time.get("clock").status, "pass");

    let env = env.set("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    let out = doctor_with(&env, &["faketime", "-f", "+10m"], &["--json"]).await;
    let detail = out.only_failure("clock", "timedatectl set-ntp true");
    assert!(
        detail.contains("ahead of the database server's"),
        "{detail}"
    );
    assert!(detail.contains("more than 15.0 s"), "{detail}");
}

/// A SQLite store made by applying the first `up_to` of the real migrations, recorded as
/// Twofold records them: what a release that knew only those left behind.
fn partly_migrated_sqlite(path: &Path, up_to: i64) {
    use sha2::Digest;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/migrations/sqlite");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
         checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);",
    )
    .unwrap();
    for file in files {
        let name = file.file_stem().unwrap().to_string_lossy().into_owned();
        let (number, description) = name.split_once('_').unwrap();
        let version: i64 = number.parse().unwrap();
        if version > up_to {
            continue;
        }
        let sql = std::fs::read_to_string(&file).unwrap();
        conn.execute_batch(&sql).unwrap();
        conn.execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, 0)",
            rusqlite::params![
                version,
                description.replace('_', " "),
                sha2::Sha384::digest(sql.as_bytes()).to_vec()
            ],
        )
        .unwrap();
    }
}

fn applied_versions(path: &Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT version FROM _sqlx_migrations ORDER BY version")
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn a_store_with_a_pending_migration_fails_the_migrations_check_and_is_left_as_it_was() {
    let env = base(Backend::Sqlite).await;
    let db = env.data_dir().join("twofold.db");
    partly_migrated_sqlite(&db, 12);
    let newest = applied_versions(&db).last().copied().unwrap();

    let out = doctor(&env, &[]).await;
    let detail = out.only_failure(
        "migrations",
        "run `twofold migrate` (it copies the database",
    );
    assert!(
        detail.contains(&format!("schema version {newest}")) && detail.contains("1 migration"),
        "{detail}"
    );
    assert_eq!(out.get("store").status, "pass", "{}", out.stdout);
    assert_eq!(
        applied_versions(&db).last().copied(),
        Some(newest),
        "doctor applied nothing"
    );

    env.cli_ok(&["migrate"], "");
    let out = doctor(&env, &[]).await;
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.get("migrations")
            .detail
            .contains("the newest this binary")
    );
}

#[tokio::test]
async fn a_store_a_newer_release_migrated_fails_the_migrations_check_naming_that_release() {
    let env = base(Backend::Sqlite).await;
    env.cli_ok(&["migrate"], "");
    let db = env.data_dir().join("twofold.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, x'00', 0); \
         INSERT INTO twofold_schema_releases (version, release, applied_at) VALUES (9999, '9.9.0', 0);",
    )
    .unwrap();
    drop(conn);
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("migrations", "install that release again");
    assert!(
        detail.contains("schema version 9999") && detail.contains("Twofold 9.9.0"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_empty_postgresql_database_fails_the_migrations_check_until_migrated() {
    let env = base(Backend::Postgres).await;
    let out = doctor(&env, &[]).await;
    let detail = out.only_failure("migrations", "run `twofold migrate`");
    assert!(detail.contains("the store is empty"), "{detail}");
    assert!(out.get("store").detail.contains("answers"));
    let out = doctor(&env, &[]).await;
    assert_eq!(
        out.get("migrations").status,
        "fail",
        "doctor migrated nothing"
    );
}
