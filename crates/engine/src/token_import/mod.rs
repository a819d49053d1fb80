//! Reading third-party (hardware) OATH token files: PSKC (RFC 6030) and CSV.
//!
//! Pure: bytes in, tokens or problems out. A file is read whole and all or nothing: when any
//! key package or row has a problem, the result lists every problem found, so that the
//! operator fixes the file once and the caller imports in one transaction, never half a file.
//!
//! Secrets never appear in a problem or in `Debug` output.

mod csv;
mod pskc;

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroizing;

use crate::oath::{Algorithm, OathParams};

pub use self::csv::parse_csv;
pub use self::pskc::{PskcKey, parse_pskc};

/// Files larger than this are refused before they are parsed.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;
/// At most this many tokens (PSKC key packages or CSV rows) in one file.
pub const MAX_TOKENS: usize = 100_000;
/// RFC 4226 section 4: the shared secret is at least 128 bits (160 recommended).
pub const MIN_SECRET_BYTES: usize = 16;
/// Longer than any OATH token's secret (HMAC-SHA512's block is 128 bytes).
pub const MAX_SECRET_BYTES: usize = 128;
/// A serial is 1 to this many printable characters.
pub const MAX_SERIAL_CHARS: usize = 64;

/// One token read from a file, ready to be stored and later associated by serial.
#[derive(Clone, PartialEq, Eq)]
pub struct ImportedToken {
    pub serial: String,
    pub secret: Zeroizing<Vec<u8>>,
    pub params: OathParams,
    /// HOTP: the token's next counter value (0 for a new token). TOTP: 0.
    pub counter: u64,
}

impl fmt::Debug for ImportedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportedToken")
            .field("serial", &self.serial)
            .field(
                "secret",
                &format_args!("[{} bytes, redacted]", self.secret.len()),
            )
            .field("params", &self.params)
            .field("counter", &self.counter)
            .finish()
    }
}

/// Something wrong in a file: where (`"row 4"`, `"KeyPackage 2 (serial 12345)"`, `"file"`) and
/// what is wrong, said so that the operator knows how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportProblem {
    pub location: String,
    pub reason: String,
}

impl ImportProblem {
    fn new(location: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            reason: reason.into(),
        }
    }

    fn file(reason: impl Into<String>) -> Self {
        Self::new("file", reason)
    }
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.reason)
    }
}

/// Reads a token file: PSKC when it looks like XML (or its name says PSKC), CSV otherwise.
pub fn parse_file(
    name_hint: &str,
    bytes: &[u8],
    key: Option<&PskcKey>,
) -> Result<Vec<ImportedToken>, Vec<ImportProblem>> {
    let name = name_hint.to_ascii_lowercase();
    let named_pskc = [".xml", ".pskc", ".pskcxml"]
        .iter()
        .any(|suffix| name.ends_with(suffix));
    if named_pskc || looks_like_xml(bytes) {
        parse_pskc(bytes, key)
    } else {
        parse_csv(bytes)
    }
}

fn looks_like_xml(bytes: &[u8]) -> bool {
    strip_bom(bytes).trim_ascii_start().starts_with(b"<")
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// The checks every file gets before it is parsed.
fn check_file_size(bytes: &[u8]) -> Result<(), ImportProblem> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ImportProblem::file(format!(
            "the file is {} bytes; files over {} MiB are refused: split it into smaller files",
            bytes.len(),
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    if strip_bom(bytes).trim_ascii().is_empty() {
        return Err(ImportProblem::file(
            "the file is empty: export the tokens again",
        ));
    }
    Ok(())
}

fn too_many_tokens(found: &str) -> ImportProblem {
    ImportProblem::file(format!(
        "the file has {found}; at most {MAX_TOKENS} tokens are imported at once: split it into smaller files"
    ))
}

/// A serial as stored: trimmed, 1 to 64 printable characters. The error is the reason.
fn check_serial(raw: &str) -> Result<String, String> {
    let serial = raw.trim();
    if serial.is_empty() {
        return Err("the serial is empty: give the serial printed on the token".into());
    }
    let chars = serial.chars().count();
    if chars > MAX_SERIAL_CHARS {
        return Err(format!(
            "the serial is {chars} characters; at most {MAX_SERIAL_CHARS} are allowed"
        ));
    }
    if serial.chars().any(char::is_control) {
        return Err("the serial contains control characters: use printable characters only".into());
    }
    Ok(serial.to_owned())
}

fn check_secret_length(secret: &[u8]) -> Result<(), String> {
    let len = secret.len();
    if len < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret is {len} bytes ({} bits); RFC 4226 requires at least 128 bits ({MIN_SECRET_BYTES} bytes) and recommends 160 (20 bytes): use the token's full secret",
            len * 8
        ));
    }
    if len > MAX_SECRET_BYTES {
        return Err(format!(
            "the secret is {len} bytes; no OATH token has a secret over {MAX_SECRET_BYTES} bytes: check that the right value is in the secret's place"
        ));
    }
    Ok(())
}

fn check_digits(text: &str) -> Result<u8, String> {
    match text.trim() {
        "6" => Ok(6),
        "8" => Ok(8),
        other => Err(format!(
            "the number of digits is '{}'; it must be 6 or 8",
            clip(other)
        )),
    }
}

fn check_period(text: &str) -> Result<u32, String> {
    match text.trim() {
        "30" => Ok(30),
        "60" => Ok(60),
        other => Err(format!(
            "the TOTP period is '{}' seconds; it must be 30 or 60",
            clip(other)
        )),
    }
}

fn check_counter(text: &str) -> Result<u64, String> {
    let text = text.trim();
    text.parse::<u64>().map_err(|_| {
        format!(
            "the HOTP counter is '{}'; it must be a whole number from 0 to {}",
            clip(text),
            u64::MAX
        )
    })
}

/// `sha1`, `SHA-256`, `HMAC-SHA512`, … as a hash; `None` when it is none of the three.
fn hash_by_name(name: &str) -> Option<Algorithm> {
    let name = name.trim().to_ascii_lowercase().replace(['-', '_'], "");
    let name = name.strip_prefix("hmac").unwrap_or(&name);
    match name {
        "sha1" => Some(Algorithm::Sha1),
        "sha256" => Some(Algorithm::Sha256),
        "sha512" => Some(Algorithm::Sha512),
        _ => None,
    }
}

/// A value from the file, shortened for quoting in a problem (never used for secrets).
fn clip(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(MAX).collect();
        clipped.push('…');
        clipped
    }
}

/// One key package or row while a file is read: its own problems, and its token when it has
/// none.
struct Entry {
    location: String,
    serial: Option<String>,
    token: Option<ImportedToken>,
    problems: Vec<String>,
}

/// Turns what was read into the all-or-nothing result: refuses duplicate serials and files
/// without tokens, and returns every problem, file-level ones first, then in file order.
///
/// `duplicate` says why an entry's serial is refused, given the serial and where it was first
/// seen (a CSV file does not quote its cells: see the `csv` module).
fn finish(
    mut file_problems: Vec<ImportProblem>,
    mut entries: Vec<Entry>,
    duplicate: impl Fn(&str, &str) -> String,
) -> Result<Vec<ImportedToken>, Vec<ImportProblem>> {
    let mut first_seen: HashMap<String, String> = HashMap::new();
    for entry in &mut entries {
        let Some(serial) = &entry.serial else {
            continue;
        };
        match first_seen.get(serial) {
            Some(first) => entry.problems.push(duplicate(serial, first)),
            None => {
                first_seen.insert(serial.clone(), entry.location.clone());
            }
        }
    }
    if entries.is_empty() && file_problems.is_empty() {
        file_problems.push(ImportProblem::file(
            "the file contains no tokens: check that it is the right file",
        ));
    }
    let mut problems = file_problems;
    let mut tokens = Vec::with_capacity(entries.len());
    let file_level_problem = !problems.is_empty();
    for entry in entries {
        if entry.problems.is_empty() {
            match entry.token {
                Some(token) => tokens.push(token),
                // Left unread because of a file-level problem (such as a missing key), which
                // is reported already.
                None if file_level_problem => {}
                None => problems.push(ImportProblem::new(
                    entry.location,
                    "the token could not be read",
                )),
            }
        } else {
            for reason in entry.problems {
                problems.push(ImportProblem::new(entry.location.clone(), reason));
            }
        }
    }
    if problems.is_empty() {
        Ok(tokens)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let token = ImportedToken {
            serial: "HW-1".into(),
            secret: Zeroizing::new(b"12345678901234567890".to_vec()),
            params: OathParams::default(),
            counter: 0,
        };
        let shown = format!("{token:?}");
        assert!(shown.contains("HW-1"), "{shown}");
        assert!(shown.contains("20 bytes"), "{shown}");
        assert!(!shown.contains("12345678901234567890"), "{shown}");
        assert!(!shown.contains("49, 50"), "{shown}");
    }

    #[test]
    fn a_pskc_file_is_recognised_by_its_content_and_a_csv_file_otherwise() {
        let xml = include_bytes!("../../tests/fixtures/pskc/plain.pskcxml");
        let tokens = parse_file("upload.bin", xml, None);
        assert_eq!(tokens.map(|t| t.len()), Ok(3));

        let csv = b"HW-1,hex:3132333435363738393031323334353637383930,totp,6,30\n";
        let tokens = parse_file("tokens.csv", csv, None);
        assert_eq!(tokens.map(|t| t.len()), Ok(1));

        let mut with_bom = b"\xEF\xBB\xBF\n  ".to_vec();
        with_bom.extend_from_slice(xml);
        assert_eq!(parse_file("x", &with_bom, None).map(|t| t.len()), Ok(3));
    }

    #[test]
    fn a_file_named_pskc_is_read_as_pskc_even_when_it_is_not_xml() {
        let problems = parse_file("seeds.pskcxml", b"not xml at all", None)
            .err()
            .unwrap_or_default();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].reason.contains("XML"), "{problems:?}");
    }

    #[test]
    fn an_empty_file_is_refused() {
        for empty in [&b""[..], b"  \n\n", b"\xEF\xBB\xBF"] {
            for problems in [
                parse_file("t.csv", empty, None),
                parse_csv(empty),
                parse_pskc(empty, None),
            ] {
                let problems = problems.err().unwrap_or_default();
                assert_eq!(problems.len(), 1, "{problems:?}");
                assert_eq!(problems[0].location, "file");
                assert!(problems[0].reason.contains("empty"), "{problems:?}");
            }
        }
    }

    #[test]
    fn a_file_over_16_mib_is_refused() {
        let mut big = b"serial,secret,type,digits,period_or_counter\n".to_vec();
        big.resize(MAX_FILE_BYTES + 1, b'#');
        for result in [parse_csv(&big), parse_pskc(&big, None)] {
            let problems = result.err().unwrap_or_default();
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].reason.contains("16 MiB"), "{problems:?}");
        }
    }

    #[test]
    fn serials_are_trimmed_and_limited_to_64_printable_characters() {
        assert_eq!(check_serial("  HW 1\t"), Ok("HW 1".to_owned()));
        assert!(check_serial("   ").is_err());
        assert!(check_serial(&"x".repeat(64)).is_ok());
        assert!(check_serial(&"x".repeat(65)).is_err());
        assert!(check_serial("a\u{7}b").is_err());
    }

    #[test]
    fn hash_names_are_read_in_their_usual_spellings() {
        assert_eq!(hash_by_name("sha1"), Some(Algorithm::Sha1));
        assert_eq!(hash_by_name("HMAC-SHA256"), Some(Algorithm::Sha256));
        assert_eq!(hash_by_name("SHA-512"), Some(Algorithm::Sha512));
        assert_eq!(hash_by_name("md5"), None);
    }
}
