//! A real OpenLDAP server behind a running Twofold: what users and operators see when the
//! directory dies and comes back, and users imported and synced from it, with their
//! invitations delivered by a real SMTP server.

use crate::email::{PASSWORD as SMTP_PASSWORD, smtp_env};
use crate::ldap::{env_with_settings, password_accepted};
use crate::slapd::{GROUP_DN, Slapd, password_of, user_dn};
use crate::smtp;
use crate::support::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn readyz(server: &Server) -> (u16, Value) {
    let response = server
        .client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Polls `/readyz` until `wanted` holds or `within` has passed; the last answer.
async fn readyz_until(server: &Server, within: Duration, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (_, body) = readyz(server).await;
        if wanted(&body) || Instant::now() > deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_dead_directory_gives_a_clear_message_a_503_and_a_degraded_readyz_then_recovers() {
    let mut directory = Slapd::new();
    let env = env_with_settings(&directory, false, &["alice"], &[]).await;
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    let server = env.start();
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
    let (status, body) = readyz(&server).await;
    assert_eq!(
        (status, body.clone()),
        (
            200,
            json!({"status": "ready", "store": "ok", "directory": "ok"})
        )
    );

    directory.stop();
    // The portal: not "wrong password", but what is wrong, with a 503.
    let client = server.client();
    let page = sign_in(&client, &server, "alice", &password_of("alice")).await;
    assert_eq!(page.status(), 503);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("Sign-in is temporarily unavailable"),
        "{text}"
    );
    assert!(!text.contains("The username or password is incorrect"));
    // The SDK: 503 with its code.
    let started = client
        .post(server.url("/sdk/v1/authentications"))
        .basic_auth("app1", Some(&secret))
        .json(&json!({ "username": "alice", "password": password_of("alice") }))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 503);
    let problem: Value = started.json().await.unwrap();
    assert_eq!(problem["code"], "directory_unavailable", "{problem}");
    // /readyz: the node still serves (the store answers), the directory does not.
    let (status, body) = readyz(&server).await;
    assert_eq!(
        (status, body),
        (
            200,
            json!({"status": "degraded", "store": "ok", "directory": "unavailable"})
        )
    );
    // Whatever the outage did, nobody was locked out by it.
    let shown = env.cli_ok(&["user", "show", "alice"], "");
    assert!(shown.contains("locked:    no"), "{shown}");

    // The directory comes back: Twofold finds it by itself, without a restart.
    directory.start();
    let body = readyz_until(&server, Duration::from_secs(40), |b| b["directory"] == "ok").await;
    assert_eq!(
        body,
        json!({"status": "ready", "store": "ok", "directory": "ok"})
    );
    assert!(password_accepted(&server, "alice", &password_of("alice")).await);
}

/// A user in the directory, member of the MFA group, with a language.
fn add_person(directory: &Slapd, name: &str, mail: &str, language: &str) {
    directory.ldapadd(&format!(
        "dn: {}\nobjectClass: inetOrgPerson\nuid: {name}\ncn: {name}\nsn: {name}\nmail: {mail}\npreferredLanguage: {language}\nuserPassword: {}\n\n",
        user_dn(name),
        password_of(name)
    ));
    directory.ldapmodify(&format!(
        "dn: {GROUP_DN}\nchangetype: modify\nadd: member\nmember: {}\n\n",
        user_dn(name)
    ));
}

fn sync_env(env: Env) -> Env {
    env.set("TWOFOLD_SETTINGS__PORTAL_URL", "https://mfa.corp.example/")
        .set("TWOFOLD_SETTINGS__SYNC_REMOVAL_THRESHOLD", "5")
}

fn write_sync_items(env: Env) -> Env {
    // [[sync]] items are an array of tables: they go in the configuration file.
    let path = env.dir.path().join("sync.toml");
    std::fs::write(
        &path,
        format!("[[sync]]\ngroup = \"{GROUP_DN}\"\nmethod = \"oath\"\nlanguage = \"en\"\n"),
    )
    .unwrap();
    let path = path.display().to_string();
    env.set("TWOFOLD_CONFIG", &path)
}

#[tokio::test]
async fn an_ldap_import_shows_its_summary_and_its_invitations_arrive_in_each_users_language() {
    let directory = Slapd::new();
    add_person(&directory, "elise", "elise@corp.example", "fr");
    let env = env_with_settings(&directory, false, &[], &[]).await;
    let mail = smtp::start(
        &env.dir.path().join("smtp"),
        crate::email::USERNAME,
        SMTP_PASSWORD,
    );
    let env = smtp_env(sync_env(env), &mail, SMTP_PASSWORD, true);
    let env = write_sync_items(env);

    let dry = env.cli_ok(&["users", "import", "--ldap", "--dry-run"], "");
    assert!(dry.contains("dry run (nothing written): added 4"), "{dry}");
    assert!(mail.received().is_empty(), "a dry run invites nobody");

    let out = env.cli_ok(&["users", "import", "--ldap"], "");
    // alice, bob, dave (locked in the directory, still a member) and elise are in the
    // group; carol is not.
    assert!(
        out.contains("added 4, updated 0, disabled 0, deleted 0, unchanged 0, errors 0"),
        "{out}"
    );
    for user in ["alice", "bob", "dave", "elise"] {
        env.cli_ok(&["user", "show", user], "");
    }
    assert!(!env.cli(&["user", "show", "carol"], "").status.success());

    let received = mail.received();
    let to = |address: &str| {
        received
            .iter()
            .find(|m| m.rcpt_tos == [address])
            .unwrap_or_else(|| panic!("no invitation to {address}: {received:?}"))
    };
    let elise = to("elise@corp.example");
    assert!(
        elise.body.contains("https://mfa.corp.example/"),
        "{}",
        elise.body
    );
    assert!(elise.body.contains("elise"), "{}", elise.body);
    // bob's entry holds no language: the [[sync]] item's default, English.
    let bob = to("bob@corp.example");
    assert!(bob.body.contains("https://mfa.corp.example/"));
    assert_ne!(
        elise.subject, bob.subject,
        "elise reads French, bob English"
    );
    assert_eq!(
        to("alice@corp.example").subject,
        elise.subject,
        "alice's entry says French too"
    );
    assert!(elise.tls, "sent over STARTTLS");

    // A rerun adds nobody and invites nobody twice.
    let again = env.cli_ok(&["users", "import", "--ldap"], "");
    assert!(again.contains("added 0"), "{again}");
    assert_eq!(mail.received().len(), received.len());
}

#[tokio::test]
async fn a_sync_picks_up_changes_and_holds_back_a_mass_removal_until_approved() {
    let directory = Slapd::new();
    directory.add_users("staff", 6);
    let env = env_with_settings(&directory, false, &[], &[]).await;
    let env = write_sync_items(sync_env(env));
    let first = env.cli_ok(&["users", "sync"], "");
    assert!(
        first.contains("added 9"),
        "alice, bob, dave and six staff: {first}"
    );

    // An attribute changed in the directory is picked up.
    directory.ldapmodify(&format!(
        "dn: {}\nchangetype: modify\nreplace: mail\nmail: alice.new@corp.example\n\n",
        user_dn("alice")
    ));
    let second = env.cli_ok(&["users", "sync"], "");
    assert!(second.contains("updated 1"), "{second}");
    let alice = env.cli_ok(&["user", "show", "alice"], "");
    assert!(alice.contains("alice.new@corp.example"), "{alice}");

    // Six staff leave the group at once: above the threshold of five, nobody is disabled
    // until an operator approves.
    let members: String = (0..6)
        .map(|i| format!("member: {}\n", user_dn(&format!("staff{i}"))))
        .collect();
    directory.ldapmodify(&format!(
        "dn: {GROUP_DN}\nchangetype: modify\ndelete: member\n{members}\n"
    ));
    let held = env.cli_ok(&["users", "sync"], "");
    assert!(
        held.contains("6 users would be disabled; rerun with --approve"),
        "{held}"
    );
    let staff = env.cli_ok(&["user", "show", "staff0"], "");
    assert!(staff.contains("status:    enabled"), "{staff}");

    let approved = env.cli_ok(&["users", "sync", "--approve"], "");
    assert!(approved.contains("disabled 6"), "{approved}");
    let staff = env.cli_ok(&["user", "show", "staff0"], "");
    assert!(staff.contains("status:    disabled"), "{staff}");
}
