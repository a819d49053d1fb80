//! An administrator's changes to a user's phones and primary method, from an application
//! (the SDK) or the command line.
//!
//! Numbers are read as the portal reads them ([`phone::parse`], with the `default_region`
//! setting) and stored in E.164. No call or text is made: the administrator vouches for the
//! number, where a user changing their own number proves it with a call or a text.

use super::{ClientContext, InProcessService, ServiceError};
use crate::store::{TokenStatus, UserChanges, UserRecord};
use twofold_engine::audit::AuditAction;
use twofold_engine::settings::Method;
use twofold_engine::{DomainError, Username, phone};

/// A phone number as typed, with its extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneEntry {
    pub number: String,
    pub extension: Option<String>,
}

/// What a user lacks for `method`, as an administrator is told when setting it is refused
/// with [`DomainError::NotEnrolled`].
pub fn missing_for(method: Method) -> String {
    let tag = super::factors::method_tag(method);
    match method {
        Method::PhoneCall | Method::Sms => {
            format!("the user has no phone number: set one before choosing {tag}")
        }
        Method::Oath => {
            format!("the user has no active OATH token: enrol one before choosing {tag}")
        }
        Method::MobileApp => {
            format!("the user has no activated device: activate the app before choosing {tag}")
        }
    }
}

impl InProcessService {
    /// Sets a user's phones: `primary` and `backup` are read with the `default_region`
    /// setting and stored in E.164; `primary: None` clears both. Audited (`phone_changed`);
    /// the user's portal sessions end, since their factors changed.
    pub async fn set_user_phones(
        &self,
        username: &str,
        primary: Option<&PhoneEntry>,
        backup: Option<&PhoneEntry>,
        client: &ClientContext,
    ) -> Result<UserRecord, ServiceError> {
        let user = self.find_user(username).await?;
        let Some(primary) = primary else {
            if backup.is_some() {
                return Err(DomainError::InvalidRequest(
                    "a backup phone needs a primary phone".into(),
                )
                .into());
            }
            return self.clear_user_phones(&user, client).await;
        };
        let settings = self.settings_now().await?;
        let region = Some(settings.default_region.as_str()).filter(|r| !r.is_empty());
        let read = |entry: &PhoneEntry| {
            phone::parse(&entry.number, entry.extension.as_deref(), region)
                .map_err(DomainError::from)
        };
        let primary = read(primary)?;
        let backup = backup.map(read).transpose()?;
        let updated = self
            .store_phones(&user, None, &primary, backup.as_ref(), client)
            .await?;
        self.store.delete_user_sessions(&updated.id).await?;
        Ok(updated)
    }

    /// Removes both phones; refused while the method needs one.
    async fn clear_user_phones(
        &self,
        user: &UserRecord,
        client: &ClientContext,
    ) -> Result<UserRecord, ServiceError> {
        if let Some(method @ ("phone_call" | "sms")) = user.method.as_deref() {
            return Err(DomainError::InvalidRequest(format!(
                "the user's method is {method}, which needs a phone: choose another method first"
            ))
            .into());
        }
        if user.phone.is_none() && user.backup_phone.is_none() {
            return Ok(user.clone());
        }
        let name =
            Username::parse(&user.username).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let changes = UserChanges {
            phone: Some(None),
            extension: Some(None),
            backup_phone: Some(None),
            backup_extension: Some(None),
            ..UserChanges::default()
        };
        let updated = self
            .store
            .update_user(&name, changes, self.clock.now())
            .await?;
        self.audit(
            self.succeeded(AuditAction::PhoneChanged, &updated, client)
                .detail("cleared"),
        )
        .await;
        self.store.delete_user_sessions(&updated.id).await?;
        Ok(updated)
    }

    /// Sets a user's primary method. `mobile_app` needs an activated device, `phone_call`
    /// and `sms` a phone, `oath` an active token
    /// ([`DomainError::NotEnrolled`] otherwise, told with [`missing_for`]). Audited
    /// (`method_changed`); the user's portal sessions end.
    pub async fn set_user_method(
        &self,
        username: &str,
        method: Method,
        client: &ClientContext,
    ) -> Result<UserRecord, ServiceError> {
        let user = self.find_user(username).await?;
        let has_factor = match method {
            Method::MobileApp => self.store.device_count(&user.id).await? > 0,
            Method::PhoneCall | Method::Sms => user.phone.is_some(),
            Method::Oath => self
                .store
                .user_token(&user.id, TokenStatus::Active)
                .await?
                .is_some(),
        };
        if !has_factor {
            return Err(DomainError::NotEnrolled.into());
        }
        let tag = super::factors::method_tag(method);
        if user.method.as_deref() == Some(tag) {
            return Ok(user);
        }
        let name =
            Username::parse(&user.username).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let updated = self
            .store
            .update_user(
                &name,
                UserChanges {
                    method: Some(Some(tag.to_owned())),
                    ..UserChanges::default()
                },
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
        self.store.delete_user_sessions(&updated.id).await?;
        Ok(updated)
    }
}
