//! Upgrades, backups and restores of a SQLite store, as an operator runs them.

use crate::console::{PASSWORD, Sdk};
use crate::support::{Backend, Env, client_trusting, input_value, mid_step_now, oathtool_totp};
use reqwest::Method;
use rusqlite::Connection;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A store made by the release before the admin console (schema version 9): users ada, bob
/// and carol; hardware tokens HW-0001 (TOTP, ada's), HW-0002 (HOTP, bob's, one code used)
/// and HW-0003 (unassigned); lockout_threshold = 7. See fixtures/schema9/README.md.
const SCHEMA9: &str = include_str!("../fixtures/schema9/store.sql");
/// The sealing key the fixture's tokens were sealed with.
const SCHEMA9_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// HW-0001's seed (RFC 6238's), in base32.
const HW1_SEED: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// An environment whose data directory holds the schema-9 fixture.
async fn env_with_schema9_store() -> Env {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SECRETS__KEY", SCHEMA9_KEY);
    std::fs::create_dir_all(env.data_dir()).unwrap();
    let conn = Connection::open(env.data_dir().join("twofold.db")).unwrap();
    // The dump creates tables in name order, some before the users they refer to.
    conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
    conn.execute_batch(SCHEMA9).unwrap();
    env
}

/// Every object of the schema and every row, as text: two equal dumps are the same store.
fn dump(db: &Path) -> Vec<String> {
    let conn = Connection::open(db).unwrap();
    let mut out = Vec::new();
    let objects: Vec<(String, String, Option<String>)> = {
        let mut stmt = conn
            .prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    for (kind, name, sql) in objects {
        out.push(format!("{kind} {name} {}", sql.unwrap_or_default()));
        if kind == "table" {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid"))
                .unwrap();
            let columns = stmt.column_count();
            let rows: Vec<String> = stmt
                .query_map([], |r| {
                    let mut row = Vec::new();
                    for i in 0..columns {
                        row.push(format!("{:?}", r.get_ref(i)?));
                    }
                    Ok(row.join("|"))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            out.extend(rows.into_iter().map(|r| format!("  {name}: {r}")));
        }
    }
    out
}

fn schema_version(db: &Path) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row("SELECT max(version) FROM _sqlx_migrations", [], |r| {
            r.get(0)
        })
        .unwrap()
}

/// Whether the SQLite store `db` holds a user named `username`.
fn has_user(db: &Path, username: &str) -> bool {
    Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM users WHERE username = ?1",
            [username],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

fn backups_in(env: &Env) -> Vec<PathBuf> {
    let dir = env.data_dir().join("backups");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    found.sort();
    found
}

#[tokio::test]
async fn a_store_from_the_previous_release_is_copied_then_upgraded_keeping_every_user_and_token() {
    let env = env_with_schema9_store().await;
    let db = env.data_dir().join("twofold.db");
    let before = dump(&db);
    let out = env.cli(&["migrate"], "");
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("from schema version 9 to "),
        "the upgrade is reported: {said}"
    );
    let copies = backups_in(&env);
    assert_eq!(copies.len(), 1, "one copy taken before: {copies:?}");
    assert!(
        said.contains(&copies[0].display().to_string()),
        "the copy is named: {said}"
    );
    // The copy is the store as the older release left it.
    assert_eq!(schema_version(&copies[0]), 9);
    assert_eq!(dump(&copies[0]), before);
    assert!(schema_version(&db) > 9);

    // Every user and token is there, and the sealed seeds still open.
    let users = env.cli_ok(&["user", "list"], "");
    for user in ["ada", "bob", "carol"] {
        assert!(users.contains(user), "{users}");
    }
    let tokens = env.cli_ok(&["token", "list"], "");
    for line in ["HW-0001", "HW-0002", "HW-0003"] {
        assert!(tokens.contains(line), "{tokens}");
    }
    let settings: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["settings", "show", "--json"], "")).unwrap();
    assert_eq!(settings["lockout_threshold"], json!(7), "{settings}");
    let server = env.start();
    let sdk = Sdk::add(&env);
    let (status, verified) = sdk
        .send(
            &server,
            Method::POST,
            "/sdk/v1/users/ada/oath/verify",
            Some(json!({ "code": oathtool_totp(HW1_SEED, mid_step_now()) })),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["via"], json!("oath"), "{verified}");
    // bob's HOTP token remembers the code used before the upgrade: the next one works.
    let (status, verified) = sdk
        .send(
            &server,
            Method::POST,
            "/sdk/v1/users/bob/oath/verify",
            Some(json!({ "code": "287082" })),
        )
        .await;
    assert_eq!(status, 200, "{verified}");
    drop(server);

    // Current now: nothing more to copy.
    let again = env.cli(&["migrate"], "");
    assert!(again.status.success(), "{}", text(&again));
    assert!(!text(&again).contains("Upgraded"), "{}", text(&again));
    assert_eq!(backups_in(&env).len(), 1);
}

#[tokio::test]
async fn an_upgrade_that_fails_half_way_leaves_the_store_as_the_previous_release_left_it() {
    let env = env_with_schema9_store().await;
    let db = env.data_dir().join("twofold.db");
    // An object in the way of the last statement of the newest migration: every statement
    // before it runs, then it fails.
    Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE audit_log_action_at (x)")
        .unwrap();
    let before = dump(&db);
    let out = env.cli(&["migrate"], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("audit_log_action_at"), "the cause: {said}");
    assert!(
        said.contains("Nothing was changed") && said.contains("schema version 9"),
        "{said}"
    );
    assert_eq!(dump(&db), before, "the store is exactly as it was");
    assert_eq!(schema_version(&db), 9);
    // The server refuses to start on it the same way, and changes nothing either.
    let refused = env.start_fails();
    assert!(refused.contains("Nothing was changed"), "{refused}");
    assert_eq!(dump(&db), before);
    // Each attempt found the copy the first one took: restarts do not fill the disk.
    let copies = backups_in(&env);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(dump(&copies[0]), before);
}

#[tokio::test]
async fn a_binary_older_than_the_data_refuses_to_start_and_names_the_release_it_needs() {
    let env = Env::new(Backend::Sqlite).await;
    env.cli_ok(&["migrate"], "");
    let db = env.data_dir().join("twofold.db");
    Connection::open(&db)
        .unwrap()
        .execute_batch(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (999, 'from the future', TRUE, x'00', 1);
             INSERT INTO twofold_schema_releases (version, release, applied_at) VALUES (999, '9.4.0', 1);",
        )
        .unwrap();
    let before = dump(&db);
    let refused = env.start_fails();
    assert!(refused.contains("schema version 999"), "{refused}");
    assert!(refused.contains("Twofold 9.4.0 or newer"), "{refused}");
    assert!(
        refused.contains(env!("CARGO_PKG_VERSION")),
        "says which release this is: {refused}"
    );
    let out = env.cli(&["user", "list"], "");
    assert!(!out.status.success());
    assert!(text(&out).contains("9.4.0"), "{}", text(&out));
    assert_eq!(dump(&db), before);
}

/// A password sign-in from a trusted address (a whole sign-in): its status.
async fn sign_in_at(client: &reqwest::Client, base: &str, user: &str) -> u16 {
    let page = client
        .get(format!("{base}/sign-in"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let form = &page[page.find("action=\"/sign-in\"").unwrap()..];
    let token = input_value(form, "csrf_token").unwrap();
    client
        .post(format!("{base}/sign-in"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", user),
            ("password", PASSWORD),
            ("next", "/account"),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_backup_taken_during_sign_ins_restores_every_user_and_token() {
    let env = Env::new(Backend::Sqlite)
        .await
        .password_only()
        .set("TWOFOLD_LIMITS__SIGN_IN_PER_IP_PER_MINUTE", "100000")
        .set("TWOFOLD_LIMITS__SIGN_IN_PER_USERNAME_PER_MINUTE", "100000");
    let server = env.start();
    let sdk = Sdk::add(&env);
    let mut seeds = Vec::new();
    for i in 0..12 {
        let user = format!("user{i:02}");
        seeds.push((user.clone(), sdk.user_with_app(&server, &user).await));
    }
    // Sign-ins write sessions, counters and audit events while the copies are taken.
    let stop = Arc::new(AtomicBool::new(false));
    let signed_in = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, signed_in) = (stop.clone(), signed_in.clone());
        let cert = server.cert_file();
        let base = server.url("");
        let users: Vec<String> = seeds.iter().map(|(u, _)| u.clone()).collect();
        load.push(tokio::spawn(async move {
            let mut n = worker;
            while !stop.load(Ordering::Relaxed) {
                let user = &users[n % users.len()];
                // A new browser each time: a signed-in one is sent away from the sign-in page.
                let client = client_trusting(&cert, true);
                let status = sign_in_at(&client, &base, user).await;
                assert_eq!(status, 303, "a sign-in under load");
                signed_in.fetch_add(1, Ordering::Relaxed);
                n += 4;
            }
        }));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while signed_in.load(Ordering::Relaxed) < 20 {
        assert!(
            std::time::Instant::now() < deadline && load.iter().all(|t| !t.is_finished()),
            "the sign-ins do not go through"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let copy = env.dir.path().join("nightly.db");
    let out = env.cli(&["backup", copy.to_str().unwrap()], "");
    let during = signed_in.load(Ordering::Relaxed);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        signed_in.load(Ordering::Relaxed) > during,
        "sign-ins went on during the copy"
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.contains("12 user(s), 12 token(s)"), "{said}");
    assert!(
        said.contains("sealing keys are NOT in this file")
            && said.contains(&env.data_dir().join("keys").display().to_string()),
        "says where the keys are: {said}"
    );
    // A backup never overwrites.
    let again = env.cli(&["backup", copy.to_str().unwrap()], "");
    assert!(!again.status.success());
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    // A restore is refused while the server runs.
    let refused = env.cli(&["restore", copy.to_str().unwrap()], "");
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("stop it first"),
        "{}",
        text(&refused)
    );
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    // Changes after the backup, which the restore takes back.
    sdk.user_with_app(&server, "latecomer").await;
    drop(server);

    let out = env.cli(&["restore", copy.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("kept in"), "{}", text(&out));
    let users = env.cli_ok(&["user", "list"], "");
    assert!(!users.contains("latecomer"), "{users}");
    let server = env.start();
    for (user, seed) in &seeds {
        assert!(users.contains(user.as_str()), "{users}");
        let (status, verified) = sdk
            .send(
                &server,
                Method::POST,
                &format!("/sdk/v1/users/{user}/oath/verify"),
                Some(json!({ "code": oathtool_totp(seed, mid_step_now() + 30) })),
            )
            .await;
        assert_eq!(status, 200, "{user}'s token after the restore: {verified}");
    }
    // The store as it was before the restore is kept, latecomer included.
    let kept = backups_in(&env);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(has_user(&kept[0], "latecomer"));
}

#[tokio::test]
async fn a_truncated_backup_is_refused_and_the_store_is_untouched() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let copy = env.dir.path().join("copy.db");
    env.cli_ok(&["backup", copy.to_str().unwrap()], "");
    let bytes = std::fs::read(&copy).unwrap();
    let cut = env.dir.path().join("cut.db");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let db = env.data_dir().join("twofold.db");
    let before = dump(&db);
    let out = env.cli(&["restore", cut.to_str().unwrap()], "");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not a Twofold backup"),
        "{}",
        text(&out)
    );
    assert_eq!(dump(&db), before);
    let missing = env.cli(&["restore", "no-such-file.db"], "");
    assert!(
        text(&missing).contains("there is no such file"),
        "{}",
        text(&missing)
    );
}

#[tokio::test]
async fn backing_up_postgresql_says_to_use_pg_dump_and_why() {
    let env = Env::new(Backend::Postgres).await;
    for command in ["backup", "restore"] {
        let out = env.cli(&[command, "copy.db"], "");
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let said = text(&out);
        assert!(said.contains("pg_dump"), "{said}");
        assert!(said.contains("consistent snapshot"), "the reason: {said}");
        assert!(!env.dir.path().join("copy.db").exists());
    }
}

#[tokio::test]
async fn a_backup_restored_without_its_sealing_keys_says_the_tokens_will_not_open() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let sdk = Sdk::add(&env);
    sdk.user_with_app(&server, "ada").await;
    drop(server);
    let copy = env.dir.path().join("copy.db");
    env.cli_ok(&["backup", copy.to_str().unwrap()], "");

    // A new machine, given the store's backup but not the keys' backup.
    let other = Env::new(Backend::Sqlite).await;
    let out = other.cli(&["restore", copy.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains("the backup is restored, but its tokens will not open")
            && said.contains("no key found")
            && said.contains(&other.data_dir().join("keys").display().to_string()),
        "{said}"
    );
    // The restore itself happened, into a data directory private to its user: ada is there.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(other.data_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    assert!(has_user(&other.data_dir().join("twofold.db"), "ada"));

    // Once the keys' own backup is put back, the same restore says they open.
    let keys = other.data_dir().join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    for entry in std::fs::read_dir(env.data_dir().join("keys")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), keys.join(entry.file_name())).unwrap();
    }
    let out = other.cli(&["restore", copy.to_str().unwrap()], "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("opens a sample"), "{}", text(&out));
}
