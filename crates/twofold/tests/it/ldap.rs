//! Sign-in against a real OpenLDAP server (`primary_authentication = "ldap"`): the
//! directory checks the password by a bind as the user, over StartTLS or LDAPS verified
//! against a test CA; Twofold keeps the second factor, the lockout counters and the audit log.

use crate::factors::{enrol_authenticator_app, post_code, sign_in_to_verify};
use crate::slapd::{self, BASE_DN, GROUP_DN, SERVICE_PASSWORD, Slapd, password_of};
use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use twofold_engine::Username;
use twofold_server::directory::ldap::{LdapAttributes, LdapConfig};
use twofold_server::directory::{
    Directory, DirectoryOutcome, EntryScope, LdapDirectory, UserSource,
};

/// A server whose passwords are checked by `directory`, with the Twofold users `users`
/// (holding no local password) already added.
async fn env_with(directory: &Slapd, ldaps: bool, users: &[&str]) -> Env {
    env_with_settings(directory, ldaps, users, &[]).await
}

/// The same, with settings seeded before the first command opens the store.
pub(crate) async fn env_with_settings(
    directory: &Slapd,
    ldaps: bool,
    users: &[&str],
    settings: &[(&str, &str)],
) -> Env {
    let mut env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_LIMITS__SIGN_IN_PER_IP_PER_MINUTE", "1000")
        .set("TWOFOLD_LIMITS__SIGN_IN_PER_USERNAME_PER_MINUTE", "1000");
    for (key, value) in directory.twofold_env(ldaps) {
        env = env.set(&key, &value);
    }
    for (key, value) in settings {
        env = env.set(key, value);
    }
    for user in users {
        env.cli_ok(&["user", "add", user], "");
    }
    env
}

fn audit(env: &Env) -> Vec<Value> {
    env.cli_ok(&["audit", "tail", "-n", "5000", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `detail` of each failed sign-in of `subject`, oldest first.
fn refusals(env: &Env, subject: &str) -> Vec<String> {
    audit(env)
        .into_iter()
        .filter(|e| {
            e["action"] == "sign_in" && e["outcome"] == "failure" && e["subject"] == subject
        })
        .map(|e| e["detail"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Signs in at the portal and says whether the password step passed (on to enrolment).
pub(crate) async fn password_accepted(server: &Server, user: &str, password: &str) -> bool {
    let client = server.client();
    let response = sign_in(&client, server, user, password).await;
    let passed = response.status() == 303 && location(&response) == "/enroll";
    if !passed {
        assert_ne!(response.status(), 303, "{}", location(&response));
    }
    passed
}

fn assert_no_secret_in(text: &str) {
    for secret in [
        SERVICE_PASSWORD.to_owned(),
        password_of("alice"),
        password_of("carol"),
    ] {
        assert!(!text.contains(&secret), "a password leaked: {text}");
    }
}

async fn enrol_and_sign_in_again(ldaps: bool) {
    let directory = Slapd::new();
    let env = env_with(&directory, ldaps, &["alice"]).await;
    let server = env.start();
    let client = server.client();
    let first = sign_in(&client, &server, "alice", &password_of("alice")).await;
    assert_eq!(first.status(), 303);
    assert_eq!(location(&first), "/enroll");
    let secret = enrol_authenticator_app(&client, &server, env.dir.path()).await;

    // Next time: the directory password, then the code.
    let again = server.client();
    let page = sign_in_to_verify(&again, &server, "alice", &password_of("alice")).await;
    let code = oathtool_totp(&secret, unix_now() + 30);
    let answered = post_code(&again, &server, &page, &code).await;
    assert_eq!(answered.status(), 303);
    assert_eq!(location(&answered), "/account");
    assert_no_secret_in(&server.stderr());
}

#[tokio::test]
async fn a_directory_user_signs_in_over_starttls_and_enrols_an_authenticator_app() {
    enrol_and_sign_in_again(false).await;
}

#[tokio::test]
async fn a_directory_user_signs_in_over_ldaps_and_enrols_an_authenticator_app() {
    enrol_and_sign_in_again(true).await;
}

#[tokio::test]
async fn the_sdk_checks_the_directory_password_when_an_application_sends_it() {
    let directory = Slapd::new();
    let env = env_with(&directory, true, &["alice"]).await;
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    let server = env.start();
    let client = server.client();
    let start = |password: String| {
        client
            .post(server.url("/sdk/v1/authentications"))
            .basic_auth("app1", Some(&secret))
            .json(&json!({ "username": "alice", "password": password }))
            .send()
    };
    let right = start(password_of("alice")).await.unwrap();
    let status = right.status().as_u16();
    let body: Value = right.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], "alice");

    let wrong = start("not alice's password".into()).await.unwrap();
    let status = wrong.status().as_u16();
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "invalid_credentials");
    // The right password passed (alice has no second factor yet: `not_enrolled`); the
    // wrong one counted.
    assert_eq!(
        refusals(&env, "alice"),
        ["not_enrolled", "invalid_credentials"]
    );
}

#[tokio::test]
async fn wrong_directory_passwords_count_towards_the_lockout() {
    let directory = Slapd::new();
    let env = env_with_settings(
        &directory,
        false,
        &["alice"],
        &[("TWOFOLD_SETTINGS__LOCKOUT_THRESHOLD", "3")],
    )
    .await;
    let server = env.start();
    for guess in ["guess one", "guess two", "guess three"] {
        assert!(!password_accepted(&server, "alice", guess).await);
    }
    // Each wrong password counted; the third reached the threshold and locked alice.
    assert_eq!(
        refusals(&env, "alice"),
        ["invalid_credentials", "invalid_credentials", "user_locked"]
    );
    // Locked now: even the right password is refused.
    assert!(!password_accepted(&server, "alice", &password_of("alice")).await);
    assert_eq!(refusals(&env, "alice").len(), 4);
    assert_eq!(refusals(&env, "alice").last().unwrap(), "user_locked");
}

#[tokio::test]
async fn a_user_outside_the_group_or_disabled_in_the_directory_is_refused() {
    let directory = Slapd::new();
    let env = env_with(&directory, false, &["carol", "dave", "alice"]).await;
    let server = env.start();
    // carol's password is right, but she is not in the group.
    assert!(!password_accepted(&server, "carol", &password_of("carol")).await);
    // dave's password is right, but the password policy locked his account.
    assert!(!password_accepted(&server, "dave", &password_of("dave")).await);
    assert_eq!(refusals(&env, "carol"), ["invalid_credentials"]);
    assert_eq!(refusals(&env, "dave"), ["account_disabled"]);
    // Out of the group, out of Twofold's sign-in: put carol in, and she signs in.
    directory.ldapmodify(&format!(
        "dn: {GROUP_DN}\nchangetype: modify\nadd: member\nmember: {}\n",
        slapd::user_dn("carol")
    ));
    assert!(password_accepted(&server, "carol", &password_of("carol")).await);
}

#[tokio::test]
async fn a_sign_in_name_cannot_rewrite_the_directory_filter() {
    let directory = Slapd::new();
    let env = env_with(&directory, false, &["alice"]).await;
    let server = env.start();
    for attack in [
        "*",
        "al*",
        "*)(uid=*",
        "alice)(|(uid=alice)",
        "alice)(uid=alice",
    ] {
        // Pasted into the filter unescaped, each would have found entries (alice's among
        // them) as the service account…
        let unescaped =
            format!("(&(&(objectClass=inetOrgPerson)(uid={attack}))(memberOf={GROUP_DN}))");
        let found = directory.search_dns(&unescaped);
        assert!(
            found.contains(&slapd::user_dn("alice")),
            "{attack}: the unescaped filter finds alice: {found:?}"
        );
        // …but escaped, it names no account, and alice's password signs nobody in.
        assert!(
            !password_accepted(&server, attack, &password_of("alice")).await,
            "{attack}"
        );
    }
    assert!(
        audit(&env)
            .iter()
            .all(|e| !(e["action"] == "sign_in" && e["outcome"] == "success")),
        "nobody signed in"
    );
}

#[tokio::test]
async fn the_three_forms_of_a_windows_sign_in_name_sign_in_the_same_user() {
    let directory = Slapd::new();
    let env = env_with(&directory, true, &["alice"]).await;
    let server = env.start();
    for login in ["alice", "CORP\\alice", "alice@corp.example", "Alice"] {
        assert!(
            password_accepted(&server, login, &password_of("alice")).await,
            "{login}"
        );
    }
}

#[tokio::test]
async fn a_local_password_does_not_sign_in_when_the_directory_decides() {
    let directory = Slapd::new();
    let env = env_with(&directory, false, &[]).await;
    env.add_user("alice", "a local password kept in Twofold");
    let server = env.start();
    assert!(!password_accepted(&server, "alice", "a local password kept in Twofold").await);
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
}

#[tokio::test]
async fn plain_ldap_without_starttls_works_but_warns_at_start() {
    let directory = Slapd::new();
    let env = env_with(&directory, false, &["alice"])
        .await
        .set("TWOFOLD_LDAP__STARTTLS", "false");
    let server = env.start();
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
    let log = server.stderr();
    assert!(
        log.contains("ldap:// without StartTLS") && log.contains("unencrypted"),
        "{log}"
    );
    // With StartTLS, no such warning.
    let env = env_with(&directory, false, &["alice"]).await;
    let server = env.start();
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
    assert!(!server.stderr().contains("without StartTLS"));
}

#[tokio::test]
async fn a_directory_certificate_from_another_ca_signs_nobody_in() {
    let directory = Slapd::new();
    let other = tempfile::tempdir().unwrap();
    make_test_ca(other.path());
    for ldaps in [false, true] {
        let env = env_with(&directory, ldaps, &["alice"]).await.set(
            "TWOFOLD_LDAP__CA_FILE",
            &other.path().join("ca.pem").display().to_string(),
        );
        let server = env.start();
        assert!(!password_accepted(&server, "alice", &password_of("alice")).await);
        assert_eq!(refusals(&env, "alice"), ["directory_unavailable"]);
        let log = server.stderr();
        assert!(log.contains("invalid peer certificate"), "{log}");
        assert_no_secret_in(&log);
    }
}

#[tokio::test]
async fn no_password_reaches_the_log_or_the_errors() {
    let directory = Slapd::new();
    // A wrong service-account password: the directory refuses the search connection.
    let env = env_with(&directory, false, &["alice"])
        .await
        .set("TWOFOLD_LOG__LEVEL", "debug")
        .set("TWOFOLD_LDAP__BIND_PASSWORD", "wrong service secret 55");
    let server = env.start();
    let client = server.client();
    let refused = sign_in(&client, &server, "alice", &password_of("alice")).await;
    assert_ne!(refused.status(), 303);
    let page = refused.text().await.unwrap();
    let log = server.stderr();
    assert!(log.contains("refused the service account"), "{log}");
    for text in [
        &page,
        &log,
        &env.cli_ok(&["audit", "tail", "-n", "100"], ""),
    ] {
        assert_no_secret_in(text);
        assert!(!text.contains("wrong service secret 55"), "{text}");
    }
    // The right service password, at debug level: sign-ins leave no password behind either.
    let env = env_with(&directory, false, &["alice"])
        .await
        .set("TWOFOLD_LOG__LEVEL", "debug");
    let server = env.start();
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
    assert!(!password_accepted(&server, "alice", "carol directory Pw 4821x").await);
    assert_no_secret_in(&server.stderr());
}

#[tokio::test]
async fn sign_in_comes_back_by_itself_when_the_directory_returns() {
    let mut directory = Slapd::new();
    let env = env_with(&directory, false, &["alice"]).await;
    let server = env.start();
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
    directory.stop();
    assert!(!password_accepted(&server, "alice", &password_of("alice")).await);
    directory.start();
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
    assert_eq!(refusals(&env, "alice"), ["directory_unavailable"]);
}

/// `[ldap]` for the directory-level tests.
fn config(directory: &Slapd) -> LdapConfig {
    LdapConfig {
        url: directory.ldaps_url(),
        starttls: false,
        ca_file: Some(directory.ca_file()),
        bind_dn: slapd::SERVICE_DN.into(),
        bind_password: Some(twofold_server::config::Secret::new(SERVICE_PASSWORD)),
        bind_password_file: None,
        base_dn: BASE_DN.into(),
        user_filter: twofold_server::directory::ldap::DEFAULT_USER_FILTER.into(),
        group_dn: Some(GROUP_DN.into()),
        timeout_seconds: 2,
        pool_size: 2,
        attributes: LdapAttributes::default(),
    }
}

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

#[tokio::test]
async fn the_directory_says_accepted_with_the_attributes_or_why_not() {
    let directory = Slapd::new();
    let ldap = LdapDirectory::from_config(&config(&directory)).unwrap();
    let DirectoryOutcome::Accepted(alice) = ldap
        .check_password(&name("alice"), &password_of("alice"))
        .await
        .unwrap()
    else {
        panic!("alice is accepted");
    };
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@corp.example"));
    assert_eq!(alice.phone.as_deref(), Some("+33 1 23 45 67 89"));
    assert_eq!(alice.mobile_phone.as_deref(), Some("+33 6 12 34 56 78"));
    assert_eq!(alice.language.as_deref(), Some("fr"));
    assert_eq!(alice.unique_id.as_deref().map(str::len), Some(36));
    assert_eq!(alice.groups, [GROUP_DN]);
    for (user, password, outcome) in [
        ("alice", "wrong", DirectoryOutcome::Rejected),
        ("alice", "", DirectoryOutcome::Rejected),
        (
            "carol",
            password_of("carol").as_str(),
            DirectoryOutcome::Rejected,
        ),
        ("nobody", "whatever", DirectoryOutcome::Rejected),
        (
            "dave",
            password_of("dave").as_str(),
            DirectoryOutcome::AccountDisabled,
        ),
    ] {
        assert_eq!(
            ldap.check_password(&name(user), password).await.unwrap(),
            outcome,
            "{user}"
        );
    }
    assert_eq!(ldap.account_name(&name("CORP\\alice")), name("alice"));
    ldap.health().await.unwrap();
}

/// The binds slapd logged after the first `skip` lines of its log, by DN.
fn binds_after(directory: &Slapd, skip: usize) -> Vec<String> {
    directory
        .log()
        .lines()
        .skip(skip)
        .filter(|l| l.contains(" method="))
        .filter_map(|l| l.split_once(" BIND dn=\"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once('"').map(|(dn, _)| dn.to_owned()))
        .collect()
}

#[tokio::test]
async fn an_unknown_name_costs_the_directory_a_bind_like_a_known_one() {
    let directory = Slapd::new();
    let ldap = LdapDirectory::from_config(&config(&directory)).unwrap();
    // The first sign-in opens the service account's pooled connection.
    ldap.check_password(&name("alice"), "wrong").await.unwrap();
    let lines = || directory.log().lines().count();

    let before = lines();
    ldap.check_password(&name("alice"), "wrong").await.unwrap();
    assert_eq!(binds_after(&directory, before), [slapd::user_dn("alice")]);

    // A name the directory does not hold, and one outside the group: one bind too, as a
    // DN under the base that does not exist, never as the service account.
    for outsider in ["zed-nobody", "carol"] {
        let before = lines();
        assert_eq!(
            ldap.check_password(&name(outsider), &password_of("carol"))
                .await
                .unwrap(),
            DirectoryOutcome::Rejected
        );
        let binds = binds_after(&directory, before);
        assert_eq!(binds.len(), 1, "{outsider}: {binds:?}");
        assert!(
            binds[0].starts_with("cn=") && binds[0].ends_with(BASE_DN),
            "{binds:?}"
        );
        assert_ne!(binds[0], slapd::SERVICE_DN);
    }

    // An empty password binds nobody (it would be an anonymous bind, which succeeds).
    let before = lines();
    assert_eq!(
        ldap.check_password(&name("alice"), "").await.unwrap(),
        DirectoryOutcome::Rejected
    );
    assert!(binds_after(&directory, before).is_empty());
}

#[tokio::test]
async fn the_directory_lists_a_group_or_everyone_page_by_page() {
    let directory = Slapd::new();
    directory.add_users("member", 1100);
    let ldap = LdapDirectory::from_config(&config(&directory)).unwrap();
    let group = ldap
        .entries(&EntryScope::Group(GROUP_DN.into()))
        .await
        .unwrap();
    // alice, bob, dave and the 1100 added: more than two pages of 500.
    assert_eq!(group.len(), 1103);
    assert!(group.iter().all(|a| a.groups == [GROUP_DN]));
    assert!(group.iter().any(
        |a| a.username == "member1099" && a.email.as_deref() == Some("member1099@corp.example")
    ));
    assert!(!group.iter().any(|a| a.username == "carol"));
    let everyone = ldap.entries(&EntryScope::Base(None)).await.unwrap();
    assert_eq!(everyone.len(), 1104, "carol too, not the service account");
    let people = ldap
        .entries(&EntryScope::Base(Some(slapd::PEOPLE_DN.into())))
        .await
        .unwrap();
    assert_eq!(people.len(), 1104);
    // An attribute changed in the directory is read the next time.
    directory.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: mail\nmail: alice.new@corp.example\n",
        slapd::user_dn("alice")
    ));
    let again = ldap.entries(&EntryScope::Base(None)).await.unwrap();
    let alice = again.iter().find(|a| a.username == "alice").unwrap();
    assert_eq!(alice.email.as_deref(), Some("alice.new@corp.example"));
}

#[tokio::test]
async fn a_directory_that_hangs_costs_a_sign_in_at_most_the_timeout() {
    // A server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let directory = Slapd::new();
    let mut config = config(&directory);
    config.url = format!("ldaps://127.0.0.1:{port}");
    config.timeout_seconds = 1;
    let ldap = LdapDirectory::from_config(&config).unwrap();
    let t = Instant::now();
    let e = ldap
        .check_password(&name("alice"), &password_of("alice"))
        .await
        .unwrap_err();
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "{:?}",
        t.elapsed()
    );
    assert!(e.to_string().contains("did not answer"), "{e}");
    assert!(ldap.health().await.is_err());
}

#[tokio::test]
async fn ldap_sign_in_without_a_usable_ldap_section_does_not_start() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PRIMARY_AUTHENTICATION", "ldap");
    let message = env.start_fails();
    assert!(message.contains("no [ldap] section"), "{message}");

    let directory = Slapd::new();
    let mut env = Env::new(Backend::Sqlite).await;
    for (key, value) in directory.twofold_env(false) {
        env = env.set(&key, &value);
    }
    let message = env.set("TWOFOLD_LDAP__URL", "http://x").start_fails();
    assert!(message.contains("ldap.url = \"http://x\""), "{message}");
    assert!(message.contains("Fix:"), "{message}");
}

#[tokio::test]
async fn a_filter_that_finds_two_accounts_for_one_name_signs_nobody_in() {
    let directory = Slapd::new();
    let mut config = config(&directory);
    // A misconfigured filter: every name also finds bob.
    config.user_filter = "(&(objectClass=inetOrgPerson)(|(uid={username})(uid=bob)))".into();
    let ldap = LdapDirectory::from_config(&config).unwrap();
    assert_eq!(
        ldap.check_password(&name("alice"), &password_of("alice"))
            .await
            .unwrap(),
        DirectoryOutcome::Rejected
    );
    // Neither entry was bound with the password: only a DN that does not exist.
    let binds = binds_after(&directory, 0);
    assert!(
        !binds.contains(&slapd::user_dn("alice")) && !binds.contains(&slapd::user_dn("bob")),
        "{binds:?}"
    );
}
