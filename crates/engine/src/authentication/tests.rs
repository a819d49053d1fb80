use super::*;
use crate::phone_call::SmsMode;
use crate::settings::Method;
use std::net::IpAddr;

const NOW: UnixTime = 1_000_000;

fn settings() -> Settings {
    Settings {
        trusted_ip_ranges: vec!["10.0.0.0/8".parse().unwrap()],
        allow_one_time_bypass: true,
        security_questions_fallback: true,
        oath_token_fallback: true,
        ..Settings::default()
    }
}

/// A user holding everything a sign-in can ask for.
fn enrolled() -> UserFactors {
    UserFactors {
        enrolled: true,
        method: Some(Method::Oath),
        has_oath_token: true,
        security_answers: 4,
        has_pin: false,
        has_phone: true,
        has_backup_phone: false,
        has_device: true,
    }
}

fn pending(step: Step, origin: Origin) -> Authentication {
    Authentication {
        id: "a1".into(),
        user_id: "u1".into(),
        username: "alice".into(),
        origin,
        started_by: "sdk:app".into(),
        state: State::Pending(step),
        attempts: 1,
        client_ip: None,
        context: None,
        channel: None,
        message_id: None,
        code_hash: None,
        created_at: NOW - 10,
        expires_at: NOW + 100,
        consumed_at: None,
        version: 1,
    }
}

fn asked() -> Vec<String> {
    vec!["en-1".into(), "en-2".into()]
}

fn all_states() -> Vec<(&'static str, State)> {
    vec![
        ("pending otp", State::Pending(Step::Oath)),
        (
            "pending questions",
            State::Pending(Step::SecurityQuestions { asked: asked() }),
        ),
        (
            "pending questions undrawn",
            State::Pending(Step::SecurityQuestions { asked: Vec::new() }),
        ),
        ("pending enroll", State::Pending(Step::Enroll)),
        ("pending call", State::Pending(Step::PhoneCall)),
        ("pending text", State::Pending(Step::TextReply)),
        ("pending app", State::Pending(Step::MobileApp)),
        ("approved", State::Approved { via: Via::Oath }),
        (
            "denied",
            State::Denied {
                reason: Reason::InvalidCode,
            },
        ),
        ("expired", State::Expired),
        ("fraud", State::Fraud),
    ]
}

fn all_events() -> Vec<(&'static str, Event)> {
    let mut events = Vec::new();
    for (name, check) in [
        ("right", Check::Right),
        ("wrong", Check::Wrong),
        ("locked", Check::Locked),
    ] {
        events.push((leak(format!("code {name}")), Event::Code(check)));
        events.push((
            leak(format!("answers {name}")),
            Event::SecurityAnswers(check),
        ));
        events.push((leak(format!("digits {name}")), Event::CallDigits(check)));
        events.push((leak(format!("reply {name}")), Event::TextReply(check)));
        events.push((leak(format!("app {name}")), Event::AppApproval(check)));
    }
    events.extend([
        ("app deny", Event::App(AppAnswer::Deny)),
        ("app not me", Event::App(AppAnswer::NotMe)),
        ("fraud", Event::FraudReported),
        ("busy", Event::ProviderFailed(ProviderFailure::Busy)),
        (
            "no answer",
            Event::ProviderFailed(ProviderFailure::NoAnswer),
        ),
        (
            "undelivered",
            Event::ProviderFailed(ProviderFailure::Undelivered),
        ),
        (
            "unavailable",
            Event::ProviderFailed(ProviderFailure::Unavailable),
        ),
        ("switch otp", Event::Switch(Challenge::Oath)),
        (
            "switch questions",
            Event::Switch(Challenge::SecurityQuestions),
        ),
        ("drawn", Event::QuestionsDrawn(asked())),
        ("enrolled", Event::EnrollmentCompleted),
        ("timeout", Event::Timeout),
        ("cancel", Event::Cancel),
    ]);
    events
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn denied(reason: Reason) -> State {
    State::Denied { reason }
}

/// What each event does to each state before the expiry, for an enrolled user with one
/// attempt counted: every pair not listed is refused (closed for an ended authentication,
/// the wrong step for a pending one).
fn expected(state: &str, event: &str) -> Option<State> {
    let q = || State::Pending(Step::SecurityQuestions { asked: asked() });
    let approved = |via| State::Approved { via };
    Some(match (state, event) {
        ("pending otp", "code right") => approved(Via::Oath),
        ("pending otp", "code wrong") => State::Pending(Step::Oath),
        ("pending otp", "code locked") => denied(Reason::UserLocked),
        ("pending otp", "switch questions") => {
            State::Pending(Step::SecurityQuestions { asked: Vec::new() })
        }
        ("pending questions", "answers right") => approved(Via::SecurityQuestions),
        ("pending questions", "answers wrong") => q(),
        ("pending questions", "answers locked") => denied(Reason::UserLocked),
        ("pending questions" | "pending questions undrawn", "switch otp") => {
            State::Pending(Step::Oath)
        }
        // Questions not drawn yet cannot be answered right: counted, never approved.
        ("pending questions undrawn", "answers right" | "answers wrong") => {
            State::Pending(Step::SecurityQuestions { asked: Vec::new() })
        }
        ("pending questions undrawn", "answers locked") => denied(Reason::UserLocked),
        ("pending questions undrawn", "drawn") => q(),
        ("pending enroll", "enrolled") => approved(Via::Enrollment),
        ("pending call", "digits right") => approved(Via::PhoneCall),
        ("pending call", "digits wrong") => State::Pending(Step::PhoneCall),
        ("pending call", "digits locked") => denied(Reason::UserLocked),
        ("pending text", "reply right") => approved(Via::TextMessage),
        ("pending text", "reply wrong") => State::Pending(Step::TextReply),
        ("pending text", "reply locked") => denied(Reason::UserLocked),
        ("pending app", "app right") => approved(Via::MobileApp),
        // One answer only: a wrong number or PIN denies.
        ("pending app", "app wrong") => denied(Reason::InvalidCode),
        ("pending app", "app locked") => denied(Reason::UserLocked),
        ("pending app", "app deny") => denied(Reason::Declined),
        ("pending app" | "pending call" | "pending text", "app not me" | "fraud")
            if state == "pending app" || event == "fraud" =>
        {
            State::Fraud
        }
        ("pending app" | "pending call" | "pending text", "busy") => denied(Reason::Busy),
        ("pending app" | "pending call" | "pending text", "no answer") => denied(Reason::NoAnswer),
        ("pending app" | "pending call" | "pending text", "undelivered") => {
            denied(Reason::Undelivered)
        }
        ("pending app" | "pending call" | "pending text", "unavailable") => {
            denied(Reason::ProviderUnavailable)
        }
        (s, "cancel") if s.starts_with("pending") => denied(Reason::Cancelled),
        _ => return None,
    })
}

#[test]
fn every_state_and_event_pair_moves_as_the_table_says() {
    let settings = settings();
    let factors = enrolled();
    let mut checked = 0;
    for (state_name, state) in all_states() {
        for (event_name, event) in all_events() {
            let mut a = pending(Step::Oath, Origin::Sdk);
            a.state = state.clone();
            let got = apply(&a, &event, NOW, &settings, &factors);
            let want = match expected(state_name, event_name) {
                Some(state) => Transition::Moved { state, attempts: 1 },
                None if !state.is_pending() => Transition::Refused(Refusal::Closed(state.name())),
                None if event_name == "timeout" => Transition::Refused(Refusal::NotExpired),
                None if event_name.starts_with("switch") => {
                    // Switching to the challenge already asked, or away from enrolment.
                    match state_name {
                        "pending otp" => Transition::Refused(Refusal::NotOffered),
                        "pending questions" | "pending questions undrawn" => {
                            Transition::Refused(Refusal::NotOffered)
                        }
                        // Out-of-band steps may fall back to a code or the questions, and
                        // the wizard of a user holding a factor by now proves it first.
                        _ => Transition::Moved {
                            state: State::Pending(Step::of(
                                if event_name == "switch otp" {
                                    Challenge::Oath
                                } else {
                                    Challenge::SecurityQuestions
                                },
                                &settings,
                            )),
                            attempts: 1,
                        },
                    }
                }
                None => Transition::Refused(Refusal::WrongStep),
            };
            assert_eq!(got, want, "{state_name} + {event_name}");
            checked += 1;
        }
    }
    assert_eq!(checked, all_states().len() * all_events().len());
}

#[test]
fn past_its_expiry_every_event_finds_a_pending_authentication_expired() {
    let settings = settings();
    let factors = enrolled();
    for (state_name, state) in all_states() {
        for (event_name, event) in all_events() {
            let mut a = pending(Step::Oath, Origin::Portal);
            a.state = state.clone();
            let got = apply(&a, &event, a.expires_at, &settings, &factors);
            let want = if state.is_pending() {
                Transition::Moved {
                    state: State::Expired,
                    attempts: 1,
                }
            } else {
                Transition::Refused(Refusal::Closed(state.name()))
            };
            assert_eq!(got, want, "{state_name} + {event_name} at expiry");
        }
    }
}

#[test]
fn no_event_approves_for_a_user_without_the_factor() {
    let settings = settings();
    let nothing = UserFactors::default();
    for (state_name, state) in all_states() {
        for (event_name, event) in all_events() {
            let mut a = pending(Step::Oath, Origin::Sdk);
            a.state = state.clone();
            if let Transition::Moved { state, .. } = apply(&a, &event, NOW, &settings, &nothing) {
                assert!(
                    !matches!(state, State::Approved { .. }),
                    "{state_name} + {event_name} approved a user with no factor"
                );
            }
        }
    }
}

#[test]
fn the_fifth_wrong_answer_denies_the_authentication() {
    let settings = settings();
    let factors = enrolled();
    let mut a = pending(Step::Oath, Origin::Sdk);
    a.attempts = MAX_ANSWERS - 1;
    assert_eq!(
        apply(&a, &Event::Code(Check::Wrong), NOW, &settings, &factors),
        Transition::Moved {
            state: State::Pending(Step::Oath),
            attempts: MAX_ANSWERS - 1
        }
    );
    a.attempts = MAX_ANSWERS;
    assert_eq!(
        apply(&a, &Event::Code(Check::Wrong), NOW, &settings, &factors),
        Transition::Moved {
            state: denied(Reason::InvalidCode),
            attempts: MAX_ANSWERS
        }
    );
    // No sixth answer is checked at all.
    assert_eq!(
        may_answer(&a, &Step::Oath, NOW, &settings),
        Err(Refusal::Closed("denied"))
    );
    let q = pending(Step::SecurityQuestions { asked: asked() }, Origin::Sdk);
    let q = Authentication {
        attempts: MAX_ANSWERS,
        ..q
    };
    assert_eq!(
        apply(
            &q,
            &Event::SecurityAnswers(Check::Wrong),
            NOW,
            &settings,
            &factors
        ),
        Transition::Moved {
            state: denied(Reason::WrongAnswers),
            attempts: MAX_ANSWERS
        }
    );
}

#[test]
fn an_answer_is_checked_only_for_the_step_it_waits_on_and_before_its_expiry() {
    let a = pending(Step::Oath, Origin::Sdk);
    assert_eq!(may_answer(&a, &Step::Oath, NOW, &settings()), Ok(()));
    assert_eq!(
        may_answer(
            &a,
            &Step::SecurityQuestions { asked: asked() },
            NOW,
            &settings()
        ),
        Err(Refusal::WrongStep)
    );
    assert_eq!(
        may_answer(&a, &Step::Oath, a.expires_at, &settings()),
        Err(Refusal::Closed("expired"))
    );
    let approved = Authentication {
        state: State::Approved { via: Via::Oath },
        ..a
    };
    assert_eq!(
        may_answer(&approved, &Step::Oath, NOW, &settings()),
        Err(Refusal::Closed("approved"))
    );
}

#[test]
fn a_portal_sign_in_with_an_unfinished_enrolment_goes_to_the_wizard_after_the_code() {
    let settings = Settings {
        pin_required: true,
        ..settings()
    };
    let factors = enrolled(); // no PIN yet
    let portal = pending(Step::Oath, Origin::Portal);
    assert_eq!(
        apply(
            &portal,
            &Event::Code(Check::Right),
            NOW,
            &settings,
            &factors
        ),
        Transition::Moved {
            state: State::Pending(Step::Enroll),
            attempts: 1
        }
    );
    // The wizard ends signed in only once nothing is left to enrol.
    let wizard = pending(Step::Enroll, Origin::Portal);
    assert_eq!(
        apply(
            &wizard,
            &Event::EnrollmentCompleted,
            NOW,
            &settings,
            &factors
        ),
        Transition::Refused(Refusal::WrongStep)
    );
    let with_pin = UserFactors {
        has_pin: true,
        ..factors.clone()
    };
    assert_eq!(
        apply(
            &wizard,
            &Event::EnrollmentCompleted,
            NOW,
            &settings,
            &with_pin
        ),
        Transition::Moved {
            state: State::Approved {
                via: Via::Enrollment
            },
            attempts: 1
        }
    );
    // An application's authentication is about the code alone.
    let sdk = pending(Step::Oath, Origin::Sdk);
    assert_eq!(
        apply(&sdk, &Event::Code(Check::Right), NOW, &settings, &factors),
        Transition::Moved {
            state: State::Approved { via: Via::Oath },
            attempts: 1
        }
    );
}

#[test]
fn an_oath_code_answered_as_a_fallback_is_recorded_as_the_fallback() {
    let factors = UserFactors {
        method: Some(Method::PhoneCall),
        ..enrolled()
    };
    let a = pending(Step::Oath, Origin::Sdk);
    assert_eq!(
        apply(&a, &Event::Code(Check::Right), NOW, &settings(), &factors),
        Transition::Moved {
            state: State::Approved {
                via: Via::OathFallback
            },
            attempts: 1
        }
    );
}

#[test]
fn the_wizard_switches_to_a_challenge_only_for_a_user_who_holds_a_factor() {
    let wizard = pending(Step::Enroll, Origin::Portal);
    assert_eq!(
        apply(
            &wizard,
            &Event::Switch(Challenge::Oath),
            NOW,
            &settings(),
            &UserFactors::default()
        ),
        Transition::Refused(Refusal::NotOffered)
    );
}

#[test]
fn security_questions_are_drawn_once() {
    let settings = settings();
    let a = pending(Step::SecurityQuestions { asked: asked() }, Origin::Sdk);
    assert_eq!(
        apply(
            &a,
            &Event::QuestionsDrawn(vec!["en-3".into()]),
            NOW,
            &settings,
            &enrolled()
        ),
        Transition::Refused(Refusal::WrongStep)
    );
}

#[test]
fn switching_offers_only_what_the_settings_and_the_user_allow() {
    let no_fallbacks = Settings {
        security_questions_fallback: false,
        oath_token_fallback: false,
        ..settings()
    };
    let a = pending(Step::Oath, Origin::Portal);
    assert_eq!(
        apply(
            &a,
            &Event::Switch(Challenge::SecurityQuestions),
            NOW,
            &no_fallbacks,
            &enrolled()
        ),
        Transition::Refused(Refusal::NotOffered)
    );
    let few_answers = UserFactors {
        security_answers: 1,
        ..enrolled()
    };
    assert_eq!(
        apply(
            &a,
            &Event::Switch(Challenge::SecurityQuestions),
            NOW,
            &settings(),
            &few_answers
        ),
        Transition::Refused(Refusal::NotOffered)
    );
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn the_first_state_follows_the_sign_in_flow() {
    let s = settings();
    let no_enrolment = Settings {
        allow_user_enrollment: false,
        ..settings()
    };
    let no_questions = Settings {
        security_questions_fallback: false,
        ..settings()
    };
    let outside = AttemptFacts {
        client_ip: ip("192.0.2.1"),
        bypass_available: false,
    };
    let trusted = AttemptFacts {
        client_ip: ip("10.1.2.3"),
        bypass_available: false,
    };
    let bypass = AttemptFacts {
        client_ip: None,
        bypass_available: true,
    };
    let new_user = UserFactors::default();
    let questions_only = UserFactors {
        has_oath_token: false,
        ..enrolled()
    };
    type Row<'a> = (
        &'a str,
        Origin,
        &'a Settings,
        UserFactors,
        AttemptFacts,
        Option<Challenge>,
        Result<State, StartRefusal>,
    );
    let table: Vec<Row> = vec![
        (
            "trusted address",
            Origin::Portal,
            &s,
            enrolled(),
            trusted,
            None,
            Ok(State::Approved {
                via: Via::TrustedIp,
            }),
        ),
        (
            "bypass",
            Origin::Sdk,
            &s,
            enrolled(),
            bypass,
            None,
            Ok(State::Approved { via: Via::Bypass }),
        ),
        (
            "code",
            Origin::Sdk,
            &s,
            enrolled(),
            outside,
            None,
            Ok(State::Pending(Step::Oath)),
        ),
        (
            "questions asked for",
            Origin::Sdk,
            &s,
            enrolled(),
            outside,
            Some(Challenge::SecurityQuestions),
            Ok(State::Pending(Step::SecurityQuestions {
                asked: Vec::new(),
            })),
        ),
        (
            "questions turned off",
            Origin::Sdk,
            &no_questions,
            enrolled(),
            outside,
            Some(Challenge::SecurityQuestions),
            Err(StartRefusal::MethodNotOffered),
        ),
        (
            "no token: the questions",
            Origin::Portal,
            &s,
            questions_only.clone(),
            outside,
            None,
            Ok(State::Pending(Step::SecurityQuestions {
                asked: Vec::new(),
            })),
        ),
        (
            "no token, a code asked for",
            Origin::Sdk,
            &s,
            questions_only,
            outside,
            Some(Challenge::Oath),
            Err(StartRefusal::MethodNotOffered),
        ),
        (
            "first sign-in in the portal: enrol",
            Origin::Portal,
            &s,
            new_user.clone(),
            outside,
            None,
            Ok(State::Pending(Step::Enroll)),
        ),
        (
            "first sign-in through an application: denied",
            Origin::Sdk,
            &s,
            new_user.clone(),
            outside,
            None,
            Ok(denied(Reason::NotEnrolled)),
        ),
        (
            "no enrolment allowed",
            Origin::Portal,
            &no_enrolment,
            new_user.clone(),
            outside,
            None,
            Ok(denied(Reason::NotEnrolled)),
        ),
        (
            "step-up asks for the token even from a trusted address",
            Origin::StepUp,
            &s,
            enrolled(),
            trusted,
            None,
            Ok(State::Pending(Step::Oath)),
        ),
        (
            "step-up with nothing to prove",
            Origin::StepUp,
            &s,
            new_user,
            outside,
            None,
            Ok(denied(Reason::NotEnrolled)),
        ),
    ];
    for (name, origin, settings, factors, facts, wanted, want) in table {
        assert_eq!(
            start(origin, settings, &factors, facts, wanted),
            want,
            "{name}"
        );
    }
}

#[test]
fn stored_names_read_back() {
    for step in [
        Step::Oath,
        Step::SecurityQuestions { asked: asked() },
        Step::Enroll,
        Step::PhoneCall,
        Step::TextReply,
        Step::MobileApp,
    ] {
        let asked = match &step {
            Step::SecurityQuestions { asked } => asked.clone(),
            _ => Vec::new(),
        };
        assert_eq!(Step::parse(step.name(), asked), Some(step));
    }
    for origin in [
        Origin::Portal,
        Origin::StepUp,
        Origin::Sdk,
        Origin::PhoneCheck,
        Origin::AppCheck,
        Origin::Admin,
    ] {
        assert_eq!(Origin::parse(origin.as_str()), Some(origin));
    }
    for via in [
        Via::TrustedIp,
        Via::Bypass,
        Via::Oath,
        Via::OathFallback,
        Via::SecurityQuestions,
        Via::Enrollment,
        Via::PhoneCall,
        Via::TextMessage,
        Via::MobileApp,
    ] {
        assert_eq!(Via::parse(via.as_str()), Some(via));
    }
    assert_eq!(Reason::parse("busy"), Some(Reason::Busy));
    assert_eq!(Reason::parse("nonsense"), None);
}

#[test]
fn a_phone_user_is_called_or_texted_as_sms_mode_says() {
    let phone_user = UserFactors {
        method: Some(Method::PhoneCall),
        has_oath_token: false,
        ..enrolled()
    };
    let s = settings();
    assert_eq!(
        start(Origin::Sdk, &s, &phone_user, AttemptFacts::default(), None),
        Ok(State::Pending(Step::PhoneCall))
    );
    let texter = UserFactors {
        method: Some(Method::Sms),
        ..phone_user.clone()
    };
    assert_eq!(
        start(Origin::Sdk, &s, &texter, AttemptFacts::default(), None),
        Ok(State::Pending(Step::TextCode))
    );
    let two_way = Settings {
        sms_mode: SmsMode::TwoWayPin,
        ..settings()
    };
    assert_eq!(
        start(
            Origin::Sdk,
            &two_way,
            &texter,
            AttemptFacts::default(),
            None
        ),
        Ok(State::Pending(Step::TextReply))
    );
    // Without a phone, a phone method is never put to the user.
    let no_phone = UserFactors {
        has_phone: false,
        ..texter
    };
    assert_ne!(
        start(Origin::Sdk, &s, &no_phone, AttemptFacts::default(), None),
        Ok(State::Pending(Step::TextCode))
    );
}

#[test]
fn a_call_denies_after_call_pin_attempts_wrong_pins() {
    let s = Settings {
        call_pin_attempts: 3,
        ..settings()
    };
    let f = enrolled();
    let mut a = pending(Step::PhoneCall, Origin::Sdk);
    for attempt in 1..=2 {
        a.attempts = attempt;
        assert_eq!(may_answer(&a, &Step::PhoneCall, NOW, &s), Ok(()));
        assert_eq!(
            apply(&a, &Event::CallDigits(Check::Wrong), NOW, &s, &f),
            Transition::Moved {
                state: State::Pending(Step::PhoneCall),
                attempts: attempt
            }
        );
    }
    a.attempts = 3;
    assert_eq!(
        apply(&a, &Event::CallDigits(Check::Wrong), NOW, &s, &f),
        Transition::Moved {
            state: State::Denied {
                reason: Reason::InvalidCode
            },
            attempts: 3
        }
    );
    assert_eq!(
        may_answer(&a, &Step::PhoneCall, NOW, &s),
        Err(Refusal::Closed("denied"))
    );
}

#[test]
fn phone_steps_end_in_approval_fraud_or_the_reason_the_page_shows() {
    let s = settings();
    let f = enrolled();
    let call = pending(Step::PhoneCall, Origin::Sdk);
    assert_eq!(
        apply(&call, &Event::CallDigits(Check::Right), NOW, &s, &f),
        Transition::Moved {
            state: State::Approved {
                via: Via::PhoneCall
            },
            attempts: 1
        }
    );
    assert_eq!(
        apply(&call, &Event::FraudReported, NOW, &s, &f),
        Transition::Moved {
            state: State::Fraud,
            attempts: 1
        }
    );
    for (failure, reason) in [
        (ProviderFailure::Busy, Reason::Busy),
        (ProviderFailure::NoAnswer, Reason::NoAnswer),
        (ProviderFailure::Canceled, Reason::Cancelled),
        (ProviderFailure::RateLimited, Reason::RateLimited),
        (
            ProviderFailure::CountryNotAllowed,
            Reason::CountryNotAllowed,
        ),
    ] {
        assert_eq!(
            apply(&call, &Event::ProviderFailed(failure), NOW, &s, &f),
            Transition::Moved {
                state: State::Denied { reason },
                attempts: 1
            }
        );
        assert_eq!(Reason::parse(reason.as_str()), Some(reason));
    }
    let text = pending(Step::TextCode, Origin::Sdk);
    assert_eq!(
        apply(&text, &Event::TextCode(Check::Right), NOW, &s, &f),
        Transition::Moved {
            state: State::Approved {
                via: Via::TextMessage
            },
            attempts: 1
        }
    );
    // A code typed for a call, or call keys for a text: the wrong step, never approval.
    assert_eq!(
        apply(&text, &Event::CallDigits(Check::Right), NOW, &s, &f),
        Transition::Refused(Refusal::WrongStep)
    );
    assert_eq!(
        apply(&call, &Event::Code(Check::Right), NOW, &s, &f),
        Transition::Refused(Refusal::WrongStep)
    );
    // A right answer from a user who has no phone (removed meanwhile) never approves.
    let phoneless = UserFactors {
        has_phone: false,
        ..f
    };
    assert!(matches!(
        apply(&call, &Event::CallDigits(Check::Right), NOW, &s, &phoneless),
        Transition::Moved {
            state: State::Pending(_),
            ..
        }
    ));
}

#[test]
fn an_application_may_call_or_text_any_user_with_a_phone() {
    let s = settings();
    let oath_user = enrolled();
    assert_eq!(
        start(
            Origin::Sdk,
            &s,
            &oath_user,
            AttemptFacts::default(),
            Some(Challenge::PhoneCall)
        ),
        Ok(State::Pending(Step::PhoneCall))
    );
    // Not in the portal (its fallbacks are the settings'), and never without a phone.
    assert_eq!(
        start(
            Origin::Portal,
            &s,
            &oath_user,
            AttemptFacts::default(),
            Some(Challenge::Sms)
        ),
        Err(StartRefusal::MethodNotOffered)
    );
    let phoneless = UserFactors {
        has_phone: false,
        ..enrolled()
    };
    assert_eq!(
        start(
            Origin::Sdk,
            &s,
            &phoneless,
            AttemptFacts::default(),
            Some(Challenge::Sms)
        ),
        Err(StartRefusal::MethodNotOffered)
    );
}

#[test]
fn a_user_who_enrolled_a_phone_finishes_the_wizard_without_security_questions() {
    let s = Settings {
        security_questions_fallback: false,
        oath_token_fallback: false,
        ..Settings::default()
    };
    let caller = UserFactors {
        enrolled: false,
        method: Some(Method::PhoneCall),
        has_oath_token: false,
        security_answers: 0,
        has_phone: true,
        ..UserFactors::default()
    };
    let wizard = pending(Step::Enroll, Origin::Portal);
    assert_eq!(
        apply(&wizard, &Event::EnrollmentCompleted, NOW, &s, &caller),
        Transition::Moved {
            state: State::Approved {
                via: Via::Enrollment
            },
            attempts: 1
        }
    );
    // Without the phone, nothing is proved: the wizard goes on.
    let nothing = UserFactors {
        has_phone: false,
        ..caller
    };
    assert_eq!(
        apply(&wizard, &Event::EnrollmentCompleted, NOW, &s, &nothing),
        Transition::Refused(Refusal::WrongStep)
    );
}

#[test]
fn an_application_may_send_a_request_to_any_user_with_a_device_and_to_no_one_else() {
    let settings = settings();
    let with_device = UserFactors {
        method: Some(Method::Oath),
        has_device: true,
        ..enrolled()
    };
    assert_eq!(
        start(
            Origin::Sdk,
            &settings,
            &with_device,
            AttemptFacts::default(),
            Some(Challenge::MobileApp)
        ),
        Ok(State::Pending(Step::MobileApp))
    );
    let without = UserFactors {
        has_device: false,
        ..with_device.clone()
    };
    assert_eq!(
        start(
            Origin::Sdk,
            &settings,
            &without,
            AttemptFacts::default(),
            Some(Challenge::MobileApp)
        ),
        Err(StartRefusal::MethodNotOffered)
    );
    // A portal sign-in asks for the user's own method; the app only as theirs or offered.
    assert_eq!(
        start(
            Origin::Portal,
            &settings,
            &with_device,
            AttemptFacts::default(),
            Some(Challenge::MobileApp)
        ),
        Err(StartRefusal::MethodNotOffered)
    );
}

#[test]
fn a_device_test_waits_on_the_app_and_approves_only_for_a_user_with_a_device() {
    let settings = settings();
    let with_device = enrolled();
    assert_eq!(
        start(
            Origin::AppCheck,
            &settings,
            &with_device,
            AttemptFacts::default(),
            None
        ),
        Ok(State::Pending(Step::MobileApp))
    );
    let a = pending(Step::MobileApp, Origin::AppCheck);
    assert_eq!(
        apply(
            &a,
            &Event::AppApproval(Check::Right),
            NOW,
            &settings,
            &with_device
        ),
        Transition::Moved {
            state: State::Approved {
                via: Via::MobileApp
            },
            attempts: 1
        }
    );
    let without = UserFactors {
        has_device: false,
        ..with_device
    };
    assert!(!matches!(
        apply(
            &a,
            &Event::AppApproval(Check::Right),
            NOW,
            &settings,
            &without
        ),
        Transition::Moved {
            state: State::Approved { .. },
            ..
        }
    ));
}

#[test]
fn an_administrator_proves_a_factor_from_a_trusted_address_and_with_a_bypass() {
    let trusted = AttemptFacts {
        client_ip: Some("10.1.2.3".parse::<IpAddr>().unwrap()),
        bypass_available: true,
    };
    // A user from the same address, with the same bypass, skips the second factor.
    assert!(matches!(
        start(Origin::Portal, &settings(), &enrolled(), trusted, None),
        Ok(State::Approved { .. })
    ));
    assert_eq!(
        start(Origin::Admin, &settings(), &enrolled(), trusted, None),
        Ok(State::Pending(Step::Oath))
    );
}

#[test]
fn an_administrator_without_a_factor_is_not_sent_to_enrolment() {
    let nothing = UserFactors {
        enrolled: false,
        method: None,
        has_oath_token: false,
        security_answers: 0,
        has_pin: false,
        has_phone: false,
        has_backup_phone: false,
        has_device: false,
    };
    let facts = AttemptFacts {
        client_ip: None,
        bypass_available: false,
    };
    assert_eq!(
        start(Origin::Portal, &settings(), &nothing, facts, None),
        Ok(State::Pending(Step::Enroll))
    );
    assert_eq!(
        start(Origin::Admin, &settings(), &nothing, facts, None),
        Ok(State::Denied {
            reason: Reason::NotEnrolled
        })
    );
}
