use super::db::{Db, Query, Row, query};
use super::{Store, StoreError};
use twofold_engine::AuditEvent;

/// An audit event as stored, with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub action: String,
    pub outcome: String,
    pub actor: String,
    pub subject: Option<String>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

pub(super) fn audit_from_row(row: &Row) -> Result<AuditRow, StoreError> {
    Ok(AuditRow {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        action: row.try_get("action")?,
        outcome: row.try_get("outcome")?,
        actor: row.try_get("actor")?,
        subject: row.try_get("subject")?,
        client_ip: row.try_get("client_ip")?,
        user_agent: row.try_get("user_agent")?,
        detail: row.try_get("detail")?,
    })
}

pub(super) const COLUMNS: &str =
    "id, at, action, outcome, actor, subject, client_ip, user_agent, detail";

pub(super) fn insert_event(e: &AuditEvent) -> Query<'_> {
    bind_event(
        query(
            "INSERT INTO audit_log (at, action, outcome, actor, subject, client_ip, user_agent, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        ),
        e,
    )
}

/// Binds an event's eight columns, in the order the inserts name them.
fn bind_event<'a>(q: Query<'a>, e: &'a AuditEvent) -> Query<'a> {
    q.bind(e.at)
        .bind(e.action.as_str())
        .bind(e.outcome.as_str())
        .bind(&e.actor)
        .bind(e.subject.as_deref())
        .bind(e.client_ip.as_deref())
        .bind(e.user_agent.as_deref())
        .bind(e.detail.as_deref())
}

/// One `INSERT` of every event (PostgreSQL: eight parameters a row, far below its limit for
/// the audit writer's largest batch).
fn insert_events(events: &[AuditEvent]) -> Query<'_> {
    let rows: Vec<String> = (0..events.len())
        .map(|i| {
            let n = i * 8;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5,
                n + 6,
                n + 7,
                n + 8
            )
        })
        .collect();
    let mut q = query(format!(
        "INSERT INTO audit_log (at, action, outcome, actor, subject, client_ip, user_agent, detail) \
         VALUES {}",
        rows.join(", ")
    ));
    for e in events {
        q = bind_event(q, e);
    }
    q
}

impl Store {
    pub async fn append_audit(&self, e: &AuditEvent) -> Result<(), StoreError> {
        insert_event(e).execute(&self.db).await?;
        Ok(())
    }

    /// Appends several events as one unit (the audit writer's group commit). On PostgreSQL
    /// that is one multi-row `INSERT`, a single round trip and commit; on SQLite the events
    /// join the store's own group commit.
    pub async fn append_audit_batch(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        match &self.db {
            Db::Postgres(_) => {
                insert_events(events).execute(&self.db).await?;
            }
            _ => {
                let inserts = events.iter().map(insert_event).collect();
                self.db.execute_all(inserts).await?;
            }
        }
        Ok(())
    }

    /// The newest `limit` events, oldest first.
    pub async fn audit_tail(&self, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = query(format!(
            "SELECT {COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        let mut events = rows
            .iter()
            .map(audit_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        Ok(events)
    }

    /// Events after sequence number `after`, oldest first (for `audit tail --follow`).
    pub async fn audit_since(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>, StoreError> {
        let rows = query(format!(
            "SELECT {COLUMNS} FROM audit_log WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.db)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}
