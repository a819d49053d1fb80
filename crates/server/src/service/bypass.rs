//! One-time bypasses: started by the user (with step-up) or by an administrator or an
//! application, used once by the next sign-in.

use super::{ClientContext, InProcessService, ServiceError};
use crate::store::UserRecord;
use twofold_engine::audit::AuditAction;
use twofold_engine::flow;
use twofold_engine::{DomainError, UnixTime};

impl InProcessService {
    pub(super) async fn begin_bypass(
        &self,
        user_id: &str,
        seconds: Option<u32>,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let settings = self.settings_now().await?;
        let seconds = flow::bypass_seconds(&settings, seconds).map_err(DomainError::from)?;
        let user = self.user(user_id).await?;
        let actor = format!("user:{}", user.username);
        self.create_bypass(&user, seconds, None, &actor, client)
            .await
    }

    /// Stores a one-time bypass of `seconds` for `user` (the caller checked the length
    /// against its rules) and audits it; returns when it expires.
    pub(super) async fn create_bypass(
        &self,
        user: &UserRecord,
        seconds: u32,
        reason: Option<&str>,
        actor: &str,
        client: &ClientContext,
    ) -> Result<UnixTime, ServiceError> {
        let now = self.clock.now();
        let expires = now + i64::from(seconds);
        let reason: Option<String> = reason.map(|r| r.chars().take(200).collect());
        self.store
            .create_bypass(&user.id, expires, reason.as_deref(), actor, now)
            .await?;
        self.audit(
            self.succeeded(AuditAction::BypassStarted, user, client)
                .detail(format!(
                    "{seconds} seconds{}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                )),
        )
        .await;
        Ok(expires)
    }
}
