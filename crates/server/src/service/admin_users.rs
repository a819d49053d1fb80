//! What the admin console does to users beyond the existing use cases: the list within an
//! administrator's reach, one user's page, a bypass within the administrator's maximum,
//! groups within their reach, and resetting a PIN or the security answers.

use super::admins::AdminActor;
use super::app::DeviceView;
use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{
    AuditRow, BypassRecord, UserChanges, UserListing, UserRecord, UserSearch, UserToken,
};
use twofold_engine::admin::{AdminError, Permission, group_name};
use twofold_engine::audit::AuditAction;
use twofold_engine::{DomainError, LockoutState, UnixTime};

/// How many users a page of the list shows.
pub const PAGE_SIZE: i64 = 50;
/// How many of a user's audit events their page shows.
pub const RECENT_EVENTS: i64 = 20;

/// Everything a user's page shows (never a secret: no answer, no PIN, no seed).
#[derive(Debug, Clone)]
pub struct UserDetail {
    pub user: UserRecord,
    pub groups: Vec<String>,
    pub tokens: Vec<UserToken>,
    pub devices: Vec<DeviceView>,
    pub security_answers: i64,
    pub lockout: LockoutState,
    pub bypass: Option<BypassRecord>,
    pub events: Vec<AuditRow>,
    pub now: UnixTime,
}

/// Why an administrator's change of a user's groups is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupChangeError {
    /// A group-scoped administrator named a group outside their reach.
    #[error("group {0} is outside your reach")]
    OutsideReach(String),
    /// The change would leave the user in none of the administrator's groups.
    #[error("the user would leave every group you manage")]
    LeavesReach,
}

impl InProcessService {
    /// A page of the users `search` asks for (at most [`PAGE_SIZE`]), only those `admin`
    /// may read, and whether more follow.
    pub async fn admin_search_users(
        &self,
        admin: &AdminActor,
        mut search: UserSearch,
    ) -> Result<(Vec<UserListing>, bool), ServiceError> {
        if !admin.rights.holds(Permission::UsersRead) {
            return Err(AdminError::Forbidden(Permission::UsersRead).into());
        }
        search.groups = admin.rights.reach(Permission::UsersRead);
        let size = search.limit.clamp(1, PAGE_SIZE);
        search.limit = size + 1;
        let mut found = self.store.search_users(&search, self.clock.now()).await?;
        let more = found.len() > usize::try_from(size).unwrap_or(usize::MAX);
        found.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        Ok((found, more))
    }

    /// What `user`'s page shows.
    pub async fn admin_user_detail(&self, user: &UserRecord) -> Result<UserDetail, ServiceError> {
        let now = self.clock.now();
        Ok(UserDetail {
            groups: self.store.user_groups(&user.id).await?,
            tokens: self.store.tokens_of(&user.id).await?,
            devices: self.devices_of(&user.id).await?,
            security_answers: self.store.answer_count(&user.id).await?,
            lockout: self.store.lockout(&user.username).await?.state,
            bypass: self.store.active_bypass(&user.id, now).await?,
            events: self
                .store
                .audit_of_subject(&user.username, RECENT_EVENTS)
                .await?,
            user: user.clone(),
            now,
        })
    }

    /// Starts a one-time bypass of `seconds` for `user`, at most the administrator's own
    /// maximum (their grant's, within the settings'). Audited with the administrator as actor.
    pub async fn admin_start_bypass(
        &self,
        admin: &AdminActor,
        user: &UserRecord,
        seconds: u32,
        reason: &str,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let settings = self.settings_now().await?;
        if !settings.allow_one_time_bypass {
            return Err(DomainError::from(twofold_engine::flow::BypassError::NotAllowed).into());
        }
        let max = admin
            .rights
            .bypass_limit(settings.one_time_bypass_max_seconds);
        if seconds == 0 || seconds > max {
            return Err(
                DomainError::from(twofold_engine::flow::BypassError::OutOfRange { max }).into(),
            );
        }
        let reason = Some(reason.trim()).filter(|r| !r.is_empty());
        self.create_bypass(user, seconds, reason, &admin.actor(), client)
            .await
    }

    /// Puts `user` in exactly `groups`, as `admin` may: an administrator over everyone sets
    /// any groups; one scoped to groups only adds or removes groups within their reach, and
    /// the user stays in at least one of them (nobody moves a user out of their own reach).
    pub async fn admin_set_groups(
        &self,
        admin: &AdminActor,
        user: &UserRecord,
        groups: &[String],
    ) -> Result<Result<Vec<String>, GroupChangeError>, ServiceError> {
        let mut wanted = Vec::new();
        for g in groups.iter().filter(|g| !g.trim().is_empty()) {
            wanted.push(group_name(g)?);
        }
        wanted.sort();
        wanted.dedup();
        if let Some(reach) = admin.rights.reach(Permission::UsersUpdate) {
            let current = self.store.user_groups(&user.id).await?;
            // Groups outside the reach stay as they are; inside it, as asked.
            if let Some(outside) = wanted
                .iter()
                .find(|g| !reach.contains(g) && !current.contains(g))
            {
                return Ok(Err(GroupChangeError::OutsideReach(outside.clone())));
            }
            let mut kept: Vec<String> =
                current.into_iter().filter(|g| !reach.contains(g)).collect();
            kept.extend(wanted.iter().filter(|g| reach.contains(g)).cloned());
            if !kept.iter().any(|g| reach.contains(g)) {
                return Ok(Err(GroupChangeError::LeavesReach));
            }
            wanted = kept;
        }
        Ok(Ok(self
            .set_user_groups(&admin.actor(), &user.username, &wanted)
            .await?))
    }

    /// Forgets `user`'s PIN: the enrolment wizard asks for a new one at their next sign-in.
    pub async fn admin_reset_pin(
        &self,
        user: &UserRecord,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let changes = UserChanges {
            pin_hash: Some(None),
            enrolled_at: Some(None),
            ..UserChanges::default()
        };
        let now = self.clock.now();
        self.store
            .update_user(&super::factors::username_of(user)?, changes, now)
            .await?;
        self.store.delete_user_sessions(&user.id).await?;
        self.audit(
            self.succeeded(AuditAction::PinChanged, user, client)
                .detail("reset: a new PIN is asked at the next sign-in"),
        )
        .await;
        Ok(())
    }

    /// Forgets `user`'s security answers: the enrolment wizard asks for new ones at their
    /// next sign-in.
    pub async fn admin_reset_answers(
        &self,
        user: &UserRecord,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let removed = self.store.clear_answers(&user.id).await?;
        let changes = UserChanges {
            enrolled_at: Some(None),
            ..UserChanges::default()
        };
        let now = self.clock.now();
        self.store
            .update_user(&super::factors::username_of(user)?, changes, now)
            .await?;
        self.store.delete_user_sessions(&user.id).await?;
        self.audit(
            self.succeeded(AuditAction::SecurityAnswersChanged, user, client)
                .detail(format!(
                    "reset ({removed} answers forgotten): new ones are asked at the next sign-in"
                )),
        )
        .await;
        Ok(())
    }

    /// Gives `user` the available hardware token `serial`, proved with one of its codes
    /// (the same rules as the user's own association: a wrong serial or code counts).
    pub async fn admin_assign_hardware(
        &self,
        user: &UserRecord,
        serial: &str,
        code: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        self.associate_hardware(&user.id, serial, code, client)
            .await
    }

    /// Takes `user`'s OATH tokens away (audited as `token_removed`).
    pub async fn admin_remove_tokens(
        &self,
        user: &UserRecord,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        self.remove_token(&user.id, client).await
    }
}
