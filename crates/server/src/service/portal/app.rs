//! The portal's operations for the authenticator app: activation codes, the devices list,
//! "Authenticate me now" (a first request to a new device), and the request a sign-in or a
//! step-up waits on (its number, sending it again).

use super::super::app::{Activation, DeviceView, PushStatus};
use super::super::authentications::StartOptions;
use super::{Loaded, Needs, PORTAL_STARTER};
use crate::service::{ClientContext, InProcessService, ServiceError};
use crate::store::UserChanges;
use serde::{Deserialize, Serialize};
use twofold_engine::DomainError;
use twofold_engine::app::AppError;
use twofold_engine::audit::AuditAction;
use twofold_engine::authentication::{Origin, State};
use twofold_engine::flow::Challenge;
use twofold_engine::settings::Method;

/// A first request to the user's app, waiting for the app's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct PendingAppCheck {
    pub authentication: String,
    /// A passed test makes the app the user's method (the enrolment wizard's choice).
    pub make_primary: bool,
}

/// Where "Authenticate me now" stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum AppCheck {
    /// The request is waiting in the app: the page shows `number` (absent without number
    /// matching). `expired`: it was not answered in time (the page may send another).
    Waiting { number: Option<u8>, expired: bool },
    /// The app approved: the device works (and is the user's method when asked).
    Passed,
    /// It was denied, reported as fraud, or could not be sent (`reason`).
    Failed { reason: String },
    /// No test is under way.
    None,
}

impl InProcessService {
    /// Creates an activation code for the session's user: the wizard's "Mobile app" step,
    /// or another device from the account page (a change of factors: a signed-in session
    /// proves a second factor first).
    pub(in crate::service) async fn portal_begin_app_activation(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<Activation, ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        let settings = self.settings_now().await?;
        if !settings.allow_mobile_app_activation {
            return Err(DomainError::App(AppError::ActivationDisabled).into());
        }
        self.create_activation(&loaded.record.user_id, client).await
    }

    /// The session user's devices.
    pub(in crate::service) async fn portal_devices(
        &self,
        token: &str,
    ) -> Result<Vec<DeviceView>, ServiceError> {
        let loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        self.devices_of(&loaded.record.user_id).await
    }

    /// Removes one of the session user's devices (a change of factors).
    pub(in crate::service) async fn portal_remove_device(
        &self,
        token: &str,
        device_id: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let (loaded, _) = self.for_change(token).await?;
        self.remove_device_of(&loaded.record.user_id, device_id, client)
            .await?;
        self.after_change(loaded, false).await
    }

    /// "Authenticate me now": sends a first request to the user's devices.
    pub(in crate::service) async fn portal_begin_app_check(
        &self,
        token: &str,
        make_primary: bool,
        client: &ClientContext,
    ) -> Result<AppCheck, ServiceError> {
        let mut loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        let user = self.user(&loaded.record.user_id).await?;
        if self.store.device_count(&user.id).await? == 0 {
            return Err(DomainError::NotEnrolled.into());
        }
        let started = self
            .begin_authentication(
                &user,
                Origin::AppCheck,
                PORTAL_STARTER.to_owned(),
                client,
                StartOptions {
                    wanted: Some(Challenge::MobileApp),
                    ..StartOptions::default()
                },
            )
            .await?;
        let view = self.app_check_view(&started).await?;
        if started.state.is_pending() {
            loaded.data.app_check = Some(PendingAppCheck {
                authentication: started.id,
                make_primary,
            });
            self.save(&loaded).await?;
        }
        Ok(view)
    }

    /// Where "Authenticate me now" stands. With `finish`, a passed test is taken: the app
    /// becomes the user's method when the wizard asked, and the session counts as having
    /// proved a second factor.
    pub(in crate::service) async fn portal_app_check(
        &self,
        token: &str,
        finish: bool,
        client: &ClientContext,
    ) -> Result<AppCheck, ServiceError> {
        let mut loaded = self.require(token, Needs::SignedInOrEnrolling).await?;
        let Some(pending) = loaded.data.app_check.clone() else {
            return Ok(AppCheck::None);
        };
        let a = self
            .store
            .authentication(&pending.authentication)
            .await?
            .filter(|a| a.user_id == loaded.record.user_id && a.origin == Origin::AppCheck)
            .ok_or(ServiceError::Domain(DomainError::WrongStep))?;
        let view = self.app_check_view(&a).await?;
        if !finish || matches!(view, AppCheck::Waiting { .. }) {
            return Ok(view);
        }
        loaded.data.app_check = None;
        if view != AppCheck::Passed {
            self.save(&loaded).await?;
            return Ok(view);
        }
        if !self
            .store
            .consume_authentication(&a.id, self.clock.now())
            .await?
        {
            return Err(DomainError::SessionEnded.into());
        }
        if pending.make_primary {
            self.make_app_primary(&loaded, client).await?;
        }
        self.after_change(loaded, true).await?;
        Ok(AppCheck::Passed)
    }

    /// Sets the user's method to the app, when they may have it. The session that proved
    /// it goes on (the others end with the change, in `after_change`), so the method is
    /// stored here rather than through the administrators' `set_user_method`, which ends
    /// every session of the user.
    async fn make_app_primary(
        &self,
        loaded: &Loaded,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let settings = self.settings_now().await?;
        let user = self.user(&loaded.record.user_id).await?;
        let tag = super::super::factors::method_tag(Method::MobileApp);
        let own = user.method.as_deref() == Some(tag);
        let offered =
            twofold_engine::flow::enrollable_methods(&settings).contains(&Method::MobileApp);
        if own || !(offered || user.method.is_none()) {
            return Ok(());
        }
        let changes = UserChanges {
            method: Some(Some(tag.to_owned())),
            ..UserChanges::default()
        };
        let updated = self
            .store
            .update_user(
                &super::super::factors::username_of(&user)?,
                changes,
                self.clock.now(),
            )
            .await?;
        self.audit(
            self.succeeded(AuditAction::MethodChanged, &updated, client)
                .detail(format!(
                    "{} -> {tag}",
                    user.method.as_deref().unwrap_or("none")
                )),
        )
        .await;
        Ok(())
    }

    async fn app_check_view(
        &self,
        a: &twofold_engine::authentication::Authentication,
    ) -> Result<AppCheck, ServiceError> {
        let now = self.clock.now();
        Ok(match a.state_at(now) {
            State::Pending(_) => {
                let status = self.push_status(a).await?;
                AppCheck::Waiting {
                    number: status.number,
                    expired: status.expired,
                }
            }
            State::Approved { .. } if a.consumed_at.is_none() => AppCheck::Passed,
            State::Approved { .. } => AppCheck::None,
            State::Denied { reason } => AppCheck::Failed {
                reason: reason.as_str().into(),
            },
            State::Expired => AppCheck::Failed {
                reason: "expired".into(),
            },
            State::Fraud => AppCheck::Failed {
                reason: "fraud".into(),
            },
        })
    }

    /// Where the request of the session's sign-in (or step-up) stands: the number to show.
    pub(in crate::service) async fn portal_push_status(
        &self,
        token: &str,
    ) -> Result<PushStatus, ServiceError> {
        let Some((_, _, _, raw)) = self.peek(token).await? else {
            return Err(DomainError::SessionEnded.into());
        };
        match raw {
            Some(a) => self.push_status(&a).await,
            None => Err(DomainError::WrongStep.into()),
        }
    }

    /// Sends the session's request to the app again (a new number), once the one before
    /// expired unanswered.
    pub(in crate::service) async fn portal_send_push_again(
        &self,
        token: &str,
        client: &ClientContext,
    ) -> Result<(), ServiceError> {
        let loaded = self
            .load(token)
            .await?
            .ok_or(ServiceError::Domain(DomainError::SessionEnded))?;
        let Some(a) = loaded.authentication.clone() else {
            return Err(DomainError::WrongStep.into());
        };
        let status = self.push_status(&a).await?;
        if status.waiting {
            return Ok(());
        }
        self.send_push_again(a, client).await.map(|_| ())
    }
}
