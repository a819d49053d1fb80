//! Administrators: who they are, what they may do to whom, and how they are made.
//!
//! Every admin console request is checked here (the console's layer asks
//! [`InProcessService::authorize`] before any handler runs), and every change of
//! administrators obeys the engine's rules (`twofold_engine::admin`): nobody grants what they
//! do not hold, and the last owner stays.

use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{AdminRecord, AdminWrite, UserRecord};
use sha2::{Digest, Sha256};
use twofold_engine::admin::{AdminError, Permission, Rights, Role, Scope, group_name};
use twofold_engine::audit::AuditAction;
use twofold_engine::{DomainError, UnixTime};

/// How long the first administrator's bootstrap link works.
pub const BOOTSTRAP_SECONDS: i64 = 3600;

impl From<AdminError> for ServiceError {
    fn from(e: AdminError) -> Self {
        ServiceError::Domain(DomainError::Admin(e))
    }
}

/// An administrator acting in the console: who, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminActor {
    pub user_id: String,
    pub username: String,
    pub rights: Rights,
}

impl AdminActor {
    /// How the audit log names them.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.username)
    }

    /// The client of a request they make, naming them as the actor.
    pub fn client(&self, client: &ClientContext) -> ClientContext {
        ClientContext {
            actor: Some(self.actor()),
            ..client.clone()
        }
    }
}

impl From<AdminRecord> for AdminActor {
    fn from(r: AdminRecord) -> Self {
        AdminActor {
            user_id: r.user_id,
            username: r.username,
            rights: r.rights,
        }
    }
}

/// Who changes administrators: the operator at the server's command line (who may do
/// anything), or an administrator in the console (within their own rights).
#[derive(Debug, Clone, Copy)]
pub enum Grantor<'a> {
    /// The operator, named as the audit log names them (`cli:root`).
    Operator(&'a str),
    Admin(&'a AdminActor),
}

impl Grantor<'_> {
    fn actor(&self) -> String {
        match self {
            Grantor::Operator(name) => (*name).to_owned(),
            Grantor::Admin(a) => a.actor(),
        }
    }
}

/// What a grant's rights say, for the audit log and the lists: `help-desk for group:Sales`.
pub fn describe(rights: &Rights) -> String {
    let what = match rights.role() {
        Some(role) => role.as_str().to_owned(),
        None => rights
            .permissions()
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    };
    let scopes = rights
        .scopes()
        .iter()
        .map(Scope::as_string)
        .collect::<Vec<_>>()
        .join(", ");
    match rights.bypass_max_seconds {
        Some(s) => format!("{what} for {scopes}, bypass up to {s} s"),
        None => format!("{what} for {scopes}"),
    }
}

/// The rights of a role or a list of permissions, for one scope.
pub fn rights_of(
    role: Option<&str>,
    permissions: &[String],
    scope: Option<&str>,
    bypass_max_seconds: Option<u32>,
) -> Result<Rights, AdminError> {
    let scope = match scope {
        Some(s) => Scope::parse(s)?,
        None => Scope::All,
    };
    let mut list: Vec<Permission> = match role {
        Some(r) => Role::parse(r)?.permissions(),
        None => Vec::new(),
    };
    for p in permissions {
        list.push(Permission::parse(p)?);
    }
    Rights::new(&list, scope, bypass_max_seconds)
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl InProcessService {
    /// The administrator who is the user `user_id`, as they are now (a removal or a change
    /// takes effect at their next request).
    pub async fn admin_actor(&self, user_id: &str) -> Result<Option<AdminActor>, ServiceError> {
        Ok(self.store.admin(user_id).await?.map(AdminActor::from))
    }

    /// The administrator `username`, if they are one.
    pub async fn admin_named(&self, username: &str) -> Result<Option<AdminRecord>, ServiceError> {
        let user = self.find_user(username).await?;
        Ok(self.store.admin(&user.id).await?)
    }

    /// Every administrator.
    pub async fn list_admins(&self) -> Result<Vec<AdminRecord>, ServiceError> {
        Ok(self.store.list_admins().await?)
    }

    /// Whether `admin` holds `permission` for `target` (for users: the target's groups
    /// within the grant's scope; without a target: for anyone).
    pub async fn authorize(
        &self,
        admin: &AdminActor,
        permission: Permission,
        target: Option<&UserRecord>,
    ) -> Result<(), ServiceError> {
        let allowed = match target {
            None => admin.rights.holds(permission),
            // Held for everyone: the user's groups need not be read.
            Some(_) if admin.rights.holds_everywhere(permission) => true,
            Some(user) => {
                let groups = self.store.user_groups(&user.id).await?;
                admin.rights.holds_for(permission, &groups)
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(AdminError::Forbidden(permission).into())
        }
    }

    /// Makes `username` an administrator with `rights`, or changes their rights.
    pub async fn grant_admin(
        &self,
        by: Grantor<'_>,
        username: &str,
        rights: &Rights,
    ) -> Result<AdminRecord, ServiceError> {
        let user = self.find_user(username).await?;
        let settings = self.settings_now().await?;
        let max = settings.one_time_bypass_max_seconds;
        if let Grantor::Admin(admin) = by {
            if !admin.rights.holds(Permission::AdminsManage) {
                return Err(AdminError::Forbidden(Permission::AdminsManage).into());
            }
            admin.rights.may_grant(rights, max)?;
            // Changing someone's rights takes theirs away: only what one could grant.
            if let Some(old) = self.store.admin(&user.id).await? {
                admin.rights.may_grant(&old.rights, max)?;
            }
        }
        let now = self.clock.now();
        match self
            .store
            .put_admin(&user.id, rights, &by.actor(), now)
            .await?
        {
            AdminWrite::Done => {}
            AdminWrite::NoOwnerLeft => return Err(AdminError::LastOwner.into()),
        }
        self.audit(
            self.done_by(AuditAction::AdminChanged, by.actor())
                .subject(user.username.as_str())
                .detail(describe(rights)),
        )
        .await;
        self.store
            .admin(&user.id)
            .await?
            .ok_or(ServiceError::Internal(
                "the administrator just written is gone".into(),
            ))
    }

    /// Takes every right of the administrator `username` away (their console sessions end).
    pub async fn revoke_admin(&self, by: Grantor<'_>, username: &str) -> Result<(), ServiceError> {
        let user = self.find_user(username).await?;
        let old = self
            .store
            .admin(&user.id)
            .await?
            .ok_or_else(|| AdminError::NotAnAdministrator(user.username.clone()))?;
        if let Grantor::Admin(admin) = by {
            if !admin.rights.holds(Permission::AdminsManage) {
                return Err(AdminError::Forbidden(Permission::AdminsManage).into());
            }
            let settings = self.settings_now().await?;
            admin
                .rights
                .may_grant(&old.rights, settings.one_time_bypass_max_seconds)?;
        }
        match self.store.remove_admin(&user.id).await? {
            None => return Err(AdminError::NotAnAdministrator(user.username).into()),
            Some(AdminWrite::NoOwnerLeft) => return Err(AdminError::LastOwner.into()),
            Some(AdminWrite::Done) => {}
        }
        self.audit(
            self.done_by(AuditAction::AdminRemoved, by.actor())
                .subject(user.username.as_str())
                .detail(describe(&old.rights)),
        )
        .await;
        Ok(())
    }

    /// The groups `user_id` belongs to.
    pub async fn user_groups(&self, user_id: &str) -> Result<Vec<String>, ServiceError> {
        Ok(self.store.user_groups(user_id).await?)
    }

    /// Every group with members, and how many.
    pub async fn groups(&self) -> Result<Vec<(String, i64)>, ServiceError> {
        Ok(self.store.groups().await?)
    }

    /// Puts `username` in exactly `groups` (names trimmed; duplicates once).
    pub async fn set_user_groups(
        &self,
        actor: &str,
        username: &str,
        groups: &[String],
    ) -> Result<Vec<String>, ServiceError> {
        let user = self.find_user(username).await?;
        let mut names = Vec::with_capacity(groups.len());
        for g in groups.iter().filter(|g| !g.trim().is_empty()) {
            names.push(group_name(g)?);
        }
        names.sort();
        names.dedup();
        if names.len() > 50 {
            return Err(DomainError::InvalidRequest(
                "a user may belong to at most 50 groups".into(),
            )
            .into());
        }
        self.store.set_user_groups(&user.id, &names).await?;
        self.audit(
            self.done_by(AuditAction::GroupsChanged, actor)
                .subject(user.username.as_str())
                .detail(names.join(", ")),
        )
        .await;
        Ok(names)
    }

    /// While no administrator exists: a new one-time link path (`/admin/bootstrap?token=…`)
    /// that makes the signed-in user who opens it the first owner, valid for an hour. Every
    /// earlier link ends.
    pub async fn new_bootstrap_link(&self) -> Result<Option<String>, ServiceError> {
        if self.store.count_admins().await? > 0 {
            return Ok(None);
        }
        let token = crate::web::session::new_token();
        let now = self.clock.now();
        self.store
            .create_bootstrap(&hash_token(&token), now, now + BOOTSTRAP_SECONDS)
            .await?;
        Ok(Some(format!("/admin/bootstrap?token={token}")))
    }

    /// Whether `token` is a bootstrap link that still works.
    pub async fn bootstrap_open(&self, token: &str) -> Result<bool, ServiceError> {
        if token.is_empty() || token.len() > 128 || self.store.count_admins().await? > 0 {
            return Ok(false);
        }
        Ok(self
            .store
            .bootstrap_valid(&hash_token(token), self.clock.now())
            .await?)
    }

    /// Uses the bootstrap link `token` once: `user` becomes the first owner.
    pub async fn redeem_bootstrap(
        &self,
        token: &str,
        user: &UserRecord,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        if self.store.count_admins().await? > 0 {
            return Err(AdminError::AlreadyBootstrapped.into());
        }
        let rights = Rights::new(&Role::Owner.permissions(), Scope::All, None)?;
        let now = self.clock.now();
        if token.is_empty()
            || token.len() > 128
            || !self
                .store
                .redeem_bootstrap(&hash_token(token), &user.id, &rights, now)
                .await?
        {
            return Err(AdminError::BootstrapInvalid.into());
        }
        let (ip, ua) = client.audit();
        self.audit(
            self.done_by(AuditAction::AdminChanged, format!("user:{}", user.username))
                .subject(user.username.as_str())
                .client(ip, ua)
                .detail(format!("{} (bootstrap link)", describe(&rights))),
        )
        .await;
        Ok(now)
    }
}
