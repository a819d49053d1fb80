//! The audit log (`audit.read`): every event, newest first, filtered by time, actor, user,
//! action and outcome, a hundred a page; and its export as CSV (`audit.export`), streamed a
//! thousand rows at a time and itself audited.

use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::service::InProcessService;
use crate::store::{AuditFilter, AuditRow};
use crate::web::{AppState, WebError};
use askama::Template;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use twofold_engine::admin::Permission;
use twofold_engine::audit::{AuditAction, AuditOutcome};

/// Events a page.
const PAGE: usize = 100;
/// Events read from the store at a time while exporting.
const EXPORT_BATCH: i64 = 1000;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    r.get(
        "/admin/audit",
        Need::Permission(Permission::AuditRead),
        audit_get,
    )
    .get(
        "/admin/audit/export.csv",
        Need::Permission(Permission::AuditExport),
        export_get,
    )
}

/// Every action, in the order the filter's list shows them.
pub const ACTIONS: [AuditAction; 40] = [
    AuditAction::SignIn,
    AuditAction::PasswordVerified,
    AuditAction::SignOut,
    AuditAction::UserCreated,
    AuditAction::UserUpdated,
    AuditAction::UserDeleted,
    AuditAction::UserUnlocked,
    AuditAction::UserHardLocked,
    AuditAction::LanguageChanged,
    AuditAction::SettingChanged,
    AuditAction::TokenEnrolled,
    AuditAction::TokenRemoved,
    AuditAction::TokensImported,
    AuditAction::TokenResynchronised,
    AuditAction::PinChanged,
    AuditAction::MethodChanged,
    AuditAction::SecurityAnswersChanged,
    AuditAction::SecurityQuestionChanged,
    AuditAction::EnrollmentCompleted,
    AuditAction::BypassStarted,
    AuditAction::KeyRotated,
    AuditAction::ServiceAccountCreated,
    AuditAction::ServiceAccountDeleted,
    AuditAction::SdkCall,
    AuditAction::UsersImported,
    AuditAction::UsersSynced,
    AuditAction::UserLeftDirectory,
    AuditAction::InvitationSent,
    AuditAction::PhoneMessageSent,
    AuditAction::PhoneChanged,
    AuditAction::FraudReported,
    AuditAction::UserUnblocked,
    AuditAction::AppActivationCreated,
    AuditAction::DeviceActivated,
    AuditAction::DeviceRemoved,
    AuditAction::PushSent,
    AuditAction::AdminChanged,
    AuditAction::AdminRemoved,
    AuditAction::GroupsChanged,
    AuditAction::AuditExported,
];

/// Fails to compile when an action is added to the log's vocabulary and not to [`ACTIONS`]
/// (the list's length must change with it; a test checks that each is there once).
#[allow(dead_code)]
fn every_action_is_listed(action: AuditAction) {
    match action {
        AuditAction::PasswordVerified
        | AuditAction::SignIn
        | AuditAction::SignOut
        | AuditAction::UserCreated
        | AuditAction::UserUpdated
        | AuditAction::UserDeleted
        | AuditAction::UserUnlocked
        | AuditAction::UserHardLocked
        | AuditAction::LanguageChanged
        | AuditAction::SettingChanged
        | AuditAction::TokenEnrolled
        | AuditAction::TokenRemoved
        | AuditAction::TokensImported
        | AuditAction::TokenResynchronised
        | AuditAction::PinChanged
        | AuditAction::MethodChanged
        | AuditAction::SecurityAnswersChanged
        | AuditAction::SecurityQuestionChanged
        | AuditAction::EnrollmentCompleted
        | AuditAction::BypassStarted
        | AuditAction::KeyRotated
        | AuditAction::ServiceAccountCreated
        | AuditAction::ServiceAccountDeleted
        | AuditAction::SdkCall
        | AuditAction::UsersImported
        | AuditAction::UsersSynced
        | AuditAction::UserLeftDirectory
        | AuditAction::InvitationSent
        | AuditAction::PhoneMessageSent
        | AuditAction::PhoneChanged
        | AuditAction::FraudReported
        | AuditAction::UserUnblocked
        | AuditAction::AppActivationCreated
        | AuditAction::DeviceActivated
        | AuditAction::DeviceRemoved
        | AuditAction::PushSent
        | AuditAction::AdminChanged
        | AuditAction::AdminRemoved
        | AuditAction::GroupsChanged
        | AuditAction::AuditExported => {}
    }
}

/// The filters as the form sends them (every field optional; empty means any).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    before: String,
}

/// A filter refused, and the field it is about.
#[derive(Debug, Clone, Default)]
struct FieldErrors {
    from: Option<String>,
    to: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.from.is_some() || self.to.is_some() || self.action.is_some() || self.outcome.is_some()
    }
}

/// A `YYYY-MM-DD` date's first second (UTC).
fn day_start(s: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &format)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

fn nonempty(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

impl Filters {
    /// The store's filter, or what is wrong with each refused field.
    fn read(&self, t: &crate::web::i18n::Translator) -> (AuditFilter, FieldErrors) {
        let mut errors = FieldErrors::default();
        let mut filter = AuditFilter {
            actor: nonempty(&self.actor),
            subject: nonempty(&self.user),
            ..AuditFilter::default()
        };
        if let Some(from) = nonempty(&self.from) {
            match day_start(&from) {
                Some(at) => filter.from = Some(at),
                None => errors.from = Some(t.t("admin-audit-date-invalid")),
            }
        }
        if let Some(to) = nonempty(&self.to) {
            match day_start(&to) {
                // The whole of the last day.
                Some(at) => filter.until = Some(at + crate::store::DAY),
                None => errors.to = Some(t.t("admin-audit-date-invalid")),
            }
        }
        if let (Some(from), Some(until)) = (filter.from, filter.until)
            && until <= from
        {
            errors.to = Some(t.t("admin-audit-range-invalid"));
        }
        if let Some(action) = nonempty(&self.action) {
            if ACTIONS.iter().any(|a| a.as_str() == action) {
                filter.action = Some(action);
            } else {
                errors.action = Some(t.t("admin-audit-action-invalid"));
            }
        }
        if let Some(outcome) = nonempty(&self.outcome) {
            if [AuditOutcome::Success, AuditOutcome::Failure]
                .iter()
                .any(|o| o.as_str() == outcome)
            {
                filter.outcome = Some(outcome);
            } else {
                errors.outcome = Some(t.t("admin-audit-outcome-invalid"));
            }
        }
        (filter, errors)
    }

    /// The page's position: events numbered below this one.
    fn before(&self) -> Option<i64> {
        self.before.trim().parse::<i64>().ok().filter(|n| *n > 0)
    }

    /// The filters as a query string (without the page's position), for links.
    fn query(&self) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("from", &self.from),
            ("to", &self.to),
            ("actor", &self.actor),
            ("user", &self.user),
            ("action", &self.action),
            ("outcome", &self.outcome),
        ] {
            if !value.trim().is_empty() {
                q.append_pair(name, value.trim());
            }
        }
        q.finish()
    }
}

struct Row {
    id: i64,
    at: String,
    action: String,
    outcome: String,
    actor: String,
    subject: String,
    client_ip: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditTemplate {
    admin: AdminPage,
    filters: Filters,
    errors: FieldErrors,
    /// Every action, and whether it is the one chosen.
    actions: Vec<(&'static str, bool)>,
    rows: Vec<Row>,
    /// The next (older) page's address, when there is one.
    older: Option<String>,
    /// The newest page's address, when this is not it.
    newest: Option<String>,
    /// The export's address, for an administrator who may export.
    export: Option<String>,
}

fn with_query(path: &str, query: &str) -> String {
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

async fn audit_get(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let filters = query.map(|Query(q)| q).unwrap_or_default();
    let service = admin.service(&state)?;
    let (filter, errors) = filters.read(&admin.t());
    let before = filters.before();
    let mut found = if errors.any() {
        Vec::new()
    } else {
        service
            .search_audit(&filter, before, PAGE as i64 + 1)
            .await?
    };
    let more = found.len() > PAGE;
    found.truncate(PAGE);
    let query = filters.query();
    let older = match (more, found.last()) {
        (true, Some(last)) => {
            let sep = if query.is_empty() { "" } else { "&" };
            Some(format!("/admin/audit?{query}{sep}before={}", last.id))
        }
        _ => None,
    };
    let newest = before.map(|_| with_query("/admin/audit", &query));
    let export = admin
        .may(Permission::AuditExport)
        .then(|| with_query("/admin/audit/export.csv", &query));
    let rows = found
        .into_iter()
        .map(|e| Row {
            id: e.id,
            at: crate::web::portal::format_time(e.at),
            action: e.action,
            outcome: e.outcome,
            actor: e.actor,
            subject: e.subject.unwrap_or_default(),
            client_ip: e.client_ip.unwrap_or_default(),
            detail: e.detail.unwrap_or_default(),
        })
        .collect();
    let status = if errors.any() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let template = AuditTemplate {
        admin: admin.page(&state, Section::Audit),
        errors,
        actions: ACTIONS
            .iter()
            .map(|a| (a.as_str(), a.as_str() == filters.action.trim()))
            .collect(),
        rows,
        older,
        newest,
        export,
        filters,
    };
    page(status, &template)
}

/// The CSV's columns.
const HEADER: &str = "id,time,action,outcome,actor,user,client_ip,user_agent,detail\r\n";

/// One CSV cell (RFC 4180): quoted when it holds a comma, a quote or a line break; a cell a
/// spreadsheet would read as a formula (`=`, `+`, `-`, `@`, a tab or a carriage return
/// first) is prefixed with `'` so that it stays text.
pub fn csv_cell(value: &str) -> String {
    let neutral = match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// One event as a CSV record.
pub fn csv_record(e: &AuditRow) -> String {
    let cells = [
        e.id.to_string(),
        rfc3339(e.at),
        e.action.clone(),
        e.outcome.clone(),
        e.actor.clone(),
        e.subject.clone().unwrap_or_default(),
        e.client_ip.clone().unwrap_or_default(),
        e.user_agent.clone().unwrap_or_default(),
        e.detail.clone().unwrap_or_default(),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The chunks of a streamed body, handed over by the task that reads them.
struct Chunks(tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// Reads the matching events a batch at a time, newest first, and sends each batch as one
/// chunk; stops when the reader goes away.
async fn export_rows(
    service: Arc<InProcessService>,
    filter: AuditFilter,
    to: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    if to
        .send(Ok(Bytes::from_static(HEADER.as_bytes())))
        .await
        .is_err()
    {
        return;
    }
    let mut before = None;
    loop {
        let batch = match service.search_audit(&filter, before, EXPORT_BATCH).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, "the audit export stopped");
                let _ = to.send(Err(std::io::Error::other(e.to_string()))).await;
                return;
            }
        };
        let Some(last) = batch.last() else {
            return;
        };
        before = Some(last.id);
        let chunk: String = batch.iter().map(csv_record).collect();
        if to.send(Ok(Bytes::from(chunk))).await.is_err() {
            return;
        }
        if (batch.len() as i64) < EXPORT_BATCH {
            return;
        }
    }
}

async fn export_get(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let filters = query.map(|Query(q)| q).unwrap_or_default();
    let (filter, errors) = filters.read(&admin.t());
    if errors.any() {
        let message = [errors.from, errors.to, errors.action, errors.outcome]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        return Err(WebError::BadRequest(message));
    }
    let service = admin.service(&state)?.clone();
    service
        .record_audit_export(&admin.client, &filters.query())
        .await;
    let (to, from) = tokio::sync::mpsc::channel(2);
    tokio::spawn(export_rows(service.clone(), filter, to));
    let name = format!("twofold-audit-{}.csv", service.now());
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        Body::from_stream(Chunks(from)),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_a_spreadsheet_would_run_stays_text() {
        assert_eq!(csv_cell("=1+2"), "'=1+2");
        assert_eq!(csv_cell("+cmd"), "'+cmd");
        assert_eq!(csv_cell("-2"), "'-2");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(csv_cell("alice"), "alice");
        assert_eq!(csv_cell("a-b"), "a-b");
    }

    #[test]
    fn cells_are_quoted_as_rfc_4180_says() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    }

    #[test]
    fn every_action_is_in_the_filter_once() {
        let mut names: Vec<&str> = ACTIONS.iter().map(|a| a.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
    }
}
