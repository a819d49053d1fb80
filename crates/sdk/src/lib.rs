//! Wire types of the Web Service SDK (`/sdk/v1`) and of the operational endpoints.
//!
//! Both the server and every Rust client use these, so a change here is a change of contract.
//! Request bodies refuse unknown fields: a misspelt field is an error that names it, never a
//! silently ignored setting.

#[cfg(feature = "client")]
pub mod client;

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// An RFC 9457 problem: the body of every error the SDK answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type", default = "about_blank")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Twofold's stable, machine-readable code, such as `user_locked` or `code_already_used`.
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
    /// `ready`; `degraded` when the node works but the directory does not answer (nobody
    /// can sign in with a password, everything else works); `unavailable` when the store
    /// does not answer (the status is then 503).
    pub status: String,
    /// Whether the store answered a read and a write: `ok`, `unavailable` or `timeout`.
    pub store: String,
    /// Whether the directory that checks passwords answers (`ok` or `unavailable`);
    /// absent with local passwords.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

/// A user as the SDK shows it: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub username: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub language: Option<String>,
    pub has_password: bool,
    pub enabled: bool,
    pub created_at: i64,
    pub locked_until: Option<i64>,
    /// Locked until an administrator unlocks the user.
    #[serde(default)]
    pub hard_locked: bool,
    /// The extension dialled once a call to `phone` is answered.
    #[serde(default)]
    pub extension: Option<String>,
    /// The backup phone, in E.164 (`+33612345678`).
    #[serde(default)]
    pub backup_phone: Option<String>,
    #[serde(default)]
    pub backup_extension: Option<String>,
    /// The primary method: `phone_call`, `sms`, `mobile_app` or `oath`.
    #[serde(default)]
    pub method: Option<String>,
    /// Blocked after a fraud report until this time (unblock to lift it sooner).
    #[serde(default)]
    pub fraud_blocked_until: Option<i64>,
}

/// A user with their second factors, as `GET /sdk/v1/users/{username}` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct User {
    pub username: String,
    pub email: Option<String>,
    /// The primary phone, in E.164 (`+33612345678`) once set through
    /// `PUT /sdk/v1/users/{username}/phones`.
    pub phone: Option<String>,
    /// The extension dialled once a call to `phone` is answered (digits).
    #[serde(default)]
    pub extension: Option<String>,
    /// The backup phone, in E.164.
    #[serde(default)]
    pub backup_phone: Option<String>,
    /// The extension of the backup phone.
    #[serde(default)]
    pub backup_extension: Option<String>,
    pub language: Option<String>,
    pub enabled: bool,
    pub has_password: bool,
    pub has_pin: bool,
    /// The primary method: `phone_call`, `sms`, `mobile_app` or `oath`.
    pub method: Option<String>,
    /// Whether the user finished enrolment.
    pub enrolled: bool,
    pub oath: Option<OathTokenView>,
    /// How many security questions the user answered (four when enrolled).
    pub security_answers: usize,
    pub created_at: i64,
    /// When a lock that ends by itself ends.
    pub locked_until: Option<i64>,
    /// Locked until an administrator unlocks the user (`lockout_hard_cap` consecutive
    /// failures were reached).
    #[serde(default)]
    pub hard_locked: bool,
    /// When the user's unused one-time bypass expires.
    pub bypass_until: Option<i64>,
    /// Blocked after a fraud report (a fraud code typed during a verification call) until
    /// this time: no sign-in, no call, no text. `POST /sdk/v1/users/{username}/unblock`
    /// lifts it sooner.
    #[serde(default)]
    pub fraud_blocked_until: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OathTokenView {
    /// `software` (an authenticator app) or `hardware`.
    pub kind: String,
    pub serial: Option<String>,
    /// `totp` or `hotp`.
    #[serde(rename = "type")]
    pub otp_type: String,
    pub digits: u8,
    pub period: Option<u32>,
    pub algorithm: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    /// A local password (at least 12 characters, and not a commonly used one); without it the
    /// user has none.
    #[serde(default)]
    pub password: Option<String>,
    /// `en` or `fr`.
    #[serde(default)]
    pub language: Option<String>,
}

/// `PATCH` body: a field left out is unchanged; `null` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>)]
    pub language: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The primary method (`oath`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Tells a field given as `null` (clear it) from a field left out (keep it).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A phone number as a person writes it, with its extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneNumber {
    /// With its country code (`+33 6 12 34 56 78`), or national (`06 12 34 56 78`) when
    /// the `default_region` setting names the country. Stored in E.164.
    #[schema(example = "+33 6 12 34 56 78")]
    pub number: String,
    /// Up to 10 digits, dialled once the call is answered; an extension written after the
    /// number (`x890`) is read too.
    #[serde(default)]
    #[schema(example = "890")]
    pub extension: Option<String>,
}

/// `PUT /sdk/v1/users/{username}/phones`: both phones at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhonesSet {
    /// The primary phone; `null` clears both phones.
    #[serde(deserialize_with = "Option::deserialize")]
    #[schema(required = true)]
    pub primary: Option<PhoneNumber>,
    /// The backup phone (`null` or left out: none).
    #[serde(default)]
    pub backup: Option<PhoneNumber>,
}

/// A primary method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A call to the primary phone: the user answers and presses `#`.
    PhoneCall,
    /// A text message to the primary phone.
    Sms,
    /// A request to the authenticator app: the user approves with the number shown.
    MobileApp,
    /// An authenticator app or a hardware token.
    Oath,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::PhoneCall => "phone_call",
            Method::Sms => "sms",
            Method::MobileApp => "mobile_app",
            Method::Oath => "oath",
        }
    }
}

/// `PUT /sdk/v1/users/{username}/method`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MethodSet {
    pub method: Method,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    pub users: Vec<User>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PinSet {
    pub pin: String,
}

/// `POST /sdk/v1/users/{username}/oath`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum OathEnroll {
    /// An authenticator app: returns the `otpauth://` URI and a QR code; the token becomes
    /// active with the first valid code sent to `/oath/verify`.
    Software {
        /// `totp` (default) or `hotp`.
        #[serde(default, rename = "type")]
        otp_type: Option<String>,
        /// 6 (default) or 8.
        #[serde(default)]
        digits: Option<u8>,
        /// 30 (default) or 60 seconds.
        #[serde(default)]
        period: Option<u32>,
        /// `sha1` (default), `sha256` or `sha512`.
        #[serde(default)]
        algorithm: Option<String>,
    },
    /// An imported hardware token, by serial number. With `code`, it is active at once;
    /// without, the first valid code sent to `/oath/verify` activates it.
    Hardware {
        serial: String,
        #[serde(default)]
        code: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OathEnrollment {
    /// `pending` until a valid code is verified, then `active`.
    pub state: String,
    pub kind: String,
    /// Software tokens: what the authenticator app needs.
    pub otpauth_uri: Option<String>,
    pub secret: Option<String>,
    /// The QR code of `otpauth_uri` as an SVG image.
    pub qr_svg: Option<String>,
    pub serial: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeCheck {
    pub code: String,
    /// The PIN, when PINs are required.
    #[serde(default)]
    pub pin: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Verified {
    pub verified: bool,
    /// `oath`, `oath_fallback`, `security_questions`, `one_time_bypass`, `trusted_ip`.
    pub via: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SecurityQuestion {
    pub id: String,
    pub language: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityAnswer {
    pub question_id: String,
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityAnswers {
    pub answers: Vec<SecurityAnswer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BypassCreate {
    /// How long, in seconds (the settings decide the default and the maximum).
    #[serde(default)]
    pub seconds: Option<u32>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Bypass {
    pub expires_at: i64,
}

/// `POST /sdk/v1/authentications`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationStart {
    pub username: String,
    /// Checked when given; leave out when your application checked the password itself.
    #[serde(default)]
    pub password: Option<String>,
    /// `oath`, `security_questions`, `phone_call`, `sms` or `mobile_app`; the user's own
    /// method by default.
    #[serde(default)]
    pub method: Option<String>,
    /// For `phone_call` and `sms`: `primary` (the default) or `backup`, the phone the call or
    /// text goes to.
    #[serde(default)]
    pub phone: Option<String>,
    /// The end user's address, for trusted ranges and the audit log.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// Free-form context recorded with the authentication (application, resource…).
    #[serde(default)]
    pub context: BTreeMap<String, String>,
}

/// An authentication in progress or finished.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Authentication {
    pub id: String,
    /// `pending`, `approved`, `denied`, `expired` or `fraud` (the user typed the fraud
    /// code during the call: the sign-in was not theirs, and they are blocked).
    pub state: String,
    pub username: String,
    /// While pending, what finishes it: `otp` or `security_answers` (what `/answer`
    /// expects), `text_code` (the code of the text message sent, through `/answer` as
    /// `otp`), or `phone_call`, `text_reply` and `mobile_app` (the user answers the call,
    /// replies to the text, or approves in the app; poll until it is decided).
    pub next: Option<String>,
    /// The questions to answer when `next` is `security_answers`.
    pub questions: Vec<SecurityQuestion>,
    /// How the authentication was approved.
    pub via: Option<String>,
    /// Why it was denied, a stable code: `not_enrolled`, `invalid_code`, `wrong_answers`,
    /// `user_locked`, `declined`, `busy` and `no_answer` (the call), `undelivered` (the
    /// call or text could not reach the phone), `provider_unavailable`, `cancelled`,
    /// `rate_limited` (too many calls or texts this hour: none was sent),
    /// `country_not_allowed` (the number's country is not in `sms_allowed_countries`).
    pub reason: Option<String>,
    pub expires_at: i64,
    /// For `mobile_app`: the number to show the user, who picks it in the app (number
    /// matching). `null` for other methods, or when `push_number_matching` is off.
    #[serde(default)]
    pub number: Option<u8>,
}

/// `POST /sdk/v1/users/{username}/devices/activation`: a one-time activation code for the
/// authenticator app, to show the user once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AppActivation {
    /// 16 characters in four groups (`7K3M-Q9TX-2HBW-V4RD`); used once, within
    /// `app_activation_minutes`.
    pub code: String,
    /// The server's address for the app (`[app] public_url`, else `portal_url`).
    pub url: String,
    /// `twofold://activate?url=…&code=…`, what the QR code carries.
    pub uri: String,
    /// The QR code of `uri`, an SVG image.
    pub qr_svg: String,
    pub expires_at: i64,
}

/// An activated authenticator device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Device {
    pub id: String,
    pub name: String,
    /// `ed25519` or `p256`.
    pub algorithm: String,
    pub created_at: i64,
    /// When it last answered a request.
    pub last_used_at: Option<i64>,
    /// It makes the user's offline OATH codes.
    pub offline_codes: bool,
    /// It gave a UnifiedPush endpoint for wake-ups.
    pub push_endpoint: bool,
}

/// `GET /sdk/v1/users/{username}/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<Device>,
}

/// `POST /sdk/v1/authentications/{id}/answer`: an OTP, or security answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AuthenticationAnswer {
    Otp(OtpAnswer),
    Answers(SecurityAnswers),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpAnswer {
    pub otp: String,
    #[serde(default)]
    pub pin: Option<String>,
}

/// `POST /sdk/v1/tokens/import`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenImport {
    /// The file's content: PSKC XML or CSV text, as is.
    pub content: String,
    /// PSKC pre-shared key, in hex.
    #[serde(default)]
    pub key: Option<String>,
    /// PSKC password (PBKDF2).
    #[serde(default)]
    pub password: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenImportResult {
    pub imported: usize,
}

/// One problem of a token file (the import is refused as a whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportProblem {
    pub location: String,
    pub reason: String,
}
