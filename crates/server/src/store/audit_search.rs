//! Searching the audit log: the console's filters, newest first, a page at a time by the
//! events' sequence numbers (keyset pagination: a page costs the same deep in the log as at
//! its top).

use super::audit::{COLUMNS, audit_from_row};
use super::db::{Value, query};
use super::{AuditRow, Store, StoreError};
use twofold_engine::UnixTime;

/// Which events to show. Every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events at or after this time.
    pub from: Option<UnixTime>,
    /// Events before this time.
    pub until: Option<UnixTime>,
    /// Who acted, exactly as the log names them (`admin:alice`, `portal`).
    pub actor: Option<String>,
    /// The username acted upon.
    pub subject: Option<String>,
    /// The action (`sign_in`).
    pub action: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
}

impl AuditFilter {
    /// The `WHERE` clause and its parameters, numbered from `$1`.
    fn clause(&self, before: Option<i64>) -> (String, Vec<Value<'static>>) {
        let mut terms = Vec::new();
        let mut args: Vec<Value<'static>> = Vec::new();
        let mut term = |sql: &str, value: Value<'static>| {
            args.push(value);
            terms.push(sql.replace('?', &format!("${}", args.len())));
        };
        if let Some(from) = self.from {
            term("at >= ?", Value::Integer(from));
        }
        if let Some(until) = self.until {
            term("at < ?", Value::Integer(until));
        }
        if let Some(actor) = &self.actor {
            term("actor = ?", Value::from(actor.clone()));
        }
        if let Some(subject) = &self.subject {
            term("subject = ?", Value::from(subject.clone()));
        }
        if let Some(action) = &self.action {
            term("action = ?", Value::from(action.clone()));
        }
        if let Some(outcome) = &self.outcome {
            term("outcome = ?", Value::from(outcome.clone()));
        }
        if let Some(before) = before {
            term("id < ?", Value::Integer(before));
        }
        let clause = if terms.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", terms.join(" AND "))
        };
        (clause, args)
    }
}

impl Store {
    /// Up to `limit` events matching `filter` with a sequence number below `before` (every
    /// one when `None`), newest first.
    pub async fn search_audit(
        &self,
        filter: &AuditFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let (clause, args) = filter.clause(before);
        let n = args.len() + 1;
        let mut q = query(format!(
            "SELECT {COLUMNS} FROM audit_log {clause} ORDER BY id DESC LIMIT ${n}"
        ));
        for arg in args {
            q = q.bind(arg);
        }
        let rows = q.bind(limit).fetch_all(&self.db).await?;
        rows.iter().map(audit_from_row).collect()
    }
}
