//! The portal's operations, declared once.
//!
//! Each entry below gives an operation's name, its arguments (each with the type it travels
//! as between a portal on its own host and the server), what it returns, and the in-process
//! function that does it. From this one list come:
//! - the [`MfaService`] trait, which the portal's pages call;
//! - its in-process implementation, calling the named function of [`InProcessService`];
//! - the portal RPC's [`PortalCall`], one variant per operation, tagged with its name;
//! - the server's [`dispatch`] of a call;
//! - the [`RemoteService`] the portal uses on its own host.
//!
//! So an operation is written twice: here, and in the function that does it.

use super::app::{Activation, DeviceView, PushStatus};
use super::portal::{AppCheck, PhoneCheck, PhoneInput, PhoneWait};
use super::remote::{PortalReply, RemoteService};
use super::{
    ClientContext, FactorsView, InProcessService, PortalSession, Profile, QuestionView,
    ServiceError, SessionView, SignInOutcome, SoftwareEnrollment, Verification,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use twofold_engine::flow::Challenge;
use twofold_engine::settings::Method;
use twofold_engine::{Language, Settings, UnixTime};

/// How an argument travels: borrowed by the caller, owned on the wire.
trait ToWire<W> {
    fn to_wire(self) -> W;
}

impl ToWire<String> for &str {
    fn to_wire(self) -> String {
        self.to_owned()
    }
}

impl ToWire<Option<String>> for Option<&str> {
    fn to_wire(self) -> Option<String> {
        self.map(str::to_owned)
    }
}

impl ToWire<Vec<(String, String)>> for &[(String, String)] {
    fn to_wire(self) -> Vec<(String, String)> {
        self.to_vec()
    }
}

impl ToWire<PhoneInput> for &PhoneInput {
    fn to_wire(self) -> PhoneInput {
        self.clone()
    }
}

impl ToWire<Option<PhoneInput>> for Option<&PhoneInput> {
    fn to_wire(self) -> Option<PhoneInput> {
        self.cloned()
    }
}

impl ToWire<ClientContext> for &ClientContext {
    fn to_wire(self) -> ClientContext {
        self.clone()
    }
}

impl<T: Copy> ToWire<T> for T {
    fn to_wire(self) -> T {
        self
    }
}

/// How an argument received from the wire is lent to the in-process function.
trait AsArg<'a, A> {
    fn as_arg(&'a self) -> A;
}

impl<'a> AsArg<'a, &'a str> for String {
    fn as_arg(&'a self) -> &'a str {
        self
    }
}

impl<'a> AsArg<'a, Option<&'a str>> for Option<String> {
    fn as_arg(&'a self) -> Option<&'a str> {
        self.as_deref()
    }
}

impl<'a> AsArg<'a, &'a [(String, String)]> for Vec<(String, String)> {
    fn as_arg(&'a self) -> &'a [(String, String)] {
        self
    }
}

impl<'a> AsArg<'a, &'a PhoneInput> for PhoneInput {
    fn as_arg(&'a self) -> &'a PhoneInput {
        self
    }
}

impl<'a> AsArg<'a, Option<&'a PhoneInput>> for Option<PhoneInput> {
    fn as_arg(&'a self) -> Option<&'a PhoneInput> {
        self.as_ref()
    }
}

impl<'a> AsArg<'a, &'a ClientContext> for ClientContext {
    fn as_arg(&'a self) -> &'a ClientContext {
        self
    }
}

impl<'a, T: Copy> AsArg<'a, T> for T {
    fn as_arg(&'a self) -> T {
        *self
    }
}

macro_rules! portal_operations {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident($($arg:ident: $ty:ty => $wire:ty),* $(,)?) -> $ret:ty = $local:ident;
    )*) => {
        /// The portal's operations. Every one after the password takes the session's token
        /// (the cookie's value) and nothing else about who is asking: the server derives the
        /// user and the step from it, and creates and advances sessions itself (see
        /// [`super::portal`]).
        #[async_trait]
        pub trait MfaService: Send + Sync + 'static {
            $(
                $(#[doc = $doc])*
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, ServiceError>;
            )*
        }

        #[async_trait]
        impl MfaService for InProcessService {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, ServiceError> {
                    self.$local($($arg),*).await
                }
            )*
        }

        /// One operation of the portal, as a portal on its own host sends it. `session` is
        /// the visitor's session token.
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "call", deny_unknown_fields)]
        #[allow(non_camel_case_types)]
        pub enum PortalCall {
            $(
                $name { $($arg: $wire),* },
            )*
        }

        impl PortalCall {
            /// The operation's name, for logs.
            pub fn name(&self) -> &'static str {
                match self {
                    $(PortalCall::$name { .. } => stringify!($name),)*
                }
            }
        }

        /// Answers a call with the in-process service (the server side of the RPC). The
        /// actor of every change is the session's user (or, for sign-ins, the portal):
        /// nothing in the call can name another.
        pub async fn dispatch(
            service: &InProcessService,
            call: PortalCall,
        ) -> Result<PortalReply, ServiceError> {
            let s: &dyn MfaService = service;
            let result = match call {
                $(
                    PortalCall::$name { $($arg),* } => {
                        match s.$name($(AsArg::as_arg(&$arg)),*).await {
                            Ok(value) => PortalReply::of(&value),
                            Err(e) => Err(e),
                        }
                    }
                )*
            };
            match result {
                Ok(reply) => Ok(reply),
                Err(ServiceError::Domain(e)) => Ok(PortalReply::Refused(e)),
                Err(other) => Err(other),
            }
        }

        #[async_trait]
        impl MfaService for RemoteService {
            $(
                async fn $name(&self, $($arg: $ty),*) -> Result<$ret, ServiceError> {
                    let call = PortalCall::$name { $($arg: ToWire::<$wire>::to_wire($arg)),* };
                    self.call(call).await
                }
            )*
        }
    };
}

portal_operations! {
    /// The settings in force (shared by every node).
    fn settings() -> Settings = settings_in_force;
    /// Whether the service can do its work now (`/readyz`): an error when the store does
    /// not answer; otherwise how the directory is (`ok`, `unavailable`), if passwords are
    /// checked in one.
    fn ready() -> Option<String> = check_ready;
    /// The approved questions in `language` (and English ones when it has too few).
    fn question_catalogue(language: Language => Language) -> Vec<QuestionView> = catalogue;
    /// The password step. On success the server starts a session at the step the engine
    /// decides (a trusted address or a one-time bypass completes the sign-in at once) and
    /// ends `replacing`, the visitor's previous session. Every attempt is audited and every
    /// failure counts towards lockout.
    fn sign_in(
        username: &str => String,
        password: &str => String,
        next: Option<&str> => Option<String>,
        replacing: Option<&str> => Option<String>,
        client: &ClientContext => ClientContext,
    ) -> SignInOutcome = portal_sign_in;
    /// The session behind a token, if it is still valid (its idle deadline is refreshed).
    fn session(session: &str => String) -> Option<SessionView> = portal_session;
    fn sign_out(session: &str => String, client: &ClientContext => ClientContext) -> () = portal_sign_out;
    /// What the second-factor page asks (at sign-in, or to confirm a change).
    fn verification(session: &str => String, language: Language => Language) -> Verification = portal_verification;
    /// Switches to another challenge the page offered.
    fn choose_challenge(session: &str => String, challenge: Challenge => Challenge) -> () = portal_choose_challenge;
    /// Checks an OATH code (and the PIN when PINs are required); the session moves on.
    fn verify_oath(
        session: &str => String,
        code: &str => String,
        pin: Option<&str> => Option<String>,
        client: &ClientContext => ClientContext,
    ) -> PortalSession = portal_verify_oath;
    /// Checks the answers to the questions the server drew; all must be right.
    fn answer_security_questions(
        session: &str => String,
        answers: &[(String, String)] => Vec<(String, String)>,
        client: &ClientContext => ClientContext,
    ) -> PortalSession = portal_answer_questions;
    /// What the user has enrolled, for the wizard and the account page.
    fn factors(session: &str => String) -> FactorsView = portal_factors;
    fn profile(session: &str => String) -> Profile = portal_profile;
    fn set_language(
        session: &str => String,
        language: Language => Language,
        client: &ClientContext => ClientContext,
    ) -> () = portal_set_language;
    /// The authenticator-app enrolment in progress, if there is one (changes nothing).
    fn pending_software_oath(session: &str => String) -> Option<SoftwareEnrollment> = portal_pending_software_oath;
    /// Starts (or shows again) an authenticator-app enrolment.
    fn begin_software_oath(session: &str => String) -> SoftwareEnrollment = portal_begin_software_oath;
    /// Activates the pending authenticator-app token with a first valid code.
    fn confirm_software_oath(
        session: &str => String,
        code: &str => String,
        client: &ClientContext => ClientContext,
    ) -> () = portal_confirm_software_oath;
    /// Associates an imported hardware token by serial number, proven by a current code.
    fn associate_hardware_token(
        session: &str => String,
        serial: &str => String,
        code: &str => String,
        client: &ClientContext => ClientContext,
    ) -> () = portal_associate_hardware_token;
    fn remove_oath_token(session: &str => String, client: &ClientContext => ClientContext) -> () = portal_remove_oath_token;
    fn set_pin(
        session: &str => String,
        pin: &str => String,
        client: &ClientContext => ClientContext,
    ) -> () = portal_set_pin;
    fn set_security_answers(
        session: &str => String,
        answers: &[(String, String)] => Vec<(String, String)>,
        client: &ClientContext => ClientContext,
    ) -> () = portal_set_security_answers;
    /// Ends the wizard when nothing is missing any more; the session is signed in.
    fn complete_enrollment(session: &str => String, client: &ClientContext => ClientContext) -> PortalSession = portal_complete_enrollment;
    /// Where the session's call or text stands (the waiting page polls it); once approved,
    /// the session moves on with a new token.
    /// Without `finish`, it only reads (for the page's script).
    fn phone_wait(session: &str => String, finish: bool => bool) -> PhoneWait = portal_phone_wait;
    /// Sends the session's call or text again, to the backup phone.
    fn use_backup_phone(session: &str => String, client: &ClientContext => ClientContext) -> () = portal_use_backup_phone;
    /// Starts proving new phone numbers with a call or a text (`method`) to the primary one.
    fn begin_phone_check(
        session: &str => String,
        method: Method => Method,
        primary: &PhoneInput => PhoneInput,
        backup: Option<&PhoneInput> => Option<PhoneInput>,
        client: &ClientContext => ClientContext,
    ) -> PhoneCheck = portal_begin_phone_check;
    /// Where the phone check stands; the numbers are stored once it is answered.
    /// Without `finish`, it only reads (for the page's script).
    fn phone_check(session: &str => String, finish: bool => bool, client: &ClientContext => ClientContext) -> PhoneCheck = portal_phone_check;
    /// The code of the text a phone check sent, typed in the page.
    fn phone_check_code(
        session: &str => String,
        code: &str => String,
        client: &ClientContext => ClientContext,
    ) -> PhoneCheck = portal_phone_check_code;
    /// Creates an activation code for the authenticator app (the wizard's step, or another
    /// device from the account page; a change of factors).
    fn begin_app_activation(session: &str => String, client: &ClientContext => ClientContext) -> Activation = portal_begin_app_activation;
    /// The session user's activated devices.
    fn devices(session: &str => String) -> Vec<DeviceView> = portal_devices;
    /// Removes one of the session user's devices (a change of factors).
    fn remove_device(
        session: &str => String,
        device_id: &str => String,
        client: &ClientContext => ClientContext,
    ) -> () = portal_remove_device;
    /// "Authenticate me now": a first request to the user's devices; with `make_primary`
    /// (the wizard), a passed test makes the app the user's method.
    fn begin_app_check(
        session: &str => String,
        make_primary: bool => bool,
        client: &ClientContext => ClientContext,
    ) -> AppCheck = portal_begin_app_check;
    /// Where "Authenticate me now" stands; with `finish`, a passed test is taken.
    fn app_check(session: &str => String, finish: bool => bool, client: &ClientContext => ClientContext) -> AppCheck = portal_app_check;
    /// The request the session's sign-in or step-up waits on: the number to show.
    fn push_status(session: &str => String) -> PushStatus = portal_push_status;
    /// Sends the session's request to the app again, once the one before expired.
    fn send_push_again(session: &str => String, client: &ClientContext => ClientContext) -> () = portal_send_push_again;
    /// Starts a one-time bypass; returns when it expires.
    fn start_bypass(
        session: &str => String,
        seconds: Option<u32> => Option<u32>,
        client: &ClientContext => ClientContext,
    ) -> UnixTime = portal_start_bypass;
}
