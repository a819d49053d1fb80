//! An OATH code verified end to end through the in-process service and the store: read the
//! token, open its sealed seed, check the code, write the advanced counter (the single-use
//! guarantee), clear the lockout counters and append the audit line.
//!
//! SQLite always; PostgreSQL too when `TWOFOLD_TEST_POSTGRES_URL` names a server (the
//! bench creates a database of its own there).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use twofold_engine::oath::{self, Algorithm, OathKind, OathParams};
use twofold_engine::token_import::ImportedToken;
use twofold_engine::{Settings, SystemClock};
use twofold_server::config::{DatabaseTarget, Secret};
use twofold_server::secrets::Keyring;
use twofold_server::service::{ClientContext, InProcessService};
use twofold_server::store::Store;

const SECRET: &[u8] = b"12345678901234567890";

async fn prepared(target: DatabaseTarget) -> (Arc<InProcessService>, String) {
    let store = Store::connect(&target, 16, Duration::from_secs(5))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let settings = Settings {
        allow_third_party_oath_token: true,
        oath_hotp_look_ahead: 10,
        ..Settings::default()
    };
    store.seed_settings(&settings, 0).await.unwrap();
    let service = Arc::new(
        InProcessService::new(store, Arc::new(SystemClock), Keyring::for_tests([9; 32])).unwrap(),
    );
    let user = service
        .add_user("bench", "bench", None, None, None)
        .await
        .unwrap();
    let token = ImportedToken {
        serial: "BENCH-1".into(),
        secret: zeroize::Zeroizing::new(SECRET.to_vec()),
        params: OathParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            kind: OathKind::Hotp,
        },
        counter: 0,
    };
    service.import_tokens("bench", &[token]).await.unwrap();
    let first = oath::hotp(SECRET, 0, Algorithm::Sha1, 6).unwrap();
    service
        .associate_hardware(&user.id, "BENCH-1", &first, &ClientContext::default())
        .await
        .unwrap();
    (service, user.id)
}

fn bench_backend(c: &mut Criterion, name: &str, target: DatabaseTarget) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (service, user_id) = runtime.block_on(prepared(target));
    let counter = AtomicU64::new(1);
    let client = ClientContext::default();
    let mut group = c.benchmark_group("verification");
    group.sample_size(50);
    group.bench_function(format!("hotp_code_through_the_store_{name}"), |b| {
        b.iter(|| {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let code = oath::hotp(SECRET, n, Algorithm::Sha1, 6).unwrap();
            runtime
                .block_on(service.verify_oath_code(&user_id, &code, None, &client))
                .expect("a fresh code verifies");
        })
    });
    group.finish();
}

fn verification(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    bench_backend(
        c,
        "sqlite",
        DatabaseTarget::Sqlite(dir.path().join("bench.db")),
    );
    if let Ok(admin) = std::env::var("TWOFOLD_TEST_POSTGRES_URL") {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let name = format!("bench_{}", std::process::id());
        let url = runtime.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&mut conn)
            .await
            .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            let mut url = url::Url::parse(&admin).unwrap();
            url.set_path(&format!("/{name}"));
            url.to_string()
        });
        bench_backend(c, "postgresql", DatabaseTarget::Postgres(Secret::new(url)));
    } else {
        eprintln!(
            "TWOFOLD_TEST_POSTGRES_URL is not set: PostgreSQL not measured (scripts/bench sets it)"
        );
    }
}

criterion_group!(benches, verification);
criterion_main!(benches);
