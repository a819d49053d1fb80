//! The admin console's users pages: the list (search, filters, pages, a group scope), one
//! user's page, and every change to a user, each with its permission, audited with the
//! administrator as actor.

use crate::console::*;
use crate::support::*;

/// Runs `sql` on the server's database (to put users in states quickly).
async fn sql(env: &Env, backend: Backend, sql: &str) {
    match backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(env.data_dir().join("twofold.db")).unwrap();
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .unwrap();
            conn.execute_batch(sql).unwrap();
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let url = env.vars["TWOFOLD_DATABASE__URL"].clone();
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

/// Hard-locks `user` as the hard cap would.
async fn hard_lock(env: &Env, backend: Backend, user: &str) {
    sql(
        env,
        backend,
        &format!(
            "INSERT INTO lockouts (username, failures, window_start, locked_until, version, consecutive, hard_locked_at) \
             VALUES ('{user}', 0, NULL, NULL, 1, 20, 1000)"
        ),
    )
    .await;
}

/// The usernames the list page shows, in order.
fn listed(page: &str) -> Vec<String> {
    page.split("class=\"user-link\">")
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
        .collect()
}

/// The `href` of the "Next page" link, `&amp;` decoded.
fn next_link(page: &str) -> Option<String> {
    let at = page.find("id=\"next-page\"")?;
    let before = &page[..at];
    let start = before.rfind("href=\"")? + 6;
    let end = start + before[start..].find('"')?;
    Some(
        before[start..end]
            .replace("&amp;", "&")
            .replace("&#38;", "&")
            .replace("&#x3d;", "="),
    )
}

/// An owner, `alice` in Sales and `bob` in Engineering, and `hank`, a help-desk
/// administrator for group Sales whose bypasses last at most 600 seconds.
struct Scene {
    env: Env,
    server: Server,
    owner: Console,
    hank: Console,
}

async fn scene(backend: Backend) -> Scene {
    let env = Env::new(backend).await;
    env.cli_ok(&["settings", "set", "allow_one_time_bypass", "true"], "");
    let server = env.start();
    let (sdk, owner) = owner_console(&env, &server).await;
    let hank_seed = sdk.user_with_app(&server, "hank").await;
    env.cli_ok(
        &["user", "add", "alice", "--email", "Alice@Example.com"],
        "",
    );
    env.cli_ok(&["user", "add", "bob", "--email", "bob@example.org"], "");
    env.cli_ok(&["group", "add", "Sales", "alice"], "");
    env.cli_ok(&["group", "add", "Engineering", "bob"], "");
    let made = owner
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
    let hank = Console::sign_in(&server, "hank", &hank_seed).await;
    Scene {
        env,
        server,
        owner,
        hank,
    }
}

#[tokio::test]
async fn a_help_desk_admin_for_sales_unlocks_and_bypasses_a_sales_user_and_nobody_else() {
    let s = scene(Backend::Sqlite).await;
    hard_lock(&s.env, Backend::Sqlite, "alice").await;
    hard_lock(&s.env, Backend::Sqlite, "bob").await;

    // The list holds Sales only, in the query itself: even a search for bob finds nothing.
    let page = s.hank.get_text("/admin/users").await;
    assert_eq!(listed(&page), vec!["alice"], "{page}");
    assert!(listed(&s.hank.get_text("/admin/users?q=bob").await).is_empty());
    let owners = s.owner.get_text("/admin/users").await;
    assert_eq!(listed(&owners), vec!["alice", "bob", "hank", "owner"]);

    // Alice's page: her profile and her lock.
    let alice = s.hank.get_text("/admin/users/alice").await;
    assert!(alice.contains("Alice@Example.com"), "{alice}");
    assert!(alice.contains("Sales"));
    assert!(alice.contains("Locked until an administrator unlocks it"));

    let unlocked = s.hank.post("/admin/users/alice/unlock", &[]).await;
    assert_eq!(unlocked.status(), 303);
    let alice = s.hank.get_text("/admin/users/alice?done=unlocked").await;
    assert!(alice.contains("The user is unlocked."), "{alice}");
    assert!(alice.contains("Not locked"));
    let event = audit_of(&s.env, "user_unlocked").pop().unwrap();
    assert_eq!(event["actor"], "admin:hank");
    assert_eq!(event["subject"], "alice");

    let bypass = s
        .hank
        .post(
            "/admin/users/alice/bypass",
            &[("seconds", "300"), ("reason", "lost phone")],
        )
        .await;
    assert_eq!(bypass.status(), 303);
    let started = audit_of(&s.env, "bypass_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["actor"], "admin:hank");
    assert_eq!(started[0]["subject"], "alice");
    assert!(
        started[0]["detail"]
            .as_str()
            .unwrap()
            .contains("lost phone")
    );
    let alice = s.hank.get_text("/admin/users/alice").await;
    assert!(alice.contains("lost phone"), "the page shows the bypass");
    assert!(
        alice.contains("bypass_started"),
        "the page shows her recent events"
    );

    // Bob is outside Sales: his page and every change are refused, and so is a user who
    // does not exist (no way to tell the two apart).
    for path in [
        "/admin/users/bob",
        "/admin/users/nobody",
        "/admin/users/bob/delete",
    ] {
        assert_eq!(s.hank.get(path).await.status(), 403, "{path}");
    }
    for user in ["bob", "nobody"] {
        for (action, fields) in [
            ("unlock", vec![]),
            ("unblock", vec![]),
            ("bypass", vec![("seconds", "60")]),
            (
                "edit",
                vec![("email", "evil@example.com"), ("enabled", "on")],
            ),
            ("groups", vec![("groups", "Sales")]),
            ("reset-pin", vec![]),
            ("reset-answers", vec![]),
            ("activation", vec![]),
            ("method", vec![("method", "oath")]),
            (
                "resync",
                vec![("serial", "X"), ("first", "1"), ("second", "2")],
            ),
            ("remove-device", vec![("device", "x")]),
            ("delete", vec![("confirm", "yes")]),
        ] {
            let path = format!("/admin/users/{user}/{action}");
            let refused = s.hank.post(&path, &fields).await;
            assert_eq!(refused.status(), 403, "{path}");
        }
    }
    // Bob is as he was.
    let bob = s.owner.get_text("/admin/users/bob").await;
    assert!(
        bob.contains("Locked until an administrator unlocks it"),
        "{bob}"
    );
    assert!(bob.contains("bob@example.org"));
    assert!(bob.contains("Engineering"));
    assert_eq!(audit_of(&s.env, "bypass_started").len(), 1);
    assert_eq!(audit_of(&s.env, "user_unlocked").len(), 1);
    assert!(audit_of(&s.env, "user_deleted").is_empty());
    assert!(audit_of(&s.env, "user_updated").is_empty());
}

#[tokio::test]
async fn a_bypass_longer_than_the_administrators_maximum_is_refused_next_to_its_field() {
    let s = scene(Backend::Sqlite).await;
    let page = s.hank.get_text("/admin/users/alice").await;
    assert!(page.contains("At most 600 seconds."), "{page}");
    let refused = s
        .hank
        .post("/admin/users/alice/bypass", &[("seconds", "601")])
        .await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    let error = &page[page.find("class=\"field-error\"").expect("a field error")..];
    assert!(error.contains("id=\"seconds-error\""), "{error}");
    assert!(page.contains("aria-describedby=\"seconds-error bypass-max\""));
    assert!(audit_of(&s.env, "bypass_started").is_empty());
    // The owner's maximum is the settings' (3600 seconds by default): 601 is within it.
    let owner = s
        .owner
        .post("/admin/users/alice/bypass", &[("seconds", "601")])
        .await;
    assert_eq!(owner.status(), 303);
    let started = audit_of(&s.env, "bypass_started");
    assert_eq!(started.len(), 1);
    assert_eq!(started[0]["actor"], "admin:owner");
}

#[tokio::test]
async fn a_scoped_administrator_cannot_move_a_user_out_of_their_groups_or_into_another() {
    let s = scene(Backend::Sqlite).await;
    let before = audit_of(&s.env, "groups_changed").len();
    // Into another group: refused, nothing changes.
    let refused = s
        .hank
        .post(
            "/admin/users/alice/groups",
            &[("groups", "Sales, Engineering")],
        )
        .await;
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("Group Engineering is outside the groups you manage."),
        "{page}"
    );
    // Out of Sales (to no group, or to another one): refused.
    for groups in ["", "Engineering"] {
        let refused = s
            .hank
            .post("/admin/users/alice/groups", &[("groups", groups)])
            .await;
        assert_eq!(refused.status(), 403, "{groups:?}");
    }
    assert_eq!(audit_of(&s.env, "groups_changed").len(), before);
    let alice = s.owner.get_text("/admin/users/alice").await;
    assert!(alice.contains("id=\"profile-groups\">Sales<"), "{alice}");
    // Within Sales the admin may add a group of their own reach: none other here, so the
    // same set saves; the owner moves her anywhere.
    let same = s
        .hank
        .post("/admin/users/alice/groups", &[("groups", "Sales")])
        .await;
    assert_eq!(same.status(), 303);
    let moved = s
        .owner
        .post("/admin/users/alice/groups", &[("groups", "Engineering")])
        .await;
    assert_eq!(moved.status(), 303);
    let changed = audit_of(&s.env, "groups_changed").pop().unwrap();
    assert_eq!(changed["actor"], "admin:owner");
    assert_eq!(changed["detail"], "Engineering");
    // Now outside Sales, Alice is out of Hank's reach.
    assert_eq!(s.hank.get("/admin/users/alice").await.status(), 403);
}

#[tokio::test]
async fn an_administrator_edits_a_user_and_the_change_names_them() {
    let s = scene(Backend::Sqlite).await;
    let saved = s
        .hank
        .post(
            "/admin/users/alice/edit",
            &[
                ("email", "alice@sales.example.com"),
                ("phone", ""),
                ("language", "fr"),
            ],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let page = s.hank.get_text("/admin/users/alice").await;
    assert!(page.contains("alice@sales.example.com"));
    assert!(
        page.contains("id=\"profile-enabled\">No<"),
        "unticked: disabled"
    );
    let updated = audit_of(&s.env, "user_updated").pop().unwrap();
    assert_eq!(updated["actor"], "admin:hank");
    assert_eq!(updated["subject"], "alice");
    assert_eq!(updated["detail"], "changed: email, language, enabled");
    // A bad email is refused next to its field.
    let refused = s
        .hank
        .post(
            "/admin/users/alice/edit",
            &[("email", "not an email"), ("enabled", "on")],
        )
        .await;
    assert_eq!(refused.status(), 400);
    let page = refused.text().await.unwrap();
    assert!(page.contains("id=\"email-error\""), "{page}");
    // The disabled filter finds her.
    let disabled = s.owner.get_text("/admin/users?filter=disabled").await;
    assert_eq!(listed(&disabled), vec!["alice"]);
}

#[tokio::test]
async fn deleting_a_user_needs_users_delete_and_a_confirmation() {
    let s = scene(Backend::Sqlite).await;
    // Help-desk holds no users.delete, even inside Sales: no link, no page, no deletion.
    let page = s.hank.get_text("/admin/users/alice").await;
    assert!(!page.contains("id=\"delete-user\""));
    assert_eq!(s.hank.get("/admin/users/alice/delete").await.status(), 403);
    let refused = s
        .hank
        .post("/admin/users/alice/delete", &[("confirm", "yes")])
        .await;
    assert_eq!(refused.status(), 403);
    assert!(audit_of(&s.env, "user_deleted").is_empty());

    // The owner: the link, then the confirmation page; a post without it deletes nothing.
    let page = s.owner.get_text("/admin/users/alice").await;
    assert!(page.contains("href=\"/admin/users/alice/delete\""));
    let confirm = s.owner.get_text("/admin/users/alice/delete").await;
    assert!(confirm.contains("Delete alice?"), "{confirm}");
    let bare = s.owner.post("/admin/users/alice/delete", &[]).await;
    assert_eq!(bare.status(), 303);
    assert_eq!(location(&bare), "/admin/users/alice/delete");
    assert_eq!(s.owner.get("/admin/users/alice").await.status(), 200);
    let deleted = s
        .owner
        .post("/admin/users/alice/delete", &[("confirm", "yes")])
        .await;
    assert_eq!(deleted.status(), 303);
    assert_eq!(s.owner.get("/admin/users/alice").await.status(), 404);
    let event = audit_of(&s.env, "user_deleted").pop().unwrap();
    assert_eq!(event["actor"], "admin:owner");
    assert_eq!(event["subject"], "alice");
}

#[tokio::test]
async fn the_list_searches_filters_and_pages_by_username() {
    let env = Env::new(Backend::Sqlite).await;
    env.cli_ok(&["settings", "set", "allow_one_time_bypass", "true"], "");
    let server = env.start();
    let (_sdk, owner) = owner_console(&env, &server).await;
    // 120 users u000..u119, the even ones with an example.org email.
    let mut inserts = String::new();
    for i in 0..120 {
        let email = if i % 2 == 0 {
            format!("'U{i:03}@Example.ORG'")
        } else {
            "NULL".to_owned()
        };
        inserts.push_str(&format!(
            "INSERT INTO users (id, username, email, enabled, created_at, updated_at, source) \
             VALUES ('id{i:03}', 'u{i:03}', {email}, 1, 1, 1, 'local');"
        ));
    }
    inserts.push_str("UPDATE users SET enrolled_at = 1 WHERE username <> 'u007';");
    inserts.push_str("UPDATE users SET enabled = 0 WHERE username = 'u010';");
    inserts.push_str("UPDATE users SET fraud_blocked_until = 99999999999 WHERE username = 'u011';");
    inserts.push_str("UPDATE users SET fraud_blocked_until = 5 WHERE username = 'u012';");
    sql(&env, Backend::Sqlite, &inserts).await;
    hard_lock(&env, Backend::Sqlite, "u013").await;
    assert_eq!(
        owner
            .post("/admin/users/u014/bypass", &[("seconds", "60")])
            .await
            .status(),
        303
    );

    // Pages of 50 by username, a "Next page" link while more follow.
    let first = owner.get_text("/admin/users").await;
    let names = listed(&first);
    assert_eq!(names.len(), 50);
    assert_eq!(names[0], "owner");
    assert_eq!(names[1], "u000");
    let next = next_link(&first).expect("a next page");
    assert_eq!(next, "/admin/users?q=&after=u048");
    let second = owner.get_text(&next).await;
    let names = listed(&second);
    assert_eq!(names.first().unwrap(), "u049");
    assert_eq!(names.len(), 50);
    let third = owner.get_text(&next_link(&second).unwrap()).await;
    assert_eq!(listed(&third).len(), 21);
    assert_eq!(listed(&third).last().unwrap(), "u119");
    assert!(next_link(&third).is_none());

    // Search: username or email, any case, anywhere in it.
    assert_eq!(
        listed(&owner.get_text("/admin/users?q=U11").await),
        vec![
            "u110", "u111", "u112", "u113", "u114", "u115", "u116", "u117", "u118", "u119"
        ]
    );
    let by_email = listed(&owner.get_text("/admin/users?q=%40example.org").await);
    assert_eq!(by_email.len(), 50, "the first page of the 60 even ones");
    assert!(
        by_email
            .iter()
            .all(|u| u[1..].parse::<u32>().unwrap() % 2 == 0)
    );
    assert!(
        listed(&owner.get_text("/admin/users?q=%25").await).is_empty(),
        "% is literal"
    );

    // Each filter, and the search with one.
    assert_eq!(
        listed(&owner.get_text("/admin/users?filter=not-enrolled").await),
        vec!["u007"]
    );
    assert_eq!(
        listed(&owner.get_text("/admin/users?filter=disabled").await),
        vec!["u010"]
    );
    assert_eq!(
        listed(&owner.get_text("/admin/users?filter=fraud-blocked").await),
        vec!["u011"],
        "an expired block is not one"
    );
    assert_eq!(
        listed(&owner.get_text("/admin/users?filter=locked").await),
        vec!["u013"]
    );
    assert_eq!(
        listed(&owner.get_text("/admin/users?filter=bypass").await),
        vec!["u014"]
    );
    assert!(
        listed(
            &owner
                .get_text("/admin/users?q=u01&filter=locked&filter=disabled")
                .await
        )
        .is_empty()
    );
    let checked = owner.get_text("/admin/users?filter=locked").await;
    assert!(
        checked.contains("value=\"locked\" checked"),
        "the form keeps its filters"
    );
}

#[tokio::test]
async fn a_scoped_administrator_creates_users_only_inside_their_groups() {
    let s = scene(Backend::Sqlite).await;
    // Help-desk holds no users.create.
    assert_eq!(s.hank.get("/admin/new-user").await.status(), 403);
    // Hank may now read and create users in Sales.
    let made = s
        .owner
        .post(
            "/admin/admins",
            &[
                ("username", "hank"),
                ("permission", "users.read"),
                ("permission", "users.create"),
                ("scope", "group:Sales"),
            ],
        )
        .await;
    assert_eq!(made.status(), 303);
    let form = s.hank.get_text("/admin/new-user").await;
    assert!(form.contains("<option value=\"Sales\""), "{form}");
    let outside = s
        .hank
        .post(
            "/admin/new-user",
            &[("username", "carol"), ("group", "Engineering")],
        )
        .await;
    assert_eq!(outside.status(), 403);
    assert!(
        audit_of(&s.env, "user_created")
            .iter()
            .all(|e| e["subject"] != "carol")
    );
    let created = s
        .hank
        .post(
            "/admin/new-user",
            &[
                ("username", "carol"),
                ("email", "carol@example.com"),
                ("group", "Sales"),
            ],
        )
        .await;
    assert_eq!(created.status(), 303);
    assert_eq!(location(&created), "/admin/users/carol?done=created");
    let page = s.hank.get_text("/admin/users/carol?done=created").await;
    assert!(page.contains("The user was created."));
    assert!(page.contains("id=\"profile-groups\">Sales<"));
    let event = audit_of(&s.env, "user_created").pop().unwrap();
    assert_eq!(event["actor"], "admin:hank");
    assert_eq!(event["subject"], "carol");
}

#[tokio::test]
async fn resetting_the_security_answers_and_the_pin_is_audited_and_shown() {
    let s = scene(Backend::Sqlite).await;
    for (action, event) in [
        ("reset-answers", "security_answers_changed"),
        ("reset-pin", "pin_changed"),
    ] {
        let done = s
            .hank
            .post(&format!("/admin/users/alice/{action}"), &[])
            .await;
        assert_eq!(done.status(), 303, "{action}");
        let e = audit_of(&s.env, event).pop().unwrap();
        assert_eq!(e["actor"], "admin:hank", "{action}");
        assert_eq!(e["subject"], "alice");
    }
    let page = s.hank.get_text("/admin/users/alice").await;
    assert!(page.contains("id=\"profile-answers\">0<"));
    assert!(page.contains("id=\"profile-pin\">No<"));
    // An activation code for the app, shown once.
    let shown = s.hank.post("/admin/users/alice/activation", &[]).await;
    assert_eq!(shown.status(), 200);
    let page = shown.text().await.unwrap();
    assert!(page.contains("id=\"activation-code\""), "{page}");
    assert!(
        !s.hank
            .get_text("/admin/users/alice")
            .await
            .contains("id=\"activation-code\"")
    );
}

#[tokio::test]
async fn the_users_pages_work_on_postgresql() {
    let s = scene(Backend::Postgres).await;
    hard_lock(&s.env, Backend::Postgres, "alice").await;
    assert_eq!(
        listed(&s.hank.get_text("/admin/users").await),
        vec!["alice"]
    );
    assert_eq!(
        listed(&s.owner.get_text("/admin/users?q=EXAMPLE.COM").await),
        vec!["alice"]
    );
    assert_eq!(
        listed(&s.owner.get_text("/admin/users?filter=locked").await),
        vec!["alice"]
    );
    assert_eq!(s.hank.get("/admin/users/bob").await.status(), 403);
    assert_eq!(
        s.hank.post("/admin/users/alice/unlock", &[]).await.status(),
        303
    );
    assert!(listed(&s.owner.get_text("/admin/users?filter=locked").await).is_empty());
    assert_eq!(
        s.hank
            .post("/admin/users/alice/bypass", &[("seconds", "120")])
            .await
            .status(),
        303
    );
    assert_eq!(
        listed(&s.owner.get_text("/admin/users?filter=bypass").await),
        vec!["alice"]
    );
    let page = s.hank.get_text("/admin/users/alice").await;
    assert!(
        page.contains("user_unlocked") && page.contains("admin:hank"),
        "{page}"
    );
    let _ = &s.server;
}
