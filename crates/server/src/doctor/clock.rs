//! The clock, which TOTP needs: this machine's time against the database server's.
//!
//! A TOTP code belongs to a 30-second step, and the server accepts codes up to
//! `oath_totp_window_steps` steps (one by default) either side of its own. That margin is
//! shared by everything that can be late or off: the phone's clock, the time to read and
//! type the code, and this server's clock. A server more than [`MAX_OFFSET_MS`] (half a
//! step) off has spent half of the margin alone, and users start to see right codes
//! refused; nodes that disagree also disagree on when a session, a bypass or a pending
//! sign-in ends. PostgreSQL's clock is the one other clock every node shares; with SQLite
//! there is none to compare with.

use super::Check;
use crate::config::{Config, DatabaseTarget};
use crate::store::{Backend, Store};

const NAME: &str = "clock";
/// Half a TOTP step of 30 seconds.
pub(super) const MAX_OFFSET_MS: i64 = 15_000;

pub(super) async fn check(config: &Config, store: Option<&Store>) -> Check {
    let sqlite = matches!(config.database_target(), Ok(DatabaseTarget::Sqlite(_)))
        || store.is_some_and(|s| s.backend() == Backend::Sqlite);
    if sqlite {
        return Check::skip(
            NAME,
            "SQLite runs on this machine's clock, so there is no other clock to compare with; check \
             that NTP keeps it right with `timedatectl` (\"System clock synchronized: yes\")",
        );
    }
    let Some(store) = store else {
        return Check::skip(
            NAME,
            "the database server did not answer, so its clock cannot be compared with this one \
             (see the store check); meanwhile `timedatectl` should say \"System clock synchronized: yes\"",
        );
    };
    let before = now_millis();
    let database = match store.database_time_millis().await {
        Ok(Some(millis)) => millis,
        Ok(None) => {
            return Check::skip(NAME, "the store has no clock of its own to compare with");
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("the database server's time cannot be read: {e}"),
                "check the store (see the store check)",
            );
        }
    };
    let after = now_millis();
    // The database read its clock somewhere during the round trip: compare it with the
    // middle, and allow half the round trip either way.
    let round_trip = after - before;
    let offset = (before + after) / 2 - database;
    let beyond = offset.abs() - round_trip / 2;
    let seconds = |ms: i64| format!("{:.1} s", ms as f64 / 1000.0);
    if beyond > MAX_OFFSET_MS {
        return Check::fail(
            NAME,
            format!(
                "this machine's clock is {} {} the database server's (more than {}: TOTP codes change \
                 every 30 s, and right codes start to be refused)",
                seconds(offset.abs()),
                if offset > 0 { "ahead of" } else { "behind" },
                seconds(MAX_OFFSET_MS)
            ),
            "keep both machines' clocks synchronised with NTP: `timedatectl set-ntp true` (or chrony), \
             then `timedatectl` should say \"System clock synchronized: yes\" on each",
        );
    }
    Check::pass(
        NAME,
        format!(
            "this machine's clock and the database server's agree within {} (round trip {} ms)",
            seconds(offset.abs()),
            round_trip
        ),
    )
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
