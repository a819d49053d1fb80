//! The store's behaviour, each test run on SQLite and on a real PostgreSQL server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;
use twofold_engine::audit::{AuditAction, AuditEvent, AuditOutcome};
use twofold_engine::{Clock, LockoutState, ManualClock, Settings, Username};
use twofold_server::config::{DatabaseTarget, Secret};
use twofold_server::service::{ClientContext, InProcessService, ServiceError};
use twofold_server::store::{NewUser, SessionRecord, Store, StoreError, UserChanges};

struct TestStore {
    store: Store,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &DatabaseTarget::Sqlite(dir.path().join("t.db")),
        8,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    TestStore {
        store,
        _dir: Some(dir),
    }
}

async fn postgres() -> TestStore {
    use sqlx::Connection;
    let admin = std::env::var("TWOFOLD_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("TWOFOLD_TEST_POSTGRES_URL is not set: run the tests with scripts/test, which starts PostgreSQL")
    });
    let name = format!("store_{}", hex::encode(rand::random::<[u8; 8]>()));
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    let store = Store::connect(
        &DatabaseTarget::Postgres(Secret::new(url.as_str())),
        8,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    TestStore { store, _dir: None }
}

/// Runs one scenario on both backends.
macro_rules! on_both {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn on_sqlite() {
                let t = sqlite().await;
                ($body)(t.store.clone()).await;
            }
            #[tokio::test]
            async fn on_postgresql() {
                let t = postgres().await;
                ($body)(t.store.clone()).await;
            }
        }
    };
}

fn name(s: &str) -> Username {
    Username::parse(s).unwrap()
}

on_both!(
    users_are_created_found_changed_and_deleted,
    |store: Store| async move {
        let created = store
            .create_user(
                NewUser {
                    username: name("alice"),
                    email: Some("a@example.com".into()),
                    phone: None,
                    password_hash: Some("$argon2id$x".into()),
                },
                1000,
            )
            .await
            .unwrap();
        assert_eq!(created.username, "alice");
        assert!(created.enabled);
        assert_eq!(created.created_at, 1000);

        let dup = store
            .create_user(
                NewUser {
                    username: name("ALICE"),
                    email: None,
                    phone: None,
                    password_hash: None,
                },
                1001,
            )
            .await;
        assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");

        let changed = store
            .update_user(
                &name("alice"),
                UserChanges {
                    email: Some(None),
                    phone: Some(Some("+1 555".into())),
                    enabled: Some(false),
                    ..UserChanges::default()
                },
                1002,
            )
            .await
            .unwrap();
        assert_eq!(changed.email, None);
        assert_eq!(changed.phone.as_deref(), Some("+1 555"));
        assert!(!changed.enabled);
        assert_eq!(
            changed.password_hash.as_deref(),
            Some("$argon2id$x"),
            "untouched fields stay"
        );
        assert_eq!(changed.updated_at, 1002);

        assert!(store.delete_user(&name("alice")).await.unwrap());
        assert!(!store.delete_user(&name("alice")).await.unwrap());
        assert_eq!(store.user_by_username(&name("alice")).await.unwrap(), None);
        let missing = store
            .update_user(&name("alice"), UserChanges::default(), 1003)
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound)));
    }
);

on_both!(users_are_listed_in_pages, |store: Store| async move {
    for n in ["carol", "alice", "bob", "dave", "erin"] {
        store
            .create_user(
                NewUser {
                    username: name(n),
                    email: None,
                    phone: None,
                    password_hash: None,
                },
                1,
            )
            .await
            .unwrap();
    }
    let first: Vec<_> = store
        .list_users(2, None)
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(first, ["alice", "bob"]);
    let next: Vec<_> = store
        .list_users(2, Some("bob"))
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(next, ["carol", "dave"]);
});

// The store's single statements follow the engine's lockout model step by step: reserve,
// settle a failure, succeed, hand back; across window ends, locks and the hard cap.
on_both!(
    lockout_statements_follow_the_engine_model,
    |store: Store| async move {
        use twofold_engine::LockoutPolicy;
        let policy = LockoutPolicy {
            threshold: 3,
            window_seconds: 600,
            duration_seconds: 900,
            hard_cap: 7,
        };
        #[derive(Debug, Clone, Copy)]
        enum Step {
            Fail,
            Succeed,
            RightPassword,
        }
        use Step::*;
        // (seconds after the previous step, step)
        let script = [
            (0, Fail),
            (10, RightPassword),
            (10, Fail),
            (10, Succeed),
            (10, Fail),
            (10, Fail),
            (10, Fail),    // the third in the window: locked
            (10, Fail),    // refused while locked
            (10, Succeed), // refused while locked too
            (1000, Fail),  // the lock is over: a new window
            (700, Fail),   // the window is over: counted afresh
            (10, Fail),
            (10, Fail),   // locked again; seven in a row: the hard cap
            (5000, Fail), // refused: only an administrator releases it
            (10, Succeed),
        ];
        let mut model = LockoutState::default();
        let mut now = 1_000;
        for (i, (wait, step)) in script.into_iter().enumerate() {
            now += wait;
            let reserved = store.reserve_attempt("alice", now, policy).await.unwrap();
            let modelled = model.reserve(now, policy);
            assert_eq!(reserved, modelled.is_some(), "step {i} {step:?}: reserved");
            match (step, modelled) {
                (Fail, Some(m)) => {
                    store.settle_failure("alice", now, policy).await.unwrap();
                    model = m.settle_failure(now, policy);
                }
                (_, None) => {
                    store.settle_failure("alice", now, policy).await.unwrap();
                    model = model.settle_failure(now, policy);
                }
                (Succeed, Some(m)) => {
                    store.settle_success("alice", now).await.unwrap();
                    model = m.after_success();
                }
                (RightPassword, Some(m)) => {
                    store.release_attempt("alice").await.unwrap();
                    model = m.release();
                }
            }
            assert_eq!(
                store.lockout("alice").await.unwrap().state,
                model,
                "step {i} {step:?} at {now}"
            );
        }
        assert!(model.is_hard_locked());
        assert!(store.clear_lockout("alice").await.unwrap());
        assert_eq!(store.lockout("alice").await.unwrap().version, None);
    }
);

// A hundred attempts at once: exactly `threshold` are counted, the rest refused, and the
// hard lock is reported to exactly one of them.
on_both!(
    concurrent_attempts_never_outrun_the_threshold,
    |store: Store| async move {
        use twofold_engine::LockoutPolicy;
        let policy = LockoutPolicy {
            threshold: 5,
            window_seconds: 600,
            duration_seconds: 900,
            hard_cap: 100,
        };
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.reserve_attempt("alice", 1_000, policy).await.unwrap()
            }));
        }
        let mut reserved = 0;
        for task in tasks {
            reserved += usize::from(task.await.unwrap());
        }
        assert_eq!(reserved, 5);
        let state = store.lockout("alice").await.unwrap().state;
        assert_eq!((state.failures, state.consecutive), (5, 5));

        let cap = LockoutPolicy {
            hard_cap: 5,
            ..policy
        };
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.settle_failure("alice", 1_000, cap).await.unwrap()
            }));
        }
        let mut hard = 0;
        for task in tasks {
            hard += usize::from(task.await.unwrap().hard_locked);
        }
        assert_eq!(hard, 1, "the hard lock is announced once");
        assert!(store.lockout("alice").await.unwrap().state.is_hard_locked());
    }
);

// An attempt reserved before others filled the counters succeeds: its success clears the
// counts, never the lock the others started.
on_both!(
    a_success_never_clears_a_lock_in_force,
    |store: Store| async move {
        use twofold_engine::LockoutPolicy;
        let policy = LockoutPolicy {
            threshold: 3,
            window_seconds: 600,
            duration_seconds: 900,
            hard_cap: 100,
        };
        for _ in 0..3 {
            assert!(store.reserve_attempt("bob", 1_000, policy).await.unwrap());
        }
        assert!(!store.reserve_attempt("bob", 1_001, policy).await.unwrap());
        let settled = store.settle_failure("bob", 1_001, policy).await.unwrap();
        assert!(settled.locked, "the refusal starts the lock");
        store.settle_success("bob", 1_002).await.unwrap();
        let state = store.lockout("bob").await.unwrap().state;
        assert_eq!(state.locked_at(1_002), Some(1_901), "{state:?}");
        assert_eq!(
            state.consecutive, 0,
            "the success cleared the count in a row"
        );
        assert!(!store.reserve_attempt("bob", 1_003, policy).await.unwrap());
        // Nor a hard lock.
        let cap = LockoutPolicy {
            hard_cap: 1,
            ..policy
        };
        assert!(store.reserve_attempt("eve", 1_000, cap).await.unwrap());
        assert!(
            store
                .settle_failure("eve", 1_000, cap)
                .await
                .unwrap()
                .hard_locked
        );
        store.settle_success("eve", 1_000).await.unwrap();
        assert!(store.lockout("eve").await.unwrap().state.is_hard_locked());
    }
);

on_both!(
    a_success_without_a_lock_leaves_nothing_behind,
    |store: Store| async move {
        use twofold_engine::LockoutPolicy;
        let policy = LockoutPolicy {
            threshold: 3,
            window_seconds: 600,
            duration_seconds: 900,
            hard_cap: 100,
        };
        for _ in 0..2 {
            assert!(store.reserve_attempt("ada", 1_000, policy).await.unwrap());
        }
        store.settle_success("ada", 1_001).await.unwrap();
        assert_eq!(store.lockout("ada").await.unwrap().version, None);
        // A lock that has ended goes with the counters.
        for _ in 0..3 {
            assert!(store.reserve_attempt("ada", 2_000, policy).await.unwrap());
        }
        assert!(
            store
                .settle_failure("ada", 2_000, policy)
                .await
                .unwrap()
                .locked
        );
        assert!(!store.reserve_attempt("ada", 2_899, policy).await.unwrap());
        store.settle_success("ada", 2_900).await.unwrap();
        assert_eq!(store.lockout("ada").await.unwrap().version, None);
        assert!(store.reserve_attempt("ada", 2_901, policy).await.unwrap());
    }
);

on_both!(
    concurrent_failed_sign_ins_are_each_counted,
    |store: Store| async move {
        let clock = Arc::new(ManualClock::new(1_000_000));
        store
            .seed_settings(
                &Settings {
                    lockout_threshold: 100,
                    ..Settings::default()
                },
                clock.now(),
            )
            .await
            .unwrap();
        let service = Arc::new(
            InProcessService::new(
                store.clone(),
                clock.clone(),
                twofold_server::secrets::Keyring::for_tests([7; 32]),
            )
            .unwrap(),
        );
        service
            .add_user("test", "alice", None, None, Some("the right password"))
            .await
            .unwrap();
        let attempts = 24;
        let mut tasks = Vec::new();
        for _ in 0..attempts {
            let service = service.clone();
            tasks.push(tokio::spawn(async move {
                service
                    .password_step("alice", "a wrong password", &ClientContext::default())
                    .await
            }));
        }
        for task in tasks {
            let result = task.await.unwrap();
            assert!(
                matches!(
                    result,
                    Err(ServiceError::Domain(
                        twofold_engine::DomainError::InvalidCredentials
                    ))
                ),
                "{result:?}"
            );
        }
        let state = store.lockout("alice").await.unwrap().state;
        assert_eq!(state.failures, attempts, "no failure lost to a race");
    }
);

on_both!(
    the_threshold_locks_and_only_a_whole_sign_in_clears_the_count,
    |store: Store| async move {
        let clock = Arc::new(ManualClock::new(1_000_000));
        store
            .seed_settings(
                &Settings {
                    lockout_threshold: 3,
                    lockout_duration_minutes: 10,
                    ..Settings::default()
                },
                clock.now(),
            )
            .await
            .unwrap();
        let service = InProcessService::new(
            store.clone(),
            clock.clone(),
            twofold_server::secrets::Keyring::for_tests([7; 32]),
        )
        .unwrap();
        service
            .add_user("test", "bob", None, None, Some("bob's password"))
            .await
            .unwrap();
        let client = ClientContext::default();
        service
            .password_step("bob", "wrong one", &client)
            .await
            .unwrap_err();
        // A right password alone does not clear the count: the second factor is still to
        // come, and guesses at it must add up across sign-ins.
        service
            .password_step("bob", "bob's password", &client)
            .await
            .unwrap();
        assert_eq!(store.lockout("bob").await.unwrap().state.failures, 1);
        service
            .password_step("bob", "wrong one", &client)
            .await
            .unwrap_err();
        let locked = service
            .password_step("bob", "wrong one", &client)
            .await
            .unwrap_err();
        let until = 1_000_000 + 600;
        assert!(
            matches!(locked, ServiceError::Domain(twofold_engine::DomainError::UserLocked { until: u }) if u == until)
        );
        clock.advance(599);
        assert!(
            service
                .password_step("bob", "bob's password", &client)
                .await
                .is_err(),
            "still locked"
        );
        clock.advance(1);
        assert!(
            service
                .password_step("bob", "bob's password", &client)
                .await
                .is_ok(),
            "released by itself"
        );
    }
);

on_both!(
    sessions_expire_and_go_with_their_user,
    |store: Store| async move {
        let user = store
            .create_user(
                NewUser {
                    username: name("carol"),
                    email: None,
                    phone: None,
                    password_hash: None,
                },
                1,
            )
            .await
            .unwrap();
        let session = SessionRecord {
            id_hash: "h1".into(),
            user_id: user.id.clone(),
            created_at: 100,
            last_seen_at: 100,
            expires_at: 200,
            data: "{}".into(),
        };
        store.create_session(&session).await.unwrap();
        assert_eq!(
            store.session("h1", 150).await.unwrap(),
            Some(session.clone())
        );
        assert_eq!(
            store.session("h1", 200).await.unwrap(),
            None,
            "expired at its deadline"
        );
        store.touch_session("h1", 190, 300).await.unwrap();
        assert_eq!(
            store
                .session("h1", 250)
                .await
                .unwrap()
                .unwrap()
                .last_seen_at,
            190
        );
        assert_eq!(store.delete_expired_sessions(250).await.unwrap(), 0);
        assert_eq!(store.delete_expired_sessions(300).await.unwrap(), 1);

        store.create_session(&session).await.unwrap();
        assert!(store.delete_user(&name("carol")).await.unwrap());
        assert_eq!(
            store.session("h1", 150).await.unwrap(),
            None,
            "deleting a user ends their sessions"
        );
    }
);

on_both!(
    seeded_settings_do_not_overwrite_changes,
    |store: Store| async move {
        store.seed_settings(&Settings::default(), 1).await.unwrap();
        store
            .set_setting("lockout_threshold", &serde_json::json!(9), 2)
            .await
            .unwrap();
        store
            .seed_settings(
                &Settings {
                    lockout_threshold: 4,
                    ..Settings::default()
                },
                3,
            )
            .await
            .unwrap();
        let settings = store.settings().await.unwrap();
        assert_eq!(settings.lockout_threshold, 9);
        assert_eq!(settings.one_time_bypass_seconds, 300);
    }
);

on_both!(
    the_audit_log_keeps_order_and_every_field,
    |store: Store| async move {
        for i in 0..5 {
            store
                .append_audit(
                    &AuditEvent::new(i, AuditAction::SignIn, AuditOutcome::Failure, "portal")
                        .subject(format!("user{i}"))
                        .client(Some("192.0.2.1".into()), Some("UA".into()))
                        .detail("invalid_credentials"),
                )
                .await
                .unwrap();
        }
        let tail = store.audit_tail(3).await.unwrap();
        let subjects: Vec<_> = tail.iter().map(|r| r.subject.clone().unwrap()).collect();
        assert_eq!(subjects, ["user2", "user3", "user4"]);
        assert_eq!(tail[0].client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(tail[0].action, "sign_in");
        let since = store.audit_since(tail[0].id, 10).await.unwrap();
        assert_eq!(since.len(), 2);
    }
);

on_both!(
    a_batch_of_audit_events_is_kept_whole_and_in_order,
    |store: Store| async move {
        let events: Vec<AuditEvent> = (0..40)
            .map(|i| {
                let event = AuditEvent::new(
                    100 + i,
                    AuditAction::SignIn,
                    AuditOutcome::Success,
                    "sdk:app",
                )
                .subject(format!("user{i}"));
                // Absent fields in some rows, present in others.
                if i % 2 == 0 {
                    event
                        .client(Some(format!("192.0.2.{i}")), None)
                        .detail("oath")
                } else {
                    event
                }
            })
            .collect();
        store.append_audit_batch(&events[..1]).await.unwrap();
        store.append_audit_batch(&events[1..]).await.unwrap();
        let tail = store.audit_tail(100).await.unwrap();
        assert_eq!(tail.len(), 40);
        for (i, row) in tail.iter().enumerate() {
            assert_eq!(row.at, 100 + i as i64);
            assert_eq!(row.subject.as_deref(), Some(format!("user{i}").as_str()));
            assert_eq!(row.actor, "sdk:app");
            assert_eq!(row.outcome, "success");
            if i % 2 == 0 {
                assert_eq!(
                    row.client_ip.as_deref(),
                    Some(format!("192.0.2.{i}").as_str())
                );
                assert_eq!(row.detail.as_deref(), Some("oath"));
            } else {
                assert_eq!(row.client_ip, None);
                assert_eq!(row.detail, None);
            }
            assert_eq!(row.user_agent, None);
        }
    }
);

on_both!(a_shared_secret_is_made_once, |store: Store| async move {
    let first = store.server_secret("k", 1, || "one".into()).await.unwrap();
    let second = store.server_secret("k", 2, || "two".into()).await.unwrap();
    assert_eq!(first, "one");
    assert_eq!(second, "one");
    store.check_ready(3).await.unwrap();
});

on_both!(
    deleting_a_user_returns_their_hardware_token_to_the_inventory,
    |store: Store| async move {
        use twofold_engine::oath::OathParams;
        use twofold_server::store::{NewToken, TokenKind, TokenStatus};
        let user = store
            .create_user(
                NewUser {
                    username: name("olga"),
                    email: None,
                    phone: None,
                    password_hash: None,
                },
                1,
            )
            .await
            .unwrap();
        let token = |id: &str, kind: TokenKind, serial: Option<&str>| NewToken {
            id: id.into(),
            serial: serial.map(str::to_owned),
            user_id: Some(user.id.clone()),
            kind,
            params: OathParams::default(),
            counter: 0,
            secret_sealed: "v1:k:x".into(),
            key_id: "k".into(),
            status: TokenStatus::Active,
        };
        store
            .import_tokens(
                &[
                    token("hw", TokenKind::Hardware, Some("HW-1")),
                    token("sw", TokenKind::Software, None),
                ],
                1,
            )
            .await
            .unwrap();
        assert!(store.delete_user(&name("olga")).await.unwrap());
        let hw = store.token_by_serial("HW-1").await.unwrap().unwrap();
        assert_eq!(hw.status, TokenStatus::Available);
        assert_eq!(hw.user_id, None);
        assert_eq!(
            store.token("sw").await.unwrap(),
            None,
            "the app's token went with the user"
        );
    }
);

on_both!(
    a_code_is_spent_once_and_only_its_spending_clears_the_counters,
    |store: Store| async move {
        use twofold_engine::LockoutPolicy;
        use twofold_engine::oath::{OathParams, OathState};
        use twofold_server::store::{NewToken, TokenKind, TokenStatus};
        let user = store
            .create_user(
                NewUser {
                    username: name("pia"),
                    email: None,
                    phone: None,
                    password_hash: None,
                },
                1,
            )
            .await
            .unwrap();
        let (read, token) = store
            .user_with_active_token(&user.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(read, user);
        assert_eq!(token, None, "no token yet");
        assert_eq!(store.user_with_active_token("nobody").await.unwrap(), None);
        store
            .import_tokens(
                &[NewToken {
                    id: "t1".into(),
                    serial: None,
                    user_id: Some(user.id.clone()),
                    kind: TokenKind::Software,
                    params: OathParams::default(),
                    counter: 0,
                    secret_sealed: "v1:k:x".into(),
                    key_id: "k".into(),
                    status: TokenStatus::Active,
                }],
                1,
            )
            .await
            .unwrap();
        let (_, token) = store
            .user_with_active_token(&user.id)
            .await
            .unwrap()
            .unwrap();
        let token = token.unwrap();
        assert_eq!(Some(&token), store.token("t1").await.unwrap().as_ref());

        let policy = LockoutPolicy {
            threshold: 5,
            window_seconds: 600,
            duration_seconds: 900,
            hard_cap: 100,
        };
        assert!(store.reserve_attempt("pia", 1_000, policy).await.unwrap());
        let next = OathState {
            counter: 0,
            last_step: Some(42),
            drift: 0,
        };
        // A stale version (another request spent the code first): nothing changes.
        assert!(
            !store
                .advance_token_and_settle_success("t1", token.version + 1, &next, "pia", 1_001)
                .await
                .unwrap()
        );
        assert_eq!(store.lockout("pia").await.unwrap().state.failures, 1);
        assert_eq!(
            store.token("t1").await.unwrap().unwrap().state.last_step,
            None
        );
        // The first spending wins and clears the counters; the same version again loses.
        assert!(
            store
                .advance_token_and_settle_success("t1", token.version, &next, "pia", 1_001)
                .await
                .unwrap()
        );
        assert_eq!(store.lockout("pia").await.unwrap().version, None);
        assert_eq!(
            store.token("t1").await.unwrap().unwrap().state.last_step,
            Some(42)
        );
        assert!(
            !store
                .advance_token_and_settle_success("t1", token.version, &next, "pia", 1_002)
                .await
                .unwrap()
        );
        // A lock in force stays; the counters go.
        for _ in 0..5 {
            assert!(store.reserve_attempt("pia", 2_000, policy).await.unwrap());
        }
        assert!(
            store
                .settle_failure("pia", 2_000, policy)
                .await
                .unwrap()
                .locked
        );
        let token = store.token("t1").await.unwrap().unwrap();
        let later = OathState {
            last_step: Some(43),
            ..next
        };
        assert!(
            store
                .advance_token_and_settle_success("t1", token.version, &later, "pia", 2_001)
                .await
                .unwrap()
        );
        let state = store.lockout("pia").await.unwrap().state;
        assert_eq!(state.locked_at(2_001), Some(2_900), "{state:?}");
        assert_eq!(state.consecutive, 0);
    }
);

// ---- security questions at AAL2 and the password rule (security review, issue 8) ----

/// The four answers every questions test enrols.
const ANSWERS: [(&str, &str); 4] = [
    ("en-1", "Rex"),
    ("en-2", "Lyon"),
    ("en-3", "Jules Ferry"),
    ("en-4", "Renault"),
];

fn answer_of(question: &str) -> String {
    ANSWERS
        .iter()
        .find(|(q, _)| *q == question)
        .map(|(_, a)| a.to_string())
        .unwrap()
}

/// A service whose fallback asks two of the user's four questions, with "quinn" enrolled.
async fn quinn_with_answers(store: &Store) -> (InProcessService, String, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    store
        .seed_settings(
            &Settings {
                security_questions_fallback: true,
                security_questions_required: 2,
                lockout_threshold: 100,
                ..Settings::default()
            },
            clock.now(),
        )
        .await
        .unwrap();
    let service = InProcessService::new(
        store.clone(),
        clock.clone(),
        twofold_server::secrets::Keyring::for_tests([7; 32]),
    )
    .unwrap();
    service.seed_questions().await.unwrap();
    let user = service
        .add_user("test", "quinn", None, None, Some("quinn's password"))
        .await
        .unwrap();
    let given: Vec<(String, String)> = ANSWERS
        .iter()
        .map(|(q, a)| (q.to_string(), a.to_string()))
        .collect();
    service
        .change_answers(&user.id, &given, &ClientContext::default())
        .await
        .unwrap();
    (service, user.id, clock)
}

async fn drawn(service: &InProcessService, user_id: &str) -> Vec<String> {
    service
        .draw_questions(user_id)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.id)
        .collect()
}

on_both!(
    one_known_answer_repeated_to_make_up_the_count_is_refused,
    |store: Store| async move {
        use twofold_engine::DomainError;
        let (service, user_id, _clock) = quinn_with_answers(&store).await;
        let client = ClientContext::default();
        let draw = drawn(&service, &user_id).await;
        assert_eq!(draw.len(), 2);
        let known = draw[0].clone();

        // The attacker knows one answer and claims its question was asked twice.
        let asked = vec![known.clone(), known.clone()];
        let given = vec![
            (known.clone(), answer_of(&known)),
            (known.clone(), answer_of(&known)),
        ];
        let refused = service
            .check_answers(&user_id, &asked, &given, &client)
            .await;
        assert!(
            matches!(refused, Err(ServiceError::Domain(DomainError::WrongStep))),
            "{refused:?}"
        );

        // Or claims the two questions they know were asked, instead of the draw.
        let chosen: Vec<String> = ANSWERS
            .iter()
            .map(|(q, _)| q.to_string())
            .filter(|q| !draw.contains(q))
            .collect();
        let given: Vec<(String, String)> =
            chosen.iter().map(|q| (q.clone(), answer_of(q))).collect();
        let refused = service
            .check_answers(&user_id, &chosen, &given, &client)
            .await;
        assert!(
            matches!(refused, Err(ServiceError::Domain(DomainError::WrongStep))),
            "{refused:?}"
        );

        // Or answers the real draw with the one known answer for every question.
        let given: Vec<(String, String)> = draw
            .iter()
            .map(|_| (known.clone(), answer_of(&known)))
            .collect();
        let refused = service
            .check_answers(&user_id, &draw, &given, &client)
            .await;
        assert!(
            matches!(
                refused,
                Err(ServiceError::Domain(DomainError::WrongAnswers))
            ),
            "{refused:?}"
        );

        // The draw with its right answers, each once, passes.
        let right: Vec<(String, String)> = draw.iter().map(|q| (q.clone(), answer_of(q))).collect();
        let via = service
            .check_answers(&user_id, &draw, &right, &client)
            .await
            .unwrap();
        assert_eq!(via, twofold_engine::flow::Via::SecurityQuestions);
    }
);

on_both!(
    signing_in_again_asks_the_same_questions_until_an_hour_passes_without_asking,
    |store: Store| async move {
        let (service, user_id, clock) = quinn_with_answers(&store).await;
        let first = drawn(&service, &user_id).await;
        // Every sign-in within the hour gets the same draw, and keeps it for another hour.
        for _ in 0..12 {
            clock.advance(50 * 60);
            assert_eq!(drawn(&service, &user_id).await, first);
        }
        // An hour without a draw ends it: the next one is new (the same two questions in
        // the same order by chance once in twelve, so a few tries).
        let mut renewed = false;
        for _ in 0..30 {
            clock.advance(3600);
            if drawn(&service, &user_id).await != first {
                renewed = true;
                break;
            }
        }
        assert!(renewed, "the draw never ended");
    }
);

on_both!(
    answers_given_after_the_draw_ended_are_not_checked,
    |store: Store| async move {
        use twofold_engine::DomainError;
        let (service, user_id, clock) = quinn_with_answers(&store).await;
        let draw = drawn(&service, &user_id).await;
        clock.advance(3600);
        let right: Vec<(String, String)> = draw.iter().map(|q| (q.clone(), answer_of(q))).collect();
        let refused = service
            .check_answers(&user_id, &draw, &right, &ClientContext::default())
            .await;
        assert!(
            matches!(refused, Err(ServiceError::Domain(DomainError::WrongStep))),
            "{refused:?}"
        );
    }
);

on_both!(
    new_answers_end_the_draw_and_a_kept_draw_survives_a_concurrent_one,
    |store: Store| async move {
        let user = store
            .create_user(
                NewUser {
                    username: name("rita"),
                    email: None,
                    phone: None,
                    password_hash: None,
                },
                1000,
            )
            .await
            .unwrap();
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (a, b) = (ids(&["en-1", "en-2"]), ids(&["en-3", "en-4"]));
        assert_eq!(store.question_draw(&user.id, 1000).await.unwrap(), None);
        assert_eq!(
            store
                .keep_question_draw(&user.id, &a, 1000, 4600, false)
                .await
                .unwrap(),
            a
        );
        // A second sign-in drawing at the same time gets the first draw, which lasts longer.
        assert_eq!(
            store
                .keep_question_draw(&user.id, &b, 1001, 4700, false)
                .await
                .unwrap(),
            a
        );
        assert_eq!(
            store.question_draw(&user.id, 4699).await.unwrap(),
            Some(a.clone())
        );
        assert_eq!(store.question_draw(&user.id, 4700).await.unwrap(), None);
        // Once it ended, a new draw is kept.
        assert_eq!(
            store
                .keep_question_draw(&user.id, &b, 4700, 8300, false)
                .await
                .unwrap(),
            b
        );
        // A draw that no longer fits is replaced on purpose.
        assert_eq!(
            store
                .keep_question_draw(&user.id, &a, 4701, 8301, true)
                .await
                .unwrap(),
            a
        );
        // New answers leave nothing of the old draw.
        store.replace_answers(&user.id, &[], 5000).await.unwrap();
        assert_eq!(store.question_draw(&user.id, 5000).await.unwrap(), None);
    }
);

on_both!(
    an_existing_eight_character_password_still_signs_in_but_cannot_be_set,
    |store: Store| async move {
        let clock = Arc::new(ManualClock::new(1_000_000));
        store
            .seed_settings(&Settings::default(), clock.now())
            .await
            .unwrap();
        let service = InProcessService::new(
            store.clone(),
            clock.clone(),
            twofold_server::secrets::Keyring::for_tests([7; 32]),
        )
        .unwrap();
        // A hash written before the 12-character rule, as the old `user add` wrote it.
        let old = twofold_engine::PasswordHasher::new()
            .unwrap()
            .hash_secret("olga1234")
            .unwrap();
        store
            .create_user(
                NewUser {
                    username: name("olga"),
                    email: None,
                    phone: None,
                    password_hash: Some(old),
                },
                clock.now(),
            )
            .await
            .unwrap();
        let progress = service
            .password_step("olga", "olga1234", &ClientContext::default())
            .await
            .unwrap();
        assert_eq!(progress.username, "olga");
        let refused = service
            .add_user("test", "pavel", None, None, Some("pavel123"))
            .await;
        assert!(
            matches!(
                refused,
                Err(ServiceError::Domain(twofold_engine::DomainError::Password(
                    twofold_engine::PasswordError::TooShort
                )))
            ),
            "{refused:?}"
        );
    }
);

on_both!(
    an_authentication_moves_only_from_the_version_read_and_signs_in_once,
    |store: Store| async move {
        use twofold_engine::authentication::{Authentication, Origin, State, Step};
        use twofold_engine::flow::Via;
        let user = store
            .create_user(
                NewUser {
                    username: name("dora"),
                    email: None,
                    phone: None,
                    password_hash: None,
                },
                1,
            )
            .await
            .unwrap();
        let a = Authentication {
            id: "auth1".into(),
            user_id: user.id.clone(),
            username: "dora".into(),
            origin: Origin::Sdk,
            started_by: "sdk:app1".into(),
            state: State::Pending(Step::SecurityQuestions {
                asked: vec!["en-1".into(), "en-2".into()],
            }),
            attempts: 0,
            client_ip: Some("198.51.100.7".into()),
            context: Some(r#"{"application":"vpn"}"#.into()),
            channel: None,
            message_id: None,
            code_hash: None,
            created_at: 100,
            expires_at: 400,
            consumed_at: None,
            version: 1,
        };
        store.create_authentication(&a).await.unwrap();
        assert_eq!(
            store.authentication("auth1").await.unwrap(),
            Some(a.clone())
        );

        // Answers are counted up to the maximum, and not after the expiry.
        for n in 1..=2 {
            let reserved = store
                .reserve_authentication_attempt("auth1", 2, 200)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(reserved.attempts, n);
        }
        assert_eq!(
            store
                .reserve_authentication_attempt("auth1", 2, 200)
                .await
                .unwrap(),
            None
        );
        store.release_authentication_attempt("auth1").await.unwrap();
        assert_eq!(
            store
                .reserve_authentication_attempt("auth1", 5, 400)
                .await
                .unwrap(),
            None,
            "expired"
        );

        // A move from a version somebody else moved on from is refused.
        let approved = State::Approved {
            via: Via::SecurityQuestions,
        };
        assert!(!store.move_authentication(&a, &approved).await.unwrap());
        let now = store.authentication("auth1").await.unwrap().unwrap();
        assert!(store.move_authentication(&now, &approved).await.unwrap());
        assert!(!store.move_authentication(&now, &approved).await.unwrap());
        let read = store.authentication("auth1").await.unwrap().unwrap();
        assert_eq!(read.state, approved);
        assert_eq!(read.attempts, 1);

        // It signs a session in once.
        assert!(store.consume_authentication("auth1", 300).await.unwrap());
        assert!(!store.consume_authentication("auth1", 301).await.unwrap());
        assert_eq!(
            store
                .authentication("auth1")
                .await
                .unwrap()
                .unwrap()
                .consumed_at,
            Some(300)
        );

        // Forgotten once old.
        assert_eq!(store.delete_old_authentications(401).await.unwrap(), 1);
        assert_eq!(store.authentication("auth1").await.unwrap(), None);
    }
);
