//! Hardware tokens (`tokens.import`): the inventory (serial, type, status, who holds it), a
//! page at a time in serial order with a serial search, and the import of a PSKC or CSV file
//! as a background job whose page shows its progress, then each refused row.

use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::service::token_imports::TokenImportView;
use crate::store::TokenStatus;
use crate::web::body_limit::IMPORT_PATH;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Json;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use twofold_engine::admin::Permission;
use twofold_engine::oath::OathKind;
use twofold_engine::token_import::PskcKey;

/// Tokens per page of the inventory.
const PAGE: i64 = 50;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    let import = Need::Permission(Permission::TokensImport);
    r.get("/admin/tokens", import, tokens_get)
        // The body's limit is `http.max_import_bytes`, applied to this path by the router's
        // body limit; the extractor's own default limit would be lower.
        .route(
            Method::POST,
            IMPORT_PATH,
            import,
            post(import_post).layer(DefaultBodyLimit::disable()),
        )
        .get("/admin/tokens/import/{id}", import, import_get)
        .get("/admin/tokens/import/{id}/status", import, status_get)
}

struct Row {
    serial: String,
    kind: String,
    status: String,
    username: String,
}

#[derive(Template)]
#[template(path = "admin/tokens.html")]
struct TokensTemplate {
    admin: AdminPage,
    rows: Vec<Row>,
    search: String,
    next: Option<String>,
    first_page: bool,
    file_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    after: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    too_large: Option<u64>,
}

fn kind_of(params: &twofold_engine::oath::OathParams) -> String {
    let algorithm = serde_json::to_value(params.algorithm)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match params.kind {
        OathKind::Totp { period } => {
            format!("TOTP {period} s, {} digits, {algorithm}", params.digits)
        }
        OathKind::Hotp => format!("HOTP, {} digits, {algorithm}", params.digits),
    }
}

fn status_key(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Available => "admin-tokens-status-available",
        TokenStatus::Pending => "admin-tokens-status-pending",
        TokenStatus::Active => "admin-tokens-status-active",
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

async fn render_list(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    query: ListQuery,
    file_error: Option<String>,
) -> Result<Response, WebError> {
    let t = admin.t();
    let mut found = admin
        .service(state)?
        .token_inventory(&query.after, &query.q, PAGE + 1)
        .await?;
    let more = found.len() > usize::try_from(PAGE).unwrap_or(50);
    found.truncate(usize::try_from(PAGE).unwrap_or(50));
    let next = if more {
        found.last().map(|t| t.serial.clone())
    } else {
        None
    };
    let rows = found
        .into_iter()
        .map(|token| Row {
            kind: kind_of(&token.params),
            status: t.t(status_key(token.status)),
            username: token.username.unwrap_or_default(),
            serial: token.serial,
        })
        .collect::<Vec<_>>();
    let file_error = file_error.or_else(|| {
        query
            .too_large
            .map(|limit| t.t1("admin-tokens-too-large", "limit", &mib(limit)))
    });
    let template = TokensTemplate {
        admin: admin.page(state, Section::Tokens),
        rows,
        search: query.q,
        next,
        first_page: query.after.is_empty(),
        file_error,
    };
    page(status, &template)
}

async fn tokens_get(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let status = if query.too_large.is_some() {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::OK
    };
    render_list(&state, &admin, status, query, None).await
}

/// What the import form sent.
#[derive(Default)]
struct Upload {
    file_name: String,
    bytes: Vec<u8>,
    key: String,
    password: String,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, WebError> {
    let mut upload = Upload::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(WebError::TooLarge);
            }
            Err(e) => return Err(WebError::BadRequest(e.body_text())),
        };
        match field.name() {
            Some("file") => {
                upload.file_name = field.file_name().unwrap_or("upload").to_owned();
                upload.bytes = field
                    .bytes()
                    .await
                    .map_err(|_| WebError::TooLarge)?
                    .to_vec();
            }
            Some("key") => upload.key = field.text().await.unwrap_or_default(),
            Some("password") => upload.password = field.text().await.unwrap_or_default(),
            _ => {}
        }
    }
    Ok(upload)
}

async fn import_post(
    State(state): State<AppState>,
    admin: Admin,
    multipart: Multipart,
) -> Result<Response, WebError> {
    let t = admin.t();
    let upload = read_upload(multipart).await?;
    let refuse = |message: String| async {
        render_list(
            &state,
            &admin,
            StatusCode::UNPROCESSABLE_ENTITY,
            ListQuery::default(),
            Some(message),
        )
        .await
    };
    if upload.bytes.is_empty() {
        return refuse(t.t("admin-tokens-no-file")).await;
    }
    let key = match (upload.key.trim(), upload.password.as_str()) {
        ("", "") => None,
        (hex_key, "") => match hex::decode(hex_key) {
            Ok(bytes) => Some(PskcKey::PreShared(bytes)),
            Err(_) => return refuse(t.t("admin-tokens-bad-key")).await,
        },
        ("", password) => Some(PskcKey::Password(password.to_owned())),
        _ => return refuse(t.t("admin-tokens-key-and-password")).await,
    };
    let service = admin.service(&state)?.clone();
    let id = service
        .start_token_import(&admin.actor.actor(), &upload.file_name, upload.bytes, key)
        .await?;
    Ok(Redirect::to(&format!("/admin/tokens/import/{id}")).into_response())
}

struct ErrorRow {
    location: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "admin/token_import.html")]
struct ImportTemplate {
    admin: AdminPage,
    id: String,
    file_name: String,
    state: String,
    state_text: String,
    total: i64,
    done: i64,
    finished: bool,
    errors: Vec<ErrorRow>,
}

async fn find(state: &AppState, admin: &Admin, id: &str) -> Result<TokenImportView, WebError> {
    admin
        .service(state)?
        .token_import(id)
        .await?
        .ok_or(WebError::NotFound)
}

async fn import_get(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let view = find(&state, &admin, &id).await?;
    let t = admin.t();
    let record = &view.record;
    let state_text = match record.state.as_str() {
        "finished" => t.t1(
            "admin-tokens-import-finished",
            "count",
            &record.done.to_string(),
        ),
        "refused" => t.t1(
            "admin-tokens-import-refused",
            "count",
            &view.errors.len().to_string(),
        ),
        "failed" => t.t1(
            "admin-tokens-import-failed",
            "count",
            &record.done.to_string(),
        ),
        "importing" => t.t("admin-tokens-import-importing"),
        _ => t.t("admin-tokens-import-checking"),
    };
    let template = ImportTemplate {
        admin: admin.page(&state, Section::Tokens),
        finished: view.finished(),
        id: record.id.clone(),
        file_name: record.file_name.clone(),
        state: record.state.clone(),
        state_text,
        total: record.total,
        done: record.done,
        errors: view
            .errors
            .iter()
            .map(|e| ErrorRow {
                location: e.location.clone(),
                reason: e.reason.clone(),
            })
            .collect(),
    };
    page(StatusCode::OK, &template)
}

/// What the import page's script polls.
#[derive(Serialize)]
struct ImportStatus {
    state: String,
    total: i64,
    done: i64,
    errors: usize,
    finished: bool,
}

async fn status_get(
    State(state): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let view = find(&state, &admin, &id).await?;
    Ok(Json(ImportStatus {
        finished: view.finished(),
        errors: view.errors.len(),
        state: view.record.state,
        total: view.record.total,
        done: view.record.done,
    })
    .into_response())
}
