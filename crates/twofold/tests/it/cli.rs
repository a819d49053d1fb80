//! The administration commands.

use crate::support::*;

#[tokio::test]
async fn users_are_added_listed_shown_changed_and_deleted() {
    let env = Env::new(Backend::Sqlite).await;
    env.cli_ok(
        &[
            "user",
            "add",
            "Paula",
            "--email",
            "paula@example.com",
            "--phone",
            "+33 1 23 45 67 89",
        ],
        "",
    );
    let dup = env.cli(&["user", "add", "PAULA"], "");
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let list = env.cli_ok(&["user", "list"], "");
    assert!(
        list.contains("paula") && list.contains("paula@example.com"),
        "{list}"
    );
    let shown: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["user", "show", "paula", "--json"], "")).unwrap();
    assert_eq!(shown["has_password"], false);
    assert_eq!(shown["phone"], "+33123456789");

    env.cli_ok(
        &[
            "user",
            "set",
            "paula",
            "--clear-phone",
            "--language",
            "fr",
            "--password-stdin",
        ],
        "a new password\n",
    );
    let shown: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["user", "show", "paula", "--json"], "")).unwrap();
    assert_eq!(shown["has_password"], true);
    assert_eq!(shown["phone"], serde_json::Value::Null);
    assert_eq!(shown["language"], "fr");

    let bad = env.cli(&["user", "set", "paula", "--language", "klingon"], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("use one of en, fr"));

    env.cli_ok(&["user", "delete", "paula"], "");
    let gone = env.cli(&["user", "show", "paula"], "");
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("user not found"));
}

#[tokio::test]
async fn a_short_password_is_refused_and_no_user_is_added() {
    let env = Env::new(Backend::Sqlite).await;
    let out = env.cli(&["user", "add", "quinn", "--password-stdin"], "short\n");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));
    assert!(env.cli_ok(&["user", "list"], "").contains("no users"));
}

#[tokio::test]
async fn a_malformed_email_or_phone_is_refused_and_nothing_is_stored() {
    let env = Env::new(Backend::Sqlite).await;
    let out = env.cli(&["user", "add", "quinn", "--email", "quinn at example"], "");
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("email") && said.contains("name@example.com"),
        "{said}"
    );
    assert!(env.cli_ok(&["user", "list"], "").contains("no users"));

    env.cli_ok(&["user", "add", "quinn"], "");
    let out = env.cli(&["user", "set", "quinn", "--phone", "ring ring"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("phone"));
    let shown: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["user", "show", "quinn", "--json"], "")).unwrap();
    assert_eq!(shown["phone"], serde_json::Value::Null);
}

#[tokio::test]
async fn settings_are_shown_and_changed_with_checks() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "7");
    let shown = env.cli_ok(&["settings", "show"], "");
    assert!(
        shown.contains("lockout_threshold = 7"),
        "seeded from the configuration: {shown}"
    );
    assert!(shown.contains("one_time_bypass_seconds = 300"), "{shown}");
    env.cli_ok(&["settings", "set", "lockout_threshold", "4"], "");
    // The seed does not overwrite what an administrator changed.
    assert!(
        env.cli_ok(&["settings", "show"], "")
            .contains("lockout_threshold = 4")
    );
    let bad = env.cli(&["settings", "set", "mobile_app_device_limit", "11"], "");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("mobile_app_device_limit") && err.contains("1 to 10"),
        "{err}"
    );
    let unknown = env.cli(&["settings", "set", "lockout_treshold", "4"], "");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not a setting"));
    let audit = env.cli_ok(&["audit", "tail"], "");
    assert!(
        audit.contains("setting_changed success actor=cli:tester"),
        "{audit}"
    );
}

#[tokio::test]
async fn migrate_prepares_a_postgresql_database() {
    let env = Env::new(Backend::Postgres).await;
    let out = env.cli_ok(&["migrate"], "");
    assert!(
        out.contains("migrations applied: PostgreSQL at 127.0.0.1:"),
        "{out}"
    );
    // Twice is harmless.
    env.cli_ok(&["migrate"], "");
}
