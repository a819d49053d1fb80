//! Users from the directory: an import (from a file or a directory), a sync that keeps
//! Twofold's users in step with the directory's, and the summary both print.
//!
//! Each user is written whole in its own transaction ([`Store::write_directory_user`]), so a
//! run that is killed leaves every user either as they were or as the directory describes
//! them, and running it again carries on. A sync first reads every `[[sync]]` item's
//! accounts; a directory that cannot answer any of them fails the run before anything is
//! changed.
//!
//! [`Store::write_directory_user`]: crate::store::Store::write_directory_user

use super::{InProcessService, ServiceError, clean_email, clean_phone};
use crate::config::SyncItem;
use crate::directory::{DirectoryAccount, UserSource};
use crate::store::{DirectoryUser, StoreError, UserOrigin, UserRecord, Written};
use std::collections::HashSet;
use twofold_engine::audit::AuditAction;
use twofold_engine::{DomainError, Language, Username};

/// How a run reports that it is moving. The command line draws a bar on a terminal and
/// writes a log line now and then elsewhere.
pub trait Progress: Send + Sync {
    /// The run has `total` users to go through.
    fn start(&self, total: u64);
    /// One more user is done.
    fn advance(&self);
    /// The run is over.
    fn finish(&self);
}

/// A run nobody watches.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _total: u64) {}
    fn advance(&self) {}
    fn finish(&self) {}
}

/// An entry that could not be written, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryError {
    pub username: String,
    pub reason: String,
}

/// What a run did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub dry_run: bool,
    pub added: usize,
    pub updated: usize,
    pub disabled: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub errors: Vec<EntryError>,
    /// New users queued for an invitation to the portal.
    pub invitations_queued: usize,
    /// Users a sync would have disabled but did not: more than `sync_removal_threshold`
    /// left at once, and the run was not approved.
    pub held_back: usize,
    /// New users not invited because `portal_url` is not set.
    pub not_invited_without_portal_url: usize,
}

impl Summary {
    /// One line of counts.
    pub fn counts(&self) -> String {
        format!(
            "{}added {}, updated {}, disabled {}, deleted {}, unchanged {}, errors {}",
            if self.dry_run {
                "dry run (nothing written): "
            } else {
                ""
            },
            self.added,
            self.updated,
            self.disabled,
            self.deleted,
            self.unchanged,
            self.errors.len()
        )
    }

    /// The message for users held back, if any.
    pub fn held_back_message(&self) -> Option<String> {
        (self.held_back > 0).then(|| {
            format!(
                "{} users would be disabled; rerun with --approve",
                self.held_back
            )
        })
    }
}

/// Why a run failed as a whole (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the directory cannot list its users, nothing was changed: {0}")]
    Directory(String),
    #[error(
        "no [[sync]] items are configured. Fix: add a [[sync]] item with a group or a base_dn (see twofold.example.toml)"
    )]
    NothingToSync,
    #[error(
        "[ldap] is not configured: importing or syncing users from the directory needs it. Fix: add an [ldap] section (see twofold.example.toml)"
    )]
    NotConfigured,
    /// `[ldap]` is there but cannot be used (the message names the key and the fix).
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> Self {
        RunError::Service(e.into())
    }
}

impl From<DomainError> for RunError {
    fn from(e: DomainError) -> Self {
        RunError::Service(e.into())
    }
}

/// The directory that imports and syncs read users from, as the configuration names it.
pub fn directory_source(
    config: &crate::config::Config,
) -> Result<std::sync::Arc<dyn UserSource>, RunError> {
    let ldap = config.ldap.as_ref().ok_or(RunError::NotConfigured)?;
    let directory = crate::directory::LdapDirectory::from_config(ldap)
        .map_err(|e| RunError::Config(e.to_string()))?;
    Ok(std::sync::Arc::new(directory))
}

/// One entry checked, ready to write.
fn checked_entry(
    account: &DirectoryAccount,
    origin: UserOrigin,
    item: Option<&SyncItem>,
    region: &str,
) -> Result<DirectoryUser, String> {
    let username = Username::parse(&account.username)
        .map_err(|e| format!("username {:?}: {e}", account.username))?;
    let email = clean_email(account.email.clone()).map_err(|e| format!("email: {e}"))?;
    let phone = clean_phone(account.phone.clone(), region).map_err(|e| format!("phone: {e}"))?;
    let mobile_phone = clean_phone(account.mobile_phone.clone(), region)
        .map_err(|e| format!("mobile_phone: {e}"))?
        .map(|p| p.number);
    let extension = phone.as_ref().and_then(|p| p.extension.clone());
    let phone = phone.map(|p| p.number);
    let language = match account.language.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(tag) => match Language::from_tag(tag) {
            Some(language) => Some(language.tag().to_owned()),
            // A file is typed for Twofold: a language it does not speak is a mistake. A
            // directory holds languages for many programs: Twofold uses its default.
            None if origin == UserOrigin::Csv => {
                return Err(format!("language {tag:?}: use en or fr"));
            }
            None => None,
        },
    };
    let unique_id = account
        .unique_id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned);
    Ok(DirectoryUser {
        username: username.as_str().to_owned(),
        origin,
        external_id: unique_id,
        email,
        phone,
        extension,
        mobile_phone,
        language: language.or_else(|| item.and_then(|i| i.language.clone())),
        method: item.and_then(|i| i.method.clone()),
        invite: false,
    })
}

impl InProcessService {
    /// `create_users_on_sign_in`: the directory accepted the password of an account Twofold
    /// does not hold yet; it is added now, with the defaults of the first `[[sync]]` item
    /// it matches, and goes on to enrol. A directory that lists its accounts (LDAP) adds
    /// only accounts some item matches when there are items: the items say who belongs. A
    /// directory that only checks passwords (RADIUS) cannot say, and its users are added
    /// with no defaults. The local directory never adds anyone.
    pub(super) async fn create_user_at_sign_in(
        &self,
        account: &DirectoryAccount,
    ) -> Result<Option<UserRecord>, StoreError> {
        let origin = match self.directory.kind() {
            "ldap" => UserOrigin::Ldap,
            "radius" => UserOrigin::Radius,
            _ => return Ok(None),
        };
        let item = self.sync_items.iter().find(|item| item.matches(account));
        if origin == UserOrigin::Ldap && item.is_none() && !self.sync_items.is_empty() {
            tracing::info!(username = %account.username, "a directory user outside every [[sync]] item is not created at sign-in");
            return Ok(None);
        }
        let region = self.store.settings().await?.default_region;
        let user = match checked_entry(account, origin, item, &region) {
            Ok(user) => user,
            Err(reason) => {
                tracing::warn!(username = %account.username, %reason, "a directory user cannot be created at sign-in");
                return Ok(None);
            }
        };
        let actor = "system:sign-in";
        let audit = |written: &Written| match written {
            Written::Added(user) => Some(
                self.done_by(AuditAction::UserCreated, actor)
                    .subject(user.username.as_str())
                    .detail(format!("at first sign-in, from {}", origin.as_str())),
            ),
            _ => None,
        };
        match self
            .store
            .write_directory_user(&user, self.clock.now(), false, &audit)
            .await
        {
            Ok(Written::Added(user) | Written::Updated { user, .. } | Written::Unchanged(user)) => {
                Ok(Some(user))
            }
            // Another node added them a moment ago, or the name belongs to another account.
            Err(StoreError::Duplicate(reason)) => {
                tracing::warn!(username = %account.username, %reason, "a directory user cannot be created at sign-in");
                let Ok(name) = Username::parse(&user.username) else {
                    return Ok(None);
                };
                Ok(self
                    .store
                    .user_by_username(&name)
                    .await?
                    .filter(|u| u.external_id == user.external_id))
            }
            Err(e) => Err(e),
        }
    }

    /// Writes `entries` (from a file, or from a directory), each user whole or not at all.
    /// A user already in Twofold (by the directory's id, else by username) is updated, not
    /// added again; a new user gets the defaults of the first `items` entry they match and,
    /// with an email address, an invitation to the portal.
    pub async fn import_users(
        &self,
        actor: &str,
        entries: &[DirectoryAccount],
        origin: UserOrigin,
        items: &[SyncItem],
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<Summary, ServiceError> {
        let with_items: Vec<(&DirectoryAccount, Option<&SyncItem>)> = entries
            .iter()
            .map(|e| (e, items.iter().find(|item| item.matches(e))))
            .collect();
        let mut summary = Summary {
            dry_run,
            ..Summary::default()
        };
        self.write_entries(actor, &with_items, origin, dry_run, progress, &mut summary)
            .await?;
        if !dry_run {
            self.audit(
                self.done_by(AuditAction::UsersImported, actor)
                    .detail(format!("from {}: {}", origin.as_str(), summary.counts())),
            )
            .await;
        }
        Ok(summary)
    }

    async fn write_entries(
        &self,
        actor: &str,
        entries: &[(&DirectoryAccount, Option<&SyncItem>)],
        origin: UserOrigin,
        dry_run: bool,
        progress: &dyn Progress,
        summary: &mut Summary,
    ) -> Result<(), ServiceError> {
        let settings = self.store.settings().await?;
        let can_invite = !settings.portal_url.trim().is_empty();
        let audit = |written: &Written| {
            Some(match written {
                Written::Added(user) => self
                    .done_by(AuditAction::UserCreated, actor)
                    .subject(user.username.as_str())
                    .detail(format!("from {}", origin.as_str())),
                Written::Updated { user, changed } => self
                    .done_by(AuditAction::UserUpdated, actor)
                    .subject(user.username.as_str())
                    .detail(format!(
                        "from {}: changed: {}",
                        origin.as_str(),
                        changed.join(", ")
                    )),
                Written::Unchanged(_) => return None,
            })
        };
        progress.start(entries.len() as u64);
        for (account, item) in entries {
            let result = match checked_entry(account, origin, *item, &settings.default_region) {
                Ok(mut user) => {
                    user.invite = can_invite && !dry_run;
                    self.store
                        .write_directory_user(&user, self.clock.now(), dry_run, &audit)
                        .await
                        .map_err(|e| match e {
                            StoreError::Duplicate(reason) => Ok(reason),
                            other => Err(other),
                        })
                }
                Err(reason) => Err(Ok(reason)),
            };
            match result {
                Ok(Written::Added(user)) => {
                    summary.added += 1;
                    if user.email.is_some() {
                        if can_invite {
                            summary.invitations_queued += usize::from(!dry_run);
                        } else {
                            summary.not_invited_without_portal_url += 1;
                        }
                    }
                }
                Ok(Written::Updated { .. }) => summary.updated += 1,
                Ok(Written::Unchanged(_)) => summary.unchanged += 1,
                Err(Ok(reason)) => summary.errors.push(EntryError {
                    username: account.username.clone(),
                    reason,
                }),
                // The store itself failed: stop here; what is written stays written.
                Err(Err(e)) => {
                    progress.finish();
                    return Err(e.into());
                }
            }
            progress.advance();
        }
        progress.finish();
        Ok(())
    }

    /// Runs the `[[sync]]` items once against `source`: adds and updates users, disables
    /// the users of the directory it no longer lists (more than `sync_removal_threshold`
    /// of them only with `approve`), and deletes those gone for longer than
    /// `sync_delete_after_days`.
    pub async fn sync_users(
        &self,
        actor: &str,
        source: &dyn UserSource,
        items: &[SyncItem],
        approve: bool,
        dry_run: bool,
        progress: &dyn Progress,
    ) -> Result<Summary, RunError> {
        if items.is_empty() {
            return Err(RunError::NothingToSync);
        }
        // Everything is read before anything is written.
        let mut listed = Vec::with_capacity(items.len());
        for item in items {
            let entries = source
                .entries(&item.scope())
                .await
                .map_err(|e| RunError::Directory(e.to_string()))?;
            listed.push((item, entries));
        }
        let mut seen_ids = HashSet::new();
        let mut seen_names = HashSet::new();
        let mut entries = Vec::new();
        for (item, accounts) in &listed {
            for account in accounts {
                let key = account
                    .unique_id
                    .clone()
                    .unwrap_or_else(|| format!("username:{}", account.username));
                if !seen_ids.insert(key) {
                    continue; // listed by an earlier item, whose defaults win
                }
                seen_names.insert(account.username.to_lowercase());
                entries.push((account, Some(*item)));
            }
        }
        let settings = self.store.settings().await?;
        let mut summary = Summary {
            dry_run,
            ..Summary::default()
        };
        self.write_entries(
            actor,
            &entries,
            UserOrigin::Ldap,
            dry_run,
            progress,
            &mut summary,
        )
        .await?;

        let now = self.clock.now();
        let gone: Vec<UserRecord> = self
            .store
            .users_of_origin(UserOrigin::Ldap)
            .await
            .map_err(ServiceError::from)?
            .into_iter()
            .filter(|u| {
                let by_id = u
                    .external_id
                    .as_ref()
                    .is_some_and(|id| seen_ids.contains(id));
                !by_id && !seen_names.contains(&u.username.to_lowercase())
            })
            .collect();
        let delete_after = i64::from(settings.sync_delete_after_days) * 86_400;
        let (newly_gone, already_gone): (Vec<_>, Vec<_>) = gone
            .into_iter()
            .partition(|u| u.left_directory_at.is_none());
        let threshold = usize::try_from(settings.sync_removal_threshold).unwrap_or(usize::MAX);
        if newly_gone.len() > threshold && !approve {
            summary.held_back = newly_gone.len();
        } else {
            for user in &newly_gone {
                if !dry_run {
                    self.store
                        .mark_left_directory(&user.id, now)
                        .await
                        .map_err(ServiceError::from)?;
                    self.audit(
                        self.done_by(AuditAction::UserLeftDirectory, actor)
                            .subject(user.username.as_str())
                            .detail("not in the directory any more: disabled"),
                    )
                    .await;
                }
                summary.disabled += 1;
            }
        }
        for user in &already_gone {
            let left_at = user.left_directory_at.unwrap_or(now);
            if now - left_at < delete_after {
                continue;
            }
            if !dry_run {
                let username = Username::parse(&user.username).map_err(DomainError::from)?;
                self.store
                    .delete_user(&username)
                    .await
                    .map_err(ServiceError::from)?;
                self.audit(
                    self.done_by(AuditAction::UserDeleted, actor)
                        .subject(user.username.as_str())
                        .detail(format!(
                            "left the directory more than {} days ago",
                            settings.sync_delete_after_days
                        )),
                )
                .await;
            }
            summary.deleted += 1;
        }
        let detail = match summary.held_back_message() {
            Some(held) => format!("{}; {held}", summary.counts()),
            None => summary.counts(),
        };
        if !dry_run {
            self.audit(self.done_by(AuditAction::UsersSynced, actor).detail(detail))
                .await;
        }
        Ok(summary)
    }
}
