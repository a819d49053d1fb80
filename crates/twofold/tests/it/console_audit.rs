//! The admin console's audit log (filters, pages, the CSV export) and its reports, and who
//! may see them.

use crate::console::*;
use crate::support::*;
use reqwest::Method;

/// An event to insert: at, action, outcome, actor, subject, detail.
type Inserted = (
    i64,
    &'static str,
    &'static str,
    String,
    Option<String>,
    Option<String>,
);

/// Appends `n` events straight to the store's log, as a busy server would have written them:
/// `make(i)` gives each one's (at, action, outcome, actor, subject, detail).
fn insert_events(env: &Env, n: usize, make: impl Fn(usize) -> Inserted) {
    let mut conn = rusqlite::Connection::open(env.data_dir().join("twofold.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO audit_log (at, action, outcome, actor, subject, client_ip, user_agent, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, '192.0.2.7', 'tests', ?6)",
            )
            .unwrap();
        for i in 0..n {
            let (at, action, outcome, actor, subject, detail) = make(i);
            insert
                .execute(rusqlite::params![
                    at, action, outcome, actor, subject, detail
                ])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// The event numbers a page of the log lists, in order.
fn listed_ids(html: &str) -> Vec<i64> {
    html.split("<tr class=\"event\" data-id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// The `href` of the link with `id`, unescaped.
fn link(html: &str, id: &str) -> Option<String> {
    let pattern = format!("id=\"{id}\" href=\"");
    let start = html.find(&pattern)?;
    let rest = &html[start + pattern.len()..];
    Some(html_unescape(rest.split('"').next().unwrap()))
}

/// A user with an authenticator app, made an administrator with `permissions`, signed in.
async fn admin_with(
    env: &Env,
    server: &Server,
    sdk: &Sdk,
    name: &str,
    permissions: &[&str],
) -> Console {
    let seed = sdk.user_with_app(server, name).await;
    let mut args = vec!["admin", "add", name];
    for p in permissions {
        args.extend(["--permission", p]);
    }
    env.cli_ok(&args, "");
    Console::sign_in(server, name, &seed).await
}

fn day(at: i64) -> String {
    let days = at.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[tokio::test]
async fn each_audit_filter_narrows_the_list_and_older_pages_continue_where_the_last_ended() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    // 250 events ten days ago, a day apart by tens: actors, users, actions and outcomes vary.
    let base = (unix_now() / 86_400 - 10) * 86_400 + 3600;
    insert_events(&env, 250, |i| {
        (
            base + (i as i64 / 100) * 86_400,
            if i.is_multiple_of(5) {
                "user_updated"
            } else {
                "pin_changed"
            },
            if i.is_multiple_of(2) {
                "success"
            } else {
                "failure"
            },
            format!("admin:a{}", i % 3),
            Some(format!("u{}", i % 7)),
            None,
        )
    });

    // Newest first, a hundred a page; the older pages carry on with no gap or repeat.
    let first = console.get_text("/admin/audit").await;
    let mut ids = listed_ids(&first);
    assert_eq!(ids.len(), 100);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    assert!(!first.contains("id=\"audit-newest\""));
    let mut next = link(&first, "audit-older");
    let mut pages = 1;
    while let Some(href) = next {
        let page = console.get_text(&href).await;
        let more = listed_ids(&page);
        assert!(!more.is_empty() && more.len() <= 100, "{href}");
        assert!(more[0] < *ids.last().unwrap(), "{href} continues");
        assert!(page.contains("id=\"audit-newest\""));
        ids.extend(more);
        next = link(&page, "audit-older");
        pages += 1;
    }
    let conn = rusqlite::Connection::open(env.data_dir().join("twofold.db")).unwrap();
    let total: i64 = conn
        .query_row("SELECT COUNT(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        ids.len() as i64,
        total,
        "every event, once, over {pages} pages"
    );
    assert!(pages >= 3);

    let count = |html: &str| listed_ids(html).len();
    // By actor: 83 of the 250 are admin:a1's (i % 3 == 1).
    let by_actor = console.get_text("/admin/audit?actor=admin%3Aa1").await;
    assert_eq!(count(&by_actor), 83);
    assert!(!by_actor.contains("admin:a2<"));
    // By user: u3 (i % 7 == 3): 36 events.
    let by_user = console.get_text("/admin/audit?user=u3").await;
    assert_eq!(count(&by_user), 36);
    // By action: user_updated, every fifth: 50.
    let by_action = console.get_text("/admin/audit?action=user_updated").await;
    assert_eq!(count(&by_action), 50);
    assert!(by_action.contains("<option value=\"user_updated\" selected>"));
    // By outcome, with the action: failures among user_updated (odd multiples of 5): 25.
    let failures = console
        .get_text("/admin/audit?action=user_updated&outcome=failure")
        .await;
    assert_eq!(count(&failures), 25);
    // By dates: the second of the three days holds events 100 to 199.
    let d = day(base + 86_400);
    let one_day = console
        .get_text(&format!("/admin/audit?from={d}&to={d}"))
        .await;
    assert_eq!(count(&one_day), 100);
    assert!(link(&one_day, "audit-older").is_none(), "exactly one page");
    // A filter's pages keep the filter.
    let failing = console.get_text("/admin/audit?outcome=failure").await;
    let older = link(&failing, "audit-older").unwrap();
    assert!(older.contains("outcome=failure"), "{older}");
    let second = console.get_text(&older).await;
    assert!(!second.contains("<td>success</td>"));

    // A date that is not one is refused next to its field.
    let wrong = console.get("/admin/audit?from=yesterday").await;
    assert_eq!(wrong.status(), 400);
    let html = wrong.text().await.unwrap();
    assert!(
        html.contains("class=\"field-error\" id=\"audit-from-error\""),
        "{html}"
    );
    assert!(html.contains("aria-describedby=\"audit-from-error\""));
}

#[tokio::test]
async fn an_administrator_without_audit_read_gets_neither_the_log_nor_its_export() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (sdk, _owner) = owner_console(&env, &server).await;
    let reporter = admin_with(&env, &server, &sdk, "reporter", &["reports.read"]).await;
    for path in [
        "/admin/audit",
        "/admin/audit?user=owner",
        "/admin/audit/export.csv",
        "/admin/audit/export.csv?action=sign_in",
    ] {
        let r = reporter.get(path).await;
        assert_eq!(r.status(), 403, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("owner,"), "{path}: nothing of the log");
        assert!(!body.contains("class=\"event\""), "{path}");
    }
    assert!(
        audit_of(&env, "audit_exported").is_empty(),
        "a refused export is no export"
    );
    let home = reporter.get_text("/admin").await;
    assert!(!home.contains("href=\"/admin/audit\""));
    assert_eq!(reporter.get("/admin/reports").await.status(), 200);
}

#[tokio::test]
async fn an_administrator_who_may_read_but_not_export_sees_no_export_link_and_is_refused_it() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (sdk, owner) = owner_console(&env, &server).await;
    let reader = admin_with(&env, &server, &sdk, "reader", &["audit.read"]).await;
    let page = reader.get("/admin/audit").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(!listed_ids(&html).is_empty());
    assert!(!html.contains("export.csv"), "no export link");
    let export = reader.get("/admin/audit/export.csv").await;
    assert_eq!(export.status(), 403);
    assert!(!export.text().await.unwrap().contains("id,time,action"));
    assert!(audit_of(&env, "audit_exported").is_empty());
    // Nor the reports, without reports.read.
    assert_eq!(reader.get("/admin/reports").await.status(), 403);
    // The owner, who may, sees the link, with the filters.
    let owners = owner.get_text("/admin/audit?action=sign_in").await;
    assert!(
        owners.contains("id=\"audit-export\" href=\"/admin/audit/export.csv?action=sign_in\""),
        "{owners}"
    );
}

/// The records of a CSV export (no cell here holds a line break), without the header.
fn csv_records(body: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = body.split("\r\n").collect();
    assert_eq!(lines.pop(), Some(""), "every record ends with CRLF");
    assert_eq!(
        lines.remove(0),
        "id,time,action,outcome,actor,user,client_ip,user_agent,detail"
    );
    lines
}

#[tokio::test]
async fn the_csv_export_holds_every_matching_event_with_formula_cells_made_harmless() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let now = unix_now();
    let hostile = [
        "=HYPERLINK(\"http://evil.example\",\"click\")",
        "+1+1",
        "-2+3",
        "@SUM(A1:A2)",
        "\tindented",
        "plain, with a comma",
    ];
    insert_events(&env, hostile.len(), |i| {
        (
            now,
            "user_updated",
            "success",
            "cli:root".to_owned(),
            Some(if i == 0 {
                "=cmd".to_owned()
            } else {
                format!("victim{i}")
            }),
            Some(hostile[i].to_owned()),
        )
    });
    let response = console
        .get("/admin/audit/export.csv?action=user_updated")
        .await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let body = response.text().await.unwrap();
    let records = csv_records(&body);
    assert_eq!(records.len(), hostile.len(), "{body}");
    assert!(
        records
            .iter()
            .all(|r| r.contains(",user_updated,success,cli:root,"))
    );
    // Newest first: the last inserted comes first.
    assert!(
        records[0].ends_with(",\"'plain, with a comma\"")
            || records[0].ends_with(",\"plain, with a comma\""),
        "{}",
        records[0]
    );
    assert!(body.contains(",'=cmd,"), "the user cell too: {body}");
    assert!(body.contains(",\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\""));
    assert!(body.contains(",'+1+1\r\n"));
    assert!(body.contains(",'-2+3\r\n"));
    assert!(body.contains(",'@SUM(A1:A2)\r\n"));
    assert!(body.contains(",'\tindented\r\n"));
    // No cell of any record starts with a formula character.
    for record in &records {
        for cell in record.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t']),
                "{cell:?} in {record}"
            );
        }
    }
    // The export is audited: who, and with which filters.
    let exported = audit_of(&env, "audit_exported");
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["actor"], "admin:owner");
    assert_eq!(exported[0]["detail"], "action=user_updated");
}

#[tokio::test]
async fn a_large_log_exports_completely() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let start = unix_now() - 5000;
    insert_events(&env, 4321, |i| {
        (
            start + i as i64,
            "sign_in",
            if i.is_multiple_of(4) {
                "failure"
            } else {
                "success"
            },
            "portal".to_owned(),
            Some(format!("user{i}")),
            Some("oath".to_owned()),
        )
    });
    let body = console
        .get("/admin/audit/export.csv")
        .await
        .text()
        .await
        .unwrap();
    let records = csv_records(&body);
    let conn = rusqlite::Connection::open(env.data_dir().join("twofold.db")).unwrap();
    let mut stmt = conn
        .prepare("SELECT id FROM audit_log ORDER BY id DESC")
        .unwrap();
    let all: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let exported: Vec<i64> = records
        .iter()
        .map(|r| r.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(all.len() > 4321);
    assert_eq!(exported, all, "every event, newest first, once");
    // Filtered, the failures alone.
    let failures = console
        .get_text("/admin/audit/export.csv?action=sign_in&outcome=failure&user=user8")
        .await;
    assert_eq!(csv_records(&failures).len(), 1);
}

/// The figures of the row labelled `label` in the table `id`, by column heading.
fn table_row(html: &str, id: &str, label: &str) -> Vec<(String, i64)> {
    let table = between(html, &format!("<table id=\"{id}\">"), "</table>");
    let headings: Vec<String> = table
        .split("<th scope=\"col\">")
        .skip(1)
        .map(|h| html_unescape(h.split('<').next().unwrap()))
        .collect();
    let row = between(table, &format!("<th scope=\"row\">{label}</th>"), "</tr>");
    let values: Vec<i64> = row
        .split("<td>")
        .skip(1)
        .map(|v| v.split('<').next().unwrap().parse().unwrap())
        .collect();
    headings.into_iter().skip(1).zip(values).collect()
}

fn figure(row: &[(String, i64)], heading: &str) -> i64 {
    row.iter()
        .find(|(h, _)| h == heading)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| panic!("no column {heading:?} in {row:?}"))
}

#[tokio::test]
async fn the_reports_count_the_sign_ins_bypasses_and_users_the_server_saw() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_ONE_TIME_BYPASS", "true");
    let server = env.start();
    let (sdk, console) = owner_console(&env, &server).await;
    // Two wrong passwords at the portal, a bypass started, a user never enrolled, one
    // disabled.
    sdk.user_with_app(&server, "carol").await;
    for _ in 0..2 {
        let r = sign_in(&server.client(), &server, "carol", "wrong password").await;
        assert_ne!(location(&r), "/account");
    }
    let (status, body) = sdk
        .send(
            &server,
            Method::POST,
            "/sdk/v1/users/carol/bypass",
            Some(serde_json::json!({ "seconds": 300 })),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    env.add_user("dave", PASSWORD);
    env.add_user("erin", PASSWORD);
    let conn = rusqlite::Connection::open(env.data_dir().join("twofold.db")).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .unwrap();
    conn.execute("UPDATE users SET enabled = 0 WHERE username = 'erin'", [])
        .unwrap();

    let successes = audit_of(&env, "sign_in")
        .into_iter()
        .filter(|e| e["outcome"] == "success" && e["detail"] == "oath")
        .count() as i64;
    let failures = audit_of(&env, "sign_in")
        .into_iter()
        .filter(|e| e["outcome"] == "failure")
        .count() as i64;
    assert_eq!(successes, 1, "the owner's sign-in to the console");
    assert_eq!(failures, 2);

    let response = console.get("/admin/reports").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    let today = day(unix_now());
    let sign_ins = table_row(&html, "table-sign-ins", &today);
    assert_eq!(
        figure(&sign_ins, "Succeeded: code"),
        successes,
        "{sign_ins:?}"
    );
    assert_eq!(figure(&sign_ins, "Failed"), failures);
    let trouble = table_row(&html, "table-trouble", &today);
    assert_eq!(figure(&trouble, "Bypassed"), 1, "{trouble:?}");
    assert_eq!(figure(&trouble, "Locked"), 0);
    assert_eq!(figure(&trouble, "Blocked for fraud"), 0);
    // owner and carol enrolled with their app; dave not; erin disabled.
    assert_eq!(
        figure(&table_row(&html, "table-users", "Enrolled"), "Users"),
        2
    );
    assert_eq!(
        figure(&table_row(&html, "table-users", "Not enrolled"), "Users"),
        1
    );
    assert_eq!(
        figure(&table_row(&html, "table-users", "Disabled"), "Users"),
        1
    );
    // Thirty days by default, each a row; three charts, each an image with its name.
    let table = between(&html, "<table id=\"table-sign-ins\">", "</table>");
    assert_eq!(table.matches("<th scope=\"row\">").count(), 30);
    assert_eq!(html.matches("role=\"img\"").count(), 3);
    assert!(html.contains("<title id=\"chart-sign-ins-title\">Sign-ins per day</title>"));
    assert!(html.contains("class=\"bar\""));
    assert!(!html.contains("<script"));

    // Another period; one out of range is refused next to its field.
    let week = console.get_text("/admin/reports?days=7").await;
    let table = between(&week, "<table id=\"table-sign-ins\">", "</table>");
    assert_eq!(table.matches("<th scope=\"row\">").count(), 7);
    let wrong = console.get("/admin/reports?days=400").await;
    assert_eq!(wrong.status(), 400);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("id=\"reports-days-error\""));
    assert!(html.contains("aria-invalid=\"true\""));
}
