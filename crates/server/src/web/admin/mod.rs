//! The admin console (`/admin`): pages for administrators, each declared with the permission
//! it needs.
//!
//! Every route is added through [`AdminRoutes`], which records what it needs ([`Need`]) and
//! puts the console's guard in front of its handler. There is no other way to add a route
//! here, so no page can forget its check, and the table ([`AdminRoutes::table`]) is what the
//! permission tests walk. The guard, before any handler runs:
//! 1. admits only an admin session (signed in at `/admin/sign-in`, second factor proved);
//!    anyone else is sent to that page;
//! 2. reads the administrator's rights from the store (a removal takes effect at once);
//! 3. checks the route's permission: for a page about one user (`{username}` in its path),
//!    for that user's groups; a group-scoped administrator gets 403 for users outside their
//!    groups and for users that do not exist alike;
//! 4. checks the CSRF token of every POST (a form field, or a multipart part);
//! 5. hands the handler an [`Admin`]: the visitor, the administrator, the target user.

mod admins;
mod audit;
mod chart;
mod home;
mod questions;
mod reports;
mod settings;
mod sign_in;
mod tokens;
mod users;

use super::client::Client;
use super::i18n::Translator;
use super::portal::{PageContext, Visitor, render};
use super::{AppState, WebError};
use crate::service::admins::AdminActor;
use crate::service::{ClientContext, InProcessService, Stage};
use crate::store::UserRecord;
use askama::Template;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get, post};
use std::sync::Arc;
use twofold_engine::admin::Permission;

/// What a route needs of its visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone (the sign-in page, the bootstrap link).
    Public,
    /// Any administrator (the console's home, signing out).
    Admin,
    /// An administrator holding this permission (for the user in the path, if any).
    Permission(Permission),
}

/// One declared route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredRoute {
    pub method: Method,
    pub path: &'static str,
    pub need: Need,
}

impl Need {
    /// `public`, `admin`, or the permission's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Need::Public => "public",
            Need::Admin => "admin",
            Need::Permission(p) => p.as_str(),
        }
    }
}

impl DeclaredRoute {
    /// Whether the route is about one user (`{username}` in its path).
    pub fn about_a_user(&self) -> bool {
        self.path.contains("{username}")
    }
}

/// The console's routes, each with what it needs.
#[derive(Default)]
pub struct AdminRoutes {
    router: Router<AppState>,
    table: Vec<DeclaredRoute>,
}

impl AdminRoutes {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `handler` for `method` at `path`, behind the guard for `need`.
    pub fn route(
        mut self,
        method: Method,
        path: &'static str,
        need: Need,
        handler: MethodRouter<AppState>,
    ) -> Self {
        let guarded = handler.route_layer(middleware::from_fn_with_state(need, guard));
        self.router = self.router.route(path, guarded);
        self.table.push(DeclaredRoute { method, path, need });
        self
    }

    pub fn get<H, T>(self, path: &'static str, need: Need, handler: H) -> Self
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        self.route(Method::GET, path, need, get(handler))
    }

    pub fn post<H, T>(self, path: &'static str, need: Need, handler: H) -> Self
    where
        H: axum::handler::Handler<T, AppState>,
        T: 'static,
    {
        self.route(Method::POST, path, need, post(handler))
    }

    /// Merges the routes of one page module.
    pub fn merge(mut self, pages: fn(AdminRoutes) -> AdminRoutes) -> Self {
        let nested = pages(AdminRoutes::new());
        self.router = self.router.merge(nested.router);
        self.table.extend(nested.table);
        self
    }

    pub fn table(&self) -> &[DeclaredRoute] {
        &self.table
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Every route of the console.
pub fn console() -> AdminRoutes {
    AdminRoutes::new()
        .merge(sign_in::routes)
        .merge(home::routes)
        .merge(admins::routes)
        .merge(users::routes)
        .merge(settings::routes)
        .merge(questions::routes)
        .merge(tokens::routes)
        .merge(audit::routes)
        .merge(reports::routes)
}

/// Every route of the console and what it needs (`twofold admin routes` prints it).
pub fn declared_routes() -> Vec<DeclaredRoute> {
    console().table
}

pub(super) fn routes(state: AppState) -> Router<AppState> {
    // The guard reads the application's state from the request.
    console().into_router().layer(axum::Extension(state))
}

/// What an admin handler gets: the visitor, the administrator, and the user the path names
/// (when the route is about one and they exist).
#[derive(Clone)]
pub struct Admin {
    pub visitor: Visitor,
    pub actor: AdminActor,
    pub target: Option<UserRecord>,
    /// The target user's groups.
    pub target_groups: Option<Vec<String>>,
    pub client: ClientContext,
}

impl Admin {
    /// The in-process service (the console runs only where the store is).
    pub fn service<'a>(&self, state: &'a AppState) -> Result<&'a Arc<InProcessService>, WebError> {
        state
            .admin_service()
            .ok_or_else(|| WebError::Internal("the admin console needs the store".into()))
    }

    pub fn t(&self) -> Translator {
        self.visitor.t()
    }

    /// The layout's context for a page of the console.
    pub fn page(&self, state: &AppState, section: Section) -> AdminPage {
        AdminPage {
            page: self.visitor.page(state),
            admin: self.actor.username.clone(),
            nav: Section::ALL
                .iter()
                .filter(|s| s.visible_to(&self.actor))
                .map(|s| NavItem {
                    href: s.href(),
                    label: self.t().t(s.label()),
                    current: *s == section,
                })
                .collect(),
        }
    }

    /// The target user; 404 when the path named nobody.
    pub fn target(&self) -> Result<&UserRecord, WebError> {
        self.target.as_ref().ok_or(WebError::NotFound)
    }

    /// Whether the administrator holds `permission` for the target user (or anyone).
    pub fn may(&self, permission: Permission) -> bool {
        // The guard reads the target's groups whenever it finds the target.
        match &self.target_groups {
            Some(groups) => self.actor.rights.holds_for(permission, groups),
            None => self.actor.rights.holds(permission),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Admin>()
            .cloned()
            .ok_or_else(|| WebError::Internal("an admin handler without its guard".into()))
    }
}

/// The console's sections, in the navigation's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Home,
    Users,
    Settings,
    Questions,
    Tokens,
    Audit,
    Reports,
    Admins,
}

impl Section {
    pub const ALL: [Section; 8] = [
        Section::Home,
        Section::Users,
        Section::Settings,
        Section::Questions,
        Section::Tokens,
        Section::Audit,
        Section::Reports,
        Section::Admins,
    ];

    fn href(self) -> &'static str {
        match self {
            Section::Home => "/admin",
            Section::Users => "/admin/users",
            Section::Settings => "/admin/settings",
            Section::Questions => "/admin/questions",
            Section::Tokens => "/admin/tokens",
            Section::Audit => "/admin/audit",
            Section::Reports => "/admin/reports",
            Section::Admins => "/admin/admins",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Section::Home => "admin-nav-home",
            Section::Users => "admin-nav-users",
            Section::Settings => "admin-nav-settings",
            Section::Questions => "admin-nav-questions",
            Section::Tokens => "admin-nav-tokens",
            Section::Audit => "admin-nav-audit",
            Section::Reports => "admin-nav-reports",
            Section::Admins => "admin-nav-admins",
        }
    }

    /// The permission that opens the section (none: every administrator).
    pub fn permission(self) -> Option<Permission> {
        match self {
            Section::Home => None,
            Section::Users => Some(Permission::UsersRead),
            Section::Settings | Section::Questions => Some(Permission::SettingsWrite),
            Section::Tokens => Some(Permission::TokensImport),
            Section::Audit => Some(Permission::AuditRead),
            Section::Reports => Some(Permission::ReportsRead),
            Section::Admins => Some(Permission::AdminsManage),
        }
    }

    fn visible_to(self, admin: &AdminActor) -> bool {
        self.permission().is_none_or(|p| admin.rights.holds(p))
    }
}

/// One link of the console's navigation.
pub struct NavItem {
    pub href: &'static str,
    pub label: String,
    pub current: bool,
}

/// What the console's layout (`admin/layout.html`) needs on every page.
pub struct AdminPage {
    pub page: PageContext,
    pub admin: String,
    pub nav: Vec<NavItem>,
}

/// Renders a console page with `status`.
pub fn page(status: StatusCode, template: &impl Template) -> Result<Response, WebError> {
    render(status, template)
}

/// The guard in front of every console route (see the module's documentation).
async fn guard(State(need): State<Need>, request: Request, next: Next) -> Response {
    let Some(state) = request.extensions().get::<AppState>().cloned() else {
        return WebError::Internal("the console's routes lack the application state".into())
            .into_response();
    };
    match admit(&state, need, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

async fn admit(state: &AppState, need: Need, request: Request) -> Result<Request, WebError> {
    if need == Need::Public {
        return Ok(request);
    }
    let Some(service) = state.admin_service().cloned() else {
        return Err(WebError::NotFound);
    };
    let (mut parts, body) = request.into_parts();
    let visitor = Visitor::from_request_parts(&mut parts, state).await?;
    let Client(client) = Client::from_request_parts(&mut parts, state)
        .await
        .map_err(|_| WebError::Internal("no client context".into()))?;
    let session = visitor
        .session
        .as_ref()
        .filter(|s| s.view.admin && matches!(s.view.stage, Stage::SignedIn { .. }));
    let Some(session) = session else {
        let back = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .filter(|_| parts.method == Method::GET)
            .unwrap_or_else(|| "/admin".to_owned());
        let to = format!("/admin/sign-in?next={}", url_encode(&back));
        return Err(WebError::Elsewhere(Box::new(
            visitor.finish(Redirect::to(&to)),
        )));
    };
    let user = service
        .find_user(&session.view.username)
        .await
        .map_err(|_| WebError::Forbidden)?;
    let actor = service.admin_actor(&user.id).await?.ok_or_else(|| {
        WebError::Refused(
            twofold_engine::admin::AdminError::NotAnAdministrator(user.username.clone()).into(),
        )
    })?;
    // The user a page is about, checked against the grant's scope.
    let target_name = target_username(&parts);
    let mut target = None;
    let mut target_groups = None;
    if let Need::Permission(permission) = need {
        match &target_name {
            Some(name) => {
                let found = service.find_user(name).await.ok();
                match found {
                    Some(user) => {
                        service.authorize(&actor, permission, Some(&user)).await?;
                        target_groups = Some(service.user_groups(&user.id).await?);
                        target = Some(user);
                    }
                    // Nobody by that name: an administrator over everyone learns so; one
                    // over a group learns nothing more than for a user outside it.
                    None if actor.rights.holds_everywhere(permission) => {}
                    None => {
                        return Err(
                            twofold_engine::admin::AdminError::Forbidden(permission).into_web()
                        );
                    }
                }
            }
            None => service.authorize(&actor, permission, None).await?,
        }
    }
    let body = if parts.method == Method::POST {
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .map_err(|_| WebError::TooLarge)?;
        let token = csrf_token_of(&parts, &bytes).await;
        visitor.check_csrf(state, &token)?;
        Body::from(bytes)
    } else {
        body
    };
    let admin = Admin {
        client: actor.client(&client),
        visitor,
        actor,
        target,
        target_groups,
    };
    parts.extensions.insert(admin);
    Ok(Request::from_parts(parts, body))
}

trait IntoWeb {
    fn into_web(self) -> WebError;
}

impl IntoWeb for twofold_engine::admin::AdminError {
    fn into_web(self) -> WebError {
        WebError::Refused(self.into())
    }
}

/// The `{username}` of a console path (`/admin/users/{username}/…`), percent-decoded.
fn target_username(parts: &Parts) -> Option<String> {
    let path = parts.uri.path();
    let rest = path.strip_prefix("/admin/users/")?;
    let raw = rest.split('/').next().filter(|s| !s.is_empty())?;
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// The CSRF token of a posted form: its `csrf_token` field, urlencoded or multipart.
async fn csrf_token_of(parts: &Parts, bytes: &Bytes) -> String {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(boundary) = content_type
        .strip_prefix("multipart/form-data")
        .and_then(|rest| rest.split("boundary=").nth(1))
    {
        let _ = boundary;
        // The token is a form's first part: only the body's start is read for it, so that a
        // large file after it (a token import) does not meet the extractor's default limit.
        let start = bytes.slice(..bytes.len().min(64 * 1024));
        let request = Request::builder()
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(start));
        let Ok(request) = request else {
            return String::new();
        };
        let Ok(mut multipart) = axum::extract::Multipart::from_request(request, &()).await else {
            return String::new();
        };
        while let Ok(Some(field)) = multipart.next_field().await {
            if field.name() == Some("csrf_token") {
                return field.text().await.unwrap_or_default();
            }
        }
        return String::new();
    }
    url::form_urlencoded::parse(bytes)
        .find(|(name, _)| name == "csrf_token")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Where to go after the console's sign-in: a console path only.
pub fn safe_admin_next(next: Option<&str>) -> String {
    let next = super::portal::safe_next(next);
    if next == "/admin" || next.starts_with("/admin/") && !next.starts_with("/admin/sign-in") {
        next
    } else {
        "/admin".to_owned()
    }
}
