//! How long the admin console's users page takes to read its 50 users from a store of
//! 100,000: fills a fresh database (SQLite in a temporary folder, or the PostgreSQL database
//! given, which must be empty), with a thousand users in group Sales, some locked, disabled,
//! fraud-blocked or under a bypass, then times the page's query (the one `GET /admin/users`
//! runs) for the first page, a middle page, a search, each filter and a group scope, and
//! prints the median of 20 runs of each. Asserts nothing.
//!
//! ```text
//! cargo run --release --example admin_users_page
//! cargo run --release --example admin_users_page -- --postgres postgres://…/empty_db
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};
use twofold_server::config::{DatabaseTarget, Secret};
use twofold_server::store::{Store, UserFilter, UserSearch};

const USERS: usize = 100_000;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twofold.db");
    let postgres = match (args.next().as_deref(), args.next()) {
        (Some("--postgres"), Some(url)) => Some(url),
        _ => None,
    };
    let target = match &postgres {
        Some(url) => DatabaseTarget::Postgres(Secret::new(url.clone())),
        None => DatabaseTarget::Sqlite(path.clone()),
    };
    let store = Store::connect(&target, 4, Duration::from_secs(30))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let started = Instant::now();
    run(&fill(), postgres.as_deref(), &path).await;
    println!("filled {USERS} users in {:.1?}", started.elapsed());

    let now = 2_000_000_000;
    let base = UserSearch {
        limit: 51,
        ..UserSearch::default()
    };
    let cases: Vec<(&str, UserSearch)> = vec![
        ("first page", base.clone()),
        (
            "page after user050000",
            UserSearch {
                after: Some("user050000".into()),
                ..base.clone()
            },
        ),
        (
            "search \"9999\" (username or email)",
            UserSearch {
                text: "9999".into(),
                ..base.clone()
            },
        ),
        (
            "search matching nobody",
            UserSearch {
                text: "nobody-at-all".into(),
                ..base.clone()
            },
        ),
    ]
    .into_iter()
    .chain(UserFilter::ALL.iter().map(|f| {
        (
            f.as_str(),
            UserSearch {
                filters: vec![*f],
                ..base.clone()
            },
        )
    }))
    .chain([
        (
            "group Sales (1,000 members)",
            UserSearch {
                groups: Some(vec!["Sales".into()]),
                ..base.clone()
            },
        ),
        (
            "group Sales, locked",
            UserSearch {
                groups: Some(vec!["Sales".into()]),
                filters: vec![UserFilter::Locked],
                ..base.clone()
            },
        ),
    ])
    .collect();
    for (name, search) in cases {
        let mut times = Vec::new();
        let mut found = 0;
        for _ in 0..20 {
            let t = Instant::now();
            found = store.search_users(&search, now).await.unwrap().len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{name:<40} {found:>3} rows  median {:>9.2?}  max {:>9.2?}",
            times[10], times[19]
        );
    }
}

/// 100,000 users `user000000`…; every 100th in Sales, every 1,000th locked, disabled,
/// fraud-blocked, under a bypass; every 10th never enrolled.
fn fill() -> String {
    let mut sql = String::new();
    for chunk in 0..(USERS / 1000) {
        sql.push_str("INSERT INTO users (id, username, email, enabled, created_at, updated_at, source, enrolled_at, fraud_blocked_until) VALUES ");
        let rows: Vec<String> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| {
                format!(
                    "('id{i:06}', 'user{i:06}', 'User{i:06}@Example.com', {}, 1, 1, 'local', {}, {})",
                    i64::from(i % 1000 != 3),
                    if i % 10 == 1 { "NULL" } else { "1" },
                    if i % 1000 == 4 { "3000000000" } else { "NULL" },
                )
            })
            .collect();
        sql.push_str(&rows.join(", "));
        sql.push_str(";\n");
    }
    let groups: Vec<String> = (0..USERS)
        .step_by(100)
        .map(|i| format!("('id{i:06}', 'Sales')"))
        .collect();
    sql.push_str(&format!(
        "INSERT INTO user_groups (user_id, group_name) VALUES {};\n",
        groups.join(", ")
    ));
    let locks: Vec<String> = (0..USERS)
        .step_by(1000)
        .map(|i| format!("('user{i:06}', 0, NULL, NULL, 1, 20, 1000)"))
        .collect();
    sql.push_str(&format!(
        "INSERT INTO lockouts (username, failures, window_start, locked_until, version, consecutive, hard_locked_at) VALUES {};\n",
        locks.join(", ")
    ));
    let bypasses: Vec<String> = (5..USERS)
        .step_by(1000)
        .map(|i| format!("('b{i:06}', 'id{i:06}', 1, 3000000000, NULL, NULL, 'bench')"))
        .collect();
    sql.push_str(&format!(
        "INSERT INTO bypasses (id, user_id, created_at, expires_at, used_at, reason, created_by) VALUES {};\n",
        bypasses.join(", ")
    ));
    sql
}

/// Runs `sql` on the database, in one transaction.
async fn run(sql: &str, postgres: Option<&str>, path: &std::path::Path) {
    match postgres {
        Some(url) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "BEGIN; {sql} COMMIT; ANALYZE;"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        None => {
            let conn = rusqlite::Connection::open(path).unwrap();
            conn.busy_timeout(Duration::from_secs(5)).unwrap();
            conn.execute_batch(&format!("BEGIN; {sql} COMMIT; ANALYZE;"))
                .unwrap();
        }
    }
}
