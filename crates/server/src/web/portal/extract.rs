//! What the portal's handlers take instead of checking it themselves: a form whose CSRF token
//! was checked ([`CsrfForm`]), and a visitor whose session is at the step a page is for
//! ([`SignedIn`], and the wizard's and the second factor's own, beside their pages).
//!
//! Each refuses before the handler runs: a form without its token gets 403; a session at
//! another step is sent where it belongs (`Visitor::send_to_step`).

use super::Visitor;
use crate::web::{AppState, WebError};
use axum::Form;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawForm, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// Who may make a request: the visitor, when their session is at the step it needs.
pub trait Admit: Sized {
    /// The visitor admitted, or the refusal that sends their session where it belongs.
    fn admit(visitor: Visitor) -> Result<Self, WebError>;
}

impl Admit for Visitor {
    fn admit(visitor: Visitor) -> Result<Self, WebError> {
        Ok(visitor)
    }
}

/// The visitor of a page only a step admits, read from the request's head.
pub(super) async fn admitted<W: Admit>(parts: &mut Parts, state: &AppState) -> Result<W, WebError> {
    W::admit(Visitor::from_request_parts(parts, state).await?)
}

/// Lets a step's visitor be a handler's argument (`signed: SignedIn`).
macro_rules! admitted_visitor {
    ($who:ty) => {
        impl axum::extract::FromRequestParts<$crate::web::AppState> for $who {
            type Rejection = $crate::web::WebError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &$crate::web::AppState,
            ) -> Result<Self, Self::Rejection> {
                $crate::web::portal::extract::admitted(parts, state).await
            }
        }

        impl std::ops::Deref for $who {
            type Target = $crate::web::portal::Visitor;

            fn deref(&self) -> &$crate::web::portal::Visitor {
                &self.visitor
            }
        }
    };
}
pub(super) use admitted_visitor;

/// A form posted with a valid CSRF token, by a visitor `W` admits. The form is read first
/// (a malformed or oversized one is refused as such), then its `csrf_token` is checked
/// against the visitor's session (403 when it does not fit), then the step.
pub struct CsrfForm<T, W = Visitor> {
    pub form: T,
    pub who: W,
}

impl<T, W> FromRequest<AppState> for CsrfForm<T, W>
where
    T: DeserializeOwned + Send,
    W: Admit + Send,
{
    type Rejection = WebError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let visitor = Visitor::from_request_parts(&mut parts, state).await?;
        let head = parts.clone();
        let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|r| WebError::rejected(r.status(), r.body_text()))?;
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(name, _)| name == "csrf_token")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default();
        let Form(form) =
            Form::<T>::from_request(Request::from_parts(head, Body::from(bytes)), state).await?;
        visitor.check_csrf(state, &token)?;
        Ok(CsrfForm {
            form,
            who: W::admit(visitor)?,
        })
    }
}

/// A visitor whose user is signed in (the second factor done, no confirmation pending).
pub struct SignedIn {
    visitor: Visitor,
    id: String,
}

admitted_visitor!(SignedIn);

impl SignedIn {
    /// The signed-in session's token, for the server.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Admit for SignedIn {
    fn admit(visitor: Visitor) -> Result<Self, WebError> {
        match visitor.signed_in().map(|active| active.id.clone()) {
            Some(id) => Ok(SignedIn { visitor, id }),
            None => Err(visitor.elsewhere()),
        }
    }
}
