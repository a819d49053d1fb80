//! The sign-in state machine, after the password was accepted:
//!
//! trusted IP? → active bypass? → not enrolled: the wizard if enrolment is allowed, else
//! "contact your administrator" → the user's method → the fallbacks the settings allow
//! (OATH fallback, then security questions) → signed in.
//!
//! Enrolment is a list of steps computed from what the user still lacks, so that later
//! methods (phone call, text message, mobile app) slot in as further steps.

use crate::settings::{Method, Settings};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use thiserror::Error;

/// What the engine needs to know of a user's second factors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFactors {
    pub enrolled: bool,
    pub method: Option<Method>,
    pub has_oath_token: bool,
    pub security_answers: usize,
    pub has_pin: bool,
    /// The user has a primary phone number.
    pub has_phone: bool,
    /// The user has a backup phone number too.
    pub has_backup_phone: bool,
    /// The user has activated the authenticator app on at least one device.
    pub has_device: bool,
}

/// A second-factor challenge the portal can put to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Challenge {
    Oath,
    SecurityQuestions,
    /// A call to the user's phone.
    PhoneCall,
    /// A text message to the user's phone (a code to type, or to reply with).
    Sms,
    /// A request to the user's authenticator app (approve with the number on the page).
    MobileApp,
}

/// How a sign-in was completed (audited, and it decides the session's lifetime).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    TrustedIp,
    Bypass,
    Oath,
    OathFallback,
    SecurityQuestions,
    Enrollment,
    PhoneCall,
    TextMessage,
    MobileApp,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::TrustedIp => "trusted_ip",
            Via::Bypass => "one_time_bypass",
            Via::Oath => "oath",
            Via::OathFallback => "oath_fallback",
            Via::SecurityQuestions => "security_questions",
            Via::Enrollment => "enrollment",
            Via::PhoneCall => "phone_call",
            Via::TextMessage => "sms",
            Via::MobileApp => "mobile_app",
        }
    }

    /// Reads back what [`Via::as_str`] wrote.
    pub fn parse(s: &str) -> Option<Via> {
        [
            Via::TrustedIp,
            Via::Bypass,
            Via::Oath,
            Via::OathFallback,
            Via::SecurityQuestions,
            Via::Enrollment,
            Via::PhoneCall,
            Via::TextMessage,
            Via::MobileApp,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// Where a sign-in goes after the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NextStep {
    SignedIn(Via),
    Enroll,
    ContactAdministrator,
    Verify(Challenge),
}

/// Facts about this attempt that the store or the request knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttemptFacts {
    pub client_ip: Option<IpAddr>,
    /// The user has an unused, unexpired one-time bypass. The caller consumes it atomically;
    /// if that fails (used meanwhile), it asks again with `false`.
    pub bypass_available: bool,
}

pub fn is_trusted(settings: &Settings, ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| {
        settings
            .trusted_ip_ranges
            .iter()
            .any(|net| net.contains(&ip))
    })
}

pub fn after_password(settings: &Settings, factors: &UserFactors, facts: AttemptFacts) -> NextStep {
    if is_trusted(settings, facts.client_ip) {
        return NextStep::SignedIn(Via::TrustedIp);
    }
    if facts.bypass_available && settings.allow_one_time_bypass {
        return NextStep::SignedIn(Via::Bypass);
    }
    // A user who holds a usable second factor proves it first, whatever the state of their
    // enrolment: the wizard's remaining steps come after the code, never instead of it.
    if let Some(challenge) = primary_challenge(factors) {
        return NextStep::Verify(challenge);
    }
    // Fail closed: a user whose own method cannot be put to them (a phone call, a text
    // message or the mobile app, which this version cannot deliver) but who holds any
    // usable factor proves that one. Only a user with none may go on with the password alone.
    if let Some(challenge) = usable_challenge(settings, factors) {
        return NextStep::Verify(challenge);
    }
    // No usable factor: first sign-in (or the token was removed). Enrol with the password
    // alone, as the original did, when the settings allow it.
    if settings.allow_user_enrollment {
        return NextStep::Enroll;
    }
    NextStep::ContactAdministrator
}

/// The challenge of the user's own method, when this version can put it to them.
pub fn primary_challenge(factors: &UserFactors) -> Option<Challenge> {
    match factors.method {
        Some(Method::Oath) | None if factors.has_oath_token => Some(Challenge::Oath),
        Some(Method::PhoneCall) if factors.has_phone => Some(Challenge::PhoneCall),
        Some(Method::Sms) if factors.has_phone => Some(Challenge::Sms),
        Some(Method::MobileApp) if factors.has_device => Some(Challenge::MobileApp),
        _ => None,
    }
}

/// Any factor the user holds that can be checked now, for when their own method cannot:
/// the OATH token (whatever the fallback settings say: holding it is proof enough to ask
/// for it), then the security questions when the settings allow them.
pub fn usable_challenge(settings: &Settings, factors: &UserFactors) -> Option<Challenge> {
    if factors.has_oath_token {
        return Some(Challenge::Oath);
    }
    if settings.security_questions_fallback
        && factors.security_answers >= usize::from(settings.security_questions_required)
    {
        return Some(Challenge::SecurityQuestions);
    }
    None
}

/// The fallbacks offered instead of `current` (the challenge being shown).
pub fn fallbacks(
    settings: &Settings,
    factors: &UserFactors,
    current: Option<Challenge>,
) -> Vec<Challenge> {
    let mut out = Vec::new();
    let primary = primary_challenge(factors);
    if settings.oath_token_fallback
        && factors.has_oath_token
        && primary != Some(Challenge::Oath)
        && current != Some(Challenge::Oath)
    {
        out.push(Challenge::Oath);
    }
    if settings.security_questions_fallback
        && factors.security_answers >= usize::from(settings.security_questions_required)
        && current != Some(Challenge::SecurityQuestions)
    {
        out.push(Challenge::SecurityQuestions);
    }
    out
}

/// How a sign-in completed by answering `challenge` is recorded.
pub fn via(challenge: Challenge, factors: &UserFactors) -> Via {
    match challenge {
        Challenge::Oath if primary_challenge(factors) == Some(Challenge::Oath) => Via::Oath,
        Challenge::Oath => Via::OathFallback,
        Challenge::SecurityQuestions => Via::SecurityQuestions,
        Challenge::PhoneCall => Via::PhoneCall,
        Challenge::Sms => Via::TextMessage,
        Challenge::MobileApp => Via::MobileApp,
    }
}

/// How long a session completed through `via` may last at most, in seconds.
pub fn session_limit_seconds(settings: &Settings, via: Via) -> i64 {
    let normal = i64::from(settings.session_max_hours) * 3600;
    match via {
        Via::OathFallback => {
            normal.min(i64::from(settings.oath_token_fallback_session_minutes) * 60)
        }
        _ => normal,
    }
}

/// A step of the enrolment wizard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollmentStep {
    Method,
    /// The phone numbers, verified by a call or a text (phone-call and text-message users).
    Phone,
    /// The authenticator app, activated with a code and tested with a first request.
    MobileApp,
    Oath,
    Pin,
    SecurityQuestions,
}

/// The methods this version can put to a user.
pub const IMPLEMENTED: [Method; 4] = [
    Method::Oath,
    Method::PhoneCall,
    Method::Sms,
    Method::MobileApp,
];

/// The methods this version can enrol, among those the settings allow (the mobile app only
/// while `allow_mobile_app_activation` is on).
pub fn enrollable_methods(settings: &Settings) -> Vec<Method> {
    let allowed: Vec<Method> = if settings.allow_method_selection {
        settings
            .selectable_methods
            .iter()
            .copied()
            .filter(|m| IMPLEMENTED.contains(m))
            .filter(|m| *m != Method::MobileApp || settings.allow_mobile_app_activation)
            .collect()
    } else {
        Vec::new()
    };
    if allowed.is_empty() {
        vec![Method::Oath]
    } else {
        allowed
    }
}

/// What the wizard asks next, or `None` when the user is fully enrolled.
pub fn next_enrollment_step(settings: &Settings, factors: &UserFactors) -> Option<EnrollmentStep> {
    let methods = enrollable_methods(settings);
    let method = match factors.method {
        Some(m) if methods.contains(&m) => m,
        // A method an administrator chose stands when users may not choose theirs.
        Some(m) if !settings.allow_method_selection && IMPLEMENTED.contains(&m) => m,
        Some(_) | None if methods.len() > 1 => return Some(EnrollmentStep::Method),
        _ => methods.first().copied().unwrap_or(Method::Oath),
    };
    if method == Method::Oath && !factors.has_oath_token {
        return Some(EnrollmentStep::Oath);
    }
    if matches!(method, Method::PhoneCall | Method::Sms) && !factors.has_phone {
        return Some(EnrollmentStep::Phone);
    }
    if method == Method::MobileApp && !factors.has_device {
        return Some(EnrollmentStep::MobileApp);
    }
    if settings.pin_required && !factors.has_pin {
        return Some(EnrollmentStep::Pin);
    }
    if settings.security_questions_fallback
        && factors.security_answers < crate::answers::QUESTIONS_PER_USER
    {
        return Some(EnrollmentStep::SecurityQuestions);
    }
    None
}

#[derive(Debug, Error, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BypassError {
    #[error("one-time bypasses are turned off")]
    NotAllowed,
    #[error("a bypass may last from 1 to {max} seconds")]
    OutOfRange { max: u32 },
}

impl BypassError {
    pub fn code(&self) -> &'static str {
        match self {
            BypassError::NotAllowed => "bypass_not_allowed",
            BypassError::OutOfRange { .. } => "bypass_too_long",
        }
    }
}

/// How long a one-time bypass an administrator or an application starts lasts, in seconds:
/// any length up to the maximum, whether or not users may choose theirs.
pub fn administered_bypass_seconds(
    settings: &Settings,
    requested: Option<u32>,
) -> Result<u32, BypassError> {
    let max = settings.one_time_bypass_max_seconds;
    let seconds = match requested {
        None => settings.one_time_bypass_seconds,
        Some(s) if (1..=max).contains(&s) => s,
        Some(_) => return Err(BypassError::OutOfRange { max }),
    };
    if !settings.allow_one_time_bypass {
        return Err(BypassError::NotAllowed);
    }
    Ok(seconds)
}

/// How long a one-time bypass a user asks for lasts, in seconds.
pub fn bypass_seconds(settings: &Settings, requested: Option<u32>) -> Result<u32, BypassError> {
    if !settings.allow_one_time_bypass {
        return Err(BypassError::NotAllowed);
    }
    if !settings.prompt_for_bypass_seconds {
        return Ok(settings.one_time_bypass_seconds);
    }
    let max = settings.one_time_bypass_max_seconds;
    match requested {
        None => Ok(settings.one_time_bypass_seconds),
        Some(s) if (1..=max).contains(&s) => Ok(s),
        Some(_) => Err(BypassError::OutOfRange { max }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn enrolled_with_token() -> UserFactors {
        UserFactors {
            enrolled: true,
            method: Some(Method::Oath),
            has_oath_token: true,
            security_answers: 4,
            has_pin: false,
            has_phone: false,
            has_backup_phone: false,
            has_device: false,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    /// The whole machine as a table: settings tweak, user, facts → next step.
    #[test]
    fn sign_in_flow_table() {
        let base = Settings {
            trusted_ip_ranges: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
            allow_one_time_bypass: true,
            security_questions_fallback: true,
            ..Settings::default()
        };
        let no_enrollment = Settings {
            allow_user_enrollment: false,
            ..base.clone()
        };
        let no_bypass = Settings {
            allow_one_time_bypass: false,
            ..base.clone()
        };
        let new_user = UserFactors::default();
        let enrolled = enrolled_with_token();
        let tokenless = UserFactors {
            has_oath_token: false,
            ..enrolled_with_token()
        };
        let outside = AttemptFacts {
            client_ip: ip("192.0.2.1"),
            bypass_available: false,
        };
        type Row<'a> = (
            &'a str,
            &'a Settings,
            &'a UserFactors,
            AttemptFacts,
            NextStep,
        );
        let no_questions = UserFactors {
            security_answers: 0,
            ..tokenless.clone()
        };
        let unfinished = UserFactors {
            enrolled: false,
            ..enrolled_with_token()
        };
        let table: Vec<Row> = vec![
            (
                "trusted v4",
                &base,
                &new_user,
                AttemptFacts {
                    client_ip: ip("10.1.2.3"),
                    ..outside
                },
                NextStep::SignedIn(Via::TrustedIp),
            ),
            (
                "trusted v6",
                &base,
                &enrolled,
                AttemptFacts {
                    client_ip: ip("2001:db8::7"),
                    ..outside
                },
                NextStep::SignedIn(Via::TrustedIp),
            ),
            (
                "bypass",
                &base,
                &enrolled,
                AttemptFacts {
                    bypass_available: true,
                    ..outside
                },
                NextStep::SignedIn(Via::Bypass),
            ),
            (
                "bypass turned off since",
                &no_bypass,
                &enrolled,
                AttemptFacts {
                    bypass_available: true,
                    ..outside
                },
                NextStep::Verify(Challenge::Oath),
            ),
            (
                "new user enrols",
                &base,
                &new_user,
                outside,
                NextStep::Enroll,
            ),
            (
                "new user, no enrolment",
                &no_enrollment,
                &new_user,
                outside,
                NextStep::ContactAdministrator,
            ),
            (
                "enrolled user, own method",
                &base,
                &enrolled,
                outside,
                NextStep::Verify(Challenge::Oath),
            ),
            (
                "token removed: the questions first, then enrol again",
                &base,
                &tokenless,
                outside,
                NextStep::Verify(Challenge::SecurityQuestions),
            ),
            (
                "token removed, no questions: enrol again",
                &base,
                &no_questions,
                outside,
                NextStep::Enroll,
            ),
            (
                "token removed, no enrolment: the questions remain",
                &no_enrollment,
                &tokenless,
                outside,
                NextStep::Verify(Challenge::SecurityQuestions),
            ),
            (
                "token removed, no enrolment, no questions",
                &no_enrollment,
                &no_questions,
                outside,
                NextStep::ContactAdministrator,
            ),
            (
                "token active but the wizard unfinished: the code first",
                &base,
                &unfinished,
                outside,
                NextStep::Verify(Challenge::Oath),
            ),
        ];
        for (name, settings, factors, facts, expected) in table {
            assert_eq!(after_password(settings, factors, facts), expected, "{name}");
        }
    }

    /// Fail closed: whatever the stored method, a user who holds a usable factor is asked
    /// for it, never signed in, enrolled or turned away with the password alone.
    #[test]
    fn a_method_this_version_cannot_deliver_never_skips_the_second_factor() {
        let outside = AttemptFacts {
            client_ip: ip("192.0.2.1"),
            bypass_available: false,
        };
        let with_questions = Settings {
            security_questions_fallback: true,
            ..Settings::default()
        };
        let no_enrollment = Settings {
            allow_user_enrollment: false,
            ..Settings::default()
        };
        let oath_fallback = Settings {
            oath_token_fallback: true,
            ..Settings::default()
        };
        for method in [Method::PhoneCall, Method::Sms, Method::MobileApp] {
            for enrolled in [true, false] {
                let with_token = UserFactors {
                    enrolled,
                    method: Some(method),
                    has_oath_token: true,
                    security_answers: 0,
                    has_pin: false,
                    has_phone: false,
                    has_backup_phone: false,
                    has_device: false,
                };
                let answers_only = UserFactors {
                    has_oath_token: false,
                    security_answers: 4,
                    ..with_token.clone()
                };
                let nothing = UserFactors {
                    security_answers: 0,
                    ..answers_only.clone()
                };
                type Row<'a> = (&'a Settings, &'a UserFactors, NextStep);
                let table: [Row; 7] = [
                    (
                        &Settings::default(),
                        &with_token,
                        NextStep::Verify(Challenge::Oath),
                    ),
                    (
                        &no_enrollment,
                        &with_token,
                        NextStep::Verify(Challenge::Oath),
                    ),
                    (
                        &oath_fallback,
                        &with_token,
                        NextStep::Verify(Challenge::Oath),
                    ),
                    (
                        &with_questions,
                        &answers_only,
                        NextStep::Verify(Challenge::SecurityQuestions),
                    ),
                    (&Settings::default(), &answers_only, NextStep::Enroll),
                    (&Settings::default(), &nothing, NextStep::Enroll),
                    (&no_enrollment, &nothing, NextStep::ContactAdministrator),
                ];
                for (i, (settings, factors, expected)) in table.into_iter().enumerate() {
                    let next = after_password(settings, factors, outside);
                    assert_eq!(next, expected, "{method:?}, enrolled {enrolled}, row {i}");
                    assert!(
                        !matches!(next, NextStep::SignedIn(_)),
                        "{method:?}, row {i}: signed in without a factor"
                    );
                }
                // Answered with the token, such a sign-in is an OATH fallback (its session
                // is the fallback's, not the method's).
                assert_eq!(via(Challenge::Oath, &with_token), Via::OathFallback);
            }
        }
    }

    #[test]
    fn fallbacks_follow_the_settings() {
        let mut settings = Settings::default();
        let user = enrolled_with_token();
        assert!(fallbacks(&settings, &user, Some(Challenge::Oath)).is_empty());
        settings.security_questions_fallback = true;
        assert_eq!(
            fallbacks(&settings, &user, Some(Challenge::Oath)),
            vec![Challenge::SecurityQuestions]
        );
        settings.security_questions_required = 3;
        let two_answers = UserFactors {
            security_answers: 2,
            ..user.clone()
        };
        assert!(fallbacks(&settings, &two_answers, Some(Challenge::Oath)).is_empty());
        // OATH as a fallback applies to users whose own method is something else.
        settings.oath_token_fallback = true;
        let phone_user = UserFactors {
            method: Some(Method::PhoneCall),
            ..user.clone()
        };
        assert_eq!(
            fallbacks(&settings, &phone_user, None),
            vec![Challenge::Oath, Challenge::SecurityQuestions]
        );
        assert_eq!(via(Challenge::Oath, &phone_user), Via::OathFallback);
        assert_eq!(via(Challenge::Oath, &user), Via::Oath);
    }

    #[test]
    fn an_oath_fallback_session_is_shorter() {
        let settings = Settings {
            oath_token_fallback_session_minutes: 30,
            ..Settings::default()
        };
        assert_eq!(session_limit_seconds(&settings, Via::OathFallback), 1800);
        assert_eq!(session_limit_seconds(&settings, Via::Oath), 12 * 3600);
    }

    #[test]
    fn enrolment_steps_follow_what_is_missing() {
        let mut settings = Settings {
            selectable_methods: vec![Method::Oath],
            ..Settings::default()
        };
        let mut user = UserFactors::default();
        assert_eq!(
            next_enrollment_step(&settings, &user),
            Some(EnrollmentStep::Oath)
        );
        user.has_oath_token = true;
        assert_eq!(next_enrollment_step(&settings, &user), None);
        settings.pin_required = true;
        settings.security_questions_fallback = true;
        assert_eq!(
            next_enrollment_step(&settings, &user),
            Some(EnrollmentStep::Pin)
        );
        user.has_pin = true;
        assert_eq!(
            next_enrollment_step(&settings, &user),
            Some(EnrollmentStep::SecurityQuestions)
        );
        user.security_answers = 4;
        assert_eq!(next_enrollment_step(&settings, &user), None);
    }

    #[test]
    fn phone_users_enrol_a_phone_and_prove_it_by_call_or_text() {
        let settings = Settings::default();
        let new_user = UserFactors::default();
        // Several methods to choose from: the wizard asks which first.
        assert_eq!(
            next_enrollment_step(&settings, &new_user),
            Some(EnrollmentStep::Method)
        );
        for (method, challenge) in [
            (Method::PhoneCall, Challenge::PhoneCall),
            (Method::Sms, Challenge::Sms),
        ] {
            let mut user = UserFactors {
                method: Some(method),
                ..UserFactors::default()
            };
            assert_eq!(
                next_enrollment_step(&settings, &user),
                Some(EnrollmentStep::Phone)
            );
            assert_eq!(primary_challenge(&user), None, "no phone: nothing to call");
            user.has_phone = true;
            assert_eq!(next_enrollment_step(&settings, &user), None);
            assert_eq!(primary_challenge(&user), Some(challenge));
            assert_eq!(
                after_password(&settings, &user, AttemptFacts::default()),
                NextStep::Verify(challenge)
            );
        }
        // An administrator's choice stands when users may not choose.
        let no_choice = Settings {
            allow_method_selection: false,
            ..Settings::default()
        };
        let caller = UserFactors {
            method: Some(Method::PhoneCall),
            ..UserFactors::default()
        };
        assert_eq!(
            next_enrollment_step(&no_choice, &caller),
            Some(EnrollmentStep::Phone)
        );
        // The mobile app is not available yet: never offered.
        assert!(!enrollable_methods(&settings).contains(&Method::MobileApp));
    }

    #[test]
    fn a_bypass_lasts_the_default_or_what_the_user_may_choose() {
        let mut settings = Settings {
            allow_one_time_bypass: true,
            ..Settings::default()
        };
        assert_eq!(
            bypass_seconds(&settings, Some(60)),
            Ok(300),
            "no prompt: the default"
        );
        settings.prompt_for_bypass_seconds = true;
        assert_eq!(bypass_seconds(&settings, Some(60)), Ok(60));
        assert_eq!(
            bypass_seconds(&settings, Some(3601)),
            Err(BypassError::OutOfRange { max: 3600 })
        );
        assert_eq!(
            bypass_seconds(&settings, Some(0)),
            Err(BypassError::OutOfRange { max: 3600 })
        );
        settings.allow_one_time_bypass = false;
        assert_eq!(
            bypass_seconds(&settings, Some(60)),
            Err(BypassError::NotAllowed)
        );
    }

    fn app_user(has_device: bool) -> UserFactors {
        UserFactors {
            enrolled: true,
            method: Some(Method::MobileApp),
            has_device,
            ..UserFactors::default()
        }
    }

    #[test]
    fn a_user_whose_method_is_the_app_is_sent_a_request_once_they_have_a_device() {
        let settings = Settings::default();
        assert_eq!(
            after_password(&settings, &app_user(true), AttemptFacts::default()),
            NextStep::Verify(Challenge::MobileApp)
        );
        // No device (removed): the wizard, never the password alone into the account.
        assert_eq!(
            after_password(&settings, &app_user(false), AttemptFacts::default()),
            NextStep::Enroll
        );
        assert_eq!(via(Challenge::MobileApp, &app_user(true)), Via::MobileApp);
    }

    #[test]
    fn the_app_is_enrolled_only_while_activation_is_allowed() {
        let mut settings = Settings {
            allow_method_selection: true,
            selectable_methods: vec![Method::MobileApp, Method::Oath],
            ..Settings::default()
        };
        assert_eq!(enrollable_methods(&settings), vec![Method::Oath]);
        settings.allow_mobile_app_activation = true;
        assert_eq!(
            enrollable_methods(&settings),
            vec![Method::MobileApp, Method::Oath]
        );
        let chose_app = UserFactors {
            method: Some(Method::MobileApp),
            ..UserFactors::default()
        };
        assert_eq!(
            next_enrollment_step(&settings, &chose_app),
            Some(EnrollmentStep::MobileApp)
        );
        let activated = UserFactors {
            has_device: true,
            ..chose_app
        };
        assert_eq!(next_enrollment_step(&settings, &activated), None);
    }
}
