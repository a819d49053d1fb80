//! Fuzzing the token file readers: mutated PSKC files (the RFC 6030 figures and the files
//! python-pskc wrote) and CSV files, and random bytes. No input may panic or hang; what they
//! accept is a well-formed token; a CSV problem never quotes a cell that could be a secret.
//!
//! A short, repeatable pass runs with the test suite; `scripts/fuzz` runs a long one. See
//! `fuzzing/mod.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fuzzing;

use fuzzing::{Target, fuzz};
use twofold_engine::token_import::{
    ImportProblem, ImportedToken, MAX_SECRET_BYTES, MAX_SERIAL_CHARS, MIN_SECRET_BYTES, PskcKey,
    parse_csv, parse_file, parse_pskc,
};

const FIXTURES: &[(&str, &[u8])] = &[
    (
        "plain",
        include_bytes!("fixtures/pskc/plain.pskcxml").as_slice(),
    ),
    (
        "psk-aes128",
        include_bytes!("fixtures/pskc/psk-aes128.pskcxml").as_slice(),
    ),
    (
        "psk-aes128-bad-mac",
        include_bytes!("fixtures/pskc/psk-aes128-bad-mac.pskcxml").as_slice(),
    ),
    (
        "psk-aes256",
        include_bytes!("fixtures/pskc/psk-aes256.pskcxml").as_slice(),
    ),
    (
        "pbkdf2",
        include_bytes!("fixtures/pskc/pbkdf2.pskcxml").as_slice(),
    ),
    (
        "rfc6030-figure-2",
        include_bytes!("fixtures/pskc/rfc6030-figure-2.pskcxml").as_slice(),
    ),
    (
        "rfc6030-figure-6",
        include_bytes!("fixtures/pskc/rfc6030-figure-6.pskcxml").as_slice(),
    ),
    (
        "rfc6030-figure-7",
        include_bytes!("fixtures/pskc/rfc6030-figure-7.pskcxml").as_slice(),
    ),
];

/// Every key the fixtures were made with: each input is read with each.
fn keys() -> Vec<Option<PskcKey>> {
    vec![
        None,
        // generate.py's keys and password.
        Some(PskcKey::PreShared((0u8..16).collect())),
        Some(PskcKey::PreShared((0u8..32).collect())),
        Some(PskcKey::Password("Twofold fixture passphrase".into())),
        // RFC 6030 figure 6's key and figure 7's password.
        Some(PskcKey::PreShared(vec![
            0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78,
            0x90, 0x12,
        ])),
        Some(PskcKey::Password("qwerty".into())),
    ]
}

fn pskc_tokens() -> Vec<Vec<u8>> {
    [
        "<",
        "</",
        ">",
        "/>",
        "\"",
        "'",
        "=",
        "&amp;",
        "&lt;",
        "&#0;",
        "&#x110000;",
        "&unknown;",
        "<![CDATA[",
        "]]>",
        "<!--",
        "-->",
        "<?xml version=\"1.0\"?>",
        "<!DOCTYPE x [<!ENTITY a \"aaaa\">]>",
        "xmlns=\"urn:ietf:params:xml:ns:keyprov:pskc\"",
        "xmlns:pskc=",
        "pskc:",
        "<KeyPackage>",
        "</KeyPackage>",
        "<Key Id=\"1\" Algorithm=\"urn:ietf:params:xml:ns:keyprov:pskc:totp\">",
        "<Secret><PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue></Secret>",
        "<EncryptedValue>",
        "<IterationCount>",
        "<ResponseFormat Length=\"8\" Encoding=\"DECIMAL\"/>",
        "<Counter><PlainValue>",
        "<TimeInterval>",
        "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
        "4294967296",
        "18446744073709551616",
        "-1",
        "0",
        "99999999999999999999",
        "====",
        "\u{feff}",
        "\u{202e}",
        "\r\n",
        "\0",
        "\u{ff}",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .chain([vec![0xff], vec![0xc3], vec![0xed, 0xa0, 0x80]])
    .collect()
}

/// What every accepted token satisfies.
fn check_tokens(tokens: &[ImportedToken]) -> Result<(), String> {
    if tokens.is_empty() {
        return Err("a file was accepted with no tokens".into());
    }
    for token in tokens {
        let serial_chars = token.serial.chars().count();
        if serial_chars == 0 || serial_chars > MAX_SERIAL_CHARS {
            return Err(format!(
                "a serial of {serial_chars} characters was accepted"
            ));
        }
        if token.serial.chars().any(char::is_control) {
            return Err(format!(
                "the serial {:?} holds control characters",
                token.serial
            ));
        }
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&token.secret.len()) {
            return Err(format!(
                "a secret of {} bytes was accepted",
                token.secret.len()
            ));
        }
        if ![6, 8].contains(&token.params.digits) {
            return Err(format!("{} digits were accepted", token.params.digits));
        }
    }
    Ok(())
}

fn check_problems(problems: &[ImportProblem]) -> Result<(), String> {
    if problems.is_empty() {
        return Err("a file was refused without a problem".into());
    }
    if problems
        .iter()
        .any(|p| p.location.is_empty() || p.reason.is_empty())
    {
        return Err(format!(
            "a problem without a location or a reason: {problems:?}"
        ));
    }
    Ok(())
}

fn check_result(result: &Result<Vec<ImportedToken>, Vec<ImportProblem>>) -> Result<(), String> {
    match result {
        Ok(tokens) => check_tokens(tokens),
        Err(problems) => check_problems(problems),
    }
}

#[test]
fn mutated_pskc_files_never_panic_or_hang() {
    let keys = keys();
    let target = Target {
        name: "pskc",
        seeds: FIXTURES.iter().map(|(_, bytes)| bytes.to_vec()).collect(),
        tokens: pskc_tokens(),
        cases: 300,
    };
    fuzz(target, |bytes| {
        for key in &keys {
            check_result(&parse_pskc(bytes, key.as_ref()))?;
        }
        check_result(&parse_file("upload", bytes, None))
    });
}

/// RFC 4226's secret, as hex and as base32.
const SECRET_HEX: &str = "3132333435363738393031323334353637383930";
const SECRET_BASE32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn csv_seeds() -> Vec<Vec<u8>> {
    [
        format!(
            "serial,secret,type,digits,period_or_counter,algorithm\r\n\
             # exported from the vendor's tool\r\n\
             \r\n\
             HW-1,hex:{SECRET_HEX},totp,6,30,sha1\r\n\
             HW-2 , base32:{SECRET_BASE32} , TOTP , 8 , 60 , SHA256\r\n\
             HW-3,{SECRET_BASE32},hotp,6,17\r\n\
             HW-4,{SECRET_HEX},hotp,8,,sha512\r\n\
             \"HW,5\",{SECRET_BASE32}====,totp,,,\r\n"
        ),
        format!("HW-1,{SECRET_HEX},totp,6,30\n"),
        format!("\u{feff}\"HW \"\"7\"\"\" , \"{SECRET_HEX}\",totp,6,30\nA2,{SECRET_BASE32},hotp,8,18446744073709551615,HMAC-SHA512\n"),
    ]
    .into_iter()
    .map(String::into_bytes)
    .collect()
}

fn csv_tokens() -> Vec<Vec<u8>> {
    [
        ",",
        "\"",
        "\"\"",
        "\n",
        "\r\n",
        "\r",
        "#",
        "hex:",
        "base32:",
        "HEX:",
        "totp",
        "hotp",
        "sha256",
        "hmac-sha512",
        "=",
        "==",
        " ",
        "\t",
        "serial",
        "\u{feff}",
        "\u{202e}",
        "\0",
        "-1",
        "18446744073709551616",
        "99999999999999999999",
    ]
    .iter()
    .map(|t| t.as_bytes().to_vec())
    .chain([vec![0xff], vec![0xc3], vec![0xed, 0xa0, 0x80]])
    .chain([
        SECRET_HEX.as_bytes().to_vec(),
        SECRET_BASE32.as_bytes().to_vec(),
    ])
    .collect()
}

/// Runs of 16 or more letters and digits in a CSV file's cells: anything that could be a
/// secret (a 128-bit secret is 26 base32 or 32 hex digits; no word of a problem is that
/// long).
fn secret_like_runs(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|run| run.len() >= 16)
        .map(|run| run[..16].to_ascii_lowercase())
        .collect()
}

#[test]
fn mutated_csv_files_never_panic_hang_or_quote_a_secret() {
    let target = Target {
        name: "csv",
        seeds: csv_seeds(),
        tokens: csv_tokens(),
        cases: 2000,
    };
    fuzz(target, |bytes| {
        let result = parse_csv(bytes);
        check_result(&result)?;
        if let Err(problems) = &result {
            let runs = secret_like_runs(bytes);
            for problem in problems {
                let shown =
                    format!("{}: {}", problem.location, problem.reason).to_ascii_lowercase();
                if let Some(run) = runs.iter().find(|run| shown.contains(run.as_str())) {
                    return Err(format!(
                        "the problem {shown:?} quotes {run:?} from the file"
                    ));
                }
            }
        }
        check_result(&parse_file("tokens.csv", bytes, None))
    });
}
