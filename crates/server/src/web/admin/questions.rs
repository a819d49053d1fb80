//! Security questions (`settings.write`): the catalogue users choose from, per language;
//! adding, rewording, reordering (move up, move down) and disabling questions, without
//! JavaScript. Each change is audited with the administrator as actor.

use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::service::ServiceError;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use twofold_engine::Language;
use twofold_engine::admin::Permission;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    let write = Need::Permission(Permission::SettingsWrite);
    r.get("/admin/questions", write, questions_get)
        .post("/admin/questions/add", write, add_post)
        .post("/admin/questions/edit", write, edit_post)
        .post("/admin/questions/move", write, move_post)
        .post("/admin/questions/enabled", write, enabled_post)
}

struct Row {
    id: String,
    number: usize,
    text: String,
    enabled: bool,
    first: bool,
    last: bool,
    /// The refusal of this row's rewording.
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/questions.html")]
struct QuestionsTemplate {
    admin: AdminPage,
    language: &'static str,
    languages: Vec<(&'static str, &'static str, bool)>,
    notice: Option<String>,
    rows: Vec<Row>,
    add_text: String,
    add_error: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    done: Option<String>,
}

fn language_of(tag: Option<&str>) -> Language {
    tag.and_then(Language::from_tag).unwrap_or(Language::En)
}

/// What the page shows besides the list.
#[derive(Default)]
struct Shown {
    notice: Option<String>,
    add_text: String,
    add_error: Option<String>,
    edit_error: Option<(String, String)>,
}

async fn render_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    language: Language,
    shown: Shown,
) -> Result<Response, WebError> {
    let questions = admin
        .service(state)?
        .list_questions(Some(language.tag()))
        .await?;
    let count = questions.len();
    let rows = questions
        .into_iter()
        .enumerate()
        .map(|(i, q)| Row {
            error: shown
                .edit_error
                .as_ref()
                .filter(|(id, _)| *id == q.id)
                .map(|(_, m)| m.clone()),
            number: i + 1,
            first: i == 0,
            last: i + 1 == count,
            id: q.id,
            text: q.text,
            enabled: q.enabled,
        })
        .collect();
    let template = QuestionsTemplate {
        admin: admin.page(state, Section::Questions),
        language: language.tag(),
        languages: Language::ALL
            .iter()
            .map(|l| (l.tag(), l.autonym(), *l == language))
            .collect(),
        notice: shown.notice,
        rows,
        add_text: shown.add_text,
        add_error: shown.add_error,
    };
    page(status, &template)
}

async fn questions_get(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let language = language_of(query.lang.as_deref());
    let t = admin.t();
    let notice = query.done.as_deref().and_then(|done| match done {
        "added" | "edited" | "moved" | "enabled" | "disabled" => {
            Some(t.t(&format!("admin-questions-done-{done}")))
        }
        _ => None,
    });
    let shown = Shown {
        notice,
        ..Shown::default()
    };
    render_page(&state, &admin, StatusCode::OK, language, shown).await
}

fn back(language: &str, done: &str) -> Response {
    Redirect::to(&format!("/admin/questions?lang={language}&done={done}")).into_response()
}

/// A refused text's message (the only refusal: its length), or the error page for the
/// server's own failures.
fn refusal(admin: &Admin, e: ServiceError) -> Result<(StatusCode, String), WebError> {
    match e {
        ServiceError::Domain(_) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            admin.t().t("admin-questions-text-refused"),
        )),
        other => Err(other.into()),
    }
}

#[derive(Debug, Deserialize)]
struct AddForm {
    #[serde(default)]
    language: String,
    #[serde(default)]
    text: String,
}

async fn add_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<AddForm>,
) -> Result<Response, WebError> {
    let language = language_of(Some(&form.language));
    let service = admin.service(&state)?.clone();
    match service
        .add_question(&admin.actor.actor(), language, &form.text)
        .await
    {
        Ok(_) => Ok(back(language.tag(), "added")),
        Err(e) => {
            let (status, message) = refusal(&admin, e)?;
            let shown = Shown {
                add_text: form.text,
                add_error: Some(message),
                ..Shown::default()
            };
            render_page(&state, &admin, status, language, shown).await
        }
    }
}

#[derive(Debug, Deserialize)]
struct EditForm {
    #[serde(default)]
    language: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    text: String,
}

async fn edit_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<EditForm>,
) -> Result<Response, WebError> {
    let language = language_of(Some(&form.language));
    let service = admin.service(&state)?.clone();
    match service
        .edit_question(&admin.actor.actor(), &form.id, &form.text)
        .await
    {
        Ok(()) => Ok(back(language.tag(), "edited")),
        Err(e) => {
            let (status, message) = refusal(&admin, e)?;
            let shown = Shown {
                edit_error: Some((form.id, message)),
                ..Shown::default()
            };
            render_page(&state, &admin, status, language, shown).await
        }
    }
}

#[derive(Debug, Deserialize)]
struct MoveForm {
    #[serde(default)]
    language: String,
    #[serde(default)]
    id: String,
    /// `up` or `down`.
    #[serde(default)]
    direction: String,
}

async fn move_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<MoveForm>,
) -> Result<Response, WebError> {
    let language = language_of(Some(&form.language));
    let service = admin.service(&state)?.clone();
    let questions = service.list_questions(Some(language.tag())).await?;
    let Some(at) = questions.iter().position(|q| q.id == form.id) else {
        return Err(WebError::NotFound);
    };
    let to = match form.direction.as_str() {
        "up" => at.saturating_sub(1),
        "down" => (at + 1).min(questions.len().saturating_sub(1)),
        _ => return Err(WebError::NotFound),
    };
    if to != at {
        let position = i64::try_from(to).unwrap_or(0);
        service
            .move_question(&admin.actor.actor(), &form.id, position)
            .await?;
    }
    Ok(back(language.tag(), "moved"))
}

#[derive(Debug, Deserialize)]
struct EnabledForm {
    #[serde(default)]
    language: String,
    #[serde(default)]
    id: String,
    /// `true` to offer the question again, `false` to stop offering it.
    #[serde(default)]
    enabled: bool,
}

async fn enabled_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<EnabledForm>,
) -> Result<Response, WebError> {
    let language = language_of(Some(&form.language));
    let service = admin.service(&state)?.clone();
    match service
        .set_question_enabled(&admin.actor.actor(), &form.id, form.enabled)
        .await
    {
        Ok(()) => Ok(back(
            language.tag(),
            if form.enabled { "enabled" } else { "disabled" },
        )),
        Err(ServiceError::Domain(_)) => Err(WebError::NotFound),
        Err(e) => Err(e.into()),
    }
}
