//! Reading what a directory answers: why a bind was refused (Active Directory's
//! diagnostic codes, OpenLDAP's password-policy control), and identifiers in binary form.

use crate::directory::DirectoryOutcome;

/// The password-policy request and response control (draft-behera-ldap-password-policy),
/// which OpenLDAP's `ppolicy` overlay answers.
pub(super) const PASSWORD_POLICY_OID: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// What Active Directory's diagnostic message says about a refused bind
/// (`80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data 533, v3839`).
/// `None` for a plain wrong password (`data 52e`), an unknown user (`data 525`), and any
/// message that is not Active Directory's.
pub(super) fn active_directory_refusal(message: &str) -> Option<DirectoryOutcome> {
    let code = message
        .split(',')
        .map(str::trim)
        .find_map(|part| part.strip_prefix("data "))?
        .trim()
        .to_ascii_lowercase();
    match code.as_str() {
        // 530: not permitted at this time; 531: not from this workstation; 533: disabled;
        // 701: the account expired; 775: locked out.
        "530" | "531" | "533" | "701" | "775" => Some(DirectoryOutcome::AccountDisabled),
        // 532: the password expired; 773: the password must be changed.
        "532" | "773" => Some(DirectoryOutcome::PasswordExpired),
        _ => None,
    }
}

/// The error a password-policy response control carries, if any:
/// `SEQUENCE { warning [0] … OPTIONAL, error [1] ENUMERATED OPTIONAL }`.
pub(super) fn password_policy_refusal(value: &[u8]) -> Option<DirectoryOutcome> {
    let body = match value {
        [0x30, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
        _ => return None,
    };
    let mut rest = body;
    while let [tag, len, tail @ ..] = rest {
        let len = usize::from(*len);
        if len > 0x7f || tail.len() < len {
            return None;
        }
        let (content, next) = tail.split_at(len);
        if *tag == 0x81 {
            return match content {
                // passwordExpired, changeAfterReset: the user must set a new password.
                [0] | [2] => Some(DirectoryOutcome::PasswordExpired),
                // accountLocked
                [1] => Some(DirectoryOutcome::AccountDisabled),
                _ => None,
            };
        }
        rest = next;
    }
    None
}

/// An Active Directory `objectGUID` (16 bytes, the first three fields little-endian) in
/// the form Windows shows it: `dd5f9a9f-7e35-4a5c-8d1a-1a8e3c2f5b11`.
pub(super) fn guid_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_directory_bind_errors_say_disabled_or_expired() {
        let message = |code: &str| {
            format!(
                "80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data {code}, v3839\0"
            )
        };
        for (code, outcome) in [
            ("533", Some(DirectoryOutcome::AccountDisabled)),
            ("701", Some(DirectoryOutcome::AccountDisabled)),
            ("775", Some(DirectoryOutcome::AccountDisabled)),
            ("532", Some(DirectoryOutcome::PasswordExpired)),
            ("773", Some(DirectoryOutcome::PasswordExpired)),
            ("52e", None),
            ("525", None),
        ] {
            assert_eq!(active_directory_refusal(&message(code)), outcome, "{code}");
        }
        // Windows Server 2019's form, with a different DSID and version.
        assert_eq!(
            active_directory_refusal(
                "80090308: LdapErr: DSID-0C090447, comment: AcceptSecurityContext error, data 533, v4563"
            ),
            Some(DirectoryOutcome::AccountDisabled)
        );
        assert_eq!(active_directory_refusal("Invalid credentials"), None);
        assert_eq!(active_directory_refusal(""), None);
    }

    #[test]
    fn password_policy_control_errors_say_locked_or_expired() {
        // error [1] ENUMERATED accountLocked(1)
        assert_eq!(
            password_policy_refusal(&[0x30, 0x03, 0x81, 0x01, 0x01]),
            Some(DirectoryOutcome::AccountDisabled)
        );
        // error passwordExpired(0)
        assert_eq!(
            password_policy_refusal(&[0x30, 0x03, 0x81, 0x01, 0x00]),
            Some(DirectoryOutcome::PasswordExpired)
        );
        // a warning (timeBeforeExpiration 3600) and no error: the bind stands
        assert_eq!(
            password_policy_refusal(&[0x30, 0x06, 0xa0, 0x04, 0x80, 0x02, 0x0e, 0x10]),
            None
        );
        // a warning then an error
        assert_eq!(
            password_policy_refusal(&[
                0x30, 0x09, 0xa0, 0x04, 0x81, 0x02, 0x00, 0x05, 0x81, 0x01, 0x02
            ]),
            Some(DirectoryOutcome::PasswordExpired)
        );
        assert_eq!(password_policy_refusal(&[0x30, 0x00]), None);
        assert_eq!(password_policy_refusal(&[0x30, 0x05, 0x81]), None);
        assert_eq!(password_policy_refusal(&[]), None);
    }

    #[test]
    fn an_object_guid_reads_as_windows_shows_it() {
        // The GUID {3F2504E0-4F89-11D3-9A0C-0305E82C3301} as Active Directory stores it.
        let stored = [
            0xe0, 0x04, 0x25, 0x3f, 0x89, 0x4f, 0xd3, 0x11, 0x9a, 0x0c, 0x03, 0x05, 0xe8, 0x2c,
            0x33, 0x01,
        ];
        assert_eq!(
            guid_string(&stored).unwrap(),
            "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
        );
        assert_eq!(guid_string(&stored[..15]), None);
    }
}
