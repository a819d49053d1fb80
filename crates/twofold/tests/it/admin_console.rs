//! The admin console's door: who becomes an administrator, how they sign in (a second factor
//! always), and what the console refuses.

use crate::console::*;
use crate::support::*;
use reqwest::Method;

#[tokio::test]
async fn an_owner_made_with_the_cli_signs_in_with_a_second_factor_and_sees_every_section() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let home = console.get("/admin").await;
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    for section in [
        "/admin/users",
        "/admin/settings",
        "/admin/questions",
        "/admin/tokens",
        "/admin/audit",
        "/admin/reports",
        "/admin/admins",
    ] {
        assert!(html.contains(&format!("href=\"{section}\"")), "{section}");
    }
    assert!(html.contains("id=\"signed-in-admin\">owner<"), "{html}");
    let signed_in: Vec<_> = audit_of(&env, "sign_in")
        .into_iter()
        .filter(|e| e["subject"] == "owner" && e["outcome"] == "success")
        .collect();
    assert!(!signed_in.is_empty(), "the console's sign-in is audited");
}

#[tokio::test]
async fn the_console_asks_an_administrator_for_the_second_factor_even_from_a_trusted_address() {
    // From 127.0.0.1, a trusted range: users skip the second factor, administrators never.
    let env = Env::new(Backend::Sqlite).await.password_only();
    let server = env.start();
    let sdk = Sdk::add(&env);
    sdk.user_with_app(&server, "owner").await;
    env.cli_ok(&["admin", "add", "owner", "--role", "owner"], "");
    let portal = sign_in(&server.client(), &server, "owner", PASSWORD).await;
    assert_eq!(location(&portal), "/account", "the portal skips the factor");
    let console = Console {
        client: server.client(),
        base: server.url(""),
    };
    let response = console.password("owner", PASSWORD).await;
    assert_eq!(location(&response), "/verify", "the console asks for it");
    // Nothing of the console opens before the factor is proved.
    let home = console.get("/admin/admins").await;
    assert_eq!(home.status(), 303);
    assert!(location(&home).starts_with("/admin/sign-in"));
}

#[tokio::test]
async fn a_one_time_bypass_does_not_open_the_console() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_ONE_TIME_BYPASS", "true");
    let server = env.start();
    let sdk = Sdk::add(&env);
    sdk.user_with_app(&server, "owner").await;
    env.cli_ok(&["admin", "add", "owner", "--role", "owner"], "");
    let (status, body) = sdk
        .send(
            &server,
            Method::POST,
            "/sdk/v1/users/owner/bypass",
            Some(serde_json::json!({ "seconds": 300 })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let console = Console {
        client: server.client(),
        base: server.url(""),
    };
    let response = console.password("owner", PASSWORD).await;
    assert_eq!(
        location(&response),
        "/verify",
        "the bypass is not used here"
    );
}

#[tokio::test]
async fn a_user_who_is_not_an_administrator_gets_nothing_from_the_console() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let sdk = Sdk::add(&env);
    let seed = sdk.user_with_app(&server, "bob").await;
    let console = Console {
        client: server.client(),
        base: server.url(""),
    };
    let response = console.password("bob", PASSWORD).await;
    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(html.contains("bob is not an administrator"), "{html}");

    // Signed in to the portal with the second factor, bob still cannot open a page.
    let page = crate::factors::sign_in_to_verify(&console.client, &server, "bob", PASSWORD).await;
    let done = crate::factors::post_code(
        &console.client,
        &server,
        &page,
        &oathtool_totp(&seed, mid_step_now() + 30),
    )
    .await;
    assert_eq!(location(&done), "/account");
    for path in ["/admin", "/admin/admins"] {
        let r = console.get(path).await;
        assert_eq!(r.status(), 303, "{path}");
        assert!(location(&r).starts_with("/admin/sign-in"), "{path}");
    }
}

#[tokio::test]
async fn a_console_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (sdk, console) = owner_console(&env, &server).await;
    sdk.user_with_app(&server, "carol").await;
    let forged = console
        .client
        .post(console.url("/admin/admins"))
        .form(&[("username", "carol"), ("role", "owner"), ("scope", "all")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let listed = env.cli_ok(&["admin", "list"], "");
    assert!(!listed.contains("carol"), "{listed}");
    // The same form with the token works.
    let real = console
        .post(
            "/admin/admins",
            &[("username", "carol"), ("role", "auditor"), ("scope", "all")],
        )
        .await;
    assert_eq!(real.status(), 303);
    let listed = env.cli_ok(&["admin", "list"], "");
    assert!(
        listed.contains("carol") && listed.contains("auditor"),
        "{listed}"
    );
}

#[tokio::test]
async fn an_owner_makes_a_help_desk_admin_for_a_group_and_every_change_names_them() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (sdk, console) = owner_console(&env, &server).await;
    let seed = sdk.user_with_app(&server, "hank").await;
    let made = console
        .post(
            "/admin/admins",
            &[
                ("username", "hank"),
                ("role", "help-desk"),
                ("scope", "group:Sales"),
                ("bypass_max_seconds", "600"),
            ],
        )
        .await;
    assert_eq!(made.status(), 303);
    let page = console.get_text("/admin/admins").await;
    assert!(
        page.contains("help-desk for group:Sales, bypass up to 600 s"),
        "{page}"
    );
    let changed = audit_of(&env, "admin_changed");
    let last = changed.last().unwrap();
    assert_eq!(last["actor"], "admin:owner");
    assert_eq!(last["subject"], "hank");

    // Hank signs in; the administrators' page is not his.
    let hank = Console::sign_in(&server, "hank", &seed).await;
    let home = hank.get_text("/admin").await;
    assert!(home.contains("href=\"/admin/users\""));
    assert!(!home.contains("href=\"/admin/admins\""));
    assert_eq!(hank.get("/admin/admins").await.status(), 403);
    let refused = hank
        .post("/admin/admins", &[("username", "hank"), ("role", "owner")])
        .await;
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold_and_the_last_owner_stays() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (sdk, console) = owner_console(&env, &server).await;
    let seed = sdk.user_with_app(&server, "mia").await;
    sdk.user_with_app(&server, "ned").await;
    // Mia may manage administrators, and read users, nothing else.
    env.cli_ok(
        &[
            "admin",
            "add",
            "mia",
            "--permission",
            "admins.manage",
            "--permission",
            "users.read",
        ],
        "",
    );
    let mia = Console::sign_in(&server, "mia", &seed).await;
    let refused = mia
        .post(
            "/admin/admins",
            &[("username", "ned"), ("permission", "users.delete")],
        )
        .await;
    assert_eq!(refused.status(), 403);
    let html = refused.text().await.unwrap();
    assert!(html.contains("users.delete for all"), "{html}");
    // Nor may she take the owner's rights away.
    let refused = mia
        .post("/admin/admins/remove", &[("username", "owner")])
        .await;
    assert_eq!(refused.status(), 403);
    // What she holds, she may grant.
    let granted = mia
        .post(
            "/admin/admins",
            &[("username", "ned"), ("permission", "users.read")],
        )
        .await;
    assert_eq!(granted.status(), 303);

    // The owner cannot remove themselves while they are the only one.
    let last = console
        .post("/admin/admins/remove", &[("username", "owner")])
        .await;
    assert_eq!(last.status(), 409);
    assert!(last.text().await.unwrap().contains("last owner"));
    let cli = env.cli(&["admin", "remove", "owner"], "");
    assert!(!cli.status.success());
    assert!(String::from_utf8_lossy(&cli.stderr).contains("no owner would be left"));
    assert!(env.cli_ok(&["admin", "list"], "").contains("owner"));
}

#[tokio::test]
async fn the_cli_adds_lists_and_removes_administrators_and_refuses_nonsense() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("alice", PASSWORD);
    env.add_user("bob", PASSWORD);
    // The first administrator must be an owner.
    let out = env.cli(&["admin", "add", "bob", "--role", "help-desk"], "");
    assert!(!out.status.success());
    env.cli_ok(&["admin", "add", "alice", "--role", "owner"], "");
    let out = env.cli(
        &[
            "admin",
            "add",
            "bob",
            "--role",
            "auditor",
            "--scope",
            "group:Sales",
        ],
        "",
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit.read") && err.contains("cannot be scoped"),
        "{err}"
    );
    let out = env.cli(
        &["admin", "add", "bob", "--permission", "users.everything"],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a permission"));
    env.cli_ok(
        &[
            "admin",
            "add",
            "bob",
            "--role",
            "help-desk",
            "--scope",
            "group:Sales",
        ],
        "",
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["admin", "list", "--json"], "")).unwrap();
    let bob = json
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["username"] == "bob")
        .unwrap();
    assert_eq!(bob["role"], "help-desk");
    assert!(
        bob["grants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["scope"] == "group:Sales")
    );
    env.cli_ok(&["admin", "remove", "bob"], "");
    assert!(!env.cli_ok(&["admin", "list"], "").contains("bob"));
    let removed = audit_of(&env, "admin_removed");
    assert_eq!(removed.last().unwrap()["actor"], "cli:tester");
    env.cli_ok(&["group", "add", "Sales", "alice", "bob"], "");
    let groups = env.cli_ok(&["group", "list"], "");
    assert!(
        groups.contains("Sales") && groups.contains("2 member"),
        "{groups}"
    );
}

#[tokio::test]
async fn the_bootstrap_link_makes_the_first_owner_once() {
    let env = Env::new(Backend::Sqlite).await;
    env.add_user("alice", PASSWORD);
    let server = env.start();
    let line = server
        .banner
        .lines()
        .find(|l| l.contains("/admin/bootstrap?token="))
        .unwrap_or_else(|| panic!("no bootstrap link in:\n{}", server.banner));
    let link = line.trim().to_owned();
    let path = &link[link.find("/admin/bootstrap").unwrap()..];
    let sdk = Sdk::add(&env);
    let seed = sdk.give_app(&server, "alice").await;

    // Not signed in: the page asks to sign in first and makes nobody an owner.
    let anonymous = server.client();
    let page = anonymous.get(server.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("id=\"bootstrap-sign-in\"")
    );

    let client = server.client();
    let verify = crate::factors::sign_in_to_verify(&client, &server, "alice", PASSWORD).await;
    crate::factors::post_code(
        &client,
        &server,
        &verify,
        &oathtool_totp(&seed, mid_step_now() + 30),
    )
    .await;
    let page = client
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"become-owner\""), "{page}");
    let token = input_value(&page, "csrf_token").unwrap();
    let link_token = input_value(&page, "token").unwrap();
    let done = client
        .post(server.url("/admin/bootstrap"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("token", link_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let listed = env.cli_ok(&["admin", "list"], "");
    assert!(
        listed.contains("alice") && listed.contains("owner"),
        "{listed}"
    );
    // Used once: the link is dead, and a restarted server prints none.
    let again = client
        .post(server.url("/admin/bootstrap"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("token", link_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 403);
    assert_eq!(
        anonymous
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    drop(server);
    let server = env.start();
    assert!(
        !server.banner.contains("/admin/bootstrap"),
        "{}",
        server.banner
    );
}

#[tokio::test]
async fn a_console_session_ends_after_the_administrators_idle_timeout() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ADMIN_SESSION_IDLE_MINUTES", "5");
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    assert_eq!(console.get("/admin").await.status(), 200);
    // Six minutes without a request: past the console's 5, within users' 20.
    let conn = rusqlite::Connection::open(server.data_dir.join("twofold.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute(
        "UPDATE sessions SET created_at = created_at - 360, last_seen_at = last_seen_at - 360",
        [],
    )
    .unwrap();
    let r = console.get("/admin").await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/admin/sign-in"));
}

#[tokio::test]
async fn turning_the_portals_sign_in_off_does_not_lock_administrators_out_of_the_console() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let sdk = Sdk::add(&env);
    let seed = sdk.user_with_app(&server, "owner").await;
    sdk.user_with_app(&server, "bob").await;
    env.cli_ok(&["admin", "add", "owner", "--role", "owner"], "");
    env.cli_ok(&["settings", "set", "allow_user_login", "false"], "");
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    // The portal refuses everyone, administrators included.
    let portal = sign_in(&server.client(), &server, "bob", PASSWORD).await;
    assert_eq!(portal.status(), 403);
    let portal = sign_in(&server.client(), &server, "owner", PASSWORD).await;
    assert_eq!(portal.status(), 403);
    // The console still lets the owner in, with the second factor, to turn it back on.
    let console = Console::sign_in(&server, "owner", &seed).await;
    assert_eq!(console.get("/admin").await.status(), 200);
    // And it is no way in for someone who is not an administrator.
    let bob = Console {
        client: server.client(),
        base: server.url(""),
    };
    assert_eq!(bob.password("bob", PASSWORD).await.status(), 404);
}
