//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The command-line authenticator for Twofold: approve sign-ins pushed by a Twofold server
/// (with number matching), and show offline codes.
///
/// Activate an account once with the code the portal shows ("Generate activation code"),
/// then watch for sign-in requests and approve them with the number the sign-in page shows.
#[derive(Debug, Parser)]
#[command(name = "twofold-authenticator", version, about, long_about)]
pub struct Cli {
    /// The directory holding accounts.json (the device keys) [default: the user's config
    /// directory, ~/.config/twofold-authenticator]
    #[arg(
        long,
        global = true,
        value_name = "DIR",
        env = "TWOFOLD_AUTHENTICATOR_DATA_DIR"
    )]
    pub data_dir: Option<PathBuf>,

    /// A PEM file of certificates trusted besides the system's: a server's self-signed
    /// certificate, or the CA that signed it
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "TWOFOLD_AUTHENTICATOR_CA_FILE"
    )]
    pub ca_file: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Activate an account with an activation code (or a PNG of its QR code)
    ///
    /// Makes a device key that never leaves this machine, registers its public key with
    /// the server, and saves the account in accounts.json.
    #[command(after_help = "Examples:\n  \
        twofold-authenticator activate https://mfa.example.com 7K3M-Q9TX-2HBW-V4RD\n  \
        twofold-authenticator activate --qr ~/Pictures/activation.png")]
    Activate(ActivateArgs),

    /// List the saved accounts, with when the server last saw each device
    List,

    /// Show the requests waiting for an answer now, on every account
    Pending {
        /// Print a JSON array (and nothing else) on standard output
        #[arg(long)]
        json: bool,
    },

    /// Wait for requests and show each as it arrives (Ctrl-C stops)
    Watch {
        /// Watch only this account (its device id, as `list` shows)
        #[arg(long, value_name = "DEVICE_ID")]
        account: Option<String>,
    },

    /// Approve a request with the number the sign-in page shows
    ///
    /// A wrong number or PIN denies the sign-in: there is no second try.
    Approve(ApproveArgs),

    /// Deny a request; with --not-me, report it as fraud
    ///
    /// "Not me" tells the server someone else has the password: the account is blocked and
    /// the administrators are told.
    Deny(DenyArgs),

    /// Show the current offline code (TOTP) of the accounts that have one
    Code {
        /// Only this account (its device id, as `list` shows)
        #[arg(long, value_name = "DEVICE_ID")]
        account: Option<String>,
    },

    /// Write the manual pages (twofold-authenticator.1, ...) into DIR, from this help
    #[command(name = "man-pages", hide = true)]
    ManPages { dir: PathBuf },
}

#[derive(Debug, Args)]
pub struct ActivateArgs {
    /// The server's URL, as shown with the activation code
    #[arg(required_unless_present = "qr", conflicts_with = "qr")]
    pub url: Option<String>,

    /// The activation code (16 characters; dashes, spaces and case do not matter)
    #[arg(required_unless_present = "qr", conflicts_with = "qr")]
    pub code: Option<String>,

    /// Read the URL and code from a PNG picture of the activation QR code
    #[arg(long, value_name = "FILE.png")]
    pub qr: Option<PathBuf>,

    /// This device's name in your device list (1 to 64 characters) [default:
    /// "twofold-authenticator on <host name>"]
    #[arg(long)]
    pub name: Option<String>,

    /// Make an ECDSA P-256 key instead of an Ed25519 one
    #[arg(long)]
    pub p256: bool,

    /// A UnifiedPush endpoint the server wakes this device through
    #[arg(long, value_name = "URL")]
    pub push_endpoint: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The request's id, as `pending` or `watch` shows it
    pub id: String,

    /// The number the sign-in page shows (one of the request's three)
    #[arg(long, value_name = "N")]
    pub number: Option<u8>,

    /// Your PIN, when the request asks for it ("-" reads it from standard input, which
    /// keeps it out of the process list and the shell history)
    #[arg(long, value_name = "PIN")]
    pub pin: Option<String>,

    #[command(flatten)]
    pub direct: Direct,
}

#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The request's id, as `pending` or `watch` shows it
    pub id: String,

    /// It was not you: report fraud (the account is blocked, administrators are told)
    #[arg(long)]
    pub not_me: bool,

    #[command(flatten)]
    pub direct: Direct,
}

/// Answering without asking the server for the waiting requests first.
#[derive(Debug, Args)]
pub struct Direct {
    /// Answer directly with the request's nonce (from `pending --json`), without looking
    /// the request up first
    #[arg(long, hide_short_help = true)]
    pub nonce: Option<String>,

    /// The account that answers (its device id); needed with --nonce when there are several
    #[arg(long, value_name = "DEVICE_ID", hide_short_help = true)]
    pub account: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn activate_takes_a_url_and_code_or_a_qr_picture_but_not_both() {
        let cli = Cli::try_parse_from([
            "twofold-authenticator",
            "activate",
            "https://mfa.example.com",
            "7K3M-Q9TX-2HBW-V4RD",
            "--p256",
        ])
        .unwrap();
        let Command::Activate(args) = cli.command else {
            panic!("not activate")
        };
        assert_eq!(args.url.as_deref(), Some("https://mfa.example.com"));
        assert!(args.p256);

        assert!(
            Cli::try_parse_from(["twofold-authenticator", "activate", "--qr", "a.png"]).is_ok()
        );
        assert!(Cli::try_parse_from(["twofold-authenticator", "activate"]).is_err());
        assert!(
            Cli::try_parse_from([
                "twofold-authenticator",
                "activate",
                "https://mfa.example.com",
                "CODE",
                "--qr",
                "a.png"
            ])
            .is_err()
        );
    }

    #[test]
    fn global_options_may_come_before_or_after_the_command() {
        let cli = Cli::try_parse_from([
            "twofold-authenticator",
            "--ca-file",
            "cert.pem",
            "pending",
            "--data-dir",
            "/tmp/accounts",
        ])
        .unwrap();
        assert_eq!(cli.ca_file, Some(PathBuf::from("cert.pem")));
        assert_eq!(cli.data_dir, Some(PathBuf::from("/tmp/accounts")));
    }
}
