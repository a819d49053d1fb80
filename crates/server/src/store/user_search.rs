//! The admin console's list of users: a search by username or email, filters on the user's
//! state, a group scope, and keyset pagination by username, in one query.

use super::db::query;
use super::{Store, StoreError};
use twofold_engine::UnixTime;

/// A state a listed user must be in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserFilter {
    /// Never finished the enrolment wizard.
    NotEnrolled,
    /// Under a lockout now (one that ends by itself, or a hard lock).
    Locked,
    /// Blocked by a fraud report now.
    FraudBlocked,
    /// Holding a one-time bypass not used and not expired.
    BypassActive,
    /// Disabled.
    Disabled,
}

impl UserFilter {
    pub const ALL: [UserFilter; 5] = [
        UserFilter::NotEnrolled,
        UserFilter::Locked,
        UserFilter::FraudBlocked,
        UserFilter::BypassActive,
        UserFilter::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UserFilter::NotEnrolled => "not-enrolled",
            UserFilter::Locked => "locked",
            UserFilter::FraudBlocked => "fraud-blocked",
            UserFilter::BypassActive => "bypass",
            UserFilter::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<UserFilter> {
        UserFilter::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The SQL condition on `users` (`$1` is now).
    fn condition(self) -> &'static str {
        match self {
            UserFilter::NotEnrolled => "users.enrolled_at IS NULL",
            UserFilter::Locked => LOCKED,
            UserFilter::FraudBlocked => FRAUD_BLOCKED,
            UserFilter::BypassActive => BYPASS,
            UserFilter::Disabled => "users.enabled = 0",
        }
    }
}

const LOCKED: &str = "EXISTS (SELECT 1 FROM lockouts l WHERE l.username = users.username \
                      AND (l.hard_locked_at IS NOT NULL OR l.locked_until > $1))";
const FRAUD_BLOCKED: &str = "users.fraud_blocked_until > $1";
const BYPASS: &str = "EXISTS (SELECT 1 FROM bypasses b WHERE b.user_id = users.id \
                      AND b.used_at IS NULL AND b.expires_at > $1)";

/// What the list asks for.
#[derive(Debug, Clone, Default)]
pub struct UserSearch {
    /// Part of the username or of the email, any case (empty: everyone).
    pub text: String,
    /// States the users must all be in.
    pub filters: Vec<UserFilter>,
    /// Only usernames after this one.
    pub after: Option<String>,
    /// Only members of one of these groups (`None`: everyone).
    pub groups: Option<Vec<String>>,
    pub limit: i64,
}

/// One row of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserListing {
    pub username: String,
    pub email: Option<String>,
    pub method: Option<String>,
    pub source: String,
    pub enabled: bool,
    pub enrolled: bool,
    pub locked: bool,
    pub fraud_blocked: bool,
    pub bypass_active: bool,
}

/// `text` as a LIKE pattern (`!` escapes), lowercased, matching anywhere.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.trim().to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// The users `search` asks for, in username order, at most `search.limit`.
    pub async fn search_users(
        &self,
        search: &UserSearch,
        now: UnixTime,
    ) -> Result<Vec<UserListing>, StoreError> {
        if search.groups.as_ref().is_some_and(|g| g.is_empty()) {
            return Ok(Vec::new());
        }
        let mut conditions = vec!["users.username > $2".to_owned()];
        let mut next = 4;
        let text = search.text.trim();
        if !text.is_empty() {
            conditions.push(
                "(users.username LIKE $4 ESCAPE '!' OR LOWER(users.email) LIKE $4 ESCAPE '!')"
                    .to_owned(),
            );
            next = 5;
        }
        for filter in &search.filters {
            conditions.push(filter.condition().to_owned());
        }
        if let Some(groups) = &search.groups {
            let marks: Vec<String> = (0..groups.len())
                .map(|i| format!("${}", next + i))
                .collect();
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM user_groups g WHERE g.user_id = users.id \
                 AND g.group_name IN ({}))",
                marks.join(", ")
            ));
        }
        let sql = format!(
            "SELECT users.username, users.email, users.method, users.source, users.enabled, \
             CASE WHEN users.enrolled_at IS NULL THEN 0 ELSE 1 END AS enrolled, \
             CASE WHEN {LOCKED} THEN 1 ELSE 0 END AS locked, \
             CASE WHEN {FRAUD_BLOCKED} THEN 1 ELSE 0 END AS fraud_blocked, \
             CASE WHEN {BYPASS} THEN 1 ELSE 0 END AS bypass_active \
             FROM users WHERE {} ORDER BY users.username LIMIT $3",
            conditions.join(" AND ")
        );
        let mut q = query(sql)
            .bind(now)
            .bind(search.after.clone().unwrap_or_default())
            .bind(search.limit);
        if !text.is_empty() {
            q = q.bind(contains_pattern(text));
        }
        if let Some(groups) = &search.groups {
            for g in groups {
                q = q.bind(g.clone());
            }
        }
        let rows = q.fetch_all(&self.db).await?;
        rows.iter()
            .map(|row| {
                Ok(UserListing {
                    username: row.try_get("username")?,
                    email: row.try_get("email")?,
                    method: row.try_get("method")?,
                    source: row.try_get("source")?,
                    enabled: row.try_get::<i64>("enabled")? != 0,
                    enrolled: row.try_get::<i64>("enrolled")? != 0,
                    locked: row.try_get::<i64>("locked")? != 0,
                    fraud_blocked: row.try_get::<i64>("fraud_blocked")? != 0,
                    bypass_active: row.try_get::<i64>("bypass_active")? != 0,
                })
            })
            .collect()
    }

    /// The newest `limit` audit events about `subject`, newest first.
    pub async fn audit_of_subject(
        &self,
        subject: &str,
        limit: i64,
    ) -> Result<Vec<super::AuditRow>, StoreError> {
        let rows = query(format!(
            "SELECT {} FROM audit_log WHERE subject = $1 ORDER BY id DESC LIMIT $2",
            super::audit::COLUMNS
        ))
        .bind(subject)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(super::audit::audit_from_row).collect()
    }

    /// How many security answers `user_id` keeps.
    pub async fn answer_count(&self, user_id: &str) -> Result<i64, StoreError> {
        let row = query("SELECT COUNT(*) AS n FROM security_answers WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&self.db)
            .await?;
        row.try_get("n")
    }

    /// Forgets every security answer of `user_id`; how many there were.
    pub async fn clear_answers(&self, user_id: &str) -> Result<u64, StoreError> {
        Ok(query("DELETE FROM security_answers WHERE user_id = $1")
            .bind(user_id)
            .execute(&self.db)
            .await?
            .rows_affected())
    }
}

/// One of a user's OATH tokens, as the console lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserToken {
    pub serial: Option<String>,
    /// `software` or `hardware`.
    pub kind: String,
    /// `pending`, `active`, …
    pub status: String,
}

impl Store {
    /// Every OATH token of `user_id`, newest first.
    pub async fn tokens_of(&self, user_id: &str) -> Result<Vec<UserToken>, StoreError> {
        let rows = query(
            "SELECT serial, kind, status FROM oath_tokens WHERE user_id = $1 ORDER BY created_at DESC",
        )
        .bind(user_id)
        .fetch_all(&self.db)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(UserToken {
                    serial: row.try_get("serial")?,
                    kind: row.try_get("kind")?,
                    status: row.try_get("status")?,
                })
            })
            .collect()
    }
}
