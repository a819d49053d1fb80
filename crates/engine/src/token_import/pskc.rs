//! PSKC (RFC 6030): plain secrets, secrets encrypted with a pre-shared key or a key derived
//! from a password by PBKDF2 (AES-CBC with an HMAC over each value), HOTP and TOTP keys.
//!
//! The XML is read into a small tree (elements matched by local name, so any namespace prefix
//! works) and each `KeyPackage` is checked on its own, so that every problem is reported.

use std::fmt;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockCipher, BlockDecryptMut, KeyInit, KeyIvInit};
use hmac::{Hmac, Mac};
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;
use zeroize::{Zeroize, Zeroizing};

use super::{
    Entry, ImportProblem, ImportedToken, MAX_TOKENS, check_counter, check_digits, check_file_size,
    check_period, check_secret_length, check_serial, clip, finish, hash_by_name, strip_bom,
    too_many_tokens,
};
use crate::oath::{Algorithm, OathKind, OathParams};

/// What unlocks the encrypted values of a PSKC file.
#[derive(Clone)]
pub enum PskcKey {
    /// The key itself (`EncryptionKey/ds:KeyName` names it), shared with the vendor.
    PreShared(Vec<u8>),
    /// A password from which the key is derived (`EncryptionKey/DerivedKey`, PBKDF2).
    Password(String),
}

impl fmt::Debug for PskcKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PskcKey::PreShared(key) => write!(f, "PreShared([{} bytes, redacted])", key.len()),
            PskcKey::Password(_) => f.write_str("Password([redacted])"),
        }
    }
}

impl Drop for PskcKey {
    fn drop(&mut self) {
        match self {
            PskcKey::PreShared(key) => key.zeroize(),
            PskcKey::Password(password) => password.zeroize(),
        }
    }
}

/// Deeper than any PSKC document (a signed one nests about ten levels).
const MAX_DEPTH: usize = 64;
/// Far more than a 16 MiB file of real key packages holds (about 50 bytes per element).
const MAX_ELEMENTS: usize = 1_000_000;
/// PBKDF2 iterations beyond this are refused rather than computed for minutes.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// Base64 as PSKC files write it: whitespace anywhere, padding usually present.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads a PSKC file. `key` is needed only when the file's secrets are encrypted.
pub fn parse_pskc(
    xml: &[u8],
    key: Option<&PskcKey>,
) -> Result<Vec<ImportedToken>, Vec<ImportProblem>> {
    check_file_size(xml).map_err(|problem| vec![problem])?;
    let xml = strip_bom(xml);
    let root = parse_tree(xml).map_err(|problem| vec![problem])?;
    if root.name != "KeyContainer" {
        return Err(vec![ImportProblem::file(format!(
            "the XML's root element is <{}>, not <KeyContainer>: this is not a PSKC (RFC 6030) file",
            clip(&root.name)
        ))]);
    }
    let packages: Vec<&Element> = root.children("KeyPackage").collect();
    if packages.len() > MAX_TOKENS {
        return Err(vec![too_many_tokens(&format!(
            "{} KeyPackage elements",
            packages.len()
        ))]);
    }
    let mut file_problems = Vec::new();
    if packages.is_empty() && root.child("Device").is_some() {
        file_problems.push(ImportProblem::file(
            "the file uses <Device> elements from a draft before RFC 6030: export it again as RFC 6030 PSKC (with <KeyPackage> elements)",
        ));
    }
    let crypto = Crypto::set_up(&root, key, &mut file_problems);
    let entries = packages
        .iter()
        .enumerate()
        .map(|(index, package)| read_package(index + 1, package, &crypto))
        .collect();
    finish(file_problems, entries, |serial, first| {
        format!(
            "serial {serial} is also in {first}; a serial may appear only once in a file: remove or correct one of them"
        )
    })
}

// ---------------------------------------------------------------------------------------------
// The XML tree.

#[derive(Debug)]
struct Element {
    /// Local name, without its namespace prefix.
    name: String,
    /// Local names and unescaped values.
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    /// Text and CDATA directly inside the element, unescaped.
    text: String,
    /// Byte offset of the start tag in the file.
    offset: usize,
}

/// Text holds the base64 of plain secrets: clear it when the tree goes.
impl Drop for Element {
    fn drop(&mut self) {
        self.text.zeroize();
    }
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |child| child.name == name)
    }

    fn path(&self, names: &[&str]) -> Option<&Element> {
        names
            .iter()
            .try_fold(self, |element, name| element.child(name))
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn trimmed_text(&self) -> &str {
        self.text.trim()
    }

    fn has_descendant(&self, name: &str) -> bool {
        // The tree is at most MAX_DEPTH deep, so the recursion is bounded.
        self.children
            .iter()
            .any(|child| child.name == name || child.has_descendant(name))
    }
}

fn parse_tree(xml: &[u8]) -> Result<Element, ImportProblem> {
    let mut reader = Reader::from_reader(xml);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut elements = 0usize;
    loop {
        let offset = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader.read_event().map_err(|error| {
            let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX);
            xml_problem(xml, at, &malformed(&error))
        })?;
        match event {
            Event::Start(start) => {
                elements += 1;
                let element = new_element(&start, xml, offset, elements)?;
                if stack.len() >= MAX_DEPTH {
                    return Err(xml_problem(
                        xml,
                        offset,
                        &format!(
                            "the XML nests more than {MAX_DEPTH} elements deep: this is not a PSKC file"
                        ),
                    ));
                }
                stack.push(element);
            }
            Event::Empty(start) => {
                elements += 1;
                let element = new_element(&start, xml, offset, elements)?;
                attach(&mut stack, &mut root, element, xml)?;
            }
            Event::End(_) => {
                // quick-xml checks that end tags match their start tags.
                if let Some(element) = stack.pop() {
                    attach(&mut stack, &mut root, element, xml)?;
                }
            }
            Event::Text(text) => {
                let text = text
                    .unescape()
                    .map_err(|error| xml_problem(xml, offset, &malformed(&error)))?;
                append_text(&mut stack, root.is_some(), &text, xml, offset)?;
            }
            Event::CData(data) => {
                let text = std::str::from_utf8(&data)
                    .map_err(|_| xml_problem(xml, offset, "the XML is not valid UTF-8 text"))?;
                append_text(&mut stack, root.is_some(), text, xml, offset)?;
            }
            Event::Eof => break,
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
    if let Some(open) = stack.last() {
        let (line, column) = line_column(xml, open.offset);
        return Err(xml_problem(
            xml,
            xml.len(),
            &format!(
                "the file ends before <{}> (opened at line {line}, column {column}) is closed: the file is truncated; export or copy it again",
                clip(&open.name)
            ),
        ));
    }
    root.ok_or_else(|| {
        ImportProblem::file("the file has no XML element: this is not a PSKC (RFC 6030) file")
    })
}

fn new_element(
    start: &BytesStart<'_>,
    xml: &[u8],
    offset: usize,
    count: usize,
) -> Result<Element, ImportProblem> {
    if count > MAX_ELEMENTS {
        return Err(ImportProblem::file(format!(
            "the XML has more than {MAX_ELEMENTS} elements: split the file into smaller files"
        )));
    }
    let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|error| xml_problem(xml, offset, &malformed(&error)))?;
        let key = String::from_utf8_lossy(attribute.key.local_name().as_ref()).into_owned();
        let value = attribute
            .unescape_value()
            .map_err(|error| xml_problem(xml, offset, &malformed(&error)))?;
        attributes.push((key, value.into_owned()));
    }
    Ok(Element {
        name,
        attributes,
        children: Vec::new(),
        text: String::new(),
        offset,
    })
}

fn attach(
    stack: &mut [Element],
    root: &mut Option<Element>,
    element: Element,
    xml: &[u8],
) -> Result<(), ImportProblem> {
    if let Some(parent) = stack.last_mut() {
        parent.children.push(element);
    } else if root.is_none() {
        *root = Some(element);
    } else {
        return Err(xml_problem(
            xml,
            element.offset,
            "the XML has a second root element after </KeyContainer>: the file is damaged",
        ));
    }
    Ok(())
}

fn append_text(
    stack: &mut [Element],
    after_root: bool,
    text: &str,
    xml: &[u8],
    offset: usize,
) -> Result<(), ImportProblem> {
    match stack.last_mut() {
        Some(element) => element.text.push_str(text),
        None if text.trim().is_empty() => {}
        None if after_root => {
            return Err(xml_problem(
                xml,
                offset,
                "the file has text after the XML's root element: the file is damaged",
            ));
        }
        None => {
            return Err(xml_problem(
                xml,
                offset,
                "the file is not XML: a PSKC file starts with <?xml or <KeyContainer",
            ));
        }
    }
    Ok(())
}

fn malformed(error: &dyn fmt::Display) -> String {
    format!(
        "the XML is malformed ({error}): the file is truncated or damaged; export or copy it again"
    )
}

fn xml_problem(xml: &[u8], offset: usize, reason: &str) -> ImportProblem {
    let (line, column) = line_column(xml, offset);
    ImportProblem::new(format!("line {line}, column {column}"), reason)
}

/// 1-based line and column (in bytes) of a byte offset.
fn line_column(xml: &[u8], offset: usize) -> (usize, usize) {
    let before = xml.get(..offset).unwrap_or(xml);
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |newline| newline + 1);
    (line, before.len() - line_start + 1)
}

// ---------------------------------------------------------------------------------------------
// Encryption and MACs.

/// AES-CBC with a key of 16, 24 or 32 bytes (`xmlenc#aes128-cbc`, `#aes192-cbc`, `#aes256-cbc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cipher {
    key_len: usize,
}

impl Cipher {
    fn from_uri(uri: &str) -> Option<Self> {
        let name = uri.trim().rsplit('#').next().unwrap_or_default();
        let key_len = match name {
            "aes128-cbc" => 16,
            "aes192-cbc" => 24,
            "aes256-cbc" => 32,
            _ => return None,
        };
        Some(Cipher { key_len })
    }

    fn name(self) -> String {
        format!("aes{}-cbc", self.key_len * 8)
    }

    fn key_len(self) -> usize {
        self.key_len
    }

    /// `data` is the IV (one block) followed by the ciphertext, PKCS#7-padded.
    /// `wrong` names what was given: "key" or "password".
    fn decrypt(self, key: &[u8], data: &[u8], wrong: &str) -> Result<Zeroizing<Vec<u8>>, String> {
        if key.len() != self.key_len {
            return Err(format!(
                "the key is {} bytes, but {} needs a {}-byte key: check the key",
                key.len(),
                self.name(),
                self.key_len
            ));
        }
        const BLOCK: usize = 16;
        if data.len() < 2 * BLOCK || !data.len().is_multiple_of(BLOCK) {
            return Err(format!(
                "the CipherValue is {} bytes; {} needs a 16-byte IV and whole 16-byte blocks: the file is damaged",
                data.len(),
                self.name()
            ));
        }
        let (iv, ciphertext) = data.split_at(BLOCK);
        let plaintext = match self.key_len {
            16 => cbc_decrypt::<aes::Aes128>(key, iv, ciphertext),
            24 => cbc_decrypt::<aes::Aes192>(key, iv, ciphertext),
            _ => cbc_decrypt::<aes::Aes256>(key, iv, ciphertext),
        };
        plaintext.ok_or_else(|| {
            format!(
                "the value does not decrypt (its padding is wrong): the {wrong} is wrong or the file is damaged"
            )
        })
    }
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], ciphertext: &[u8]) -> Option<Zeroizing<Vec<u8>>>
where
    C: BlockDecryptMut + BlockCipher + KeyInit,
{
    let decryptor = cbc::Decryptor::<C>::new_from_slices(key, iv).ok()?;
    decryptor
        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
        .ok()
        .map(Zeroizing::new)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HmacHash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl HmacHash {
    /// `http://www.w3.org/2000/09/xmldsig#hmac-sha1`, `…xmldsig-more#hmac-sha256`, …
    fn from_uri(uri: &str) -> Option<Self> {
        let uri = uri.trim().to_ascii_lowercase();
        let name = uri.rsplit(['#', ':', '/']).next().unwrap_or_default();
        match name {
            "hmac-sha1" => Some(HmacHash::Sha1),
            "hmac-sha256" => Some(HmacHash::Sha256),
            "hmac-sha384" => Some(HmacHash::Sha384),
            "hmac-sha512" => Some(HmacHash::Sha512),
            _ => None,
        }
    }

    /// Checks an HMAC in constant time.
    fn verify(self, key: &[u8], data: &[u8], tag: &[u8]) -> bool {
        fn check<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8], tag: &[u8]) -> bool {
            match <M as hmac::digest::KeyInit>::new_from_slice(key) {
                Ok(mut mac) => {
                    mac.update(data);
                    mac.verify_slice(tag).is_ok()
                }
                Err(_) => false,
            }
        }
        match self {
            HmacHash::Sha1 => check::<Hmac<sha1::Sha1>>(key, data, tag),
            HmacHash::Sha256 => check::<Hmac<sha2::Sha256>>(key, data, tag),
            HmacHash::Sha384 => check::<Hmac<sha2::Sha384>>(key, data, tag),
            HmacHash::Sha512 => check::<Hmac<sha2::Sha512>>(key, data, tag),
        }
    }

    fn pbkdf2(self, password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
        match self {
            HmacHash::Sha1 => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, rounds, out),
            HmacHash::Sha256 => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, rounds, out),
            HmacHash::Sha384 => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(password, salt, rounds, out),
            HmacHash::Sha512 => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, rounds, out),
        }
    }
}

/// The keys that open the file's encrypted values.
struct Keys {
    /// "key" or "password", for problems.
    given: &'static str,
    encryption: Zeroizing<Vec<u8>>,
    mac_hash: HmacHash,
    mac_key: Zeroizing<Vec<u8>>,
}

enum Crypto {
    /// Nothing in the file is encrypted.
    NotNeeded,
    /// Encrypted, but the values cannot be opened; the reason is a file-level problem already.
    Unavailable,
    Ready(Keys),
}

/// How the file says its encryption key is obtained.
enum KeySource<'a> {
    PreShared {
        name: Option<&'a str>,
    },
    Password {
        derived_key: &'a Element,
        name: Option<&'a str>,
    },
}

impl KeySource<'_> {
    fn describe(&self) -> String {
        match self {
            KeySource::PreShared { name: Some(name) } => {
                format!("the pre-shared key named '{}'", clip(name))
            }
            KeySource::PreShared { name: None } => "its pre-shared key".to_owned(),
            KeySource::Password {
                name: Some(name), ..
            } => {
                format!("a password (PBKDF2; the file calls it '{}')", clip(name))
            }
            KeySource::Password { name: None, .. } => "a password (PBKDF2)".to_owned(),
        }
    }
}

impl Crypto {
    fn set_up(root: &Element, key: Option<&PskcKey>, problems: &mut Vec<ImportProblem>) -> Crypto {
        let needed = root
            .children("KeyPackage")
            .any(|package| package.has_descendant("EncryptedValue"));
        if !needed {
            return Crypto::NotNeeded;
        }
        match Self::open(root, key) {
            Ok(keys) => Crypto::Ready(keys),
            Err(problem) => {
                problems.push(problem);
                Crypto::Unavailable
            }
        }
    }

    fn open(root: &Element, key: Option<&PskcKey>) -> Result<Keys, ImportProblem> {
        let source = key_source(root)?;
        let Some(key) = key else {
            return Err(ImportProblem::new(
                "EncryptionKey",
                format!(
                    "the secrets in this file are encrypted: give {} to import it",
                    source.describe()
                ),
            ));
        };
        let given = match key {
            PskcKey::PreShared(_) => "key",
            PskcKey::Password(_) => "password",
        };
        let encryption = match (&source, key) {
            (KeySource::PreShared { .. }, PskcKey::PreShared(key)) => Zeroizing::new(key.clone()),
            (KeySource::Password { derived_key, .. }, PskcKey::Password(password)) => {
                derive_key(root, derived_key, password)?
            }
            (KeySource::PreShared { .. }, PskcKey::Password(_)) => {
                return Err(ImportProblem::new(
                    "EncryptionKey",
                    format!(
                        "the file is encrypted with a pre-shared key, not a password: give {}",
                        source.describe()
                    ),
                ));
            }
            (KeySource::Password { .. }, PskcKey::PreShared(_)) => {
                return Err(ImportProblem::new(
                    "EncryptionKey",
                    format!(
                        "the file is protected by a password, not a pre-shared key: give {}",
                        source.describe()
                    ),
                ));
            }
        };

        // RFC 6030 section 6.1.1: with a cipher without integrity (AES-CBC), each value
        // carries a ValueMAC and the container names the MAC algorithm.
        let Some(mac_method) = root.child("MACMethod") else {
            return Err(ImportProblem::new(
                "MACMethod",
                "the file is encrypted with AES-CBC but has no MACMethod, so a damaged file or a wrong key cannot be detected (RFC 6030 section 6.1.1 requires one): ask the vendor for a file with a MAC",
            ));
        };
        let algorithm = mac_method.attribute("Algorithm").unwrap_or_default();
        let mac_hash = HmacHash::from_uri(algorithm).ok_or_else(|| {
            ImportProblem::new(
                "MACMethod",
                format!(
                    "the MAC algorithm '{}' is not supported: use hmac-sha1 (or hmac-sha256, hmac-sha384, hmac-sha512)",
                    clip(algorithm)
                ),
            )
        })?;
        let mac_key = match mac_method.child("MACKey") {
            Some(mac_key) => {
                decrypt_unauthenticated(mac_key, &encryption, given).map_err(|reason| {
                    ImportProblem::new(
                        "MACMethod/MACKey",
                        format!("the MAC key cannot be read: {reason}"),
                    )
                })?
            }
            // Older files MAC with the encryption key itself (as python-pskc reads them).
            None => encryption.clone(),
        };
        Ok(Keys {
            given,
            encryption,
            mac_hash,
            mac_key,
        })
    }
}

fn key_source(root: &Element) -> Result<KeySource<'_>, ImportProblem> {
    let Some(encryption_key) = root.child("EncryptionKey") else {
        return Ok(KeySource::PreShared { name: None });
    };
    if let Some(derived_key) = encryption_key.child("DerivedKey") {
        let name = derived_key
            .child("MasterKeyName")
            .map(Element::trimmed_text)
            .filter(|name| !name.is_empty());
        return Ok(KeySource::Password { derived_key, name });
    }
    if let Some(name) = encryption_key.child("KeyName") {
        let name = Some(name.trimmed_text()).filter(|name| !name.is_empty());
        return Ok(KeySource::PreShared { name });
    }
    match encryption_key.children.first() {
        Some(other) => Err(ImportProblem::new(
            "EncryptionKey",
            format!(
                "the file's key is given as <{}>, which Twofold does not support (a public-key transport such as X509Data): ask the vendor for a file protected by a pre-shared key or a password",
                clip(&other.name)
            ),
        )),
        None => Ok(KeySource::PreShared { name: None }),
    }
}

fn derive_key(
    root: &Element,
    derived_key: &Element,
    password: &str,
) -> Result<Zeroizing<Vec<u8>>, ImportProblem> {
    let problem = |reason: String| ImportProblem::new("EncryptionKey/DerivedKey", reason);
    let method = derived_key.child("KeyDerivationMethod").ok_or_else(|| {
        problem("the DerivedKey has no KeyDerivationMethod: the file is incomplete".into())
    })?;
    let algorithm = method.attribute("Algorithm").unwrap_or_default();
    if !algorithm.trim().ends_with("#pbkdf2") {
        return Err(problem(format!(
            "the key derivation '{}' is not supported: only PBKDF2 is",
            clip(algorithm)
        )));
    }
    let params = method.child("PBKDF2-params").ok_or_else(|| {
        problem("the KeyDerivationMethod has no PBKDF2-params: the file is incomplete".into())
    })?;
    let salt = params.path(&["Salt", "Specified"]).ok_or_else(|| {
        problem("the PBKDF2-params have no Salt/Specified value: the file is incomplete".into())
    })?;
    let salt = decode_base64(salt.trimmed_text())
        .map_err(|_| problem("the PBKDF2 salt is not valid base64: the file is damaged".into()))?;
    let iterations_text = params
        .child("IterationCount")
        .map(Element::trimmed_text)
        .unwrap_or_default();
    let iterations = iterations_text
        .parse::<u32>()
        .ok()
        .filter(|&n| (1..=MAX_PBKDF2_ITERATIONS).contains(&n))
        .ok_or_else(|| {
            problem(format!(
                "the PBKDF2 IterationCount is '{}'; it must be a whole number from 1 to {MAX_PBKDF2_ITERATIONS}",
                clip(iterations_text)
            ))
        })?;
    let key_len = match params.child("KeyLength").map(Element::trimmed_text) {
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| [16, 24, 32].contains(n))
            .ok_or_else(|| {
                problem(format!(
                    "the PBKDF2 KeyLength is '{}'; it must be 16, 24 or 32 (bytes, for AES)",
                    clip(text)
                ))
            })?,
        // Not given: the length of the cipher the file uses.
        None => first_cipher(root).map_or(16, Cipher::key_len),
    };
    let prf = params
        .child("PRF")
        .map(|prf| prf.attribute("Algorithm").unwrap_or(prf.trimmed_text()))
        .filter(|prf| !prf.trim().is_empty());
    let hash = match prf {
        None => HmacHash::Sha1,
        Some(prf) => HmacHash::from_uri(prf).ok_or_else(|| {
            problem(format!(
                "the PBKDF2 PRF '{}' is not supported: use hmac-sha1, hmac-sha256, hmac-sha384 or hmac-sha512",
                clip(prf)
            ))
        })?,
    };
    let mut key = Zeroizing::new(vec![0u8; key_len]);
    hash.pbkdf2(password.as_bytes(), &salt, iterations, &mut key);
    Ok(key)
}

fn first_cipher(element: &Element) -> Option<Cipher> {
    if element.name == "EncryptionMethod" {
        return element.attribute("Algorithm").and_then(Cipher::from_uri);
    }
    element.children.iter().find_map(first_cipher)
}

fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    BASE64.decode(compact)
}

/// The cipher and the IV-and-ciphertext of an `EncryptedValue` or a `MACKey`.
fn encrypted_parts(encrypted: &Element) -> Result<(Cipher, Vec<u8>), String> {
    let method = encrypted
        .child("EncryptionMethod")
        .ok_or("it has no EncryptionMethod: the file is incomplete")?;
    let algorithm = method.attribute("Algorithm").unwrap_or_default();
    let cipher = Cipher::from_uri(algorithm).ok_or_else(|| {
        format!(
            "its encryption '{}' is not supported: use aes128-cbc (or aes192-cbc, aes256-cbc)",
            clip(algorithm)
        )
    })?;
    let value = encrypted
        .path(&["CipherData", "CipherValue"])
        .ok_or("it has no CipherData/CipherValue: the file is incomplete")?;
    let data = decode_base64(value.trimmed_text())
        .map_err(|_| "its CipherValue is not valid base64: the file is damaged".to_owned())?;
    Ok((cipher, data))
}

fn decrypt_unauthenticated(
    encrypted: &Element,
    key: &[u8],
    given: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let (cipher, data) = encrypted_parts(encrypted)?;
    cipher.decrypt(key, &data, given)
}

/// Decrypts the `EncryptedValue` of a data field (`Secret`, `Counter`, …), whose `ValueMAC`
/// must match.
fn decrypt_value(
    keys: &Keys,
    field: &Element,
    encrypted: &Element,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let (cipher, data) = encrypted_parts(encrypted)?;
    let mac = field
        .child("ValueMAC")
        .ok_or("it has no ValueMAC, so its integrity cannot be checked: the file is incomplete")?;
    let mac = decode_base64(mac.trimmed_text())
        .map_err(|_| "its ValueMAC is not valid base64: the file is damaged".to_owned())?;
    // RFC 6030: the MAC is over the CipherValue, IV included.
    if keys.mac_hash.verify(&keys.mac_key, &data, &mac) {
        return cipher.decrypt(&keys.encryption, &data, keys.given);
    }
    // Drafts before RFC 6030 put the MAC over the plaintext; python-pskc accepts both.
    if let Ok(plaintext) = cipher.decrypt(&keys.encryption, &data, keys.given)
        && keys.mac_hash.verify(&keys.mac_key, &plaintext, &mac)
    {
        return Ok(plaintext);
    }
    Err(format!(
        "the MAC does not match: the file is damaged or the {} is wrong",
        keys.given
    ))
}

// ---------------------------------------------------------------------------------------------
// Key packages.

fn read_package(index: usize, package: &Element, crypto: &Crypto) -> Entry {
    let mut problems = Vec::new();
    let serial = match package.path(&["DeviceInfo", "SerialNo"]) {
        Some(serial) => match check_serial(&serial.text) {
            Ok(serial) => Some(serial),
            Err(reason) => {
                problems.push(format!("DeviceInfo/SerialNo: {reason}"));
                None
            }
        },
        None => {
            problems.push(
                "it has no DeviceInfo/SerialNo; Twofold associates hardware tokens by serial: add the serial printed on the token"
                    .to_owned(),
            );
            None
        }
    };
    let location = match &serial {
        Some(serial) => format!("KeyPackage {index} (serial {serial})"),
        None => format!("KeyPackage {index}"),
    };
    let token = match package.children("Key").count() {
        1 => package
            .child("Key")
            .and_then(|key| read_key(key, crypto, &mut problems)),
        0 => {
            problems.push("it has no Key: the file is incomplete".to_owned());
            None
        }
        n => {
            problems.push(format!(
                "it has {n} Key elements; Twofold imports one token per serial: put each key in its own KeyPackage with its own serial"
            ));
            None
        }
    };
    let token = match (token, &serial) {
        (Some((secret, params, counter)), Some(serial)) if problems.is_empty() => {
            Some(ImportedToken {
                serial: serial.clone(),
                secret,
                params,
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

type KeyParts = (Zeroizing<Vec<u8>>, OathParams, u64);

fn read_key(key: &Element, crypto: &Crypto, problems: &mut Vec<String>) -> Option<KeyParts> {
    let before = problems.len();

    let algorithm = key.attribute("Algorithm").unwrap_or_default();
    let is_hotp = match otp_kind(algorithm) {
        Some(is_hotp) => Some(is_hotp),
        None => {
            problems.push(if algorithm.trim().is_empty() {
                "Key has no Algorithm: it must be urn:ietf:params:xml:ns:keyprov:pskc:hotp or …:totp".to_owned()
            } else {
                format!(
                    "Key Algorithm '{}' is not supported: Twofold imports HOTP and TOTP tokens only",
                    clip(algorithm)
                )
            });
            None
        }
    };

    let parameters = key.child("AlgorithmParameters");
    let hash = match parameters
        .and_then(|p| p.child("Suite"))
        .map(Element::trimmed_text)
    {
        None | Some("") => Some(Algorithm::Sha1),
        Some(suite) => {
            let hash = hash_by_name(suite);
            if hash.is_none() {
                problems.push(format!(
                    "AlgorithmParameters/Suite '{}' is not supported: it must be HMAC-SHA1, HMAC-SHA256 or HMAC-SHA512",
                    clip(suite)
                ));
            }
            hash
        }
    };
    let digits = read_response_format(parameters.and_then(|p| p.child("ResponseFormat")), problems);

    let data = key.child("Data");
    let secret = match data.and_then(|data| data.child("Secret")) {
        Some(field) => read_secret(field, crypto, problems),
        None => {
            problems.push("Key has no Data/Secret: the file is incomplete".to_owned());
            None
        }
    };
    let field = |name: &str| data.and_then(|data| data.child(name));
    let kind =
        match is_hotp {
            Some(true) => Some(OathKind::Hotp),
            Some(false) => match field("TimeInterval") {
                None => Some(OathKind::Totp { period: 30 }),
                Some(interval) => read_field_text(interval, "TimeInterval", crypto, problems)
                    .and_then(|text| match check_period(&text) {
                        Ok(period) => Some(OathKind::Totp { period }),
                        Err(reason) => {
                            problems.push(format!("Data/TimeInterval: {reason}"));
                            None
                        }
                    }),
            },
            None => None,
        };
    let counter = match (is_hotp, field("Counter")) {
        (Some(true), Some(counter)) => read_field_text(counter, "Counter", crypto, problems)
            .and_then(|text| match check_counter(&text) {
                Ok(counter) => Some(counter),
                Err(reason) => {
                    problems.push(format!("Data/Counter: {reason}"));
                    None
                }
            }),
        _ => Some(0),
    };

    if problems.len() > before {
        return None;
    }
    Some((
        secret?,
        OathParams {
            algorithm: hash?,
            digits: digits?,
            kind: kind?,
        },
        counter?,
    ))
}

/// `Some(true)` for HOTP, `Some(false)` for TOTP, in RFC 6030's and older drafts' spellings.
fn otp_kind(algorithm: &str) -> Option<bool> {
    let algorithm = algorithm.trim().to_ascii_lowercase();
    let known_namespace = [
        "urn:ietf:params:xml:ns:keyprov:pskc",
        "http://www.ietf.org/keyprov/pskc",
    ]
    .iter()
    .any(|namespace| algorithm.starts_with(namespace));
    if !known_namespace {
        return None;
    }
    match algorithm.rsplit([':', '#']).next() {
        Some("hotp") => Some(true),
        Some("totp") => Some(false),
        _ => None,
    }
}

fn read_response_format(format: Option<&Element>, problems: &mut Vec<String>) -> Option<u8> {
    let Some(format) = format else {
        return Some(6);
    };
    let mut ok = true;
    if let Some(encoding) = format.attribute("Encoding")
        && !encoding.trim().eq_ignore_ascii_case("DECIMAL")
    {
        problems.push(format!(
            "ResponseFormat Encoding is '{}'; OATH tokens show DECIMAL codes",
            clip(encoding)
        ));
        ok = false;
    }
    if format
        .attribute("CheckDigits")
        .is_some_and(|check| matches!(check.trim(), "true" | "1"))
    {
        problems.push(
            "ResponseFormat has CheckDigits (a Luhn digit), which Twofold does not support"
                .to_owned(),
        );
        ok = false;
    }
    let digits = match format.attribute("Length") {
        None => Some(6),
        Some(length) => match check_digits(length) {
            Ok(digits) => Some(digits),
            Err(reason) => {
                problems.push(format!("ResponseFormat Length: {reason}"));
                None
            }
        },
    };
    if ok { digits } else { None }
}

fn read_secret(
    field: &Element,
    crypto: &Crypto,
    problems: &mut Vec<String>,
) -> Option<Zeroizing<Vec<u8>>> {
    let secret = if let Some(plain) = field.child("PlainValue") {
        match decode_base64(plain.trimmed_text()) {
            Ok(secret) => Zeroizing::new(secret),
            Err(_) => {
                problems.push(
                    "Data/Secret: the PlainValue is not valid base64: the file is damaged"
                        .to_owned(),
                );
                return None;
            }
        }
    } else if let Some(encrypted) = field.child("EncryptedValue") {
        match crypto {
            Crypto::Ready(keys) => match decrypt_value(keys, field, encrypted) {
                Ok(secret) => secret,
                Err(reason) => {
                    problems.push(format!("Data/Secret: {reason}"));
                    return None;
                }
            },
            // Reported once for the whole file.
            Crypto::Unavailable | Crypto::NotNeeded => return None,
        }
    } else {
        problems.push(
            "Data/Secret has neither a PlainValue nor an EncryptedValue: the file is incomplete"
                .to_owned(),
        );
        return None;
    };
    match check_secret_length(&secret) {
        Ok(()) => Some(secret),
        Err(reason) => {
            problems.push(format!("Data/Secret: {reason}"));
            None
        }
    }
}

/// The decimal text of an integer field (`Counter`, `TimeInterval`), plain or encrypted.
fn read_field_text(
    field: &Element,
    name: &str,
    crypto: &Crypto,
    problems: &mut Vec<String>,
) -> Option<String> {
    if let Some(plain) = field.child("PlainValue") {
        return Some(plain.trimmed_text().to_owned());
    }
    let Some(encrypted) = field.child("EncryptedValue") else {
        problems.push(format!(
            "Data/{name} has neither a PlainValue nor an EncryptedValue: the file is incomplete"
        ));
        return None;
    };
    let Crypto::Ready(keys) = crypto else {
        return None;
    };
    match decrypt_value(keys, field, encrypted) {
        // Written as ASCII digits by some tools and as a big-endian integer by others
        // (python-pskc reads both this way).
        Ok(bytes) if !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) => {
            Some(String::from_utf8_lossy(&bytes).into_owned())
        }
        Ok(bytes) if bytes.len() <= 8 => Some(
            bytes
                .iter()
                .fold(0u64, |value, &byte| (value << 8) | u64::from(byte))
                .to_string(),
        ),
        Ok(bytes) => {
            problems.push(format!(
                "Data/{name}: the decrypted value is {} bytes, too long for an integer: the file is damaged",
                bytes.len()
            ));
            None
        }
        Err(reason) => {
            problems.push(format!("Data/{name}: {reason}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &[u8] = include_bytes!("../../tests/fixtures/pskc/plain.pskcxml");
    const PSK_AES128: &[u8] = include_bytes!("../../tests/fixtures/pskc/psk-aes128.pskcxml");
    const PSK_AES128_BAD_MAC: &[u8] =
        include_bytes!("../../tests/fixtures/pskc/psk-aes128-bad-mac.pskcxml");
    const PSK_AES256: &[u8] = include_bytes!("../../tests/fixtures/pskc/psk-aes256.pskcxml");
    const PBKDF2: &[u8] = include_bytes!("../../tests/fixtures/pskc/pbkdf2.pskcxml");

    /// The keys and password generate.py used.
    fn aes128_key() -> PskcKey {
        PskcKey::PreShared((0u8..16).collect())
    }
    fn aes256_key() -> PskcKey {
        PskcKey::PreShared((0u8..32).collect())
    }
    fn password() -> PskcKey {
        PskcKey::Password("Twofold fixture passphrase".into())
    }

    const RFC4226_SECRET: &[u8] = b"12345678901234567890";

    fn expect_tokens(result: Result<Vec<ImportedToken>, Vec<ImportProblem>>) -> Vec<ImportedToken> {
        match result {
            Ok(tokens) => tokens,
            Err(problems) => panic!("expected tokens, got problems: {problems:#?}"),
        }
    }

    fn expect_problems(
        result: Result<Vec<ImportedToken>, Vec<ImportProblem>>,
    ) -> Vec<ImportProblem> {
        match result {
            Ok(tokens) => panic!("expected problems, got tokens: {tokens:#?}"),
            Err(problems) => problems,
        }
    }

    fn token(
        serial: &str,
        secret: &[u8],
        algorithm: Algorithm,
        digits: u8,
        kind: OathKind,
        counter: u64,
    ) -> ImportedToken {
        ImportedToken {
            serial: serial.into(),
            secret: Zeroizing::new(secret.to_vec()),
            params: OathParams {
                algorithm,
                digits,
                kind,
            },
            counter,
        }
    }

    #[test]
    fn a_plain_pskc_file_written_by_python_pskc_gives_its_tokens() {
        assert_eq!(
            expect_tokens(parse_pskc(PLAIN, None)),
            [
                token(
                    "100001",
                    RFC4226_SECRET,
                    Algorithm::Sha1,
                    6,
                    OathKind::Totp { period: 30 },
                    0
                ),
                token(
                    "100002",
                    b"12345678901234567890123456789012",
                    Algorithm::Sha256,
                    8,
                    OathKind::Totp { period: 60 },
                    0
                ),
                token(
                    "200001",
                    RFC4226_SECRET,
                    Algorithm::Sha1,
                    6,
                    OathKind::Hotp,
                    7
                ),
            ]
        );
    }

    #[test]
    fn a_key_given_for_a_plain_file_is_not_needed() {
        assert_eq!(
            expect_tokens(parse_pskc(PLAIN, Some(&aes128_key()))).len(),
            3
        );
    }

    #[test]
    fn a_pre_shared_key_file_decrypts_with_its_key() {
        let secret: Vec<u8> = (0xa0u8..0xb4).collect();
        assert_eq!(
            expect_tokens(parse_pskc(PSK_AES128, Some(&aes128_key()))),
            [
                token(
                    "300001",
                    RFC4226_SECRET,
                    Algorithm::Sha1,
                    6,
                    OathKind::Totp { period: 30 },
                    0
                ),
                // Its counter is encrypted too.
                token("300002", &secret, Algorithm::Sha1, 8, OathKind::Hotp, 42),
            ]
        );
    }

    #[test]
    fn an_aes256_file_decrypts_with_its_key() {
        assert_eq!(
            expect_tokens(parse_pskc(PSK_AES256, Some(&aes256_key()))),
            [token(
                "400001",
                RFC4226_SECRET,
                Algorithm::Sha1,
                6,
                OathKind::Totp { period: 30 },
                0
            )]
        );
    }

    #[test]
    fn a_password_protected_file_decrypts_with_its_password() {
        let secret = [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff, 0x00, 0x11,
        ];
        assert_eq!(
            expect_tokens(parse_pskc(PBKDF2, Some(&password()))),
            [
                token(
                    "500001",
                    RFC4226_SECRET,
                    Algorithm::Sha1,
                    6,
                    OathKind::Totp { period: 30 },
                    0
                ),
                token("500002", &secret, Algorithm::Sha1, 6, OathKind::Hotp, 0),
            ]
        );
    }

    #[test]
    fn a_pskc_file_with_a_bad_mac_is_refused() {
        let problems = expect_problems(parse_pskc(PSK_AES128_BAD_MAC, Some(&aes128_key())));
        assert_eq!(
            problems,
            [ImportProblem::new(
                "KeyPackage 1 (serial 300001)",
                "Data/Secret: the MAC does not match: the file is damaged or the key is wrong"
            )]
        );
    }

    #[test]
    fn a_wrong_pre_shared_key_is_refused() {
        let wrong = PskcKey::PreShared((100u8..116).collect());
        for file in [PSK_AES128, PSK_AES128_BAD_MAC] {
            let problems = expect_problems(parse_pskc(file, Some(&wrong)));
            assert!(!problems.is_empty());
            for problem in &problems {
                assert!(problem.reason.contains("the key is wrong"), "{problems:#?}");
            }
        }
    }

    #[test]
    fn a_wrong_password_is_refused() {
        let wrong = PskcKey::Password("Twofold fixture passphrasE".into());
        let problems = expect_problems(parse_pskc(PBKDF2, Some(&wrong)));
        assert!(!problems.is_empty());
        for problem in &problems {
            assert!(
                problem.reason.contains("the password is wrong"),
                "{problems:#?}"
            );
        }
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_with_the_length_needed() {
        let short = PskcKey::PreShared(vec![0; 15]);
        let problems = expect_problems(parse_pskc(PSK_AES128, Some(&short)));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0]
                .reason
                .contains("the key is 15 bytes, but aes128-cbc needs a 16-byte key"),
            "{problems:#?}"
        );
    }

    #[test]
    fn an_encrypted_file_without_a_key_names_the_key_it_needs() {
        let problems_psk = expect_problems(parse_pskc(PSK_AES128, None));
        assert_eq!(
            problems_psk,
            [ImportProblem::new(
                "EncryptionKey",
                "the secrets in this file are encrypted: give the pre-shared key named 'Pre-shared KEY' to import it"
            )]
        );
        let problems_password = expect_problems(parse_pskc(PBKDF2, None));
        assert_eq!(problems_password.len(), 1, "{problems_password:#?}");
        assert!(
            problems_password[0]
                .reason
                .contains("a password (PBKDF2; the file calls it 'Twofold fixture password')"),
            "{problems_password:#?}"
        );
    }

    #[test]
    fn a_key_of_the_wrong_kind_is_refused_with_the_kind_needed() {
        let problems_psk = expect_problems(parse_pskc(PSK_AES128, Some(&password())));
        assert_eq!(problems_psk.len(), 1, "{problems_psk:#?}");
        assert!(
            problems_psk[0]
                .reason
                .contains("pre-shared key, not a password"),
            "{problems_psk:#?}"
        );

        let problems_password = expect_problems(parse_pskc(PBKDF2, Some(&aes128_key())));
        assert_eq!(problems_password.len(), 1, "{problems_password:#?}");
        assert!(
            problems_password[0]
                .reason
                .contains("password, not a pre-shared key"),
            "{problems_password:#?}"
        );
    }

    #[test]
    fn problems_of_an_encrypted_file_are_reported_with_the_missing_key() {
        // Without the key, the other problems of the file are still listed.
        let text = String::from_utf8_lossy(PSK_AES128)
            .replace("<pskc:SerialNo>300002</pskc:SerialNo>", "");
        let problems = expect_problems(parse_pskc(text.as_bytes(), None));
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert_eq!(problems[0].location, "EncryptionKey");
        assert_eq!(problems[1].location, "KeyPackage 2");
        assert!(problems[1].reason.contains("SerialNo"), "{problems:#?}");
    }

    fn position_of(text: &str, needle: &str) -> usize {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} not in the fixture"))
    }

    fn line_of(text: &str, offset: usize) -> usize {
        text[..offset].matches('\n').count() + 1
    }

    #[test]
    fn a_truncated_pskc_file_names_the_error_position() {
        let text = String::from_utf8_lossy(PLAIN).into_owned();

        // Cut between two elements: the file ends with elements still open.
        let cut = position_of(
            &text,
            "<pskc:KeyPackage>\n  <pskc:DeviceInfo>\n   <pskc:Manufacturer>Twofold fixtures</pskc:Manufacturer>\n   <pskc:SerialNo>100002",
        );
        let problems = expect_problems(parse_pskc(&PLAIN[..cut], None));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(
            problems[0].location,
            format!("line {}, column 2", line_of(&text, cut))
        );
        assert!(problems[0].reason.contains("truncated"), "{problems:#?}");
        assert!(
            problems[0]
                .reason
                .contains("<KeyContainer> (opened at line 2, column 1)"),
            "{problems:#?}"
        );

        // Cut inside a tag.
        let cut = position_of(&text, "<pskc:Secret>") + 7;
        let problems = expect_problems(parse_pskc(&PLAIN[..cut], None));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0]
                .location
                .starts_with(&format!("line {}, column ", line_of(&text, cut))),
            "{problems:#?}"
        );
        assert!(problems[0].reason.contains("malformed"), "{problems:#?}");
    }

    #[test]
    fn malformed_xml_names_the_error_position() {
        let text = String::from_utf8_lossy(PLAIN).replacen("</pskc:Secret>", "</pskc:Secrets>", 1);
        let offset = position_of(&text, "</pskc:Secrets>");
        let problems = expect_problems(parse_pskc(text.as_bytes(), None));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0]
                .location
                .starts_with(&format!("line {}, column", line_of(&text, offset))),
            "{problems:#?}"
        );
        assert!(problems[0].reason.contains("Secrets"), "{problems:#?}");

        let problems = problems_of(b"<KeyContainer><KeyPackage a=\"1\" a=\"2\"/></KeyContainer>");
        assert_eq!(problems[0].location, "line 1, column 15");

        let problems = problems_of(b"<KeyContainer>&undefined;</KeyContainer>");
        assert!(problems[0].reason.contains("malformed"), "{problems:#?}");
    }

    fn problems_of(xml: &[u8]) -> Vec<ImportProblem> {
        expect_problems(parse_pskc(xml, None))
    }

    #[test]
    fn a_file_that_is_not_pskc_is_refused() {
        let problems = problems_of(b"<html><body>tokens</body></html>");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].reason.contains("root element is <html>"),
            "{problems:#?}"
        );

        let problems = problems_of(b"<KeyContainer/><KeyContainer/>");
        assert!(
            problems[0].reason.contains("second root element"),
            "{problems:#?}"
        );

        let problems = problems_of(b"<KeyContainer Version=\"1.0\"/>");
        assert_eq!(
            problems,
            [ImportProblem::file(
                "the file contains no tokens: check that it is the right file"
            )]
        );

        let deep = format!("<KeyContainer>{}", "<a>".repeat(100));
        let problems = problems_of(deep.as_bytes());
        assert!(
            problems[0].reason.contains("nests more than 64"),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_pskc_file_from_a_draft_before_rfc_6030_is_refused_with_the_reason() {
        let draft = br#"<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
            <Device><DeviceInfo><SerialNo>987654321</SerialNo></DeviceInfo></Device>
        </KeyContainer>"#;
        let problems = problems_of(draft);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].reason.contains("<Device> elements"),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_pskc_file_with_more_than_100000_key_packages_is_refused() {
        let mut xml = b"<KeyContainer>".to_vec();
        for _ in 0..=MAX_TOKENS {
            xml.extend_from_slice(b"<KeyPackage/>");
        }
        xml.extend_from_slice(b"</KeyContainer>");
        let problems = problems_of(&xml);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0].reason.contains("100001 KeyPackage elements"),
            "{problems:#?}"
        );
        assert!(
            problems[0].reason.contains("at most 100000"),
            "{problems:#?}"
        );
    }

    /// A KeyPackage with a plain secret of `RFC4226_SECRET`, its parts replaceable.
    fn package(serial: &str, algorithm: &str, parameters: &str, data: &str) -> String {
        format!(
            r#"<KeyPackage>
                <DeviceInfo><Manufacturer>Acme</Manufacturer>{serial}</DeviceInfo>
                <Key Id="1" Algorithm="{algorithm}">
                    <AlgorithmParameters>{parameters}</AlgorithmParameters>
                    <Data>
                        <Secret><PlainValue>MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=</PlainValue></Secret>
                        {data}
                    </Data>
                </Key>
            </KeyPackage>"#
        )
    }

    fn container(packages: &[String]) -> String {
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">{}</KeyContainer>"#,
            packages.concat()
        )
    }

    const HOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:hotp";
    const TOTP: &str = "urn:ietf:params:xml:ns:keyprov:pskc:totp";

    #[test]
    fn key_package_problems_are_all_reported() {
        let xml = container(&[
            package("<SerialNo>ok-1</SerialNo>", TOTP, "", ""),
            package(
                "<SerialNo>ocra</SerialNo>",
                "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1:HOTP-SHA512-8:C-QN08",
                "",
                "",
            ),
            package(
                "<SerialNo>seven</SerialNo>",
                HOTP,
                r#"<ResponseFormat Length="7" Encoding="DECIMAL"/>"#,
                "",
            ),
            package(
                "<SerialNo>hex</SerialNo>",
                HOTP,
                r#"<ResponseFormat Length="6" Encoding="HEXADECIMAL"/>"#,
                "",
            ),
            package("", HOTP, "", ""),
            package(
                "<SerialNo>md5</SerialNo>",
                TOTP,
                "<Suite>HMAC-MD5</Suite>",
                "",
            ),
            package(
                "<SerialNo>period</SerialNo>",
                TOTP,
                "",
                "<TimeInterval><PlainValue>45</PlainValue></TimeInterval>",
            ),
            package(
                "<SerialNo>counter</SerialNo>",
                HOTP,
                "",
                "<Counter><PlainValue>-1</PlainValue></Counter>",
            ),
            package(
                "<SerialNo>luhn</SerialNo>",
                HOTP,
                r#"<ResponseFormat Length="6" CheckDigits="true"/>"#,
                "",
            ),
            "<KeyPackage><DeviceInfo><SerialNo>nokey</SerialNo></DeviceInfo></KeyPackage>"
                .to_owned(),
            package("<SerialNo>ok-2</SerialNo>", HOTP, "", ""),
            package("<SerialNo>ok-1</SerialNo>", TOTP, "", ""),
        ]);
        let problems = problems_of(xml.as_bytes());
        let found: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.location.as_str(), p.reason.as_str()))
            .collect();
        let expected = [
            (
                "KeyPackage 2 (serial ocra)",
                "not supported: Twofold imports HOTP and TOTP tokens only",
            ),
            (
                "KeyPackage 3 (serial seven)",
                "ResponseFormat Length: the number of digits is '7'; it must be 6 or 8",
            ),
            (
                "KeyPackage 4 (serial hex)",
                "ResponseFormat Encoding is 'HEXADECIMAL'",
            ),
            ("KeyPackage 5", "no DeviceInfo/SerialNo"),
            (
                "KeyPackage 6 (serial md5)",
                "Suite 'HMAC-MD5' is not supported",
            ),
            (
                "KeyPackage 7 (serial period)",
                "Data/TimeInterval: the TOTP period is '45' seconds; it must be 30 or 60",
            ),
            (
                "KeyPackage 8 (serial counter)",
                "Data/Counter: the HOTP counter is '-1'",
            ),
            ("KeyPackage 9 (serial luhn)", "CheckDigits"),
            ("KeyPackage 10 (serial nokey)", "it has no Key"),
            (
                "KeyPackage 12 (serial ok-1)",
                "serial ok-1 is also in KeyPackage 1 (serial ok-1)",
            ),
        ];
        assert_eq!(found.len(), expected.len(), "{found:#?}");
        for ((location, reason), (want_location, want_reason)) in found.iter().zip(expected) {
            assert_eq!(*location, want_location, "{found:#?}");
            assert!(
                reason.contains(want_reason),
                "{reason} should contain {want_reason}"
            );
        }
    }

    #[test]
    fn duplicate_serials_are_refused() {
        let xml = container(&[
            package("<SerialNo>A1</SerialNo>", TOTP, "", ""),
            package("<SerialNo>B2</SerialNo>", TOTP, "", ""),
            package("<SerialNo> A1 </SerialNo>", HOTP, "", ""),
        ]);
        assert_eq!(
            problems_of(xml.as_bytes()),
            [ImportProblem::new(
                "KeyPackage 3 (serial A1)",
                "serial A1 is also in KeyPackage 1 (serial A1); a serial may appear only once in a file: remove or correct one of them"
            )]
        );
    }

    #[test]
    fn defaults_apply_when_parameters_are_absent() {
        let xml = container(&[
            package("<SerialNo>T</SerialNo>", TOTP, "", ""),
            package("<SerialNo>H</SerialNo>", HOTP, "", ""),
        ]);
        assert_eq!(
            expect_tokens(parse_pskc(xml.as_bytes(), None)),
            [
                token(
                    "T",
                    RFC4226_SECRET,
                    Algorithm::Sha1,
                    6,
                    OathKind::Totp { period: 30 },
                    0
                ),
                token("H", RFC4226_SECRET, Algorithm::Sha1, 6, OathKind::Hotp, 0),
            ]
        );
    }

    #[test]
    fn older_algorithm_names_and_suites_are_accepted() {
        let xml = container(&[
            package(
                "<SerialNo>old-hotp</SerialNo>",
                "http://www.ietf.org/keyprov/pskc#hotp",
                r#"<Suite>HMAC-SHA512</Suite><ResponseFormat Length="8" Encoding="DECIMAL"/>"#,
                "<Counter><PlainValue>\n  12\n</PlainValue></Counter><Time><PlainValue>0</PlainValue></Time>",
            ),
            package(
                "<SerialNo>old-totp</SerialNo>",
                "http://www.ietf.org/keyprov/pskc#totp",
                "<Suite>sha256</Suite>",
                "",
            ),
        ]);
        assert_eq!(
            expect_tokens(parse_pskc(xml.as_bytes(), None)),
            [
                token(
                    "old-hotp",
                    RFC4226_SECRET,
                    Algorithm::Sha512,
                    8,
                    OathKind::Hotp,
                    12
                ),
                token(
                    "old-totp",
                    RFC4226_SECRET,
                    Algorithm::Sha256,
                    6,
                    OathKind::Totp { period: 30 },
                    0
                ),
            ]
        );
    }

    #[test]
    fn a_secret_shorter_than_128_bits_is_refused_with_its_length() {
        // RFC 6030 figure 2 (its secret is "1234", and it has no serial).
        let figure_2 = br#"<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0"
    Id="exampleID1"
    xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
    <KeyPackage>
        <Key Id="12345678"
            Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
            <Issuer>Issuer-A</Issuer>
            <Data>
                <Secret>
                    <PlainValue>MTIzNA==
                    </PlainValue>
                </Secret>
            </Data>
        </Key>
    </KeyPackage>
</KeyContainer>"#;
        let problems = problems_of(figure_2);
        assert_eq!(problems.len(), 2, "{problems:#?}");
        assert!(
            problems.iter().all(|p| p.location == "KeyPackage 1"),
            "{problems:#?}"
        );
        assert!(
            problems[0].reason.contains("no DeviceInfo/SerialNo"),
            "{problems:#?}"
        );
        assert!(
            problems[1]
                .reason
                .contains("the secret is 4 bytes (32 bits)"),
            "{problems:#?}"
        );
        assert!(!problems[1].reason.contains("1234"), "{problems:#?}");
    }

    /// RFC 6030 figure 6: AES-128-CBC with the pre-shared key 12345678901234567890123456789012
    /// (hex) and an HMAC-SHA1 MAC whose key is encrypted with it.
    const RFC6030_FIGURE_6: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0"
    xmlns="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
    <EncryptionKey>
        <ds:KeyName>Pre-shared-key</ds:KeyName>
    </EncryptionKey>
    <MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">
        <MACKey>
            <xenc:EncryptionMethod
            Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
            <xenc:CipherData>
                <xenc:CipherValue>
    ESIzRFVmd4iZABEiM0RVZgKn6WjLaTC1sbeBMSvIhRejN9vJa2BOlSaMrR7I5wSX
                </xenc:CipherValue>
            </xenc:CipherData>
        </MACKey>
    </MACMethod>
    <KeyPackage>
        <DeviceInfo>
            <Manufacturer>Manufacturer</Manufacturer>
            <SerialNo>987654321</SerialNo>
        </DeviceInfo>
        <CryptoModuleInfo>
            <Id>CM_ID_001</Id>
        </CryptoModuleInfo>
        <Key Id="12345678"
            Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
            <Issuer>Issuer</Issuer>
            <AlgorithmParameters>
                <ResponseFormat Length="8" Encoding="DECIMAL"/>
            </AlgorithmParameters>
            <Data>
                <Secret>
                    <EncryptedValue>
                        <xenc:EncryptionMethod
                        Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
                        <xenc:CipherData>
                            <xenc:CipherValue>
    AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGv
                            </xenc:CipherValue>
                        </xenc:CipherData>
                    </EncryptedValue>
                    <ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=
                    </ValueMAC>
                </Secret>
                <Counter>
                    <PlainValue>0</PlainValue>
                </Counter>
            </Data>
        </Key>
    </KeyPackage>
</KeyContainer>"#;

    #[test]
    fn rfc_6030_figure_6_decrypts_with_its_pre_shared_key() {
        let key = PskcKey::PreShared(vec![
            0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78,
            0x90, 0x12,
        ]);
        assert_eq!(
            expect_tokens(parse_pskc(RFC6030_FIGURE_6.as_bytes(), Some(&key))),
            [token(
                "987654321",
                RFC4226_SECRET,
                Algorithm::Sha1,
                8,
                OathKind::Hotp,
                0
            )]
        );
        let problems = problems_of(RFC6030_FIGURE_6.as_bytes());
        assert!(
            problems[0]
                .reason
                .contains("the pre-shared key named 'Pre-shared-key'"),
            "{problems:#?}"
        );
    }

    #[test]
    fn an_aes_cbc_file_without_a_mac_is_refused() {
        let start = position_of(RFC6030_FIGURE_6, "<MACMethod");
        let end = position_of(RFC6030_FIGURE_6, "</MACMethod>") + "</MACMethod>".len();
        let without_mac = format!("{}{}", &RFC6030_FIGURE_6[..start], &RFC6030_FIGURE_6[end..]);
        let key =
            PskcKey::PreShared(hex::decode("12345678901234567890123456789012").unwrap_or_default());
        let problems = expect_problems(parse_pskc(without_mac.as_bytes(), Some(&key)));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].location, "MACMethod");
        assert!(problems[0].reason.contains("no MACMethod"), "{problems:#?}");

        // And a value without its ValueMAC.
        let without_value_mac = RFC6030_FIGURE_6.replace(
            "<ValueMAC>Su+NvtQfmvfJzF6bmQiJqoLRExc=\n                    </ValueMAC>",
            "",
        );
        let problems = expect_problems(parse_pskc(without_value_mac.as_bytes(), Some(&key)));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].reason.contains("no ValueMAC"), "{problems:#?}");
    }

    #[test]
    fn an_unsupported_cipher_is_refused_by_name() {
        let key =
            PskcKey::PreShared(hex::decode("12345678901234567890123456789012").unwrap_or_default());
        let kw = RFC6030_FIGURE_6.replace("xmlenc#aes128-cbc", "xmlenc#kw-aes128");
        let problems = expect_problems(parse_pskc(kw.as_bytes(), Some(&key)));
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(
            problems[0]
                .reason
                .contains("'http://www.w3.org/2001/04/xmlenc#kw-aes128' is not supported"),
            "{problems:#?}"
        );
    }

    #[test]
    fn rfc_6030_figure_7_decrypts_with_its_password() {
        // RFC 6030 figure 7: PBKDF2 from the password "qwerty" (the PKCS #5 namespace's
        // algorithm URI, an empty PRF meaning HMAC-SHA1).
        let figure_7 = r##"<?xml version="1.0" encoding="UTF-8"?>
<pskc:KeyContainer
  xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc"
  xmlns:xenc11="http://www.w3.org/2009/xmlenc11#"
  xmlns:pkcs5=
  "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#"
  xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Version="1.0">
    <pskc:EncryptionKey>
        <xenc11:DerivedKey>
            <xenc11:KeyDerivationMethod
              Algorithm=
 "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2">
                <pkcs5:PBKDF2-params>
                    <Salt>
                        <Specified>Ej7/PEpyEpw=</Specified>
                    </Salt>
                    <IterationCount>1000</IterationCount>
                    <KeyLength>16</KeyLength>
                    <PRF/>
                </pkcs5:PBKDF2-params>
            </xenc11:KeyDerivationMethod>
            <xenc:ReferenceList>
                <xenc:DataReference URI="#ED"/>
            </xenc:ReferenceList>
            <xenc11:MasterKeyName>My Password 1</xenc11:MasterKeyName>
        </xenc11:DerivedKey>
    </pskc:EncryptionKey>
    <pskc:MACMethod
        Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">
        <pskc:MACKey>
            <xenc:EncryptionMethod
            Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
            <xenc:CipherData>
                <xenc:CipherValue>
2GTTnLwM3I4e5IO5FkufoOEiOhNj91fhKRQBtBJYluUDsPOLTfUvoU2dStyOwYZx
                </xenc:CipherValue>
            </xenc:CipherData>
        </pskc:MACKey>
    </pskc:MACMethod>
    <pskc:KeyPackage>
        <pskc:DeviceInfo>
            <pskc:Manufacturer>TokenVendorAcme</pskc:Manufacturer>
            <pskc:SerialNo>987654321</pskc:SerialNo>
        </pskc:DeviceInfo>
        <pskc:CryptoModuleInfo>
            <pskc:Id>CM_ID_001</pskc:Id>
        </pskc:CryptoModuleInfo>
        <pskc:Key Algorithm=
        "urn:ietf:params:xml:ns:keyprov:pskc:hotp" Id="123456">
            <pskc:Issuer>Example-Issuer</pskc:Issuer>
            <pskc:AlgorithmParameters>
                <pskc:ResponseFormat Length="8" Encoding="DECIMAL"/>
            </pskc:AlgorithmParameters>
            <pskc:Data>
                <pskc:Secret>
                <pskc:EncryptedValue Id="ED">
                    <xenc:EncryptionMethod
                        Algorithm=
"http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
                        <xenc:CipherData>
                            <xenc:CipherValue>
      oTvo+S22nsmS2Z/RtcoF8Hfh+jzMe0RkiafpoDpnoZTjPYZu6V+A4aEn032yCr4f
                        </xenc:CipherValue>
                    </xenc:CipherData>
                    </pskc:EncryptedValue>
                    <pskc:ValueMAC>LP6xMvjtypbfT9PdkJhBZ+D6O4w=
                    </pskc:ValueMAC>
                </pskc:Secret>
            </pskc:Data>
        </pskc:Key>
    </pskc:KeyPackage>
</pskc:KeyContainer>"##;
        let qwerty = PskcKey::Password("qwerty".into());
        assert_eq!(
            expect_tokens(parse_pskc(figure_7.as_bytes(), Some(&qwerty))),
            [token(
                "987654321",
                RFC4226_SECRET,
                Algorithm::Sha1,
                8,
                OathKind::Hotp,
                0
            )]
        );
        let problems = problems_of(figure_7.as_bytes());
        assert!(
            problems[0]
                .reason
                .contains("a password (PBKDF2; the file calls it 'My Password 1')"),
            "{problems:#?}"
        );
    }

    #[test]
    fn rfc_6030_figure_10_is_refused_for_its_duplicate_serial() {
        // RFC 6030 figure 10 (bulk provisioning) gives device 9999999 two keys, for two
        // months; Twofold keeps one token per serial.
        let packages: Vec<String> = [
            ("654321", "1"),
            ("123456", "2"),
            ("9999999", "3"),
            ("9999999", "4"),
        ]
        .iter()
        .map(|(serial, id)| {
            format!(
                r#"
    <KeyPackage>
        <DeviceInfo>
            <Manufacturer>TokenVendorAcme</Manufacturer>
            <SerialNo>{serial}</SerialNo>
        </DeviceInfo>
        <Key Id="{id}"
        Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp">
            <Issuer>Issuer</Issuer>
            <AlgorithmParameters>
                <ResponseFormat Length="8" Encoding="DECIMAL"/>
            </AlgorithmParameters>
            <Data>
                <Secret>
                    <PlainValue>
                        MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=
                    </PlainValue>
                </Secret>
                <Counter>
                    <PlainValue>0</PlainValue>
                </Counter>
            </Data>
            <Policy>
                <StartDate>2006-05-01T00:00:00Z</StartDate>
                <ExpiryDate>2006-05-31T00:00:00Z</ExpiryDate>
            </Policy>
        </Key>
    </KeyPackage>"#
            )
        })
        .collect();
        let problems = problems_of(container(&packages).as_bytes());
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert_eq!(problems[0].location, "KeyPackage 4 (serial 9999999)");
        assert!(
            problems[0]
                .reason
                .contains("also in KeyPackage 3 (serial 9999999)"),
            "{problems:#?}"
        );

        // Without the replacement key, the file imports.
        let tokens = expect_tokens(parse_pskc(container(&packages[..3]).as_bytes(), None));
        let serials: Vec<&str> = tokens.iter().map(|t| t.serial.as_str()).collect();
        assert_eq!(serials, ["654321", "123456", "9999999"]);
        assert!(
            tokens
                .iter()
                .all(|t| t.params.digits == 8 && t.secret.as_slice() == RFC4226_SECRET)
        );
    }

    #[test]
    fn a_pskc_key_never_shows_in_debug_output() {
        assert_eq!(
            format!("{:?}", aes128_key()),
            "PreShared([16 bytes, redacted])"
        );
        assert_eq!(format!("{:?}", password()), "Password([redacted])");
    }

    #[test]
    fn line_and_column_count_from_one() {
        assert_eq!(line_column(b"ab\ncd", 0), (1, 1));
        assert_eq!(line_column(b"ab\ncd", 2), (1, 3));
        assert_eq!(line_column(b"ab\ncd", 3), (2, 1));
        assert_eq!(line_column(b"ab\ncd", 99), (2, 3));
    }

    /// IV followed by the AES-128-CBC, PKCS#7-padded ciphertext, base64, as in PSKC.
    fn encrypt(key: &[u8], iv: u8, plaintext: &[u8]) -> String {
        use cbc::cipher::BlockEncryptMut;
        let iv = [iv; 16];
        let encryptor = cbc::Encryptor::<aes::Aes128>::new_from_slices(key, &iv).unwrap();
        let mut data = iv.to_vec();
        data.extend(encryptor.encrypt_padded_vec_mut::<Pkcs7>(plaintext));
        BASE64.encode(data)
    }

    fn hmac_sha1(key: &[u8], data: &[u8]) -> String {
        let mut mac = <Hmac<sha1::Sha1> as hmac::digest::KeyInit>::new_from_slice(key).unwrap();
        mac.update(data);
        BASE64.encode(mac.finalize().into_bytes())
    }

    /// One HOTP key package whose secret is encrypted, with `mac_key` (if any) in MACKey and
    /// `value_mac` as the secret's ValueMAC.
    fn encrypted_file(mac_key: Option<&str>, secret: &str, value_mac: &str) -> String {
        let aes = "http://www.w3.org/2001/04/xmlenc#aes128-cbc";
        let mac_key = mac_key.map_or(String::new(), |mac_key| {
            format!(
                r#"<MACKey><xenc:EncryptionMethod Algorithm="{aes}"/>
                <xenc:CipherData><xenc:CipherValue>{mac_key}</xenc:CipherValue></xenc:CipherData></MACKey>"#
            )
        });
        format!(
            r#"<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"
                xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
            <EncryptionKey><ds:KeyName>K</ds:KeyName></EncryptionKey>
            <MACMethod Algorithm="http://www.w3.org/2000/09/xmldsig#hmac-sha1">{mac_key}</MACMethod>
            <KeyPackage><DeviceInfo><SerialNo>E1</SerialNo></DeviceInfo>
                <Key Id="1" Algorithm="{HOTP}"><Data><Secret>
                    <EncryptedValue><xenc:EncryptionMethod Algorithm="{aes}"/>
                        <xenc:CipherData><xenc:CipherValue>{secret}</xenc:CipherValue></xenc:CipherData>
                    </EncryptedValue>
                    <ValueMAC>{value_mac}</ValueMAC>
                </Secret></Data></Key>
            </KeyPackage></KeyContainer>"#
        )
    }

    #[test]
    fn a_mac_over_the_plaintext_as_in_drafts_before_rfc_6030_is_accepted() {
        let key = [7u8; 16];
        let mac_key = [9u8; 20];
        let secret = encrypt(&key, 1, RFC4226_SECRET);
        let xml = encrypted_file(
            Some(&encrypt(&key, 2, &mac_key)),
            &secret,
            &hmac_sha1(&mac_key, RFC4226_SECRET),
        );
        let given = PskcKey::PreShared(key.to_vec());
        assert_eq!(
            expect_tokens(parse_pskc(xml.as_bytes(), Some(&given))),
            [token(
                "E1",
                RFC4226_SECRET,
                Algorithm::Sha1,
                6,
                OathKind::Hotp,
                0
            )]
        );

        // A MAC over something else is still refused.
        let xml = encrypted_file(
            Some(&encrypt(&key, 2, &mac_key)),
            &secret,
            &hmac_sha1(&mac_key, b"something else"),
        );
        let problems = expect_problems(parse_pskc(xml.as_bytes(), Some(&given)));
        assert!(
            problems[0].reason.contains("the MAC does not match"),
            "{problems:#?}"
        );
    }

    #[test]
    fn without_a_mac_key_the_encryption_key_computes_the_mac() {
        let key = [7u8; 16];
        let secret = encrypt(&key, 1, RFC4226_SECRET);
        let ciphertext = BASE64.decode(&secret).unwrap();
        let xml = encrypted_file(None, &secret, &hmac_sha1(&key, &ciphertext));
        let given = PskcKey::PreShared(key.to_vec());
        assert_eq!(
            expect_tokens(parse_pskc(xml.as_bytes(), Some(&given))),
            [token(
                "E1",
                RFC4226_SECRET,
                Algorithm::Sha1,
                6,
                OathKind::Hotp,
                0
            )]
        );
    }
}
