//! What `serve` tells an operator to do first (add a user, make an administrator), worded
//! for how this server was started: from a source tree (`cargo run`), or as an installed
//! binary, perhaps as a system account under systemd, with the configuration file it was
//! given. The commands it prints work when pasted as they are.

use std::path::{Path, PathBuf};

/// What the banner tells an operator to do first.
pub(super) enum StartHint {
    None,
    NoUsers,
    /// No administrator yet: this one-time path makes the first.
    Bootstrap(String),
}

/// How this process was started, hence how an operator runs a command against the same
/// data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invocation {
    /// Run from a Cargo build directory (`cargo run`): the commands go through Cargo too.
    pub from_source: bool,
    /// What to type for the binary: `twofold` when its directory is on PATH, else its path.
    pub program: String,
    /// The configuration file given with `--config`, if any.
    pub config_file: Option<PathBuf>,
    /// The system account the server runs as (neither root nor a login user): the
    /// commands must run as that account, or they leave files the server cannot read.
    pub system_user: Option<String>,
}

impl Invocation {
    /// This process's invocation.
    pub fn current(config_file: Option<&Path>) -> Invocation {
        let exe = std::env::current_exe().ok();
        let from_source = std::env::var_os("CARGO").is_some()
            || exe
                .as_deref()
                .and_then(Path::parent)
                .and_then(Path::parent)
                .and_then(Path::file_name)
                .is_some_and(|name| name == "target");
        let program = match exe.as_deref() {
            Some(exe) if !on_path(exe) => exe.display().to_string(),
            _ => "twofold".to_owned(),
        };
        let config_file = config_file.map(|file| {
            if from_source {
                // "In another terminal, same directory": as the operator typed it.
                file.to_path_buf()
            } else {
                std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf())
            }
        });
        Invocation {
            from_source,
            program,
            config_file,
            system_user: system_user(),
        }
    }

    /// `twofold ARGS` as the operator should type it.
    fn command(&self, args: &str) -> String {
        let mut line = String::new();
        if let Some(user) = &self.system_user {
            line.push_str(&format!("sudo -u {} ", shell_quote(user)));
        }
        if self.from_source {
            line.push_str("cargo run --release --");
        } else {
            line.push_str(&shell_quote(&self.program));
        }
        if let Some(file) = &self.config_file {
            line.push_str(" --config ");
            line.push_str(&shell_quote(&file.display().to_string()));
        }
        line.push(' ');
        line.push_str(args);
        line
    }

    /// The lines to print for `hint`; `base` is the server's own URL.
    pub fn lines(&self, hint: &StartHint, base: &str) -> Vec<String> {
        let mut lines = Vec::new();
        match hint {
            StartHint::None => return lines,
            StartHint::NoUsers if self.from_source => {
                lines.push(
                    "No users yet. Add the first one (in another terminal, same directory):".into(),
                );
                lines.push(format!(
                    "  printf '%s' 'their password' | {}",
                    self.command("user add alice --password-stdin")
                ));
                let installed = Invocation {
                    from_source: false,
                    program: "twofold".into(),
                    ..self.clone()
                };
                lines.push(format!(
                    "  (or, with the installed binary: {})",
                    installed.command("user add alice --password-stdin")
                ));
                lines.push(format!(
                    "Then make them the first administrator: {}",
                    self.command("admin add alice --role owner")
                ));
            }
            StartHint::NoUsers => {
                lines.push(match &self.system_user {
                    Some(user) => format!(
                        "No users yet. Add the first one as this server's user, {user}, with the \
                         same configuration (it asks for the password twice):"
                    ),
                    None => "No users yet. Add the first one (in another terminal; it asks for \
                             the password twice):"
                        .to_owned(),
                });
                lines.push(format!(
                    "  {}",
                    self.command("user add alice --password-stdin")
                ));
                lines.push("Then make them the first administrator:".into());
                lines.push(format!(
                    "  {}",
                    self.command("admin add alice --role owner")
                ));
            }
            StartHint::Bootstrap(path) => {
                lines.push(
                    "No administrator yet. Within the hour, sign in to the portal as the user who"
                        .into(),
                );
                lines.push("is to be the first owner, then open this link (it works once):".into());
                lines.push(format!("  {base}{path}"));
                lines.push(format!(
                    "(or, on this server: {})",
                    self.command("admin add USERNAME --role owner")
                ));
            }
        }
        lines
    }
}

/// Whether `exe`'s directory is on PATH (so its bare name runs it).
fn on_path(exe: &Path) -> bool {
    let Some(dir) = exe.parent() else {
        return false;
    };
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|p| p == dir))
}

/// The account this process runs as, when it is a system account: not root, below the
/// first login user's id (1000 on Debian and most distributions), and named in
/// /etc/passwd.
fn system_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    if uid == 0 || uid >= 1000 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    user_name(&passwd, uid)
}

/// The name of `uid` in an /etc/passwd file.
fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_owned())
    })
}

/// `text` as one shell word.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(system_user: Option<&str>, config: Option<&str>) -> Invocation {
        Invocation {
            from_source: false,
            program: "twofold".into(),
            config_file: config.map(PathBuf::from),
            system_user: system_user.map(str::to_owned),
        }
    }

    #[test]
    fn an_installed_server_under_its_system_user_prints_commands_for_that_user_and_file() {
        let lines = installed(Some("twofold"), Some("/etc/twofold/twofold.toml"))
            .lines(&StartHint::NoUsers, "https://mfa.example.com");
        assert_eq!(
            lines,
            vec![
                "No users yet. Add the first one as this server's user, twofold, with the same \
                 configuration (it asks for the password twice):",
                "  sudo -u twofold twofold --config /etc/twofold/twofold.toml user add alice --password-stdin",
                "Then make them the first administrator:",
                "  sudo -u twofold twofold --config /etc/twofold/twofold.toml admin add alice --role owner",
            ]
        );
    }

    #[test]
    fn an_installed_server_run_by_hand_prints_plain_commands_with_its_file() {
        let lines = installed(None, Some("/srv/mfa/twofold.toml"))
            .lines(&StartHint::NoUsers, "https://mfa.example.com");
        assert!(lines[0].starts_with("No users yet. Add the first one (in another terminal"));
        assert_eq!(
            lines[1],
            "  twofold --config /srv/mfa/twofold.toml user add alice --password-stdin"
        );
        let lines = installed(None, None).lines(&StartHint::NoUsers, "https://x");
        assert_eq!(lines[1], "  twofold user add alice --password-stdin");
    }

    #[test]
    fn a_server_run_from_the_source_tree_prints_cargo_commands() {
        let invocation = Invocation {
            from_source: true,
            program: "/src/target/release/twofold".into(),
            config_file: Some(PathBuf::from("dev.toml")),
            system_user: None,
        };
        let lines = invocation.lines(&StartHint::NoUsers, "https://127.0.0.1:8443");
        assert_eq!(
            lines,
            vec![
                "No users yet. Add the first one (in another terminal, same directory):",
                "  printf '%s' 'their password' | cargo run --release -- --config dev.toml user add alice --password-stdin",
                "  (or, with the installed binary: twofold --config dev.toml user add alice --password-stdin)",
                "Then make them the first administrator: cargo run --release -- --config dev.toml admin add alice --role owner",
            ]
        );
    }

    #[test]
    fn the_bootstrap_link_comes_with_the_command_that_does_the_same() {
        let lines = installed(Some("twofold"), Some("/etc/twofold/twofold.toml")).lines(
            &StartHint::Bootstrap("/admin/bootstrap/abc".into()),
            "https://mfa.example.com",
        );
        assert_eq!(lines[2], "  https://mfa.example.com/admin/bootstrap/abc");
        assert_eq!(
            lines[3],
            "(or, on this server: sudo -u twofold twofold --config /etc/twofold/twofold.toml admin add USERNAME --role owner)"
        );
        assert!(
            installed(None, None)
                .lines(&StartHint::None, "x")
                .is_empty()
        );
    }

    #[test]
    fn paths_with_spaces_or_quotes_are_quoted_for_the_shell() {
        let lines = Invocation {
            from_source: false,
            program: "/opt/my apps/twofold".into(),
            config_file: Some(PathBuf::from("/etc/it's here.toml")),
            system_user: None,
        }
        .lines(&StartHint::NoUsers, "x");
        assert_eq!(
            lines[1],
            r"  '/opt/my apps/twofold' --config '/etc/it'\''s here.toml' user add alice --password-stdin"
        );
    }

    #[test]
    fn a_uid_is_named_from_the_passwd_file() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      twofold:x:105:109::/var/lib/twofold:/usr/sbin/nologin\n\
                      broken line\n";
        assert_eq!(user_name(passwd, 105).as_deref(), Some("twofold"));
        assert_eq!(user_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(user_name(passwd, 4242), None);
    }
}
