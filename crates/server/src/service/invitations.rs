//! Invitations: an imported user with an email address is emailed the portal's address and
//! what to do there, in their language.
//!
//! An import queues the invitation in the store with the user (so a killed import loses
//! none); [`InProcessService::send_due_invitations`] sends what is due, from the import
//! itself or from `twofold serve`. A send that fails for a reason that may pass is tried
//! again (three attempts, waiting longer each time) and, if it still fails, left due for the
//! next round; one the provider refuses for good is given up and logged. Either way the
//! import goes on. A user is invited once: `invited_at` records it.

use super::{InProcessService, ServiceError};
use crate::channels::{DeliveryError, Email, EmailChannel};
use crate::store::UserRecord;
use std::time::Duration;
use twofold_engine::Language;
use twofold_engine::audit::AuditAction;

/// Attempts per invitation in one round.
const ATTEMPTS: u32 = 3;
/// The wait before the second attempt; it doubles before each next one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// Invitations sent per round.
const BATCH: i64 = 200;

/// The invitation email for `username`, in `language`.
pub fn invitation_email(to: &str, username: &str, portal_url: &str, language: Language) -> Email {
    let (subject, text_body) = match language {
        Language::Fr => (
            "Votre compte sur le portail d’authentification multifacteur".to_owned(),
            format!(
                "Bonjour {username},\n\n\
                 Un compte a été créé pour vous sur le portail d’authentification multifacteur :\n\n\
                 {portal_url}\n\n\
                 Ce qu’il vous reste à faire :\n\
                 1. Ouvrez l’adresse ci-dessus et connectez-vous avec votre nom d’utilisateur \
                 habituel ({username}) et votre mot de passe habituel.\n\
                 2. Suivez les étapes pour enregistrer un second facteur (une application \
                 d’authentification, votre téléphone).\n\n\
                 Si vous n’attendiez pas ce message, prévenez votre service informatique.\n"
            ),
        ),
        Language::En => (
            "Your account on the multi-factor authentication portal".to_owned(),
            format!(
                "Hello {username},\n\n\
                 An account has been created for you on the multi-factor authentication portal:\n\n\
                 {portal_url}\n\n\
                 What to do next:\n\
                 1. Open the address above and sign in with your usual username ({username}) \
                 and your usual password.\n\
                 2. Follow the steps to enrol a second factor (an authenticator app, your \
                 phone).\n\n\
                 If you did not expect this message, tell your IT department.\n"
            ),
        ),
    };
    Email {
        to: to.to_owned(),
        subject,
        text_body,
    }
}

/// What a round of invitations did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvitationRound {
    pub sent: usize,
    /// Failed for now; tried again next round.
    pub deferred: usize,
    /// Refused for good; not tried again.
    pub given_up: usize,
}

impl InProcessService {
    /// Sends the invitations that are due through `channel`. Sends none while
    /// `settings.portal_url` is empty (an invitation must say where the portal is).
    pub async fn send_due_invitations(
        &self,
        channel: &dyn EmailChannel,
    ) -> Result<InvitationRound, ServiceError> {
        self.send_due_invitations_with(channel, FIRST_BACKOFF).await
    }

    /// [`Self::send_due_invitations`] with another first backoff (tests wait less).
    pub async fn send_due_invitations_with(
        &self,
        channel: &dyn EmailChannel,
        first_backoff: Duration,
    ) -> Result<InvitationRound, ServiceError> {
        let settings = self.store.settings().await?;
        let portal_url = settings.portal_url.trim().to_owned();
        let mut round = InvitationRound::default();
        if portal_url.is_empty() {
            return Ok(round);
        }
        loop {
            let due = self.store.due_invitations(BATCH).await?;
            let mut progressed = false;
            for user in &due {
                let Some(to) = user.email.as_deref() else {
                    self.store.invitation_done(&user.id, None).await?;
                    continue;
                };
                let language = user
                    .language
                    .as_deref()
                    .and_then(Language::from_tag)
                    .unwrap_or(settings.default_language);
                let email = invitation_email(to, &user.username, &portal_url, language);
                match send_with_retries(channel, &email, first_backoff).await {
                    Ok(()) => {
                        self.store
                            .invitation_done(&user.id, Some(self.clock.now()))
                            .await?;
                        self.invited(user, channel.provider()).await;
                        round.sent += 1;
                        progressed = true;
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(username = %user.username, error = %e,
                            "the invitation could not be sent; it is tried again later");
                        round.deferred += 1;
                    }
                    Err(e) => {
                        tracing::error!(username = %user.username, error = %e,
                            "the invitation was refused for good; it is not tried again");
                        self.store.invitation_done(&user.id, None).await?;
                        round.given_up += 1;
                        progressed = true;
                    }
                }
            }
            // Stop when the queue is empty, or when nothing of this batch went through
            // (the channel is down: the next round tries again).
            if (due.len() as i64) < BATCH || !progressed {
                return Ok(round);
            }
        }
    }

    async fn invited(&self, user: &UserRecord, provider: &str) {
        self.audit(
            self.done_by(AuditAction::InvitationSent, "system")
                .subject(user.username.as_str())
                .detail(format!("through {provider}")),
        )
        .await;
    }
}

async fn send_with_retries(
    channel: &dyn EmailChannel,
    email: &Email,
    first_backoff: Duration,
) -> Result<(), DeliveryError> {
    let mut wait = first_backoff;
    let mut attempt = 1;
    loop {
        match channel.send_email(email).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::info!(attempt, error = %e, "sending an invitation failed; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
