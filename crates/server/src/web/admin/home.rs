//! The console's home page: what the administrator may do, and where.

use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::service::admins::describe;
use crate::web::{AppState, WebError};
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    r.get("/admin", Need::Admin, home_get)
}

#[derive(Template)]
#[template(path = "admin/home.html")]
struct HomeTemplate {
    admin: AdminPage,
    rights: String,
}

async fn home_get(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    let template = HomeTemplate {
        admin: admin.page(&state, Section::Home),
        rights: describe(&admin.actor.rights),
    };
    page(StatusCode::OK, &template)
}
