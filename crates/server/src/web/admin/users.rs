//! Users (`users.*`): the list (search, filters, pages), one user's page, and every change
//! an administrator makes to a user, each route with its own permission.

use super::{Admin, AdminPage, AdminRoutes, Need, Section, page};
use crate::service::ServiceError;
use crate::service::admin_users::{GroupChangeError, PAGE_SIZE, UserDetail};
use crate::store::{UserChanges, UserFilter, UserListing, UserSearch};
use crate::web::portal::format_time;
use crate::web::portal::messages::{self, Step};
use crate::web::{AppState, WebError};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use twofold_engine::admin::Permission;
use twofold_engine::settings::Method;

pub(super) fn routes(r: AdminRoutes) -> AdminRoutes {
    use Permission::*;
    let need = Need::Permission;
    r.get("/admin/users", need(UsersRead), list_get)
        .get("/admin/new-user", need(UsersCreate), new_get)
        .post("/admin/new-user", need(UsersCreate), new_post)
        .get("/admin/users/{username}", need(UsersRead), user_get)
        .post("/admin/users/{username}/edit", need(UsersUpdate), edit_post)
        .post(
            "/admin/users/{username}/groups",
            need(UsersUpdate),
            groups_post,
        )
        .post(
            "/admin/users/{username}/unlock",
            need(UsersBlock),
            unlock_post,
        )
        .post(
            "/admin/users/{username}/unblock",
            need(UsersBlock),
            unblock_post,
        )
        .post(
            "/admin/users/{username}/bypass",
            need(UsersBypass),
            bypass_post,
        )
        .post(
            "/admin/users/{username}/reset-pin",
            need(UsersCredentials),
            reset_pin_post,
        )
        .post(
            "/admin/users/{username}/reset-answers",
            need(UsersCredentials),
            reset_answers_post,
        )
        .post(
            "/admin/users/{username}/activation",
            need(UsersCredentials),
            activation_post,
        )
        .post(
            "/admin/users/{username}/method",
            need(UsersFactors),
            method_post,
        )
        .post(
            "/admin/users/{username}/resync",
            need(UsersFactors),
            resync_post,
        )
        .post(
            "/admin/users/{username}/assign",
            need(UsersFactors),
            assign_post,
        )
        .post(
            "/admin/users/{username}/unassign",
            need(UsersFactors),
            unassign_post,
        )
        .post(
            "/admin/users/{username}/remove-device",
            need(UsersFactors),
            remove_device_post,
        )
        .get(
            "/admin/users/{username}/delete",
            need(UsersDelete),
            delete_get,
        )
        .post(
            "/admin/users/{username}/delete",
            need(UsersDelete),
            delete_post,
        )
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn field(fields: &[(String, String)], name: &str) -> String {
    crate::web::portal::field(fields, name)
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A refusal's message and status, or the error page for the server's own failures.
fn refusal(admin: &Admin, e: ServiceError) -> Result<(StatusCode, String), WebError> {
    match e {
        ServiceError::Domain(d) => Ok(messages::message(&admin.t(), &d, Step::Other)),
        other => Err(other.into()),
    }
}

// ---- the list ----

struct ListRow {
    username: String,
    href: String,
    email: String,
    method: String,
    source: String,
    states: String,
}

struct FilterBox {
    value: &'static str,
    label: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersTemplate {
    admin: AdminPage,
    notice: Option<String>,
    q: String,
    filters: Vec<FilterBox>,
    rows: Vec<ListRow>,
    next: Option<String>,
    may_create: bool,
}

fn states_of(t: &crate::web::i18n::Translator, u: &UserListing) -> String {
    let mut out = Vec::new();
    if !u.enrolled {
        out.push(t.t("admin-users-state-not-enrolled"));
    }
    if u.locked {
        out.push(t.t("admin-users-state-locked"));
    }
    if u.fraud_blocked {
        out.push(t.t("admin-users-state-fraud-blocked"));
    }
    if u.bypass_active {
        out.push(t.t("admin-users-state-bypass"));
    }
    if !u.enabled {
        out.push(t.t("admin-users-state-disabled"));
    }
    out.join(", ")
}

fn filter_label(f: UserFilter) -> &'static str {
    match f {
        UserFilter::NotEnrolled => "admin-users-state-not-enrolled",
        UserFilter::Locked => "admin-users-state-locked",
        UserFilter::FraudBlocked => "admin-users-state-fraud-blocked",
        UserFilter::BypassActive => "admin-users-state-bypass",
        UserFilter::Disabled => "admin-users-state-disabled",
    }
}

async fn list_get(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let t = admin.t();
    let q = field(&params, "q");
    let after = Some(field(&params, "after")).filter(|a| !a.is_empty());
    let mut filters: Vec<UserFilter> = params
        .iter()
        .filter(|(k, _)| k == "filter")
        .filter_map(|(_, v)| UserFilter::parse(v))
        .collect();
    filters.dedup();
    let service = admin.service(&state)?;
    let search = UserSearch {
        text: q.chars().take(100).collect(),
        filters: filters.clone(),
        after,
        groups: None,
        limit: PAGE_SIZE,
    };
    let (found, more) = service.admin_search_users(&admin.actor, search).await?;
    let next = match (more, found.last()) {
        (true, Some(last)) => {
            let mut href = format!("/admin/users?q={}", encode(&q));
            for f in &filters {
                href.push_str(&format!("&filter={}", f.as_str()));
            }
            href.push_str(&format!("&after={}", encode(&last.username)));
            Some(href)
        }
        _ => None,
    };
    let notice = crate::web::portal::field(&params, "deleted")
        .map(|who| t.t1("admin-users-deleted", "username", who));
    let rows = found
        .iter()
        .map(|u| ListRow {
            href: format!("/admin/users/{}", encode(&u.username)),
            username: u.username.clone(),
            email: u.email.clone().unwrap_or_default(),
            method: u.method.clone().unwrap_or_default(),
            source: u.source.clone(),
            states: states_of(&t, u),
        })
        .collect();
    let template = UsersTemplate {
        admin: admin.page(&state, Section::Users),
        notice,
        filters: UserFilter::ALL
            .iter()
            .map(|f| FilterBox {
                value: f.as_str(),
                label: t.t(filter_label(*f)),
                checked: filters.contains(f),
            })
            .collect(),
        q,
        rows,
        next,
        may_create: admin.actor.rights.holds(Permission::UsersCreate),
    };
    page(StatusCode::OK, &template)
}

// ---- creating a user ----

#[derive(Template)]
#[template(path = "admin/new_user.html")]
struct NewUserTemplate {
    admin: AdminPage,
    error: Option<String>,
    error_field: &'static str,
    username: String,
    email: String,
    phone: String,
    group: String,
    /// A group-scoped administrator puts the user in one of these.
    reach: Option<Vec<String>>,
}

async fn new_page(
    state: &AppState,
    admin: &Admin,
    status: StatusCode,
    error: Option<(&'static str, String)>,
    fields: &[(String, String)],
) -> Result<Response, WebError> {
    let (error_field, error) = match error {
        Some((f, e)) => (f, Some(e)),
        None => ("", None),
    };
    let template = NewUserTemplate {
        admin: admin.page(state, Section::Users),
        error,
        error_field,
        username: field(fields, "username"),
        email: field(fields, "email"),
        phone: field(fields, "phone"),
        group: field(fields, "group"),
        reach: admin.actor.rights.reach(Permission::UsersCreate),
    };
    page(status, &template)
}

async fn new_get(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    new_page(&state, &admin, StatusCode::OK, None, &[]).await
}

async fn new_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let service = admin.service(&state)?.clone();
    let t = admin.t();
    let group = field(&fields, "group");
    // A group-scoped administrator makes users only inside their groups.
    if let Some(reach) = admin.actor.rights.reach(Permission::UsersCreate)
        && !reach.contains(&group)
    {
        let message = t.t("admin-user-group-outside-reach");
        return new_page(
            &state,
            &admin,
            StatusCode::FORBIDDEN,
            Some(("group", message)),
            &fields,
        )
        .await;
    }
    let optional = |name: &str| Some(field(&fields, name)).filter(|v| !v.is_empty());
    let username = field(&fields, "username");
    let actor = admin.actor.actor();
    let created = service
        .add_user(
            &actor,
            &username,
            optional("email"),
            optional("phone"),
            None,
        )
        .await;
    let user = match created {
        Ok(user) => user,
        Err(e) => {
            let (status, message) = refusal(&admin, e)?;
            return new_page(&state, &admin, status, Some(("username", message)), &fields).await;
        }
    };
    if !group.is_empty() {
        service
            .set_user_groups(&actor, &user.username, &[group])
            .await?;
    }
    let to = format!("/admin/users/{}?done=created", encode(&user.username));
    Ok(Redirect::to(&to).into_response())
}

// ---- one user ----

struct TokenRow {
    serial: String,
    kind: String,
    status: String,
}

struct DeviceRow {
    id: String,
    name: String,
    since: String,
}

struct EventRow {
    at: String,
    action: String,
    outcome: String,
    actor: String,
    detail: String,
}

/// A field's refusal shown next to it.
#[derive(Default)]
struct FieldError {
    field: &'static str,
    message: String,
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserTemplate {
    admin: AdminPage,
    notice: Option<String>,
    error: FieldError,
    username: String,
    path: String,
    email: String,
    phone: String,
    backup_phone: String,
    language: String,
    method: String,
    methods: Vec<(&'static str, bool)>,
    source: String,
    enabled: bool,
    enrolled: String,
    groups: String,
    tokens: Vec<TokenRow>,
    devices: Vec<DeviceRow>,
    answers: i64,
    has_pin: bool,
    locked: Option<String>,
    failures: u32,
    fraud_blocked: Option<String>,
    bypass: Option<String>,
    events: Vec<EventRow>,
    activation: Option<(String, String)>,
    bypass_max: u32,
    may_update: bool,
    may_block: bool,
    may_bypass: bool,
    may_credentials: bool,
    may_factors: bool,
    may_delete: bool,
}

/// Why a user's page is shown again.
#[derive(Default)]
struct Shown {
    status: Option<StatusCode>,
    notice: Option<String>,
    error: FieldError,
    activation: Option<(String, String)>,
}

async fn user_page(state: &AppState, admin: &Admin, shown: Shown) -> Result<Response, WebError> {
    let t = admin.t();
    let service = admin.service(state)?;
    let user = admin.target()?;
    let d: UserDetail = service.admin_user_detail(user).await?;
    let settings = service.stored_settings().await?;
    let locked = match d.lockout.lock(d.now) {
        Some(twofold_engine::lockout::Lock::UntilReleased) => Some(t.t("admin-user-hard-locked")),
        Some(twofold_engine::lockout::Lock::Until(until)) => {
            Some(t.t1("admin-user-locked-until", "time", &format_time(until)))
        }
        None => None,
    };
    let template = UserTemplate {
        admin: admin.page(state, Section::Users),
        notice: shown.notice,
        error: shown.error,
        path: format!("/admin/users/{}", encode(&d.user.username)),
        username: d.user.username.clone(),
        email: d.user.email.clone().unwrap_or_default(),
        phone: d.user.phone.clone().unwrap_or_default(),
        backup_phone: d.user.backup_phone.clone().unwrap_or_default(),
        language: d.user.language.clone().unwrap_or_default(),
        method: d.user.method.clone().unwrap_or_default(),
        methods: ["oath", "sms", "phone_call", "mobile_app"]
            .into_iter()
            .map(|m| (m, d.user.method.as_deref() == Some(m)))
            .collect(),
        source: d.user.source.clone(),
        enabled: d.user.enabled,
        enrolled: match d.user.enrolled_at {
            Some(at) => format_time(at),
            None => t.t("admin-users-state-not-enrolled"),
        },
        groups: d.groups.join(", "),
        tokens: d
            .tokens
            .iter()
            .map(|k| TokenRow {
                serial: k.serial.clone().unwrap_or_default(),
                kind: k.kind.clone(),
                status: k.status.clone(),
            })
            .collect(),
        devices: d
            .devices
            .iter()
            .map(|v| DeviceRow {
                id: v.id.clone(),
                name: v.name.clone(),
                since: format_time(v.created_at),
            })
            .collect(),
        answers: d.security_answers,
        has_pin: d.user.pin_hash.is_some(),
        locked,
        failures: d.lockout.consecutive,
        fraud_blocked: d
            .user
            .fraud_blocked_until
            .filter(|until| *until > d.now)
            .map(format_time),
        bypass: d.bypass.as_ref().map(|b| {
            format!(
                "{} ({})",
                format_time(b.expires_at),
                b.reason.clone().unwrap_or_else(|| b.created_by.clone())
            )
        }),
        events: d
            .events
            .iter()
            .map(|e| EventRow {
                at: format_time(e.at),
                action: e.action.clone(),
                outcome: e.outcome.clone(),
                actor: e.actor.clone(),
                detail: e.detail.clone().unwrap_or_default(),
            })
            .collect(),
        activation: shown.activation,
        bypass_max: admin
            .actor
            .rights
            .bypass_limit(settings.one_time_bypass_max_seconds),
        may_update: admin.may(Permission::UsersUpdate),
        may_block: admin.may(Permission::UsersBlock),
        may_bypass: admin.may(Permission::UsersBypass),
        may_credentials: admin.may(Permission::UsersCredentials),
        may_factors: admin.may(Permission::UsersFactors),
        may_delete: admin.may(Permission::UsersDelete),
    };
    page(shown.status.unwrap_or(StatusCode::OK), &template)
}

/// The notices a change's redirect may name (`?done=`).
const DONE: [(&str, &str); 13] = [
    ("assigned", "admin-user-done-assigned"),
    ("unassigned", "admin-user-done-unassigned"),
    ("created", "admin-user-done-created"),
    ("edited", "admin-user-done-edited"),
    ("groups", "admin-user-done-groups"),
    ("unlocked", "admin-user-done-unlocked"),
    ("unblocked", "admin-user-done-unblocked"),
    ("bypass", "admin-user-done-bypass"),
    ("pin", "admin-user-done-pin"),
    ("answers", "admin-user-done-answers"),
    ("method", "admin-user-done-method"),
    ("resynced", "admin-user-done-resynced"),
    ("device", "admin-user-done-device"),
];

async fn user_get(
    State(state): State<AppState>,
    admin: Admin,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let done = crate::web::portal::field(&params, "done");
    let notice = DONE
        .iter()
        .find(|(k, _)| Some(*k) == done)
        .map(|(_, key)| admin.t().t(key));
    user_page(
        &state,
        &admin,
        Shown {
            notice,
            ..Shown::default()
        },
    )
    .await
}

/// After a change: back to the user's page with its notice.
fn done(admin: &Admin, what: &str) -> Result<Response, WebError> {
    let user = admin.target()?;
    let to = format!("/admin/users/{}?done={what}", encode(&user.username));
    Ok(Redirect::to(&to).into_response())
}

/// A refused change: the page again, the message next to `field`.
async fn refused(
    state: &AppState,
    admin: &Admin,
    field: &'static str,
    e: ServiceError,
) -> Result<Response, WebError> {
    let (status, message) = refusal(admin, e)?;
    user_page(
        state,
        admin,
        Shown {
            status: Some(status),
            error: FieldError { field, message },
            ..Shown::default()
        },
    )
    .await
}

async fn edit_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    let optional = |name: &str| Some(field(&fields, name)).filter(|v| !v.is_empty());
    let mut changes = UserChanges::default();
    if optional("email") != user.email {
        changes.email = Some(optional("email"));
    }
    if optional("phone") != user.phone {
        changes.phone = Some(optional("phone"));
    }
    if optional("language") != user.language {
        changes.language = Some(optional("language"));
    }
    let enabled = fields.iter().any(|(k, v)| k == "enabled" && v == "on");
    if enabled != user.enabled {
        changes.enabled = Some(enabled);
    }
    if changes.is_empty() {
        return done(&admin, "edited");
    }
    let which = if changes.email.is_some() {
        "email"
    } else if changes.phone.is_some() {
        "phone"
    } else {
        "language"
    };
    match service
        .update_user(&admin.actor.actor(), &user.username, changes, None)
        .await
    {
        Ok(_) => done(&admin, "edited"),
        Err(e) => refused(&state, &admin, which, e).await,
    }
}

async fn groups_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    let groups: Vec<String> = field(&fields, "groups")
        .split(',')
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty())
        .collect();
    match service.admin_set_groups(&admin.actor, &user, &groups).await {
        Ok(Ok(_)) => done(&admin, "groups"),
        Ok(Err(refusal)) => {
            let t = admin.t();
            let message = match refusal {
                GroupChangeError::OutsideReach(g) => t.t1("admin-user-group-outside", "group", &g),
                GroupChangeError::LeavesReach => t.t("admin-user-group-leaves-reach"),
            };
            user_page(
                &state,
                &admin,
                Shown {
                    status: Some(StatusCode::FORBIDDEN),
                    error: FieldError {
                        field: "groups",
                        message,
                    },
                    ..Shown::default()
                },
            )
            .await
        }
        Err(e) => refused(&state, &admin, "groups", e).await,
    }
}

async fn unlock_post(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    service
        .unlock_user(&admin.actor.actor(), &user.username)
        .await?;
    done(&admin, "unlocked")
}

async fn unblock_post(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    service
        .unblock_user(&admin.actor.actor(), &user.username)
        .await?;
    done(&admin, "unblocked")
}

async fn bypass_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    let seconds = field(&fields, "seconds").parse::<u32>().unwrap_or(0);
    let reason = field(&fields, "reason");
    match service
        .admin_start_bypass(&admin.actor, &user, seconds, &reason, &admin.client)
        .await
    {
        Ok(_) => done(&admin, "bypass"),
        Err(e) => refused(&state, &admin, "seconds", e).await,
    }
}

async fn reset_pin_post(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    service.admin_reset_pin(&user, &admin.client).await?;
    done(&admin, "pin")
}

async fn reset_answers_post(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    service.admin_reset_answers(&user, &admin.client).await?;
    done(&admin, "answers")
}

async fn activation_post(
    State(state): State<AppState>,
    admin: Admin,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    match service
        .sdk_create_activation(&user.username, &admin.client)
        .await
    {
        Ok(a) => {
            let shown = Shown {
                activation: Some((a.code, format_time(a.expires_at))),
                ..Shown::default()
            };
            user_page(&state, &admin, shown).await
        }
        Err(e) => refused(&state, &admin, "activation", e).await,
    }
}

fn parse_method(s: &str) -> Option<Method> {
    match s {
        "oath" => Some(Method::Oath),
        "phone_call" => Some(Method::PhoneCall),
        "sms" => Some(Method::Sms),
        "mobile_app" => Some(Method::MobileApp),
        _ => None,
    }
}

async fn method_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    let Some(method) = parse_method(&field(&fields, "method")) else {
        return Err(WebError::BadRequest("unknown method".into()));
    };
    match service
        .set_user_method(&user.username, method, &admin.client)
        .await
    {
        Ok(_) => done(&admin, "method"),
        Err(e) => refused(&state, &admin, "method", e).await,
    }
}

async fn resync_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    let serial = field(&fields, "serial");
    // Only a token of this user: the serial is looked up among theirs.
    let detail = service.admin_user_detail(&user).await?;
    if !detail
        .tokens
        .iter()
        .any(|k| k.serial.as_deref() == Some(serial.as_str()))
    {
        let message = admin.t().t1("admin-user-no-such-token", "serial", &serial);
        return user_page(
            &state,
            &admin,
            Shown {
                status: Some(StatusCode::NOT_FOUND),
                error: FieldError {
                    field: "resync",
                    message,
                },
                ..Shown::default()
            },
        )
        .await;
    }
    match service
        .resync_token(
            &admin.actor.actor(),
            &serial,
            &field(&fields, "first"),
            &field(&fields, "second"),
        )
        .await
    {
        Ok(()) => done(&admin, "resynced"),
        Err(e) => refused(&state, &admin, "resync", e).await,
    }
}

async fn assign_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    match service
        .admin_assign_hardware(
            &user,
            &field(&fields, "serial"),
            &field(&fields, "code"),
            &admin.client,
        )
        .await
    {
        Ok(()) => done(&admin, "assigned"),
        Err(e) => refused(&state, &admin, "assign", e).await,
    }
}

async fn unassign_post(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    service.admin_remove_tokens(&user, &admin.client).await?;
    done(&admin, "unassigned")
}

async fn remove_device_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    let service = admin.service(&state)?.clone();
    match service
        .sdk_remove_device(&user.username, &field(&fields, "device"), &admin.client)
        .await
    {
        Ok(()) => done(&admin, "device"),
        Err(e) => refused(&state, &admin, "devices", e).await,
    }
}

// ---- deleting a user ----

#[derive(Template)]
#[template(path = "admin/delete_user.html")]
struct DeleteTemplate {
    admin: AdminPage,
    username: String,
    path: String,
}

async fn delete_get(State(state): State<AppState>, admin: Admin) -> Result<Response, WebError> {
    let user = admin.target()?;
    let template = DeleteTemplate {
        admin: admin.page(&state, Section::Users),
        username: user.username.clone(),
        path: format!("/admin/users/{}", encode(&user.username)),
    };
    page(StatusCode::OK, &template)
}

async fn delete_post(
    State(state): State<AppState>,
    admin: Admin,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let user = admin.target()?.clone();
    // The confirmation page's box: a bare POST deletes nothing.
    if field(&fields, "confirm") != "yes" {
        let to = format!("/admin/users/{}/delete", encode(&user.username));
        return Ok(Redirect::to(&to).into_response());
    }
    let service = admin.service(&state)?.clone();
    service
        .delete_user(&admin.actor.actor(), &user.username)
        .await?;
    let to = format!("/admin/users?deleted={}", encode(&user.username));
    Ok(Redirect::to(&to).into_response())
}
