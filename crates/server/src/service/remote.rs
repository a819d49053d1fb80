//! The portal on its own host: `MfaService` over the Web Service SDK.
//!
//! The portal's operations travel as [`PortalCall`]s to `POST /sdk/v1/portal/rpc`, which
//! only a service account in the `portal` role may call. The server answers them with the
//! same session-scoped operations a local portal uses: the portal relays the visitor's
//! session token, and the server derives the user and the step from it, creates and advances
//! sessions itself, and names the actor from its own records. The portal relays the
//! browser's address and user agent (it is the browser's proxy, and trusted as one). Domain
//! errors come back as they are, so both portals say the same things. This endpoint is the
//! portal's own protocol, versioned with Twofold, not part of the SDK's stable contract.

use super::ServiceError;
pub use super::operations::{PortalCall, dispatch};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};
use tokio::sync::RwLock;
use twofold_engine::DomainError;
use twofold_sdk::client::{SdkClient, SdkError};

/// The answer to a [`PortalCall`]: the operation's result, or the domain error it raised.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortalReply {
    Done(serde_json::Value),
    /// A domain error, as the in-process service raised it.
    Refused(DomainError),
}

impl PortalReply {
    pub(super) fn of<T: Serialize>(value: &T) -> Result<PortalReply, ServiceError> {
        serde_json::to_value(value)
            .map(PortalReply::Done)
            .map_err(|e| ServiceError::Internal(format!("cannot encode a portal reply: {e}")))
    }
}

/// The portal's service when it runs on its own host.
pub struct RemoteService {
    client: SdkClient,
    settings_cache: RwLock<Option<(Instant, serde_json::Value)>>,
}

impl RemoteService {
    pub fn new(client: SdkClient) -> Self {
        Self {
            client,
            settings_cache: RwLock::new(None),
        }
    }

    /// Sends one call and reads its result. The settings are reused for [`SETTINGS_TTL`].
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        call: PortalCall,
    ) -> Result<T, ServiceError> {
        let is_settings = matches!(call, PortalCall::settings {});
        if is_settings
            && let Some((at, value)) = self.settings_cache.read().await.as_ref()
            && at.elapsed() < SETTINGS_TTL
        {
            return decode(call.name(), value.clone());
        }
        let name = call.name();
        let value = match self
            .client
            .json::<PortalReply, _>(reqwest_post(), "portal/rpc", Some(&call))
            .await
        {
            Ok(PortalReply::Refused(e)) => return Err(ServiceError::Domain(e)),
            Ok(PortalReply::Done(value)) => value,
            Err(SdkError::Unavailable(m)) => return Err(ServiceError::Unavailable(m)),
            Err(SdkError::Problem(p)) if p.status == 503 => {
                return Err(ServiceError::Unavailable(p.code));
            }
            Err(e) => return Err(ServiceError::Internal(e.to_string())),
        };
        if is_settings {
            *self.settings_cache.write().await = Some((Instant::now(), value.clone()));
        }
        decode(name, value)
    }
}

fn reqwest_post() -> twofold_sdk::client::HttpMethod {
    twofold_sdk::client::HttpMethod::POST
}

/// Reads a call's result. A reply may hold a seed, so it is never printed.
fn decode<T: DeserializeOwned>(call: &str, value: serde_json::Value) -> Result<T, ServiceError> {
    serde_json::from_value(value).map_err(|_| {
        ServiceError::Internal(format!(
            "unexpected answer from the MFA server to {call}: a newer or older server?"
        ))
    })
}

/// How long the portal reuses the server's settings.
const SETTINGS_TTL: Duration = Duration::from_secs(2);
