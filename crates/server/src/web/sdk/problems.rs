//! The SDK's problems: what a caller is told when a call is refused, as an RFC 9457 problem
//! with a stable `code`. The status of a domain error is [`status_of`]'s (the portal shows the
//! same refusal with the same status); `docs/sdk.md` lists them, and a test holds the two
//! together.

use crate::service::ServiceError;
use crate::web::errors::status_of;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use twofold_engine::DomainError;
use twofold_sdk as sdk;

/// An RFC 9457 problem response.
pub struct ProblemResponse(pub StatusCode, pub Box<sdk::Problem>);

impl ProblemResponse {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self(
            status,
            Box::new(sdk::Problem {
                kind: "about:blank".into(),
                title: status.canonical_reason().unwrap_or("Error").to_owned(),
                status: status.as_u16(),
                detail: Some(detail.into()),
                code: code.to_owned(),
                request_id: None,
            }),
        )
    }

    /// The server's own failure: the details go to the log, never to the caller.
    pub(super) fn internal(detail: &str) -> Self {
        tracing::error!(%detail, "SDK: internal error");
        ProblemResponse::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an unexpected error happened",
        )
    }
}

impl IntoResponse for ProblemResponse {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&*self.1).unwrap_or_default();
        let mut response = (self.0, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.0 == StatusCode::UNAUTHORIZED && self.1.code == "unauthenticated" {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"twofold-sdk\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// The problem for a domain error: its status, its stable code and its message.
pub fn problem(error: &DomainError) -> ProblemResponse {
    let status = status_of(error);
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        return ProblemResponse::internal(&error.to_string());
    }
    ProblemResponse::new(status, error.code(), error.to_string())
}

impl From<ServiceError> for ProblemResponse {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(d) => problem(&d),
            ServiceError::Unavailable(m) => {
                tracing::warn!(detail = %m, "SDK: service unavailable");
                ProblemResponse::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the MFA service is temporarily unavailable",
                )
            }
            ServiceError::Internal(m) => ProblemResponse::internal(&m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::portal::messages::tests::every_domain_error;
    use std::collections::HashMap;

    /// The status `docs/sdk.md`'s table of problems gives each code.
    fn documented() -> HashMap<String, u16> {
        let mut statuses = HashMap::new();
        for row in include_str!("../../../../../docs/sdk.md").lines() {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let [_, status, codes, ..] = cells.as_slice() else {
                continue;
            };
            let Ok(status) = status.parse::<u16>() else {
                continue;
            };
            for code in codes.split('`').skip(1).step_by(2) {
                statuses.insert(code.to_owned(), status);
            }
        }
        statuses
    }

    #[test]
    fn every_domain_error_maps_to_a_problem_with_its_code() {
        for error in every_domain_error() {
            let ProblemResponse(status, body) = problem(&error);
            assert_eq!(body.status, status.as_u16(), "{error:?}");
            if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(body.code, "internal", "{error:?}");
                assert_eq!(
                    body.detail.as_deref(),
                    Some("an unexpected error happened"),
                    "the server's fault is told without its details: {error:?}"
                );
            } else {
                assert_eq!(body.code, error.code(), "{error:?}");
                assert_eq!(body.detail, Some(error.to_string()), "{error:?}");
            }
        }
    }

    #[test]
    fn the_main_refusals_keep_their_documented_statuses() {
        let cases = [
            (DomainError::InvalidCredentials, 401),
            (DomainError::InvalidCode, 401),
            (DomainError::WrongAnswers, 401),
            (DomainError::UserLocked { until: 1 }, 423),
            (DomainError::UserHardLocked, 423),
            (DomainError::RateLimited, 429),
            (DomainError::SignInDisabled, 403),
            (DomainError::AccountDisabled, 403),
            (DomainError::PasswordExpired, 403),
            (DomainError::DirectoryUnavailable, 503),
            (DomainError::HardwareTokensDisabled, 403),
            (DomainError::UserNotFound, 404),
            (DomainError::AuthenticationNotFound, 404),
            (DomainError::UnknownSerial, 404),
            (DomainError::UserExists, 409),
            (DomainError::CodeAlreadyUsed, 409),
            (DomainError::SerialAssigned, 409),
            (DomainError::NotEnrolled, 409),
            (DomainError::AuthenticationClosed("approved".into()), 409),
            (DomainError::MalformedCode { digits: 6 }, 400),
            (DomainError::Import("row 2".into()), 422),
            (
                DomainError::Password(twofold_engine::PasswordError::Hashing),
                500,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(problem(&error).0.as_u16(), status, "{error:?}");
        }
    }

    #[test]
    fn the_sdk_documentation_gives_every_code_the_status_it_is_served_with() {
        let documented = documented();
        // Refusals of the portal's own steps and of the admin console, which no SDK path
        // gives.
        let portal_only = [
            "step_up_required",
            "session_ended",
            "invalid_grant",
            "grant_not_held",
            "last_owner",
            "forbidden",
            "not_an_administrator",
            "bootstrap_invalid",
        ];
        for error in every_domain_error() {
            let ProblemResponse(status, body) = problem(&error);
            if portal_only.contains(&body.code.as_str()) {
                continue;
            }
            assert_eq!(
                documented.get(&body.code),
                Some(&status.as_u16()),
                "docs/sdk.md's problem table for {} ({error:?})",
                body.code
            );
        }
    }
}
