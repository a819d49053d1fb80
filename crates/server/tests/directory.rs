//! The password step over a directory: whatever a directory answers, only its acceptance of
//! a user Twofold holds signs anyone in; its refusals count towards lockout like a wrong
//! password, and its outages count nothing and say so.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twofold_engine::{Clock, DomainError, ManualClock, Settings, Username};
use twofold_server::config::{DatabaseTarget, SyncItem};
use twofold_server::directory::{
    Directory, DirectoryAccount, DirectoryError, DirectoryOutcome, account_part,
};
use twofold_server::secrets::Keyring;
use twofold_server::service::{ClientContext, InProcessService, ServiceError};
use twofold_server::store::{Store, UserChanges};

/// A directory that answers what the test tells it to, and counts the questions.
struct FakeDirectory {
    kind: &'static str,
    answer: Mutex<Result<DirectoryOutcome, DirectoryError>>,
    asked: AtomicUsize,
    /// The names it was asked about, as the user typed them.
    logins: Mutex<Vec<String>>,
}

impl FakeDirectory {
    fn answering(answer: Result<DirectoryOutcome, DirectoryError>) -> Arc<Self> {
        Arc::new(Self {
            kind: "fake",
            answer: Mutex::new(answer),
            asked: AtomicUsize::new(0),
            logins: Mutex::new(Vec::new()),
        })
    }

    fn set(&self, answer: Result<DirectoryOutcome, DirectoryError>) {
        *self.answer.lock().unwrap() = answer;
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Directory for FakeDirectory {
    fn kind(&self) -> &'static str {
        self.kind
    }

    /// Like Active Directory, it accepts `CORP\alice` and `alice@corp.example`.
    fn account_name(&self, login: &Username) -> Username {
        Username::parse(account_part(login.as_str())).unwrap_or_else(|_| login.clone())
    }

    async fn check_password(
        &self,
        username: &Username,
        _password: &str,
    ) -> Result<DirectoryOutcome, DirectoryError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.logins
            .lock()
            .unwrap()
            .push(username.as_str().to_owned());
        self.answer.lock().unwrap().clone()
    }
}

fn accepted(username: &str) -> Result<DirectoryOutcome, DirectoryError> {
    Ok(DirectoryOutcome::Accepted(DirectoryAccount {
        username: username.to_owned(),
        email: None,
        phone: None,
        ..Default::default()
    }))
}

fn unavailable() -> Result<DirectoryOutcome, DirectoryError> {
    Err(DirectoryError::Unavailable {
        directory: "fake",
        reason: "no server answered".into(),
    })
}

struct Setup {
    service: InProcessService,
    store: Store,
    directory: Arc<FakeDirectory>,
    _dir: tempfile::TempDir,
}

/// A service over a fresh SQLite store whose passwords are checked by a fake directory.
/// `alice` exists in Twofold (without a local password: only the directory knows it).
async fn setup(answer: Result<DirectoryOutcome, DirectoryError>, threshold: u32) -> Setup {
    setup_with(
        FakeDirectory::answering(answer),
        Settings {
            lockout_threshold: threshold,
            ..Settings::default()
        },
        Vec::new(),
    )
    .await
}

async fn setup_with(
    directory: Arc<FakeDirectory>,
    settings: Settings,
    items: Vec<SyncItem>,
) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(
        &DatabaseTarget::Sqlite(dir.path().join("t.db")),
        4,
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    store.seed_settings(&settings, clock.now()).await.unwrap();
    let service = InProcessService::new(store.clone(), clock, Keyring::for_tests([7; 32]))
        .unwrap()
        .with_directory(directory.clone())
        .with_sync_items(items);
    service
        .add_user("test", "alice", None, None, None)
        .await
        .unwrap();
    Setup {
        service,
        store,
        directory,
        _dir: dir,
    }
}

async fn failures(store: &Store, username: &str) -> u32 {
    store.lockout(username).await.unwrap().state.failures
}

async fn last_sign_in_detail(store: &Store) -> (String, String, Option<String>) {
    let row = store
        .audit_tail(50)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "sign_in" || r.action == "password_verified")
        .max_by_key(|r| r.id)
        .expect("an audited sign-in");
    (row.action, row.outcome, row.detail)
}

#[tokio::test]
async fn the_directorys_acceptance_signs_in_the_user_twofold_holds() {
    let s = setup(accepted("alice"), 5).await;
    let progress = s
        .service
        .password_step(
            "alice",
            "the directory's password",
            &ClientContext::default(),
        )
        .await;
    assert!(progress.is_ok(), "{progress:?}");
    assert_eq!(s.directory.asked(), 1);
    assert_eq!(failures(&s.store, "alice").await, 0);
}

#[tokio::test]
async fn a_directory_refusal_signs_nobody_in_counts_as_a_failure_and_says_why() {
    for (refusal, told) in [
        (DirectoryOutcome::Rejected, DomainError::InvalidCredentials),
        (
            DirectoryOutcome::AccountDisabled,
            DomainError::AccountDisabled,
        ),
        (
            DirectoryOutcome::PasswordExpired,
            DomainError::PasswordExpired,
        ),
    ] {
        let s = setup(Ok(refusal.clone()), 5).await;
        for attempt in 1..=2 {
            let result = s
                .service
                .password_step("alice", "whatever", &ClientContext::default())
                .await;
            assert!(
                matches!(&result, Err(ServiceError::Domain(e)) if *e == told),
                "{refusal:?}: {result:?}"
            );
            assert_eq!(failures(&s.store, "alice").await, attempt, "{refusal:?}");
        }
        let (action, outcome, detail) = last_sign_in_detail(&s.store).await;
        assert_eq!(
            (action.as_str(), outcome.as_str(), detail.as_deref()),
            ("sign_in", "failure", Some(refusal.code())),
        );
    }
}

#[tokio::test]
async fn directory_refusals_lock_the_user_and_a_locked_user_never_reaches_the_directory() {
    let s = setup(Ok(DirectoryOutcome::Rejected), 3).await;
    for _ in 0..3 {
        let _ = s
            .service
            .password_step("alice", "guess", &ClientContext::default())
            .await;
    }
    // The directory now says yes (the attacker found the password): the lock holds.
    s.directory.set(accepted("alice"));
    let asked = s.directory.asked();
    let result = s
        .service
        .password_step("alice", "the right one", &ClientContext::default())
        .await;
    assert!(
        matches!(
            result,
            Err(ServiceError::Domain(DomainError::UserLocked { .. }))
        ),
        "{result:?}"
    );
    assert_eq!(s.directory.asked(), asked, "the directory was not asked");
}

#[tokio::test]
async fn a_directory_that_cannot_answer_signs_nobody_in_says_so_and_counts_no_failure() {
    let s = setup(unavailable(), 3).await;
    for _ in 0..5 {
        let result = s
            .service
            .password_step("alice", "the right one", &ClientContext::default())
            .await;
        assert!(
            matches!(
                result,
                Err(ServiceError::Domain(DomainError::DirectoryUnavailable))
            ),
            "expected the directory's outage, got {result:?}"
        );
    }
    assert_eq!(
        failures(&s.store, "alice").await,
        0,
        "an outage is not the user's failure (five outages would have locked at three)"
    );
    let (action, outcome, detail) = last_sign_in_detail(&s.store).await;
    assert_eq!(
        (action.as_str(), outcome.as_str(), detail.as_deref()),
        ("sign_in", "failure", Some("directory_unavailable")),
    );
    // The directory comes back: the user signs in at once.
    s.directory.set(accepted("alice"));
    let progress = s
        .service
        .password_step("alice", "the right one", &ClientContext::default())
        .await;
    assert!(progress.is_ok(), "{progress:?}");
}

#[tokio::test]
async fn an_accepted_account_twofold_does_not_hold_or_has_disabled_signs_nobody_in() {
    // The directory vouches for someone else, or for nobody Twofold knows.
    for vouched in ["mallory", "not a valid username!"] {
        let s = setup(accepted(vouched), 5).await;
        let result = s
            .service
            .password_step("alice", "whatever", &ClientContext::default())
            .await;
        assert!(
            matches!(
                result,
                Err(ServiceError::Domain(DomainError::InvalidCredentials))
            ),
            "{vouched}: {result:?}"
        );
        assert_eq!(failures(&s.store, "alice").await, 1);
    }
    // Twofold disabled alice: the directory's yes is not enough.
    let s = setup(accepted("alice"), 5).await;
    s.store
        .update_user(
            &Username::parse("alice").unwrap(),
            UserChanges {
                enabled: Some(false),
                ..UserChanges::default()
            },
            1_000_001,
        )
        .await
        .unwrap();
    let result = s
        .service
        .password_step("alice", "whatever", &ClientContext::default())
        .await;
    assert!(
        matches!(
            result,
            Err(ServiceError::Domain(DomainError::InvalidCredentials))
        ),
        "{result:?}"
    );
    assert_eq!(failures(&s.store, "alice").await, 1);
}

#[tokio::test]
async fn every_form_of_a_windows_sign_in_name_counts_on_one_lockout_and_signs_in_one_user() {
    let s = setup(Ok(DirectoryOutcome::Rejected), 3).await;
    for login in ["CORP\\alice", "alice@corp.example"] {
        let _ = s
            .service
            .password_step(login, "guess", &ClientContext::default())
            .await;
    }
    assert_eq!(
        failures(&s.store, "alice").await,
        2,
        "two forms, one person: the guesses add up"
    );
    let third = s
        .service
        .password_step("Alice", "guess", &ClientContext::default())
        .await;
    assert!(
        matches!(
            third,
            Err(ServiceError::Domain(DomainError::UserLocked { .. }))
        ),
        "the third guess, in a third form, locks the one account: {third:?}"
    );
    // The directory saw the names as they were typed (it may need the domain part).
    assert_eq!(
        *s.directory.logins.lock().unwrap(),
        ["corp\\alice", "alice@corp.example", "alice"]
    );
    // The lock holds whatever form comes next, even with the right password.
    s.directory.set(accepted("alice"));
    let result = s
        .service
        .password_step("CORP\\alice", "the right one", &ClientContext::default())
        .await;
    assert!(
        matches!(
            result,
            Err(ServiceError::Domain(DomainError::UserLocked { .. }))
        ),
        "{result:?}"
    );
    s.service.unlock_user("test", "alice").await.unwrap();
    let signed_in = s
        .service
        .password_step(
            "alice@corp.example",
            "the right one",
            &ClientContext::default(),
        )
        .await;
    assert!(signed_in.is_ok(), "{signed_in:?}");
}

/// An LDAP-like directory that accepts `dora`, a member of the MFA group, whom Twofold does
/// not hold yet.
fn ldap_accepting_dora() -> Arc<FakeDirectory> {
    Arc::new(FakeDirectory {
        kind: "ldap",
        answer: Mutex::new(Ok(DirectoryOutcome::Accepted(DirectoryAccount {
            username: "dora".into(),
            email: Some("dora@corp.example".into()),
            language: Some("fr".into()),
            unique_id: Some("4f1c1f52-8d0e-4a43-9d25-0c3a9b1e6b10".into()),
            groups: vec!["cn=mfa-users,ou=groups,dc=corp,dc=example".into()],
            dn: "uid=dora,ou=people,dc=corp,dc=example".into(),
            ..Default::default()
        }))),
        asked: AtomicUsize::new(0),
        logins: Mutex::new(Vec::new()),
    })
}

fn item(group: &str, method: &str) -> SyncItem {
    SyncItem {
        group: Some(group.into()),
        base_dn: None,
        method: Some(method.into()),
        language: None,
    }
}

#[tokio::test]
async fn a_directory_user_twofold_does_not_hold_is_created_at_first_sign_in_when_the_setting_says_so()
 {
    let items = vec![
        item("cn=vpn,ou=groups,dc=corp,dc=example", "sms"),
        item("CN=MFA-Users,OU=Groups,DC=corp,DC=example", "oath"),
    ];
    let on = Settings {
        create_users_on_sign_in: true,
        ..Settings::default()
    };
    let s = setup_with(ldap_accepting_dora(), on, items).await;
    let progress = s
        .service
        .password_step("dora", "her directory password", &ClientContext::default())
        .await;
    assert!(progress.is_ok(), "{progress:?}");
    let dora = s
        .store
        .user_by_username(&Username::parse("dora").unwrap())
        .await
        .unwrap()
        .expect("dora was created");
    assert_eq!(dora.source, "ldap");
    assert_eq!(dora.email.as_deref(), Some("dora@corp.example"));
    assert_eq!(dora.language.as_deref(), Some("fr"));
    assert_eq!(
        dora.method.as_deref(),
        Some("oath"),
        "the first matching item's method"
    );
    assert!(dora.password_hash.is_none(), "no password is kept");
    let events = s.store.audit_tail(20).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "user_created" && e.subject.as_deref() == Some("dora")),
        "the creation is audited"
    );
}

#[tokio::test]
async fn without_the_setting_or_outside_every_sync_item_nobody_is_created_at_sign_in() {
    // The setting is off (the default).
    let s = setup_with(ldap_accepting_dora(), Settings::default(), Vec::new()).await;
    let refused = s
        .service
        .password_step("dora", "her directory password", &ClientContext::default())
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Domain(DomainError::InvalidCredentials))
        ),
        "{refused:?}"
    );
    assert!(
        s.store
            .user_by_username(&Username::parse("dora").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // The setting is on, but the items say who belongs, and dora is in none of them.
    let on = Settings {
        create_users_on_sign_in: true,
        ..Settings::default()
    };
    let s = setup_with(
        ldap_accepting_dora(),
        on,
        vec![item("cn=vpn,ou=groups,dc=corp,dc=example", "oath")],
    )
    .await;
    let refused = s
        .service
        .password_step("dora", "her directory password", &ClientContext::default())
        .await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(
        s.store
            .user_by_username(&Username::parse("dora").unwrap())
            .await
            .unwrap()
            .is_none()
    );
}
