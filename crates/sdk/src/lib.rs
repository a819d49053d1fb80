//! Wire types of the Web Service SDK (`/sdk/v1`) and of the operational endpoints.
//!
//! Both the server and every Rust client use these, so a change here is a change of contract.

use serde::{Deserialize, Serialize};

/// An RFC 9457 problem: the body of every error the server answers in JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Twofold's stable, machine-readable code, such as `user_locked`.
    pub code: String,
    /// The request id, to find the matching line in the server's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

fn about_blank() -> String {
    "about:blank".to_owned()
}

/// `GET /readyz`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    pub status: String,
    /// Whether the store answered a read and a write.
    pub store: String,
}

/// A user as the SDK and the CLI show it: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub username: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub has_password: bool,
    pub enabled: bool,
    pub created_at: i64,
    pub locked_until: Option<i64>,
}
