//! What a verification call says and what the keys typed during it mean; what a
//! verification text message says and what a reply to it means.
//!
//! The server turns these into a provider's language (TwiML for Twilio, an entry in the
//! development inbox for the console) and the meaning into the authentication's events.
//! Everything here is pure: the same keys always mean the same thing on every node.

use crate::language::Language;
use serde::{Deserialize, Serialize};

/// The most keys a caller may type at one prompt (a PIN of 16 digits, `#`, and room).
pub const MAX_KEYS: u8 = 20;
/// How long a call waits for the first key.
pub const KEY_TIMEOUT_SECONDS: u16 = 10;
/// Digits of a one-time code sent by text message.
pub const TEXT_CODE_DIGITS: usize = 6;

/// Which question the keys answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStage {
    /// "Press # to approve" (or "type your PIN then #").
    Greeting,
    /// After the fraud code: "press 1 to report fraud".
    FraudConfirm,
}

impl CallStage {
    pub fn as_str(self) -> &'static str {
        match self {
            CallStage::Greeting => "greeting",
            CallStage::FraudConfirm => "fraud",
        }
    }

    pub fn parse(s: &str) -> Option<CallStage> {
        match s {
            "greeting" => Some(CallStage::Greeting),
            "fraud" => Some(CallStage::FraudConfirm),
            _ => None,
        }
    }
}

/// What the keys typed at a prompt mean (`typed` is every key, the final `#` included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keys {
    /// `#` alone, in standard mode: approve.
    Confirm,
    /// A PIN followed by `#`, in PIN mode (the server checks it).
    Pin(String),
    /// The fraud code followed by `#`: ask whether to report fraud.
    FraudCode,
    /// `1` after the fraud code: report it.
    ReportFraud,
    /// Nothing typed before the timeout.
    Silence,
    /// Keys that mean none of these (anything but `1` after the fraud code; anything but `#`
    /// in standard mode).
    Other,
}

/// Reads the keys typed at `stage`. `fraud_code` is the setting (digits), typed with `#`.
pub fn interpret(stage: CallStage, typed: &str, pin_mode: bool, fraud_code: &str) -> Keys {
    let typed = typed.trim();
    if typed.is_empty() {
        return Keys::Silence;
    }
    match stage {
        CallStage::FraudConfirm => {
            if typed.trim_end_matches('#') == "1" {
                Keys::ReportFraud
            } else {
                Keys::Other
            }
        }
        CallStage::Greeting => {
            if !fraud_code.is_empty() && typed.strip_suffix('#') == Some(fraud_code) {
                return Keys::FraudCode;
            }
            if pin_mode {
                // Whatever was typed is a PIN attempt: a wrong one counts.
                Keys::Pin(typed.chars().filter(char::is_ascii_digit).collect())
            } else if typed == "#" {
                Keys::Confirm
            } else {
                Keys::Other
            }
        }
    }
}

/// Keys a call asks for after speaking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gather {
    pub stage: CallStage,
    pub prompt: String,
    /// At most this many keys.
    pub max_keys: u8,
    /// The key that ends the input (`#`), if any.
    pub finish_on_key: Option<char>,
    pub timeout_seconds: u16,
}

/// What a call does next: speak, then either gather keys or hang up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallScript {
    pub language: Language,
    pub say: Vec<String>,
    pub gather: Option<Gather>,
}

impl CallScript {
    /// Says `text`, then hangs up.
    pub fn goodbye(language: Language, text: String) -> CallScript {
        CallScript {
            language,
            say: vec![text],
            gather: None,
        }
    }
}

/// How a call that ends said it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEnd {
    Approved,
    Denied,
    TooManyPins,
    FraudReported,
    NotReported,
    Silence,
    /// The authentication was over before the call got there (answered elsewhere, expired).
    Over,
}

/// The text of one prompt or farewell.
pub fn goodbye_text(language: Language, end: CallEnd) -> String {
    let s = match (language, end) {
        (Language::En, CallEnd::Approved) => "Thank you. Your sign-in is approved. Goodbye.",
        (Language::Fr, CallEnd::Approved) => "Merci. Votre connexion est approuvée. Au revoir.",
        (Language::En, CallEnd::Denied) => "Your sign-in was refused. Goodbye.",
        (Language::Fr, CallEnd::Denied) => "Votre connexion a été refusée. Au revoir.",
        (Language::En, CallEnd::TooManyPins) => {
            "That PIN was wrong too many times. Your sign-in was refused. Goodbye."
        }
        (Language::Fr, CallEnd::TooManyPins) => {
            "Code PIN erroné trop de fois. Votre connexion a été refusée. Au revoir."
        }
        (Language::En, CallEnd::FraudReported) => {
            "Thank you. The fraud is reported, your account is blocked and your administrators are told. Goodbye."
        }
        (Language::Fr, CallEnd::FraudReported) => {
            "Merci. La fraude est signalée, votre compte est bloqué et vos administrateurs sont prévenus. Au revoir."
        }
        (Language::En, CallEnd::NotReported) => {
            "No fraud was reported. The sign-in was refused. Goodbye."
        }
        (Language::Fr, CallEnd::NotReported) => {
            "Aucune fraude signalée. La connexion a été refusée. Au revoir."
        }
        (Language::En, CallEnd::Silence) => "No key was pressed. Goodbye.",
        (Language::Fr, CallEnd::Silence) => "Aucune touche n'a été pressée. Au revoir.",
        (Language::En, CallEnd::Over) => "This sign-in is already over. Goodbye.",
        (Language::Fr, CallEnd::Over) => "Cette connexion est déjà terminée. Au revoir.",
    };
    s.to_owned()
}

/// Why a call rings: a sign-in, or a number being added to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPurpose {
    SignIn,
    ConfirmNumber,
}

/// The first thing a call says, and the keys it waits for.
pub fn greeting(
    language: Language,
    organisation: &str,
    purpose: CallPurpose,
    pin_mode: bool,
    fraud_code: &str,
) -> CallScript {
    let fraud = spoken_keys(fraud_code);
    let (hello, ask, report) = match language {
        Language::En => (
            match purpose {
                CallPurpose::SignIn => format!(
                    "Hello. This is {organisation}. Someone is signing in with your account."
                ),
                CallPurpose::ConfirmNumber => format!(
                    "Hello. This is {organisation}. This number is being added to your account."
                ),
            },
            if pin_mode {
                "To approve, type your PIN, then press the pound key.".to_owned()
            } else {
                "To approve, press the pound key.".to_owned()
            },
            format!("If it is not you, press {fraud}, then the pound key."),
        ),
        Language::Fr => (
            match purpose {
                CallPurpose::SignIn => {
                    format!("Bonjour. Ici {organisation}. Quelqu'un se connecte avec votre compte.")
                }
                CallPurpose::ConfirmNumber => format!(
                    "Bonjour. Ici {organisation}. Ce numéro est en cours d'ajout à votre compte."
                ),
            },
            if pin_mode {
                "Pour approuver, tapez votre code PIN, puis la touche dièse.".to_owned()
            } else {
                "Pour approuver, appuyez sur la touche dièse.".to_owned()
            },
            format!("Si ce n'est pas vous, tapez {fraud}, puis la touche dièse."),
        ),
    };
    CallScript {
        language,
        say: vec![hello],
        gather: Some(Gather {
            stage: CallStage::Greeting,
            prompt: if fraud_code.is_empty() {
                ask
            } else {
                format!("{ask} {report}")
            },
            max_keys: MAX_KEYS,
            finish_on_key: Some('#'),
            timeout_seconds: KEY_TIMEOUT_SECONDS,
        }),
    }
}

/// After a wrong PIN: ask again.
pub fn pin_again(language: Language) -> CallScript {
    let (said, ask) = match language {
        Language::En => (
            "That PIN is not right.",
            "Type your PIN, then press the pound key.",
        ),
        Language::Fr => (
            "Ce code PIN n'est pas le bon.",
            "Tapez votre code PIN, puis la touche dièse.",
        ),
    };
    CallScript {
        language,
        say: vec![said.to_owned()],
        gather: Some(Gather {
            stage: CallStage::Greeting,
            prompt: ask.to_owned(),
            max_keys: MAX_KEYS,
            finish_on_key: Some('#'),
            timeout_seconds: KEY_TIMEOUT_SECONDS,
        }),
    }
}

/// After the fraud code: confirm the report.
pub fn fraud_question(language: Language) -> CallScript {
    let ask = match language {
        Language::En => "To report this sign-in as fraud and block your account, press 1.",
        Language::Fr => {
            "Pour signaler cette connexion comme une fraude et bloquer votre compte, tapez 1."
        }
    };
    CallScript {
        language,
        say: Vec::new(),
        gather: Some(Gather {
            stage: CallStage::FraudConfirm,
            prompt: ask.to_owned(),
            max_keys: 1,
            finish_on_key: None,
            timeout_seconds: KEY_TIMEOUT_SECONDS,
        }),
    }
}

/// Keys as a voice reads them: `0` → "0", `12` → "1 2".
fn spoken_keys(keys: &str) -> String {
    keys.chars().map(String::from).collect::<Vec<_>>().join(" ")
}

/// How text messages are used (the `sms_mode` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmsMode {
    /// The text holds a code the user types in the page (or an application sends).
    #[default]
    Otp,
    /// The user replies to the text with its code.
    TwoWay,
    /// The user replies with the code followed by their PIN.
    TwoWayPin,
}

/// The text that carries a one-time code.
pub fn code_text(
    language: Language,
    organisation: &str,
    code: &str,
    mode: SmsMode,
    minutes: u32,
) -> String {
    match (language, mode) {
        (Language::En, SmsMode::Otp) => {
            format!(
                "{organisation}: your sign-in code is {code}. It expires in {minutes} min. Do not share it."
            )
        }
        (Language::Fr, SmsMode::Otp) => {
            format!(
                "{organisation} : votre code de connexion est {code}. Il expire dans {minutes} min. Ne le partagez pas."
            )
        }
        (Language::En, SmsMode::TwoWay) => {
            format!(
                "{organisation}: to approve your sign-in, reply {code}. If it is not you, ignore this message."
            )
        }
        (Language::Fr, SmsMode::TwoWay) => {
            format!(
                "{organisation} : pour approuver votre connexion, répondez {code}. Si ce n'est pas vous, ignorez ce message."
            )
        }
        (Language::En, SmsMode::TwoWayPin) => {
            format!(
                "{organisation}: to approve your sign-in, reply {code} followed by your PIN. If it is not you, ignore this message."
            )
        }
        (Language::Fr, SmsMode::TwoWayPin) => {
            format!(
                "{organisation} : pour approuver votre connexion, répondez {code} suivi de votre code PIN. Si ce n'est pas vous, ignorez ce message."
            )
        }
    }
}

/// What a reply to a two-way text says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The code, and what followed it (the PIN, in `two_way_pin` mode).
    Code { code: String, pin: Option<String> },
    /// An opt-out keyword (`STOP`): acknowledged, never a code.
    Stop,
    /// Anything else.
    Other,
}

/// The carriers' and Twilio's opt-out keywords (and the French `ARRET`).
const STOP_WORDS: [&str; 8] = [
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "ARRET",
    "ARRÊT",
];

/// Reads a reply: the code's digits first, then the PIN's (spaces between are allowed).
pub fn read_reply(body: &str, with_pin: bool) -> Reply {
    let trimmed = body.trim();
    let upper = trimmed.to_uppercase();
    if STOP_WORDS.contains(&upper.as_str()) {
        return Reply::Stop;
    }
    if trimmed.is_empty()
        || !trimmed
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_whitespace() || c == '-')
    {
        return Reply::Other;
    }
    let digits: String = trimmed.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < TEXT_CODE_DIGITS {
        return Reply::Other;
    }
    let (code, rest) = digits.split_at(TEXT_CODE_DIGITS);
    Reply::Code {
        code: code.to_owned(),
        pin: (with_pin || !rest.is_empty()).then(|| rest.to_owned()),
    }
}

/// The answer to a STOP.
pub fn stop_text(language: Language, organisation: &str) -> String {
    match language {
        Language::En => format!(
            "{organisation}: you will get no more sign-in texts from this number until you reply START. Ask your administrator for another method."
        ),
        Language::Fr => format!(
            "{organisation} : vous ne recevrez plus de SMS de connexion de ce numéro jusqu'à ce que vous répondiez START. Demandez une autre méthode à votre administrateur."
        ),
    }
}

/// The answer to a reply that was taken into account.
pub fn reply_result_text(language: Language, organisation: &str, approved: bool) -> String {
    match (language, approved) {
        (Language::En, true) => format!("{organisation}: your sign-in is approved."),
        (Language::Fr, true) => format!("{organisation} : votre connexion est approuvée."),
        (Language::En, false) => {
            format!("{organisation}: that reply does not approve the sign-in.")
        }
        (Language::Fr, false) => {
            format!("{organisation} : cette réponse n'approuve pas la connexion.")
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_typed_during_a_call_mean_one_thing() {
        use CallStage::*;
        let table: &[(CallStage, &str, bool, Keys)] = &[
            (Greeting, "#", false, Keys::Confirm),
            (Greeting, "", false, Keys::Silence),
            (Greeting, "5#", false, Keys::Other),
            (Greeting, "0#", false, Keys::FraudCode),
            (Greeting, "0#", true, Keys::FraudCode),
            (Greeting, "1234#", true, Keys::Pin("1234".into())),
            (Greeting, "#", true, Keys::Pin(String::new())),
            (Greeting, "12*34#", true, Keys::Pin("1234".into())),
            (FraudConfirm, "1", false, Keys::ReportFraud),
            (FraudConfirm, "2", false, Keys::Other),
            (FraudConfirm, "", false, Keys::Silence),
        ];
        for (stage, typed, pin_mode, want) in table {
            assert_eq!(
                interpret(*stage, typed, *pin_mode, "0"),
                *want,
                "{stage:?} {typed:?} pin={pin_mode}"
            );
        }
        // No fraud code configured: "0#" is just a wrong key.
        assert_eq!(interpret(Greeting, "0#", false, ""), Keys::Other);
    }

    #[test]
    fn the_greeting_speaks_the_users_language_and_names_the_fraud_code() {
        let en = greeting(Language::En, "Contoso", CallPurpose::SignIn, false, "0");
        assert!(en.say[0].contains("Contoso"));
        let g = en.gather.unwrap();
        assert!(
            g.prompt.contains("press 0, then the pound key"),
            "{}",
            g.prompt
        );
        assert_eq!(g.finish_on_key, Some('#'));
        let fr = greeting(Language::Fr, "Contoso", CallPurpose::SignIn, true, "0");
        assert!(fr.gather.unwrap().prompt.contains("code PIN"));
        let check = greeting(
            Language::En,
            "Contoso",
            CallPurpose::ConfirmNumber,
            false,
            "0",
        );
        assert!(
            check.say[0].contains("being added to your account"),
            "{check:?}"
        );
        assert!(!check.say[0].contains("signing in"));
        assert_eq!(fr.language, Language::Fr);
    }

    #[test]
    fn replies_hold_the_code_then_the_pin() {
        assert_eq!(
            read_reply(" 123456 ", false),
            Reply::Code {
                code: "123456".into(),
                pin: None
            }
        );
        assert_eq!(
            read_reply("123456 9876", true),
            Reply::Code {
                code: "123456".into(),
                pin: Some("9876".into())
            }
        );
        assert_eq!(read_reply("stop", false), Reply::Stop);
        assert_eq!(read_reply("Arrêt", false), Reply::Stop);
        assert_eq!(read_reply("yes", false), Reply::Other);
        assert_eq!(read_reply("12345", false), Reply::Other);
    }

    #[test]
    fn code_texts_name_the_organisation_and_the_code() {
        let t = code_text(Language::Fr, "Contoso", "123456", SmsMode::Otp, 5);
        assert!(t.starts_with("Contoso"));
        assert!(t.contains("123456"));
        assert!(code_text(Language::En, "C", "1", SmsMode::TwoWayPin, 5).contains("PIN"));
    }
}
