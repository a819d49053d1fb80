//! Administrators: what each may do (permissions), the preset roles, and to whom (a grant's
//! scope: every user, or the members of one group).
//!
//! Rules, all decided here:
//! - A permission about users (`users.*`) may be scoped to a group; the others act on the
//!   whole server (the settings, the audit log, the token inventory, the administrators)
//!   and are granted for all users only.
//! - Nobody grants what they do not hold themselves, at the same or a wider scope, and no
//!   longer a bypass than they may start.
//! - The last owner (an administrator holding every permission for all users) stays.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What an administrator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    #[serde(rename = "users.read")]
    UsersRead,
    #[serde(rename = "users.create")]
    UsersCreate,
    #[serde(rename = "users.update")]
    UsersUpdate,
    #[serde(rename = "users.delete")]
    UsersDelete,
    /// Phones, method, tokens, devices, resync.
    #[serde(rename = "users.factors")]
    UsersFactors,
    /// Reset the PIN or the security answers, a new app activation.
    #[serde(rename = "users.credentials")]
    UsersCredentials,
    /// Start a one-time bypass (up to the administrator's own maximum).
    #[serde(rename = "users.bypass")]
    UsersBypass,
    /// Unlock, lift a fraud block.
    #[serde(rename = "users.block")]
    UsersBlock,
    #[serde(rename = "tokens.import")]
    TokensImport,
    #[serde(rename = "directory.sync")]
    DirectorySync,
    #[serde(rename = "audit.read")]
    AuditRead,
    #[serde(rename = "audit.export")]
    AuditExport,
    #[serde(rename = "reports.read")]
    ReportsRead,
    #[serde(rename = "settings.write")]
    SettingsWrite,
    #[serde(rename = "admins.manage")]
    AdminsManage,
}

impl Permission {
    pub const ALL: [Permission; 15] = [
        Permission::UsersRead,
        Permission::UsersCreate,
        Permission::UsersUpdate,
        Permission::UsersDelete,
        Permission::UsersFactors,
        Permission::UsersCredentials,
        Permission::UsersBypass,
        Permission::UsersBlock,
        Permission::TokensImport,
        Permission::DirectorySync,
        Permission::AuditRead,
        Permission::AuditExport,
        Permission::ReportsRead,
        Permission::SettingsWrite,
        Permission::AdminsManage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::UsersRead => "users.read",
            Permission::UsersCreate => "users.create",
            Permission::UsersUpdate => "users.update",
            Permission::UsersDelete => "users.delete",
            Permission::UsersFactors => "users.factors",
            Permission::UsersCredentials => "users.credentials",
            Permission::UsersBypass => "users.bypass",
            Permission::UsersBlock => "users.block",
            Permission::TokensImport => "tokens.import",
            Permission::DirectorySync => "directory.sync",
            Permission::AuditRead => "audit.read",
            Permission::AuditExport => "audit.export",
            Permission::ReportsRead => "reports.read",
            Permission::SettingsWrite => "settings.write",
            Permission::AdminsManage => "admins.manage",
        }
    }

    pub fn parse(s: &str) -> Result<Permission, AdminError> {
        Permission::ALL
            .into_iter()
            .find(|p| p.as_str() == s.trim())
            .ok_or_else(|| AdminError::UnknownPermission(s.to_owned()))
    }

    /// Whether this permission acts on users, and so may be scoped to a group.
    pub fn about_users(self) -> bool {
        self.as_str().starts_with("users.")
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The preset roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Owner,
    Administrator,
    UserManager,
    HelpDesk,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Administrator,
        Role::UserManager,
        Role::HelpDesk,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Administrator => "administrator",
            Role::UserManager => "user-manager",
            Role::HelpDesk => "help-desk",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(s: &str) -> Result<Role, AdminError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| AdminError::UnknownRole(s.to_owned()))
    }

    /// The permissions the role stands for.
    pub fn permissions(self) -> Vec<Permission> {
        use Permission::*;
        match self {
            Role::Owner => Permission::ALL.to_vec(),
            Role::Administrator => Permission::ALL
                .into_iter()
                .filter(|p| *p != AdminsManage)
                .collect(),
            Role::UserManager => Permission::ALL
                .into_iter()
                .filter(|p| p.about_users() || matches!(p, TokensImport | DirectorySync))
                .collect(),
            Role::HelpDesk => vec![
                UsersRead,
                UsersUpdate,
                UsersFactors,
                UsersCredentials,
                UsersBypass,
                UsersBlock,
            ],
            Role::Auditor => vec![UsersRead, AuditRead, AuditExport, ReportsRead],
        }
    }

    /// The role whose permissions are exactly `permissions`, if any.
    pub fn matching(permissions: &[Permission]) -> Option<Role> {
        let mut given = permissions.to_vec();
        given.sort();
        given.dedup();
        Role::ALL.into_iter().find(|r| {
            let mut own = r.permissions();
            own.sort();
            own == given
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// To whom a grant applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    /// Every user.
    All,
    /// The members of one group.
    Group(String),
}

/// The longest group name.
pub const MAX_GROUP_NAME: usize = 128;

/// A group's name as stored: trimmed, 1 to 128 characters, no control characters.
pub fn group_name(s: &str) -> Result<String, AdminError> {
    let name = s.trim();
    if name.is_empty()
        || name.chars().count() > MAX_GROUP_NAME
        || name.chars().any(char::is_control)
    {
        return Err(AdminError::BadGroupName(s.to_owned()));
    }
    Ok(name.to_owned())
}

impl Scope {
    /// `all` or `group:NAME`.
    pub fn parse(s: &str) -> Result<Scope, AdminError> {
        let s = s.trim();
        if s == "all" {
            return Ok(Scope::All);
        }
        match s.strip_prefix("group:") {
            Some(name) => Ok(Scope::Group(group_name(name)?)),
            None => Err(AdminError::BadScope(s.to_owned())),
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Scope::All => "all".to_owned(),
            Scope::Group(g) => format!("group:{g}"),
        }
    }

    /// Whether a user in `groups` is within this scope.
    pub fn covers_member_of(&self, groups: &[String]) -> bool {
        match self {
            Scope::All => true,
            Scope::Group(g) => groups.iter().any(|m| m == g),
        }
    }

    /// Whether this scope includes all of `other`.
    pub fn includes(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::All, _) => true,
            (Scope::Group(a), Scope::Group(b)) => a == b,
            (Scope::Group(_), Scope::All) => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

/// One permission, for the users in one scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Grant {
    pub permission: Permission,
    pub scope: Scope,
}

/// Everything one administrator may do.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rights {
    pub grants: Vec<Grant>,
    /// The longest bypass this administrator may start, in seconds; `None`: the settings'
    /// `one_time_bypass_max_seconds`.
    pub bypass_max_seconds: Option<u32>,
}

/// The longest bypass any administrator may be allowed: one day.
pub const MAX_ADMIN_BYPASS_SECONDS: u32 = 86_400;

impl Rights {
    /// The rights of `permissions` for the users in `scope`. A permission that acts on the
    /// whole server cannot be scoped to a group.
    pub fn new(
        permissions: &[Permission],
        scope: Scope,
        bypass_max_seconds: Option<u32>,
    ) -> Result<Rights, AdminError> {
        if permissions.is_empty() {
            return Err(AdminError::NoPermission);
        }
        if let Scope::Group(_) = scope {
            let global: Vec<Permission> = permissions
                .iter()
                .copied()
                .filter(|p| !p.about_users())
                .collect();
            if !global.is_empty() {
                return Err(AdminError::NotScopable(global));
            }
        }
        if let Some(s) = bypass_max_seconds
            && !(60..=MAX_ADMIN_BYPASS_SECONDS).contains(&s)
        {
            return Err(AdminError::BypassMax(s));
        }
        let mut grants: Vec<Grant> = permissions
            .iter()
            .map(|p| Grant {
                permission: *p,
                scope: scope.clone(),
            })
            .collect();
        grants.sort();
        grants.dedup();
        Ok(Rights {
            grants,
            bypass_max_seconds,
        })
    }

    /// Whether this administrator holds `permission` for anyone at all.
    pub fn holds(&self, permission: Permission) -> bool {
        self.grants.iter().any(|g| g.permission == permission)
    }

    /// Whether this administrator holds `permission` for a user in `groups`.
    pub fn holds_for(&self, permission: Permission, groups: &[String]) -> bool {
        self.grants
            .iter()
            .any(|g| g.permission == permission && g.scope.covers_member_of(groups))
    }

    /// Whether this administrator holds `permission` for every user.
    pub fn holds_everywhere(&self, permission: Permission) -> bool {
        self.grants
            .iter()
            .any(|g| g.permission == permission && g.scope == Scope::All)
    }

    /// The groups whose members `permission` reaches: `None` for every user, else the
    /// groups (possibly none).
    pub fn reach(&self, permission: Permission) -> Option<Vec<String>> {
        if self.holds_everywhere(permission) {
            return None;
        }
        let mut groups: Vec<String> = self
            .grants
            .iter()
            .filter(|g| g.permission == permission)
            .filter_map(|g| match &g.scope {
                Scope::Group(name) => Some(name.clone()),
                Scope::All => None,
            })
            .collect();
        groups.sort();
        groups.dedup();
        Some(groups)
    }

    /// An owner holds every permission for every user.
    pub fn is_owner(&self) -> bool {
        Permission::ALL.iter().all(|p| self.holds_everywhere(*p))
    }

    /// The permissions held, each once.
    pub fn permissions(&self) -> Vec<Permission> {
        let mut p: Vec<Permission> = self.grants.iter().map(|g| g.permission).collect();
        p.sort();
        p.dedup();
        p
    }

    /// The preset role these rights amount to, if they are one role for one scope.
    pub fn role(&self) -> Option<Role> {
        let scopes: Vec<&Scope> = self.grants.iter().map(|g| &g.scope).collect();
        if scopes.windows(2).any(|w| w[0] != w[1]) {
            return None;
        }
        Role::matching(&self.permissions())
    }

    /// The scopes of the grants, each once.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut s: Vec<Scope> = self.grants.iter().map(|g| g.scope.clone()).collect();
        s.sort();
        s.dedup();
        s
    }

    /// The longest bypass this administrator may start under `settings_max`.
    pub fn bypass_limit(&self, settings_max: u32) -> u32 {
        self.bypass_max_seconds.unwrap_or(settings_max)
    }

    /// Whether `self` may give `other`: every grant of `other` is held by `self` at the same
    /// or a wider scope, and its bypass maximum is no longer than `self`'s.
    pub fn may_grant(&self, other: &Rights, settings_max: u32) -> Result<(), AdminError> {
        let missing: Vec<Grant> = other
            .grants
            .iter()
            .filter(|want| {
                !self.grants.iter().any(|held| {
                    held.permission == want.permission && held.scope.includes(&want.scope)
                })
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(AdminError::NotHeld(missing));
        }
        if other.holds(Permission::UsersBypass)
            && other.bypass_limit(settings_max) > self.bypass_limit(settings_max)
        {
            return Err(AdminError::BypassAboveOwn(self.bypass_limit(settings_max)));
        }
        Ok(())
    }
}

/// Why an administration request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum AdminError {
    #[error(
        "{0:?} is not a permission. Fix: use one of users.read, users.create, users.update, \
         users.delete, users.factors, users.credentials, users.bypass, users.block, \
         tokens.import, directory.sync, audit.read, audit.export, reports.read, \
         settings.write, admins.manage"
    )]
    UnknownPermission(String),
    #[error(
        "{0:?} is not a role. Fix: use one of owner, administrator, user-manager, help-desk, auditor"
    )]
    UnknownRole(String),
    #[error("{0:?} is not a scope. Fix: use `all` or `group:NAME`")]
    BadScope(String),
    #[error("{0:?} is not a group name. Fix: give 1 to 128 characters, without control characters")]
    BadGroupName(String),
    #[error("no permission was given. Fix: give a role or at least one permission")]
    NoPermission,
    #[error(
        "{} act on the whole server and cannot be scoped to a group. Fix: grant them for all users, or leave them out",
        list(.0)
    )]
    NotScopable(Vec<Permission>),
    #[error("a bypass maximum of {0} seconds is out of range. Fix: give 60 to 86400 seconds")]
    BypassMax(u32),
    #[error("you cannot grant what you do not hold: {}", grants(.0))]
    NotHeld(Vec<Grant>),
    #[error("you may grant bypasses of at most {0} seconds, your own maximum")]
    BypassAboveOwn(u32),
    #[error(
        "no owner would be left: the first administrator must be an owner, and the last owner cannot be removed or lose a permission; make another owner first"
    )]
    LastOwner,
    #[error("this needs the permission {0}")]
    Forbidden(Permission),
    #[error("{0} is not an administrator")]
    NotAnAdministrator(String),
    #[error("the bootstrap link is unknown, used or expired; restart the server for a new one")]
    BootstrapInvalid,
    #[error("an administrator exists already; the bootstrap link works only before the first")]
    AlreadyBootstrapped,
}

impl AdminError {
    pub fn code(&self) -> &'static str {
        match self {
            AdminError::UnknownPermission(_)
            | AdminError::UnknownRole(_)
            | AdminError::BadScope(_)
            | AdminError::BadGroupName(_)
            | AdminError::NoPermission
            | AdminError::NotScopable(_)
            | AdminError::BypassMax(_) => "invalid_grant",
            AdminError::NotHeld(_) | AdminError::BypassAboveOwn(_) => "grant_not_held",
            AdminError::LastOwner => "last_owner",
            AdminError::Forbidden(_) => "forbidden",
            AdminError::NotAnAdministrator(_) => "not_an_administrator",
            AdminError::BootstrapInvalid | AdminError::AlreadyBootstrapped => "bootstrap_invalid",
        }
    }
}

fn list(permissions: &[Permission]) -> String {
    permissions
        .iter()
        .map(|p| p.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn grants(grants: &[Grant]) -> String {
    grants
        .iter()
        .map(|g| format!("{} for {}", g.permission, g.scope))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use Permission::*;

    fn rights(role: Role, scope: Scope) -> Rights {
        Rights::new(&role.permissions(), scope, None).unwrap()
    }

    #[test]
    fn roles_hold_the_permissions_the_issue_lists() {
        assert_eq!(Role::Owner.permissions().len(), 15);
        assert!(!Role::Administrator.permissions().contains(&AdminsManage));
        assert_eq!(Role::Administrator.permissions().len(), 14);
        let manager = Role::UserManager.permissions();
        assert_eq!(manager.len(), 10);
        assert!(manager.contains(&TokensImport) && manager.contains(&DirectorySync));
        assert!(!manager.contains(&AuditRead));
        assert_eq!(
            Role::HelpDesk.permissions(),
            vec![
                UsersRead,
                UsersUpdate,
                UsersFactors,
                UsersCredentials,
                UsersBypass,
                UsersBlock
            ]
        );
        assert_eq!(
            Role::Auditor.permissions(),
            vec![UsersRead, AuditRead, AuditExport, ReportsRead]
        );
    }

    #[test]
    fn permission_and_role_names_round_trip() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()).unwrap(), p);
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()).unwrap(), r);
            assert_eq!(Role::matching(&r.permissions()), Some(r));
        }
        assert!(matches!(
            Permission::parse("users.everything"),
            Err(AdminError::UnknownPermission(_))
        ));
    }

    #[test]
    fn a_group_scope_reaches_only_its_members() {
        let help = rights(Role::HelpDesk, Scope::parse("group:Sales").unwrap());
        assert!(help.holds_for(UsersBlock, &["Sales".into()]));
        assert!(!help.holds_for(UsersBlock, &["Finance".into()]));
        assert!(!help.holds_for(UsersBlock, &[]));
        assert!(!help.holds_for(UsersDelete, &["Sales".into()]));
        assert_eq!(help.reach(UsersRead), Some(vec!["Sales".to_owned()]));
        let all = rights(Role::HelpDesk, Scope::All);
        assert!(all.holds_for(UsersBlock, &[]));
        assert_eq!(all.reach(UsersRead), None);
    }

    #[test]
    fn server_wide_permissions_cannot_be_scoped_to_a_group() {
        let err = Rights::new(
            &Role::Auditor.permissions(),
            Scope::Group("Sales".into()),
            None,
        )
        .unwrap_err();
        assert_eq!(
            err,
            AdminError::NotScopable(vec![AuditRead, AuditExport, ReportsRead])
        );
        assert!(err.to_string().contains("audit.read"));
    }

    #[test]
    fn nobody_grants_what_they_do_not_hold() {
        let settings_max = 3600;
        let owner = rights(Role::Owner, Scope::All);
        let admin = rights(Role::Administrator, Scope::All);
        let sales_help = rights(Role::HelpDesk, Scope::Group("Sales".into()));
        assert!(owner.may_grant(&admin, settings_max).is_ok());
        assert!(admin.may_grant(&sales_help, settings_max).is_ok());
        assert!(matches!(
            admin.may_grant(&owner, settings_max),
            Err(AdminError::NotHeld(g)) if g.len() == 1 && g[0].permission == AdminsManage
        ));
        // A group's help desk cannot make a help desk for everyone, or for another group.
        let everyone = rights(Role::HelpDesk, Scope::All);
        assert!(sales_help.may_grant(&everyone, settings_max).is_err());
        let finance = rights(Role::HelpDesk, Scope::Group("Finance".into()));
        assert!(sales_help.may_grant(&finance, settings_max).is_err());
        assert!(
            sales_help
                .may_grant(&sales_help.clone(), settings_max)
                .is_ok()
        );
    }

    #[test]
    fn a_bypass_maximum_is_granted_only_up_to_ones_own() {
        let mine = Rights::new(&[UsersBypass], Scope::All, Some(600)).unwrap();
        let longer = Rights::new(&[UsersBypass], Scope::All, Some(1200)).unwrap();
        assert_eq!(
            mine.may_grant(&longer, 3600),
            Err(AdminError::BypassAboveOwn(600))
        );
        let shorter = Rights::new(&[UsersBypass], Scope::All, Some(300)).unwrap();
        assert!(mine.may_grant(&shorter, 3600).is_ok());
        // No maximum of its own: the settings' maximum, above this admin's 600.
        let unbounded = Rights::new(&[UsersBypass], Scope::All, None).unwrap();
        assert!(mine.may_grant(&unbounded, 3600).is_err());
        assert!(Rights::new(&[UsersBypass], Scope::All, Some(10)).is_err());
    }

    #[test]
    fn rights_name_their_role_only_when_they_are_one() {
        assert_eq!(rights(Role::Owner, Scope::All).role(), Some(Role::Owner));
        assert!(rights(Role::Owner, Scope::All).is_owner());
        assert!(!rights(Role::Administrator, Scope::All).is_owner());
        let custom = Rights::new(&[UsersRead, UsersBlock], Scope::All, None).unwrap();
        assert_eq!(custom.role(), None);
    }

    #[test]
    fn scopes_parse_and_refuse_nonsense() {
        assert_eq!(Scope::parse("all").unwrap(), Scope::All);
        assert_eq!(
            Scope::parse("group:Help Desk").unwrap(),
            Scope::Group("Help Desk".into())
        );
        assert!(Scope::parse("group:").is_err());
        assert!(Scope::parse("sales").is_err());
        assert!(Scope::parse("group:a\u{0}b").is_err());
    }
}
