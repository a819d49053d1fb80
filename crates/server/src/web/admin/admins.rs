//! Administrators (`admins.manage`): the list, making one, taking one's rights away.

use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::service::ServiceError;
use crate::service::admins::{Grantor, describe, rights_of};
use crate::web::portal::messages::{self, Step};
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use twofold_engine::admin::{Permission, Role};

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    let manage = Need::Permission(Permission::AdminsManage);
    r.get("/admin/admins", manage, admins_get)
        .post("/admin/admins", manage, admins_post)
        .post("/admin/admins/remove", manage, remove_post)
}

struct Row {
    username: String,
    rights: String,
    since: String,
}

#[derive(Template)]
#[template(path = "admin/admins.html")]
struct AdminsTemplate {
    admin: AdminPage,
    notice: Option<String>,
    error: Option<String>,
    rows: Vec<Row>,
    roles: Vec<(&'static str,)>,
    permissions: Vec<(&'static str, bool)>,
    form_username: String,
    form_role: String,
    form_scope: String,
    form_bypass: String,
}

#[derive(Debug, Default, Deserialize)]
struct Notice {
    #[serde(default)]
    done: Option<String>,
}

#[derive(Debug, Default)]
struct AddForm {
    username: String,
    role: String,
    permission: Vec<String>,
    scope: String,
    bypass_max_seconds: String,
}

impl AddForm {
    /// The form's fields (the permissions' boxes repeat their name).
    fn read(fields: &[(String, String)]) -> AddForm {
        let one = |name: &str| {
            crate::web::portal::field(fields, name)
                .unwrap_or_default()
                .to_owned()
        };
        AddForm {
            username: one("username"),
            role: one("role"),
            permission: fields
                .iter()
                .filter(|(k, _)| k == "permission")
                .map(|(_, v)| v.clone())
                .collect(),
            scope: one("scope"),
            bypass_max_seconds: one("bypass_max_seconds"),
        }
    }
}

async fn render_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    form: AddForm,
) -> Result<Response, WebError> {
    let service = admin.service(state)?;
    let rows = service
        .list_admins()
        .await?
        .into_iter()
        .map(|a| Row {
            rights: describe(&a.rights),
            since: crate::web::portal::format_time(a.created_at),
            username: a.username,
        })
        .collect();
    let template = AdminsTemplate {
        admin: admin.page(state, Section::Admins),
        notice,
        error,
        rows,
        roles: Role::ALL.iter().map(|r| (r.as_str(),)).collect(),
        permissions: Permission::ALL
            .iter()
            .map(|p| (p.as_str(), form.permission.iter().any(|x| x == p.as_str())))
            .collect(),
        form_username: form.username,
        form_role: form.role,
        form_scope: if form.scope.is_empty() {
            "all".into()
        } else {
            form.scope
        },
        form_bypass: form.bypass_max_seconds,
    };
    page(status, &template)
}

async fn admins_get(
    State(state): State<AppState>,
    admin: Admin,
    query: Result<Query<Notice>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, WebError> {
    let t = admin.t();
    let notice = query
        .ok()
        .and_then(|Query(q)| q.done)
        .map(|who| t.t1("admin-admins-saved", "username", &who));
    render_page(
        &state,
        &admin,
        StatusCode::OK,
        notice,
        None,
        AddForm::default(),
    )
    .await
}

/// A refusal shown on the page, or the error page for the server's own failures.
fn shown(admin: &Admin, e: ServiceError) -> Result<(StatusCode, String), WebError> {
    match e {
        ServiceError::Domain(d) => Ok(messages::message(&admin.t(), &d, Step::Other)),
        other => Err(other.into()),
    }
}

async fn admins_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let form = AddForm::read(&fields);
    let service = admin.service(&state)?.clone();
    let bypass = match form.bypass_max_seconds.trim() {
        "" => Ok(None),
        s => s
            .parse::<u32>()
            .map(Some)
            .map_err(|_| twofold_engine::admin::AdminError::BypassMax(0)),
    };
    let role = Some(form.role.trim()).filter(|r| !r.is_empty());
    let scope = Some(form.scope.trim()).filter(|s| !s.is_empty());
    let result = match bypass.and_then(|b| rights_of(role, &form.permission, scope, b)) {
        Ok(rights) => service
            .grant_admin(Grantor::Admin(&admin.actor), &form.username, &rights)
            .await
            .map(|_| ()),
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => {
            let to = format!(
                "/admin/admins?done={}",
                url::form_urlencoded::byte_serialize(form.username.trim().as_bytes())
                    .collect::<String>()
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) => {
            let (status, message) = shown(&admin, e)?;
            render_page(&state, &admin, status, None, Some(message), form).await
        }
    }
}

#[derive(Debug, Deserialize)]
struct RemoveForm {
    #[serde(default)]
    username: String,
}

async fn remove_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(form): Form<RemoveForm>,
) -> Result<Response, WebError> {
    let service = admin.service(&state)?.clone();
    match service
        .revoke_admin(Grantor::Admin(&admin.actor), &form.username)
        .await
    {
        Ok(()) => {
            let t = admin.t();
            let notice = t.t1("admin-admins-removed", "username", form.username.trim());
            render_page(
                &state,
                &admin,
                StatusCode::OK,
                Some(notice),
                None,
                AddForm::default(),
            )
            .await
        }
        Err(e) => {
            let (status, message) = shown(&admin, e)?;
            render_page(
                &state,
                &admin,
                status,
                None,
                Some(message),
                AddForm::default(),
            )
            .await
        }
    }
}
