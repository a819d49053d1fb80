//! `twofold users import --csv`: users added whole, invited once to the portal in their
//! language (here through the console channel, so the invitations land in `/dev/inbox`),
//! a rerun that adds and invites nobody again, a dry run that writes nothing, and a
//! malformed file whose bad rows are reported by line while the others import.

use crate::support::*;
use std::time::{Duration, Instant};

const PORTAL: &str = "https://mfa.example.test/portal";
const HEADER: &str = "username,email,phone,mobile_phone,language\n";

fn write(env: &Env, name: &str, text: &str) -> String {
    let path = env.dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn inbox(server: &Server) -> String {
    let html = server
        .client()
        .get(server.url("/dev/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    html_unescape(&html)
}

/// The inbox once it holds `count` invitations (the server sends them within seconds).
async fn invitations(server: &Server, count: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let html = inbox(server).await;
        let found = html.matches(PORTAL).count();
        if found >= count || Instant::now() > deadline {
            assert_eq!(found, count, "invitations in /dev/inbox:\n{html}");
            return html;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn imported_users_are_invited_once_in_their_language_and_a_rerun_adds_nobody() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PORTAL_URL", PORTAL);
    let server = env.start();
    let file = write(
        &env,
        "users.csv",
        &format!(
            "{HEADER}alice,alice@example.com,+33 1 23 45 67 89,,en\n\
             marie,\"marie@example.fr\",,+33612345678,fr\n\
             bob,,,,\n"
        ),
    );
    let out = env.cli_ok(&["users", "import", "--csv", &file], "");
    assert!(
        out.contains("added 3, updated 0, disabled 0, deleted 0, unchanged 0, errors 0"),
        "{out}"
    );
    assert!(out.contains("invitations queued: 2"), "{out}");

    let shown = env.cli_ok(&["user", "show", "marie", "--json"], "");
    assert!(shown.contains("\"email\": \"marie@example.fr\""), "{shown}");
    assert!(shown.contains("\"language\": \"fr\""), "{shown}");

    let html = invitations(&server, 2).await;
    assert!(html.contains("alice@example.com"), "{html}");
    assert!(
        html.contains("Your account on the multi-factor authentication portal"),
        "{html}"
    );
    assert!(html.contains("usual username (alice)"), "{html}");
    assert!(html.contains("marie@example.fr"), "{html}");
    assert!(
        html.contains("Votre compte sur le portail d’authentification multifacteur"),
        "{html}"
    );
    assert!(
        html.contains("nom d’utilisateur habituel (marie)"),
        "{html}"
    );

    let rerun = env.cli_ok(&["users", "import", "--csv", &file], "");
    assert!(
        rerun.contains("added 0, updated 0, disabled 0, deleted 0, unchanged 3, errors 0"),
        "{rerun}"
    );
    assert!(!rerun.contains("invitations queued"), "{rerun}");
    let listed = env.cli_ok(&["user", "list"], "");
    assert_eq!(
        listed.lines().filter(|l| l.contains("alice")).count(),
        1,
        "{listed}"
    );
    // One round of the server's invitation job later, still two invitations.
    tokio::time::sleep(Duration::from_secs(11)).await;
    invitations(&server, 2).await;
    let audit = env.cli_ok(&["audit", "tail", "-n", "50"], "");
    assert_eq!(audit.matches("invitation_sent").count(), 2, "{audit}");
}

#[tokio::test]
async fn a_dry_run_import_says_what_it_would_do_and_writes_nothing() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PORTAL_URL", PORTAL);
    let file = write(
        &env,
        "users.csv",
        &format!("{HEADER}zed,zed@example.com,,,en\n"),
    );
    let out = env.cli_ok(&["users", "import", "--csv", &file, "--dry-run"], "");
    assert!(
        out.contains("dry run (nothing written): added 1, updated 0"),
        "{out}"
    );
    let show = env.cli(&["user", "show", "zed"], "");
    assert!(!show.status.success(), "zed must not exist after a dry run");
}

#[tokio::test]
async fn a_malformed_file_reports_each_bad_line_and_imports_the_other_rows() {
    let env = Env::new(Backend::Sqlite).await;
    let file = write(
        &env,
        "users.csv",
        &format!(
            "{HEADER}first,first@example.com,,,en\n\
             short,short@example.com\n\
             bademail,not-an-address,,,en\n\
             first,again@example.com,,,en\n\
             badlang,badlang@example.com,,,klingon\n\
             second,second@example.com,,,fr\n\
             cut,cut@example.com,+33"
        ),
    );
    let out = env.cli(&["users", "import", "--csv", &file], "");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "errors make the exit status fail: {stdout}"
    );
    assert!(
        stdout.contains("error: line 3: 2 columns, where the header has 5"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: line 4: bademail: email"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: line 5: first is already on line 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: line 6: badlang: language \"klingon\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("error: line 8: the file ends in the middle of this row"),
        "{stdout}"
    );
    assert!(
        stdout.contains("added 2, updated 0, disabled 0, deleted 0, unchanged 0, errors 5"),
        "{stdout}"
    );
    assert!(stderr.contains("5 users were not imported"), "{stderr}");
    for kept in ["first", "second"] {
        env.cli_ok(&["user", "show", kept], "");
    }
    let first = env.cli_ok(&["user", "show", "first", "--json"], "");
    assert!(
        first.contains("first@example.com"),
        "the first of two rows wins: {first}"
    );
    for lost in ["short", "bademail", "badlang", "cut"] {
        assert!(
            !env.cli(&["user", "show", lost], "").status.success(),
            "{lost}"
        );
    }
    // Without portal_url the import says why nobody is invited.
    assert!(
        stdout.contains("were not invited: settings.portal_url is empty"),
        "{stdout}"
    );
}

#[tokio::test]
async fn sync_without_a_directory_says_what_is_missing() {
    let env = Env::new(Backend::Sqlite).await;
    for args in [&["users", "sync"][..], &["users", "import", "--ldap"][..]] {
        let out = env.cli(args, "");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("[ldap] is not configured"), "{stderr}");
    }
}

#[tokio::test]
async fn an_import_on_a_pipe_logs_its_progress_every_500_users_and_json_logs_get_a_json_summary() {
    let mut env = Env::new(Backend::Sqlite).await;
    let mut text = HEADER.to_owned();
    for i in 0..1000 {
        text.push_str(&format!("user{i:04},,,,\n"));
    }
    let file = write(&env, "many.csv", &text);
    let out = env.cli(&["users", "import", "--csv", &file], "");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("importing:"))
        .collect();
    assert_eq!(
        progress,
        vec![
            "importing: 500 of 1000 users",
            "importing: 1000 of 1000 users"
        ],
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("added 1000,"));

    env.vars.insert("TWOFOLD_LOG__FORMAT".into(), "json".into());
    let json = env.cli_ok(&["users", "import", "--csv", &file], "");
    let summary: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(summary["unchanged"], 1000, "{summary}");
    assert_eq!(summary["added"], 0, "{summary}");
}

#[tokio::test]
async fn an_imported_phone_keeps_its_extension_and_is_stored_in_e164() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__DEFAULT_REGION", "FR");
    let file = write(
        &env,
        "users.csv",
        &format!(
            "{HEADER}alice,,+1 201 555 0123 x890,,en\n\
             marie,,01 23 45 67 89,06 12 34 56 78,fr\n\
             bob,,call me,,\n"
        ),
    );
    let out = env.cli(&["users", "import", "--csv", &file], "");
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("added 2"), "{said}");
    assert!(
        said.contains("errors 1"),
        "the line with no number is reported: {said}"
    );
    assert!(said.contains("bob") && said.contains("phone"), "{said}");

    let alice: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["user", "show", "alice", "--json"], "")).unwrap();
    assert_eq!(alice["phone"], "+12015550123");
    assert_eq!(alice["extension"], "890");
    // National numbers are read in the default region.
    let marie: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["user", "show", "marie", "--json"], "")).unwrap();
    assert_eq!(marie["phone"], "+33123456789");
    assert_eq!(marie["extension"], serde_json::Value::Null);
}
