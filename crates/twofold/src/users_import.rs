//! `twofold users import` and `twofold users sync`: reading the CSV file, showing progress,
//! printing the summary.

use anyhow::{Result, anyhow, bail};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use twofold_server::config::{Config, LogFormat};
use twofold_server::directory::DirectoryAccount;
use twofold_server::service::directory_sync::{Progress, Summary};

/// The columns of an import file, in this order, named in its header row.
pub const CSV_COLUMNS: [&str; 5] = ["username", "email", "phone", "mobile_phone", "language"];

/// A row of the file that is not imported, by line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub reason: String,
}

/// The rows of an import file that can be read, with their line numbers, and the rows
/// that cannot.
#[derive(Debug, Default)]
pub struct CsvFile {
    pub rows: Vec<(usize, DirectoryAccount)>,
    pub errors: Vec<RowError>,
}

/// Splits one line into fields: commas separate them; a field in double quotes may hold
/// commas, and `""` inside it is one quote.
fn split_fields(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (false, '"') if at_start => {
                quoted = true;
                at_start = false;
            }
            (true, '"') => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                    if !matches!(chars.peek(), None | Some(',')) {
                        return Err("a closing quote must end its field".into());
                    }
                }
            }
            (false, ',') => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            (_, c) => {
                field.push(c);
                at_start = false;
            }
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Reads an import file: a header row naming [`CSV_COLUMNS`], then one user per row.
/// A row that cannot be read (wrong number of columns, a username given twice, a file that
/// ends in the middle of a row) is reported with its line number and left out; the others
/// are kept. Values are checked further (email, phone, language) when they are written.
pub fn parse_csv(text: &str) -> Result<CsvFile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let ends_with_newline = text.ends_with('\n');
    let mut lines = text.lines().enumerate().peekable();
    let header = loop {
        match lines.next() {
            Some((_, line)) if line.trim().is_empty() => continue,
            Some((_, line)) => break line,
            None => bail!(
                "the file is empty: it needs the header row {}",
                CSV_COLUMNS.join(",")
            ),
        }
    };
    let names: Vec<String> = split_fields(header.trim_end_matches('\r'))
        .map_err(|e| anyhow!("line 1 (the header): {e}"))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if names != CSV_COLUMNS {
        bail!(
            "the header row is {:?}; it must be {} (in this order)",
            header,
            CSV_COLUMNS.join(",")
        );
    }
    let mut file = CsvFile::default();
    let mut first_line_of: HashMap<String, usize> = HashMap::new();
    while let Some((index, raw)) = lines.next() {
        let line_number = index + 1;
        let is_last = lines.peek().is_none();
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields = match split_fields(line) {
            Ok(fields) => fields,
            Err(reason) => {
                file.errors.push(RowError {
                    line: line_number,
                    reason,
                });
                continue;
            }
        };
        if fields.len() != CSV_COLUMNS.len() {
            let reason = if is_last && !ends_with_newline && fields.len() < CSV_COLUMNS.len() {
                format!(
                    "the file ends in the middle of this row ({} of {} columns): was it cut short?",
                    fields.len(),
                    CSV_COLUMNS.len()
                )
            } else {
                format!(
                    "{} columns, where the header has {}",
                    fields.len(),
                    CSV_COLUMNS.len()
                )
            };
            file.errors.push(RowError {
                line: line_number,
                reason,
            });
            continue;
        }
        let value = |i: usize| {
            let v = fields[i].trim();
            (!v.is_empty()).then(|| v.to_owned())
        };
        let username = fields[0].trim().to_owned();
        if username.is_empty() {
            file.errors.push(RowError {
                line: line_number,
                reason: "the username is empty".into(),
            });
            continue;
        }
        let key = username.to_lowercase();
        if let Some(first) = first_line_of.get(&key) {
            file.errors.push(RowError {
                line: line_number,
                reason: format!("{username} is already on line {first}"),
            });
            continue;
        }
        first_line_of.insert(key, line_number);
        file.rows.push((
            line_number,
            DirectoryAccount {
                username,
                email: value(1),
                phone: value(2),
                mobile_phone: value(3),
                language: value(4),
                ..DirectoryAccount::default()
            },
        ));
    }
    Ok(file)
}

/// Reads the file at `path` ([`parse_csv`]).
pub fn read_csv(path: &Path) -> Result<CsvFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("cannot read {}: {e}", path.display()))?;
    parse_csv(&text)
}

/// How often, in users, a run that is not on a terminal writes a progress line.
const LOG_EVERY: u64 = 500;

/// A progress bar on a terminal; elsewhere (a pipe, JSON logs) a line every
/// [`LOG_EVERY`] users.
pub struct CliProgress {
    verb: &'static str,
    /// The bar, when standard error is a terminal and the logs are text.
    bar: Option<indicatif::ProgressBar>,
    json: bool,
    total: AtomicU64,
    done: AtomicU64,
}

impl CliProgress {
    pub fn new(config: &Config, verb: &'static str) -> Self {
        let json = config.log.format == LogFormat::Json;
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} users, {eta} left",
            ) {
                bar.set_style(style.progress_chars("#>-"));
            }
            bar.set_message(verb);
            bar
        });
        Self {
            verb,
            bar,
            json,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    fn log(&self, done: u64, total: u64) {
        if self.json {
            eprintln!(
                "{}",
                serde_json::json!({"level": "INFO", "message": "progress", "action": self.verb, "done": done, "total": total})
            );
        } else {
            eprintln!("{}: {done} of {total} users", self.verb);
        }
    }
}

impl Progress for CliProgress {
    fn start(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
        }
    }

    fn advance(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None if done.is_multiple_of(LOG_EVERY) => {
                self.log(done, self.total.load(Ordering::Relaxed))
            }
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}

/// Prints the summary: text, or one JSON object (`--json`, or JSON logs). `lines` names the
/// line of the file each username came from, for an import from a file.
pub fn print_summary(
    summary: &Summary,
    row_errors: &[RowError],
    lines: &HashMap<String, usize>,
    json: bool,
) {
    if json {
        let errors: Vec<_> = row_errors
            .iter()
            .map(|e| serde_json::json!({"line": e.line, "reason": e.reason}))
            .chain(summary.errors.iter().map(|e| {
                serde_json::json!({"line": lines.get(&e.username), "username": e.username, "reason": e.reason})
            }))
            .collect();
        let mut value = serde_json::to_value(summary).unwrap_or_default();
        value["errors"] = serde_json::Value::Array(errors);
        println!("{value}");
        return;
    }
    let mut errors: Vec<(usize, String)> = row_errors
        .iter()
        .map(|e| (e.line, format!("line {}: {}", e.line, e.reason)))
        .collect();
    errors.extend(summary.errors.iter().map(|e| match lines.get(&e.username) {
        Some(line) => (*line, format!("line {line}: {}: {}", e.username, e.reason)),
        None => (0, format!("{}: {}", e.username, e.reason)),
    }));
    errors.sort();
    for (_, error) in &errors {
        println!("error: {error}");
    }
    let mut counts = summary.counts();
    if !row_errors.is_empty() {
        counts = counts.replace(
            &format!("errors {}", summary.errors.len()),
            &format!("errors {}", summary.errors.len() + row_errors.len()),
        );
    }
    println!("{counts}");
    if summary.invitations_queued > 0 {
        println!("invitations queued: {}", summary.invitations_queued);
    }
    if summary.not_invited_without_portal_url > 0 {
        println!(
            "warning: {} new users were not invited: settings.portal_url is empty, so an invitation \
             could not say where the portal is. Fix: `twofold settings set portal_url https://…`",
            summary.not_invited_without_portal_url
        );
    }
    if let Some(held) = summary.held_back_message() {
        println!("{held}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const HEADER: &str = "username,email,phone,mobile_phone,language\n";

    #[test]
    fn quoted_fields_hold_commas_and_quotes() {
        let file = parse_csv(&format!(
            "{HEADER}\"alice\",\"alice@example.com\",,\"+33 6 12, 34\",fr\n"
        ))
        .unwrap();
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        assert_eq!(file.rows[0].1.mobile_phone.as_deref(), Some("+33 6 12, 34"));
        assert_eq!(
            split_fields(r#"a,"b ""c""",d"#).unwrap(),
            vec!["a", "b \"c\"", "d"]
        );
    }

    #[test]
    fn a_bad_row_is_reported_by_line_and_the_others_are_kept() {
        let text = format!(
            "{HEADER}alice,a@example.com,,,en\nbob,b@example.com\ncarol,,,,fr\nalice,x@example.com,,,en\ndave,d@example.com"
        );
        let file = parse_csv(&text).unwrap();
        let kept: Vec<_> = file
            .rows
            .iter()
            .map(|(l, r)| (*l, r.username.as_str()))
            .collect();
        assert_eq!(kept, vec![(2, "alice"), (4, "carol")]);
        let lines: Vec<_> = file.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![3, 5, 6]);
        assert!(
            file.errors[0].reason.contains("2 columns"),
            "{:?}",
            file.errors
        );
        assert!(
            file.errors[1].reason.contains("line 2"),
            "{:?}",
            file.errors
        );
        assert!(
            file.errors[2].reason.contains("cut short"),
            "{:?}",
            file.errors
        );
    }

    #[test]
    fn a_file_without_the_header_row_is_refused_whole() {
        let err = parse_csv("alice,a@example.com,,,en\n").unwrap_err();
        assert!(err.to_string().contains("header"), "{err}");
    }
}
