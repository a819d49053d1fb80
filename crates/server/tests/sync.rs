//! Users from the directory: the store's directory users and leases (on SQLite and on a
//! real PostgreSQL server), and the import and sync use cases over an in-memory directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twofold_engine::{Clock, ManualClock, Settings, Username};
use twofold_server::channels::{DeliveryError, Email, EmailChannel, MessageId};
use twofold_server::config::{DatabaseTarget, Secret, SyncItem};
use twofold_server::directory::{DirectoryAccount, DirectoryError, EntryScope, UserSource};
use twofold_server::secrets::Keyring;
use twofold_server::service::InProcessService;
use twofold_server::service::directory_sync::{NoProgress, RunError};
use twofold_server::store::{DirectoryUser, Store, StoreError, UserOrigin, Written};

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
    let name = format!("sync_{}", hex::encode(rand::random::<[u8; 8]>()));
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

fn directory_user(username: &str, external_id: Option<&str>, email: &str) -> DirectoryUser {
    DirectoryUser {
        username: username.into(),
        origin: UserOrigin::Ldap,
        external_id: external_id.map(str::to_owned),
        email: Some(email.into()),
        phone: None,
        extension: None,
        mobile_phone: None,
        language: None,
        method: None,
        invite: false,
    }
}

on_both!(
    of_two_nodes_asking_for_a_lease_at_once_one_gets_it_and_an_expired_lease_can_be_taken,
    |store: Store| async move {
        let (a, b) = tokio::join!(
            store.take_lease("directory_sync", "node-a", 60, 1_000),
            store.take_lease("directory_sync", "node-b", 60, 1_000)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a != b, "exactly one node holds the lease: a={a} b={b}");
        let (holder, other) = if a {
            ("node-a", "node-b")
        } else {
            ("node-b", "node-a")
        };
        assert!(
            !store
                .take_lease("directory_sync", other, 60, 1_059)
                .await
                .unwrap()
        );
        assert!(
            !store
                .take_lease("directory_sync", holder, 60, 1_059)
                .await
                .unwrap(),
            "a held lease is not taken again, even by its holder"
        );
        // A lease whose holder died expires.
        assert!(
            store
                .take_lease("directory_sync", other, 60, 1_061)
                .await
                .unwrap()
        );
        // The old holder cannot release or extend what it no longer holds.
        store.release_lease("directory_sync", holder).await.unwrap();
        assert!(
            !store
                .hold_lease_until("directory_sync", holder, 9_999)
                .await
                .unwrap()
        );
        assert!(
            !store
                .take_lease("directory_sync", holder, 60, 1_062)
                .await
                .unwrap()
        );
        store.release_lease("directory_sync", other).await.unwrap();
        assert!(
            store
                .take_lease("directory_sync", holder, 60, 1_062)
                .await
                .unwrap()
        );
        // Another lease name is independent.
        assert!(
            store
                .take_lease("invitations", other, 60, 1_062)
                .await
                .unwrap()
        );
    }
);

on_both!(
    a_directory_user_renamed_in_the_directory_is_renamed_not_duplicated,
    |store: Store| async move {
        let added = store
            .write_directory_user(
                &directory_user("alice", Some("guid-1"), "a@example.com"),
                10,
                false,
                &|_| None,
            )
            .await
            .unwrap();
        let Written::Added(first) = added else {
            panic!("{added:?}")
        };
        assert_eq!(first.source, "ldap");
        let again = store
            .write_directory_user(
                &directory_user("alice", Some("guid-1"), "a@example.com"),
                11,
                false,
                &|_| None,
            )
            .await
            .unwrap();
        assert!(matches!(again, Written::Unchanged(_)), "{again:?}");
        let renamed = store
            .write_directory_user(
                &directory_user("alice.m", Some("guid-1"), "a@example.com"),
                12,
                false,
                &|_| None,
            )
            .await
            .unwrap();
        let Written::Updated { user, changed } = renamed else {
            panic!("{renamed:?}")
        };
        assert_eq!(
            (user.id.as_str(), changed),
            (first.id.as_str(), vec!["username"])
        );
        let all = store.users_of_origin(UserOrigin::Ldap).await.unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].username, "alice.m");
    }
);

on_both!(
    a_directory_account_cannot_take_over_a_username_that_belongs_to_another,
    |store: Store| async move {
        store
            .write_directory_user(
                &directory_user("bob", Some("guid-bob"), "bob@example.com"),
                10,
                false,
                &|_| None,
            )
            .await
            .unwrap();
        // Another account of the directory (another id) calls itself bob, with its own
        // email: it must not receive bob's account and its second factors.
        let err = store
            .write_directory_user(
                &directory_user("bob", Some("guid-mallory"), "mallory@evil.example"),
                11,
                false,
                &|_| None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
        let bob = store
            .user_by_username(&Username::parse("bob").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(bob.email.as_deref(), Some("bob@example.com"));
        assert_eq!(bob.external_id.as_deref(), Some("guid-bob"));
        // Renaming onto a taken username fails and changes nothing either.
        store
            .write_directory_user(
                &directory_user("carol", Some("guid-carol"), "c@example.com"),
                12,
                false,
                &|_| None,
            )
            .await
            .unwrap();
        let err = store
            .write_directory_user(
                &directory_user("bob", Some("guid-carol"), "c@example.com"),
                13,
                false,
                &|_| None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err:?}");
        assert_eq!(
            store.users_of_origin(UserOrigin::Ldap).await.unwrap().len(),
            2
        );
    }
);

on_both!(
    a_dry_run_writes_nothing_and_a_user_found_gone_is_disabled_and_signed_out,
    |store: Store| async move {
        let dry = store
            .write_directory_user(
                &directory_user("dora", Some("guid-d"), "d@example.com"),
                10,
                true,
                &|_| None,
            )
            .await
            .unwrap();
        assert!(matches!(dry, Written::Added(_)));
        assert!(
            store
                .users_of_origin(UserOrigin::Ldap)
                .await
                .unwrap()
                .is_empty()
        );
        let Written::Added(dora) = store
            .write_directory_user(
                &directory_user("dora", Some("guid-d"), "d@example.com"),
                10,
                false,
                &|_| None,
            )
            .await
            .unwrap()
        else {
            panic!()
        };
        let session = twofold_server::store::SessionRecord {
            id_hash: "dora-session".into(),
            user_id: dora.id.clone(),
            created_at: 10,
            last_seen_at: 10,
            expires_at: 10_000,
            data: "{}".into(),
        };
        store.create_session(&session).await.unwrap();
        assert!(store.session("dora-session", 15).await.unwrap().is_some());
        store.mark_left_directory(&dora.id, 20).await.unwrap();
        assert!(
            store.session("dora-session", 21).await.unwrap().is_none(),
            "a user found gone is signed out"
        );
        store.mark_left_directory(&dora.id, 30).await.unwrap();
        let left = store.user_by_id(&dora.id).await.unwrap().unwrap();
        assert!(!left.enabled);
        assert_eq!(
            left.left_directory_at,
            Some(20),
            "the first time they were found gone"
        );
    }
);

// ---------------------------------------------------------------------------------------
// The import and the sync, over an in-memory directory

/// A directory held in memory: its accounts, and whether it answers.
#[derive(Default)]
struct MemoryDirectory {
    accounts: Mutex<Vec<DirectoryAccount>>,
    /// Scopes (by `Debug` text) it cannot answer.
    failing: Mutex<Vec<String>>,
}

impl MemoryDirectory {
    fn set(&self, accounts: Vec<DirectoryAccount>) {
        *self.accounts.lock().unwrap() = accounts;
    }
    fn edit(&self, username: &str, change: impl FnOnce(&mut DirectoryAccount)) {
        let mut accounts = self.accounts.lock().unwrap();
        change(
            accounts
                .iter_mut()
                .find(|a| a.username == username)
                .unwrap(),
        );
    }
    fn remove(&self, usernames: &[&str]) {
        self.accounts
            .lock()
            .unwrap()
            .retain(|a| !usernames.contains(&a.username.as_str()));
    }
}

#[async_trait]
impl UserSource for MemoryDirectory {
    async fn entries(&self, scope: &EntryScope) -> Result<Vec<DirectoryAccount>, DirectoryError> {
        if self.failing.lock().unwrap().contains(&format!("{scope:?}")) {
            return Err(DirectoryError::Unavailable {
                directory: "ldap",
                reason: "connection refused".into(),
            });
        }
        let accounts = self.accounts.lock().unwrap().clone();
        Ok(accounts
            .into_iter()
            .filter(|a| match scope {
                EntryScope::Group(group) => a.groups.iter().any(|g| g.eq_ignore_ascii_case(group)),
                EntryScope::Base(Some(base)) => a.dn.to_lowercase().ends_with(&base.to_lowercase()),
                EntryScope::Base(None) => true,
            })
            .collect())
    }
}

const ADMINS: &str = "cn=mfa-admins,ou=groups,dc=example,dc=com";
const PEOPLE: &str = "ou=people,dc=example,dc=com";

fn account(username: &str, groups: &[&str]) -> DirectoryAccount {
    DirectoryAccount {
        username: username.into(),
        email: Some(format!("{username}@example.com")),
        unique_id: Some(format!("guid-{username}")),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        dn: format!("uid={username},{PEOPLE}"),
        ..DirectoryAccount::default()
    }
}

fn items() -> Vec<SyncItem> {
    vec![
        SyncItem {
            group: Some(ADMINS.into()),
            method: Some("oath".into()),
            language: Some("fr".into()),
            ..SyncItem::default()
        },
        SyncItem {
            base_dn: Some(PEOPLE.into()),
            method: Some("sms".into()),
            language: Some("en".into()),
            ..SyncItem::default()
        },
    ]
}

struct Setup {
    service: InProcessService,
    store: Store,
    clock: Arc<ManualClock>,
    directory: Arc<MemoryDirectory>,
    _dir: tempfile::TempDir,
}

async fn setup(settings: Settings) -> Setup {
    let t = sqlite().await;
    let clock = Arc::new(ManualClock::new(1_000_000));
    t.store.seed_settings(&settings, clock.now()).await.unwrap();
    let service =
        InProcessService::new(t.store.clone(), clock.clone(), Keyring::for_tests([7; 32])).unwrap();
    Setup {
        service,
        store: t.store,
        clock,
        directory: Arc::new(MemoryDirectory::default()),
        _dir: t._dir.unwrap(),
    }
}

impl Setup {
    async fn sync(
        &self,
        approve: bool,
    ) -> Result<twofold_server::service::directory_sync::Summary, RunError> {
        self.service
            .sync_users(
                "test",
                self.directory.as_ref(),
                &items(),
                approve,
                false,
                &NoProgress,
            )
            .await
    }

    async fn user(&self, username: &str) -> Option<twofold_server::store::UserRecord> {
        self.store
            .user_by_username(&Username::parse(username).unwrap())
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn new_users_get_the_defaults_of_the_first_sync_item_they_match() {
    let s = setup(Settings::default()).await;
    let mut carol = account("carol", &[ADMINS]);
    carol.language = Some("en-GB".into());
    s.directory.set(vec![
        account("alice", &[ADMINS]),
        account("bob", &[]),
        carol,
    ]);
    let summary = s.sync(false).await.unwrap();
    assert_eq!((summary.added, summary.errors.len()), (3, 0), "{summary:?}");
    let alice = s.user("alice").await.unwrap();
    assert_eq!(
        (alice.method.as_deref(), alice.language.as_deref()),
        (Some("oath"), Some("fr"))
    );
    assert_eq!(alice.source, "ldap");
    assert_eq!(alice.external_id.as_deref(), Some("guid-alice"));
    let bob = s.user("bob").await.unwrap();
    assert_eq!(
        (bob.method.as_deref(), bob.language.as_deref()),
        (Some("sms"), Some("en"))
    );
    let carol = s.user("carol").await.unwrap();
    assert_eq!(
        (carol.method.as_deref(), carol.language.as_deref()),
        (Some("oath"), Some("en")),
        "the directory's own language wins over the item's default"
    );
    let again = s.sync(false).await.unwrap();
    assert_eq!(
        (again.added, again.unchanged, again.updated),
        (0, 3, 0),
        "{again:?}"
    );
}

#[tokio::test]
async fn an_attribute_changed_in_the_directory_is_picked_up_by_the_next_sync() {
    let s = setup(Settings::default()).await;
    s.directory
        .set(vec![account("alice", &[]), account("bob", &[])]);
    s.sync(false).await.unwrap();
    s.directory.edit("alice", |a| {
        a.email = Some("alice.martin@example.com".into());
        a.mobile_phone = Some("+33612345678".into());
    });
    let summary = s.sync(false).await.unwrap();
    assert_eq!((summary.updated, summary.unchanged), (1, 1), "{summary:?}");
    let alice = s.user("alice").await.unwrap();
    assert_eq!(alice.email.as_deref(), Some("alice.martin@example.com"));
    assert_eq!(alice.mobile_phone.as_deref(), Some("+33612345678"));
}

#[tokio::test]
async fn a_user_renamed_in_the_directory_keeps_their_account() {
    let s = setup(Settings::default()).await;
    s.directory.set(vec![account("alice", &[])]);
    s.sync(false).await.unwrap();
    let before = s.user("alice").await.unwrap();
    s.directory
        .edit("alice", |a| a.username = "alice.martin".into());
    let summary = s.sync(false).await.unwrap();
    assert_eq!(
        (summary.updated, summary.added, summary.disabled),
        (1, 0, 0),
        "{summary:?}"
    );
    assert!(s.user("alice").await.is_none());
    let after = s.user("alice.martin").await.unwrap();
    assert_eq!(after.id, before.id);
    assert!(after.enabled);
}

#[tokio::test]
async fn more_users_leaving_than_the_threshold_are_disabled_only_with_approval() {
    let s = setup(Settings::default()).await; // sync_removal_threshold = 5
    let names = ["u1", "u2", "u3", "u4", "u5", "u6", "stays"];
    s.directory
        .set(names.iter().map(|n| account(n, &[])).collect());
    s.sync(false).await.unwrap();
    s.directory.remove(&names[..6]);
    s.directory.set({
        let mut kept = s.directory.accounts.lock().unwrap().clone();
        kept.push(account("newcomer", &[]));
        kept
    });
    let held = s.sync(false).await.unwrap();
    assert_eq!(
        (held.disabled, held.held_back, held.added),
        (0, 6, 1),
        "{held:?}"
    );
    assert_eq!(
        held.held_back_message().as_deref(),
        Some("6 users would be disabled; rerun with --approve")
    );
    for name in &names[..6] {
        let user = s.user(name).await.unwrap();
        assert!(user.enabled && user.left_directory_at.is_none(), "{name}");
    }
    assert!(
        s.user("newcomer").await.is_some(),
        "the rest of the sync still applies"
    );

    let approved = s.sync(true).await.unwrap();
    assert_eq!(
        (approved.disabled, approved.held_back),
        (6, 0),
        "{approved:?}"
    );
    for name in &names[..6] {
        let user = s.user(name).await.unwrap();
        assert!(!user.enabled, "{name}");
        assert_eq!(user.left_directory_at, Some(s.clock.now()), "{name}");
    }
    assert!(s.user("stays").await.unwrap().enabled);
}

#[tokio::test]
async fn a_user_gone_longer_than_the_delay_is_deleted_and_one_who_returns_is_enabled() {
    let s = setup(Settings::default()).await; // sync_delete_after_days = 30
    s.directory.set(vec![
        account("alice", &[]),
        account("bob", &[]),
        account("carol", &[]),
    ]);
    s.sync(false).await.unwrap();
    s.directory.remove(&["alice", "bob"]);
    let first = s.sync(false).await.unwrap();
    assert_eq!(first.disabled, 2, "{first:?}");
    s.clock.advance(29 * 86_400);
    let early = s.sync(false).await.unwrap();
    assert_eq!((early.deleted, early.disabled), (0, 0), "{early:?}");
    assert!(!s.user("alice").await.unwrap().enabled);
    // bob comes back before the delay: enabled again, nothing else lost.
    s.directory
        .set(vec![account("bob", &[]), account("carol", &[])]);
    let back = s.sync(false).await.unwrap();
    assert_eq!(back.updated, 1, "{back:?}");
    let bob = s.user("bob").await.unwrap();
    assert!(bob.enabled && bob.left_directory_at.is_none());
    s.clock.advance(2 * 86_400);
    let late = s.sync(false).await.unwrap();
    assert_eq!(late.deleted, 1, "{late:?}");
    assert!(s.user("alice").await.is_none());
    assert!(s.user("bob").await.unwrap().enabled);
}

#[tokio::test]
async fn a_directory_that_cannot_answer_changes_nothing() {
    let s = setup(Settings::default()).await;
    s.directory
        .set(vec![account("alice", &[ADMINS]), account("bob", &[])]);
    s.sync(false).await.unwrap();
    s.directory
        .edit("alice", |a| a.email = Some("changed@example.com".into()));
    s.directory.remove(&["bob"]);
    // The first item answers, the second does not.
    s.directory
        .failing
        .lock()
        .unwrap()
        .push(format!("{:?}", EntryScope::Base(Some(PEOPLE.into()))));
    let err = s.sync(true).await.unwrap_err();
    assert!(matches!(err, RunError::Directory(_)), "{err:?}");
    assert!(err.to_string().contains("connection refused"), "{err}");
    assert_eq!(
        s.user("alice").await.unwrap().email.as_deref(),
        Some("alice@example.com")
    );
    assert!(s.user("bob").await.unwrap().enabled);
}

#[tokio::test]
async fn an_entry_that_cannot_be_written_is_reported_and_its_user_is_not_taken_for_gone() {
    let s = setup(Settings::default()).await;
    s.directory
        .set(vec![account("alice", &[]), account("bob", &[])]);
    s.sync(false).await.unwrap();
    s.directory
        .edit("bob", |a| a.email = Some("not an address".into()));
    let summary = s.sync(true).await.unwrap();
    assert_eq!(summary.errors.len(), 1, "{summary:?}");
    assert_eq!(summary.errors[0].username, "bob");
    assert!(
        summary.errors[0].reason.contains("email"),
        "{:?}",
        summary.errors
    );
    assert_eq!(summary.disabled, 0);
    assert!(s.user("bob").await.unwrap().enabled);
}

// ---------------------------------------------------------------------------------------
// Invitations

/// An email channel that fails the first `failures` sends (transiently or for good), then
/// keeps what it is given.
#[derive(Default)]
struct RecordingChannel {
    failures: AtomicUsize,
    permanent: AtomicBool,
    attempts: AtomicUsize,
    sent: Mutex<Vec<Email>>,
}

#[async_trait]
impl EmailChannel for RecordingChannel {
    fn provider(&self) -> &'static str {
        "recording"
    }
    async fn send_email(&self, email: &Email) -> Result<MessageId, DeliveryError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |f| f.checked_sub(1))
            .is_ok()
        {
            return Err(if self.permanent.load(Ordering::SeqCst) {
                DeliveryError::Permanent("550 no such mailbox".into())
            } else {
                DeliveryError::Transient("421 try again later".into())
            });
        }
        self.sent.lock().unwrap().push(email.clone());
        Ok(MessageId(format!("m{}", self.sent.lock().unwrap().len())))
    }
}

fn with_portal() -> Settings {
    Settings {
        portal_url: "https://mfa.example.com/".into(),
        ..Settings::default()
    }
}

async fn import(
    s: &Setup,
    accounts: &[DirectoryAccount],
) -> twofold_server::service::directory_sync::Summary {
    s.service
        .import_users("test", accounts, UserOrigin::Csv, &[], false, &NoProgress)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_imported_user_is_invited_once_in_their_language() {
    let s = setup(with_portal()).await;
    let mut marie = account("marie", &[]);
    marie.language = Some("fr".into());
    let no_email = DirectoryAccount {
        email: None,
        ..account("noemail", &[])
    };
    let summary = import(&s, &[account("alice", &[]), marie, no_email]).await;
    assert_eq!(
        (summary.added, summary.invitations_queued),
        (3, 2),
        "{summary:?}"
    );
    let channel = RecordingChannel::default();
    let round = s.service.send_due_invitations(&channel).await.unwrap();
    assert_eq!(round.sent, 2);
    let sent = channel.sent.lock().unwrap().clone();
    let to_alice = sent.iter().find(|e| e.to == "alice@example.com").unwrap();
    assert!(
        to_alice
            .subject
            .contains("multi-factor authentication portal"),
        "{to_alice:?}"
    );
    assert!(
        to_alice.text_body.contains("https://mfa.example.com/"),
        "{to_alice:?}"
    );
    assert!(
        to_alice.text_body.contains("usual username (alice)"),
        "{to_alice:?}"
    );
    assert!(
        to_alice.text_body.contains("enrol a second factor"),
        "{to_alice:?}"
    );
    let to_marie = sent.iter().find(|e| e.to == "marie@example.com").unwrap();
    assert!(to_marie.subject.contains("portail"), "{to_marie:?}");
    assert!(
        to_marie.text_body.contains("https://mfa.example.com/"),
        "{to_marie:?}"
    );
    assert!(
        to_marie.text_body.contains("second facteur"),
        "{to_marie:?}"
    );
    assert!(s.user("alice").await.unwrap().invited_at.is_some());

    // A rerun adds nobody and invites nobody again.
    let mut marie = account("marie", &[]);
    marie.language = Some("fr".into());
    let rerun = import(&s, &[account("alice", &[]), marie]).await;
    assert_eq!(
        (rerun.added, rerun.unchanged, rerun.invitations_queued),
        (0, 2, 0),
        "{rerun:?}"
    );
    assert_eq!(
        s.service.send_due_invitations(&channel).await.unwrap().sent,
        0
    );
    assert_eq!(channel.sent.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_failed_invitation_is_retried_and_never_fails_the_import() {
    let s = setup(with_portal()).await;
    import(&s, &[account("alice", &[])]).await;
    // Two transient failures, then it goes through on the third attempt.
    let flaky = RecordingChannel::default();
    flaky.failures.store(2, Ordering::SeqCst);
    let round = s
        .service
        .send_due_invitations_with(&flaky, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!((round.sent, flaky.attempts.load(Ordering::SeqCst)), (1, 3));

    // Down for longer: left due, tried again next round.
    import(&s, &[account("bob", &[])]).await;
    let down = RecordingChannel::default();
    down.failures.store(3, Ordering::SeqCst);
    let round = s
        .service
        .send_due_invitations_with(&down, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!((round.sent, round.deferred), (0, 1));
    assert!(s.user("bob").await.unwrap().invited_at.is_none());
    let round = s
        .service
        .send_due_invitations_with(&down, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(round.sent, 1, "sent on the next round");

    // Refused for good: given up after one attempt, not retried.
    import(&s, &[account("carol", &[])]).await;
    let refusing = RecordingChannel::default();
    refusing.failures.store(5, Ordering::SeqCst);
    refusing.permanent.store(true, Ordering::SeqCst);
    let round = s
        .service
        .send_due_invitations_with(&refusing, Duration::from_millis(1))
        .await
        .unwrap();
    assert_eq!(
        (round.given_up, refusing.attempts.load(Ordering::SeqCst)),
        (1, 1)
    );
    assert!(s.store.due_invitations(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn without_a_portal_url_nobody_is_invited_and_the_import_says_so() {
    let s = setup(Settings::default()).await;
    let summary = import(&s, &[account("alice", &[])]).await;
    assert_eq!(
        (
            summary.added,
            summary.invitations_queued,
            summary.not_invited_without_portal_url
        ),
        (1, 0, 1)
    );
    s.store
        .set_setting(
            "portal_url",
            &serde_json::json!("https://mfa.example.com/"),
            1,
        )
        .await
        .unwrap();
    let channel = RecordingChannel::default();
    assert_eq!(
        s.service.send_due_invitations(&channel).await.unwrap().sent,
        0
    );
}

#[tokio::test]
async fn a_dry_run_import_writes_nothing() {
    let s = setup(with_portal()).await;
    let summary = s
        .service
        .import_users(
            "test",
            &[account("alice", &[])],
            UserOrigin::Csv,
            &[],
            true,
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!((summary.added, summary.invitations_queued), (1, 0));
    assert!(s.user("alice").await.is_none());
    assert!(s.store.audit_tail(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_dry_run_sync_says_what_it_would_do_and_changes_nothing() {
    let s = setup(Settings::default()).await;
    s.directory
        .set(vec![account("alice", &[]), account("bob", &[])]);
    s.sync(false).await.unwrap();
    let events = s.store.audit_tail(100).await.unwrap().len();
    s.directory
        .edit("alice", |a| a.email = Some("new@example.com".into()));
    s.directory.remove(&["bob"]);
    s.directory.set({
        let mut accounts = s.directory.accounts.lock().unwrap().clone();
        accounts.push(account("carol", &[]));
        accounts
    });
    let summary = s
        .service
        .sync_users(
            "test",
            s.directory.as_ref(),
            &items(),
            false,
            true,
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(
        (summary.added, summary.updated, summary.disabled),
        (1, 1, 1),
        "{summary:?}"
    );
    assert!(s.user("carol").await.is_none());
    assert_eq!(
        s.user("alice").await.unwrap().email.as_deref(),
        Some("alice@example.com")
    );
    assert!(s.user("bob").await.unwrap().enabled);
    assert_eq!(s.store.audit_tail(100).await.unwrap().len(), events);
}

// ---------------------------------------------------------------------------------------
// [[sync]] items in the configuration

fn load(toml: &str) -> Result<twofold_server::config::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twofold.toml");
    std::fs::write(&path, toml).unwrap();
    twofold_server::config::Config::load_from(Some(&path), Vec::new()).map_err(|e| e.to_string())
}

#[test]
fn sync_items_are_read_in_order_and_a_bad_one_stops_the_start_with_its_key() {
    let config = load(&format!(
        "[[sync]]\ngroup = \"{ADMINS}\"\nmethod = \"oath\"\nlanguage = \"fr\"\n\n\
         [[sync]]\nbase_dn = \"{PEOPLE}\"\n"
    ))
    .unwrap();
    assert_eq!(config.sync.len(), 2);
    assert_eq!(config.sync[0].scope(), EntryScope::Group(ADMINS.into()));
    assert_eq!(
        config.sync[1].scope(),
        EntryScope::Base(Some(PEOPLE.into()))
    );
    let alice = account("alice", &["CN=MFA-Admins,OU=Groups,DC=example,DC=com"]);
    assert!(
        config.sync[0].matches(&alice),
        "group DNs compare without case"
    );
    assert!(config.sync[1].matches(&alice));
    let outsider = DirectoryAccount {
        dn: "uid=eve,ou=contractors,dc=example,dc=com".into(),
        ..DirectoryAccount::default()
    };
    assert!(!config.sync[0].matches(&outsider) && !config.sync[1].matches(&outsider));
    let lookalike = DirectoryAccount {
        dn: "uid=eve,ou=notpeople,dc=example,dc=com".into(),
        ..DirectoryAccount::default()
    };
    assert!(
        !config.sync[1].matches(&lookalike),
        "a base DN matches whole components"
    );

    for (toml, expected) in [
        (
            format!("[[sync]]\ngroup = \"{ADMINS}\"\nbase_dn = \"{PEOPLE}\"\n"),
            "sync[0].group / base_dn: give exactly one",
        ),
        (
            "[[sync]]\nmethod = \"oath\"\n".into(),
            "sync[0].group / base_dn",
        ),
        (
            format!(
                "[[sync]]\nbase_dn = \"{PEOPLE}\"\n[[sync]]\ngroup = \"{ADMINS}\"\nmethod = \"voice\"\n"
            ),
            "sync[1].method = \"voice\"",
        ),
        (
            format!("[[sync]]\ngroup = \"{ADMINS}\"\nlanguage = \"de\"\n"),
            "sync[0].language = \"de\"",
        ),
        (
            format!("[[sync]]\ngroup = \"{ADMINS}\"\ngroups = \"x\"\n"),
            "groups",
        ),
    ] {
        let err = load(&toml).unwrap_err();
        assert!(err.contains(expected), "{toml}: {err}");
    }
}
