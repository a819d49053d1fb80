//! The directory (`[ldap]`): it binds as its service account, and finds the test user a
//! sign-in would find (`--user`). RADIUS gets no check: a RADIUS server can only be asked
//! with a user's password.

use super::Check;
use crate::config::Config;
use crate::directory::LdapDirectory;
use crate::directory::ldap::ServiceBindError;
use twofold_engine::Settings;
use twofold_engine::settings::PrimaryAuthentication;

const DIRECTORY: &str = "directory";
const USER: &str = "directory_user";

pub(super) async fn check(
    config: &Config,
    settings: &Settings,
    test_user: Option<&str>,
) -> Vec<Check> {
    let primary = settings.primary_authentication;
    let Some(ldap) = &config.ldap else {
        let directory = match primary {
            PrimaryAuthentication::Ldap => Check::fail(
                DIRECTORY,
                "primary_authentication is \"ldap\" but the configuration has no [ldap] section: nobody could sign in",
                "add [ldap] with url, bind_dn, bind_password_file and base_dn (see twofold.example.toml), \
                 or `twofold settings set primary_authentication local`",
            ),
            PrimaryAuthentication::Radius => Check::skip(
                DIRECTORY,
                "passwords are checked by RADIUS ([radius]): a RADIUS server answers only with a user's \
                 password, so doctor cannot ask it; sign in once as a test user",
            ),
            PrimaryAuthentication::Local => Check::skip(
                DIRECTORY,
                "no [ldap] section: passwords are checked locally (primary_authentication = \"local\")",
            ),
        };
        return vec![
            directory,
            Check::skip(USER, "no directory to look a user up in"),
        ];
    };
    let directory = match LdapDirectory::from_config(ldap) {
        Ok(directory) => directory,
        Err(e) => {
            return vec![
                Check::failed_with(DIRECTORY, &e.0, "correct [ldap] as the message says"),
                Check::skip(USER, "the directory cannot be used"),
            ];
        }
    };
    let used_for = match primary {
        PrimaryAuthentication::Ldap => "it checks passwords",
        _ => "used for imports and syncs; primary_authentication is not \"ldap\"",
    };
    match directory.bind_service_account().await {
        Ok(()) => {}
        Err(ServiceBindError::Refused {
            url,
            bind_dn,
            rc,
            text,
        }) => {
            return vec![
                Check::fail(
                    DIRECTORY,
                    format!("{url} refused the service account {bind_dn} (result {rc}: {text})"),
                    "check ldap.bind_dn and its password (ldap.bind_password_file, ldap.bind_password or \
                     TWOFOLD_LDAP__BIND_PASSWORD)",
                ),
                Check::skip(USER, "the service account could not bind"),
            ];
        }
        Err(ServiceBindError::Unavailable(e)) => {
            return vec![
                Check::fail(
                    DIRECTORY,
                    e.to_string(),
                    "check ldap.url (host and port), that the directory runs and that this machine may \
                     reach it; for a TLS error, ldap.ca_file (the CA that signed the directory's \
                     certificate) and ldap.starttls",
                ),
                Check::skip(USER, "the directory could not be reached"),
            ];
        }
    }
    let bound = Check::pass(
        DIRECTORY,
        format!(
            "{} accepts the service account {} ({used_for})",
            ldap.url, ldap.bind_dn
        ),
    );
    let Some(user) = test_user else {
        return vec![
            bound,
            Check::skip(
                USER,
                "no test user given: give --user NAME to look one up as a sign-in would",
            ),
        ];
    };
    let found = match directory.find_account(user).await {
        Ok(found) => found,
        Err(e) => {
            return vec![
                bound,
                Check::fail(
                    USER,
                    format!("looking up {user:?} failed: {e}"),
                    "check ldap.base_dn and ldap.user_filter, and that the service account may search",
                ),
            ];
        }
    };
    let filter = directory.filter_for(user);
    let user_check = match found.as_slice() {
        [dn] => Check::pass(USER, format!("{user:?} is {dn}")),
        [] => Check::fail(
            USER,
            format!(
                "no entry for {user:?}: the search {filter} under {} found nothing",
                ldap.base_dn
            ),
            format!(
                "check the name, ldap.base_dn, ldap.user_filter{}",
                if ldap.group_dn.is_some() {
                    " and ldap.group_dn (the user must be a member of that group)"
                } else {
                    ""
                }
            ),
        ),
        _ => Check::fail(
            USER,
            format!(
                "more than one entry matches {user:?} (the search {filter}): such sign-ins are refused"
            ),
            "make ldap.user_filter match one account per name (uid, or sAMAccountName for Active \
             Directory), or narrow ldap.base_dn",
        ),
    };
    vec![bound, user_check]
}
