//! CSV token files: one token per line,
//! `serial,secret,type,digits,period_or_counter[,algorithm]`.
//!
//! An optional header line (its first field is `serial`), blank lines and lines starting with
//! `#` are skipped. Every problem names its row by its 1-based line number in the file.
//!
//! A problem never quotes a cell: in a file whose columns are out of order (or shifted by a
//! missing comma) a secret can land in any column, so a problem names the row and the column
//! and says what the column must hold instead.

use data_encoding::BASE32_NOPAD;
use zeroize::Zeroizing;

use super::{
    Entry, ImportProblem, ImportedToken, MAX_TOKENS, check_counter, check_digits, check_file_size,
    check_period, check_secret_length, check_serial, finish, hash_by_name, strip_bom,
    too_many_tokens,
};
use crate::oath::{Algorithm, OathKind, OathParams};

const COLUMNS: &str = "serial,secret,type,digits,period_or_counter[,algorithm]";

/// Reads a CSV token file.
pub fn parse_csv(text: &[u8]) -> Result<Vec<ImportedToken>, Vec<ImportProblem>> {
    check_file_size(text).map_err(|problem| vec![problem])?;
    let text = strip_bom(text);
    let mut entries = Vec::new();
    let mut first_row = true;
    // Line by line, so that a row is named by its line in the file whatever comes before it
    // (the csv crate's own line count skips comment lines). A token's fields never span lines.
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let location = format!("row {}", index + 1);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() || trimmed.starts_with(b"#") {
            continue;
        }
        let fields = match split_fields(line) {
            Ok(fields) => fields,
            Err(reason) => {
                entries.push(Entry {
                    location,
                    serial: None,
                    token: None,
                    problems: vec![reason],
                });
                continue;
            }
        };
        let fields: Vec<&str> = fields.iter().map(|field| field.as_str()).collect();
        let first = fields.first().copied().unwrap_or_default();
        if std::mem::take(&mut first_row) && first.eq_ignore_ascii_case("serial") {
            continue;
        }
        if entries.len() == MAX_TOKENS {
            return Err(vec![too_many_tokens(&format!(
                "more than {MAX_TOKENS} rows"
            ))]);
        }
        entries.push(read_row(location, &fields));
    }
    finish(Vec::new(), entries, |_serial, first| {
        format!(
            "the serial (column 1) is also in {first}; a serial may appear only once in a file: remove or correct one of them"
        )
    })
}

/// A problem with the cell in `column` (1-based), which must hold `must`. The cell itself is
/// not quoted: it could be a secret in the wrong column.
fn wrong_cell(column: usize, name: &str, must: &str) -> String {
    format!(
        "column {column} ({name}) must be {must}; its value is not shown, as it could be a secret in the wrong column: check the order of the columns ({COLUMNS})"
    )
}

/// The trimmed fields of one line, with RFC 4180 quotes (`"a,b"`, `"say ""hi"""`).
fn split_fields(line: &[u8]) -> Result<Vec<Zeroizing<String>>, String> {
    let line = std::str::from_utf8(line)
        .map_err(|_| "the row is not valid UTF-8 text: save the file as UTF-8".to_owned())?;
    let mut fields = Vec::new();
    let mut field = Zeroizing::new(String::new());
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
        } else {
            match c {
                ',' => fields.push(trimmed(&mut field)),
                '"' if field.trim().is_empty() => {
                    field.clear();
                    in_quotes = true;
                }
                _ => field.push(c),
            }
        }
    }
    if in_quotes {
        return Err(
            "a quoted field is not closed on its line: add the closing \" (each token is one line)"
                .to_owned(),
        );
    }
    fields.push(trimmed(&mut field));
    Ok(fields)
}

fn trimmed(field: &mut Zeroizing<String>) -> Zeroizing<String> {
    let value = Zeroizing::new(field.trim().to_owned());
    field.clear();
    value
}

fn read_row(location: String, fields: &[&str]) -> Entry {
    let mut problems = Vec::new();
    if !(5..=6).contains(&fields.len()) {
        problems.push(format!(
            "the row has {} fields; it must have 5 or 6: {COLUMNS}",
            fields.len()
        ));
        return Entry {
            location,
            serial: None,
            token: None,
            problems,
        };
    }
    let field = |index: usize| fields.get(index).copied().unwrap_or_default();

    let serial = check_serial(field(0))
        .map_err(|reason| problems.push(reason))
        .ok();

    let secret = parse_secret(field(1))
        .and_then(|secret| check_secret_length(&secret).map(|()| secret))
        .map_err(|reason| problems.push(reason))
        .ok();

    let kind = field(2);
    let is_hotp = if kind.eq_ignore_ascii_case("totp") {
        Some(false)
    } else if kind.eq_ignore_ascii_case("hotp") {
        Some(true)
    } else {
        problems.push(wrong_cell(3, "type", "totp or hotp"));
        None
    };

    let digits = match field(3) {
        "" => Some(6),
        text => check_digits(text)
            .map_err(|_| problems.push(wrong_cell(4, "digits", "6 or 8")))
            .ok(),
    };

    let (kind, counter) = match (is_hotp, field(4)) {
        (Some(false), "") => (Some(OathKind::Totp { period: 30 }), Some(0)),
        (Some(false), text) => (
            check_period(text)
                .map(|period| OathKind::Totp { period })
                .map_err(|_| {
                    problems.push(wrong_cell(
                        5,
                        "period_or_counter",
                        "a TOTP period of 30 or 60 (seconds)",
                    ))
                })
                .ok(),
            Some(0),
        ),
        (Some(true), "") => (Some(OathKind::Hotp), Some(0)),
        (Some(true), text) => (
            Some(OathKind::Hotp),
            check_counter(text)
                .map_err(|_| {
                    problems.push(wrong_cell(
                        5,
                        "period_or_counter",
                        "an HOTP counter, a whole number from 0 to 2^64-1",
                    ))
                })
                .ok(),
        ),
        (None, _) => (None, None),
    };

    let algorithm = match field(5) {
        "" => Some(Algorithm::Sha1),
        text => {
            let hash = hash_by_name(text);
            if hash.is_none() {
                problems.push(wrong_cell(6, "algorithm", "sha1, sha256 or sha512"));
            }
            hash
        }
    };

    let token = match (&serial, secret, algorithm, digits, kind, counter) {
        (Some(serial), Some(secret), Some(algorithm), Some(digits), Some(kind), Some(counter))
            if problems.is_empty() =>
        {
            Some(ImportedToken {
                serial: serial.clone(),
                secret,
                params: OathParams {
                    algorithm,
                    digits,
                    kind,
                },
                counter,
            })
        }
        _ => None,
    };
    Entry {
        location,
        serial,
        token,
        problems,
    }
}

/// `hex:…` or `base32:…`; without a prefix, an even number of hex digits is hex and anything
/// else base32 (RFC 4648, any case, padding optional). Spaces are ignored. The reason never
/// quotes the secret.
fn parse_secret(text: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let compact = Zeroizing::new(
        text.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>(),
    );
    let (encoding, value) = match split_prefix(&compact) {
        Some((prefix, value)) => (Some(prefix), value),
        None => (None, compact.as_str()),
    };
    if value.is_empty() {
        return Err("the secret is empty: give it as hex:… or base32:…".to_owned());
    }
    let is_hex = match encoding {
        Some(encoding) => encoding == "hex",
        None => value.len().is_multiple_of(2) && value.bytes().all(|b| b.is_ascii_hexdigit()),
    };
    if is_hex {
        decode_hex(value)
    } else {
        decode_base32(value, encoding.is_some())
    }
}

fn split_prefix(text: &str) -> Option<(&'static str, &str)> {
    let (prefix, rest) = text.split_once(':')?;
    if prefix.eq_ignore_ascii_case("hex") {
        Some(("hex", rest))
    } else if prefix.eq_ignore_ascii_case("base32") {
        Some(("base32", rest))
    } else {
        None
    }
}

fn decode_hex(value: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    if let Some(position) = value.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(format!(
            "the hex secret has a character that is not 0-9 or a-f at position {} (spaces not counted)",
            position + 1
        ));
    }
    if !value.len().is_multiple_of(2) {
        return Err(format!(
            "the hex secret has an odd number of digits ({}): each byte is two digits",
            value.len()
        ));
    }
    hex::decode(value)
        .map(Zeroizing::new)
        .map_err(|_| "the secret is not valid hex".to_owned())
}

fn decode_base32(value: &str, explicit: bool) -> Result<Zeroizing<Vec<u8>>, String> {
    let normalised = Zeroizing::new(value.trim_end_matches('=').to_ascii_uppercase());
    let what = if explicit {
        "the secret is not valid base32 (RFC 4648)"
    } else {
        "the secret is neither hex (an even number of 0-9, a-f) nor base32 (RFC 4648)"
    };
    let hint = "prefix it with hex: or base32: to say which it is";
    if let Some(position) = normalised
        .bytes()
        .position(|b| !(b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)))
    {
        return Err(format!(
            "{what}: a character that is not A-Z or 2-7 at position {} (spaces not counted); {hint}",
            position + 1
        ));
    }
    BASE32_NOPAD
        .decode(normalised.as_bytes())
        .map(Zeroizing::new)
        .map_err(|error| {
            let detail = match error.kind {
                data_encoding::DecodeKind::Length => format!(
                    "{} characters is not a possible length of base32",
                    normalised.len()
                ),
                _ => "its last character has bits that are not zero".to_owned(),
            };
            format!("{what}: {detail}; {hint}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4226's test secret, "12345678901234567890", in hex and in base32.
    const SECRET_HEX: &str = "3132333435363738393031323334353637383930";
    const SECRET_BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    const SECRET: &[u8] = b"12345678901234567890";

    fn expect_tokens(text: &str) -> Vec<ImportedToken> {
        match parse_csv(text.as_bytes()) {
            Ok(tokens) => tokens,
            Err(problems) => panic!("expected tokens, got problems: {problems:#?}"),
        }
    }

    fn expect_problems(text: &str) -> Vec<(String, String)> {
        match parse_csv(text.as_bytes()) {
            Ok(tokens) => panic!("expected problems, got tokens: {tokens:#?}"),
            Err(problems) => problems
                .into_iter()
                .map(|p| (p.location, p.reason))
                .collect(),
        }
    }

    fn token(
        serial: &str,
        algorithm: Algorithm,
        digits: u8,
        kind: OathKind,
        counter: u64,
    ) -> ImportedToken {
        ImportedToken {
            serial: serial.into(),
            secret: Zeroizing::new(SECRET.to_vec()),
            params: OathParams {
                algorithm,
                digits,
                kind,
            },
            counter,
        }
    }

    #[test]
    fn a_csv_file_gives_its_tokens() {
        let text = format!(
            "Serial,Secret,Type,Digits,Period_or_counter,Algorithm\r\n\
             # exported from the vendor's tool\r\n\
             \r\n\
             HW-1,hex:{SECRET_HEX},totp,6,30,sha1\r\n\
             HW-2 , base32:{} , TOTP , 8 , 60 , SHA256\r\n\
             HW-3,{SECRET_BASE32},hotp,6,17\r\n\
             HW-4,{SECRET_HEX},hotp,8,,sha512\r\n\
             \"HW,5\",{SECRET_BASE32}====,totp,,,\r\n",
            SECRET_BASE32.to_lowercase()
        );
        assert_eq!(
            expect_tokens(&text),
            [
                token("HW-1", Algorithm::Sha1, 6, OathKind::Totp { period: 30 }, 0),
                token(
                    "HW-2",
                    Algorithm::Sha256,
                    8,
                    OathKind::Totp { period: 60 },
                    0
                ),
                token("HW-3", Algorithm::Sha1, 6, OathKind::Hotp, 17),
                token("HW-4", Algorithm::Sha512, 8, OathKind::Hotp, 0),
                token("HW,5", Algorithm::Sha1, 6, OathKind::Totp { period: 30 }, 0),
            ]
        );
    }

    #[test]
    fn a_file_without_a_header_starts_with_a_token() {
        let text = format!("HW-1,{SECRET_HEX},totp,6,30\n");
        assert_eq!(
            expect_tokens(&text),
            [token(
                "HW-1",
                Algorithm::Sha1,
                6,
                OathKind::Totp { period: 30 },
                0
            )]
        );
    }

    #[test]
    fn csv_rows_with_problems_are_all_reported() {
        let text = format!(
            "serial,secret,type,digits,period_or_counter,algorithm\n\
             GOOD-1,{SECRET_HEX},totp,6,30\n\
             BAD-TYPE,{SECRET_HEX},motp,6,30\n\
             # a comment does not count as a row, but it keeps its line\n\
             BAD-DIGITS,{SECRET_HEX},totp,7,30\n\
             BAD-PERIOD,{SECRET_HEX},totp,6,45\n\
             \n\
             BAD-COUNTER,{SECRET_HEX},hotp,6,-3\n\
             BAD-ALGORITHM,{SECRET_HEX},totp,6,30,md5\n\
             SHORT,hex:31323334353637383930,totp,6,30\n\
             NOT-BASE32,{SECRET_BASE32}!,totp,6,30\n\
             ODD-HEX,hex:{SECRET_HEX}1,totp,6,30\n\
             FEW-FIELDS,{SECRET_HEX},totp\n\
             ,{SECRET_HEX},totp,6,30\n\
             MANY-PROBLEMS,{SECRET_HEX},totp,9,90,sha3\n\
             GOOD-2,{SECRET_HEX},hotp,6,0\n"
        );
        let problems = expect_problems(&text);
        let expected = [
            ("row 3", "column 3 (type) must be totp or hotp"),
            ("row 5", "column 4 (digits) must be 6 or 8"),
            (
                "row 6",
                "column 5 (period_or_counter) must be a TOTP period of 30 or 60",
            ),
            (
                "row 8",
                "column 5 (period_or_counter) must be an HOTP counter",
            ),
            (
                "row 9",
                "column 6 (algorithm) must be sha1, sha256 or sha512",
            ),
            (
                "row 10",
                "the secret is 10 bytes (80 bits); RFC 4226 requires at least 128 bits",
            ),
            (
                "row 11",
                "the secret is neither hex (an even number of 0-9, a-f) nor base32 (RFC 4648): a character that is not A-Z or 2-7 at position 33",
            ),
            ("row 12", "the hex secret has an odd number of digits (41)"),
            ("row 13", "the row has 3 fields; it must have 5 or 6"),
            ("row 14", "the serial is empty"),
            ("row 15", "column 4 (digits)"),
            ("row 15", "column 5 (period_or_counter)"),
            ("row 15", "column 6 (algorithm)"),
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for ((location, reason), (want_location, want_reason)) in problems.iter().zip(expected) {
            assert_eq!(location, want_location, "{problems:#?}");
            assert!(
                reason.contains(want_reason),
                "{reason:?} should contain {want_reason:?}"
            );
        }
    }

    #[test]
    fn duplicate_serials_are_refused() {
        let text = format!(
            "A1,{SECRET_HEX},totp,6,30\n\
             B2,{SECRET_HEX},totp,6,30\n\
             A1 ,{SECRET_BASE32},hotp,6,0\n\
             A1,{SECRET_HEX},totp,6,30\n"
        );
        assert_eq!(
            expect_problems(&text),
            [
                (
                    "row 3".to_owned(),
                    "the serial (column 1) is also in row 1; a serial may appear only once in a file: remove or correct one of them".to_owned()
                ),
                (
                    "row 4".to_owned(),
                    "the serial (column 1) is also in row 1; a serial may appear only once in a file: remove or correct one of them".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn a_duplicate_serial_is_reported_with_the_rows_other_problems() {
        let text = format!("A1,{SECRET_HEX},totp,6,30\nA1,{SECRET_HEX},totp,7,30\n");
        let problems = expect_problems(&text);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(problems.iter().all(|(location, _)| location == "row 2"));
    }

    #[test]
    fn problems_never_quote_the_secret() {
        let secrets = [
            "hex:3132333435zz",
            "base32:GEZDGNBVGY3TQ0JQ",
            "GEZDGNBVGY3TQOJ",
            "3132333435363738",
            "hex:313233343536373839",
        ];
        for secret in secrets {
            let problems = expect_problems(&format!("HW-1,{secret},totp,6,30\n"));
            assert_eq!(problems.len(), 1, "{problems:#?}");
            let value = secret.split_once(':').map_or(secret, |(_, value)| value);
            assert!(!problems[0].1.contains(value), "{problems:#?}");
            assert!(!problems[0].1.contains(&value[..6]), "{problems:#?}");
        }
    }

    /// Every 8-character piece of the secret as written in the file, in any case.
    fn pieces_of_secrets() -> Vec<String> {
        let mut pieces = Vec::new();
        for secret in [SECRET_HEX, SECRET_BASE32] {
            for start in 0..=secret.len() - 8 {
                pieces.push(secret[start..start + 8].to_ascii_lowercase());
            }
        }
        pieces
    }

    #[test]
    fn a_secret_in_the_wrong_column_never_shows_in_a_problem() {
        let files = [
            // Columns in another order: type, serial, secret.
            format!("totp,HW-1,{SECRET_BASE32},6,30\n"),
            format!("HW-1,totp,{SECRET_HEX},6,30\n"),
            // A missing comma shifts the secret into the digits, period or counter column.
            format!("HW-1,totp,6,{SECRET_BASE32},30\n"),
            format!("HW-1,{SECRET_HEX},totp,6,{SECRET_BASE32}\n"),
            format!("HW-1,{SECRET_HEX},hotp,6,{SECRET_HEX}\n"),
            format!("HW-1,{SECRET_HEX},totp,6,30,{SECRET_BASE32}\n"),
            // The secret in the serial column, twice: the duplicate is named by its row.
            format!("{SECRET_BASE32},totp,hex,6,30\n{SECRET_BASE32},totp,hex,6,30\n"),
        ];
        for file in files {
            let problems = expect_problems(&file);
            assert!(!problems.is_empty(), "{file}");
            for (location, reason) in &problems {
                let shown = format!("{location}: {reason}").to_ascii_lowercase();
                for piece in pieces_of_secrets() {
                    assert!(
                        !shown.contains(&piece),
                        "{shown:?} quotes the secret of {file:?}"
                    );
                }
                assert!(location.starts_with("row "), "{location}");
            }
        }
    }

    #[test]
    fn secrets_are_read_as_hex_or_base32() {
        let read = |text: &str| parse_secret(text).map(|secret| secret.to_vec());
        assert_eq!(read(&format!("hex:{SECRET_HEX}")), Ok(SECRET.to_vec()));
        assert_eq!(
            read(&format!("HEX:{}", SECRET_HEX.to_uppercase())),
            Ok(SECRET.to_vec())
        );
        assert_eq!(read(SECRET_HEX), Ok(SECRET.to_vec()));
        assert_eq!(
            read("3132 3334 3536 3738 3930 3132 3334 3536 3738 3930"),
            Ok(SECRET.to_vec())
        );
        assert_eq!(
            read(&format!("base32:{SECRET_BASE32}")),
            Ok(SECRET.to_vec())
        );
        assert_eq!(
            read("gezd gnbv gy3t qojq gezd gnbv gy3t qojq"),
            Ok(SECRET.to_vec())
        );
        assert_eq!(read(&format!("{SECRET_BASE32}=====")), Ok(SECRET.to_vec()));
        // Hex digits only, but explicitly base32: "ABCDEFAB" is 5 bytes of base32.
        assert_eq!(read("base32:ABCDEFAB").map(|s| s.len()), Ok(5));
        // Hex digits only, odd length: read as base32.
        assert_eq!(read("ABCDEFA").map(|s| s.len()), Ok(4));
        assert!(read("").is_err());
        assert!(read("hex:").is_err());
        assert!(read("hex:GG").is_err());
        assert!(read("base32:A").is_err());
    }

    #[test]
    fn a_header_only_file_has_no_tokens() {
        let problems =
            expect_problems("serial,secret,type,digits,period_or_counter\n# nothing yet\n\n");
        assert_eq!(
            problems,
            [(
                "file".to_owned(),
                "the file contains no tokens: check that it is the right file".to_owned()
            )]
        );
    }

    #[test]
    fn text_that_is_not_utf8_is_refused_by_row() {
        let mut text = format!("HW-1,{SECRET_HEX},totp,6,30\n").into_bytes();
        text.extend_from_slice(b"HW-\xff,");
        text.extend_from_slice(SECRET_HEX.as_bytes());
        text.extend_from_slice(b",totp,6,30\n");
        let problems = parse_csv(&text).err().unwrap_or_default();
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].location, "row 2");
        assert!(problems[0].reason.contains("UTF-8"), "{problems:#?}");
    }

    #[test]
    fn a_csv_file_with_more_than_100000_rows_is_refused() {
        let text = "x\n".repeat(MAX_TOKENS + 1);
        let problems = expect_problems(&text);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].0, "file");
        assert!(
            problems[0].1.contains("more than 100000 rows"),
            "{problems:#?}"
        );
    }

    #[test]
    fn quoted_fields_are_read_as_in_rfc_4180() {
        let text = format!("\"HW \"\"7\"\"\" , \"{SECRET_HEX}\",totp,6,30\n");
        let tokens = expect_tokens(&text);
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].serial, "HW \"7\"");

        let text = format!("\"HW-1,{SECRET_HEX},totp,6,30\nHW-2,{SECRET_HEX},totp,6,30\n");
        let problems = expect_problems(&text);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].0, "row 1");
        assert!(
            problems[0].1.contains("quoted field is not closed"),
            "{problems:#?}"
        );
    }
}
