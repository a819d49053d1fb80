//! Administration from the command line goes through the same checked, audited use cases as
//! the rest of the server.

use crate::support::*;
use serde_json::Value;

fn audit_of(env: &Env, action: &str) -> Vec<Value> {
    env.cli_ok(&["audit", "tail", "-n", "200", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == action)
        .collect()
}

#[tokio::test]
async fn the_question_catalogue_is_managed_from_the_cli_and_every_change_is_audited() {
    let env = Env::new(Backend::Sqlite).await;
    let added = env.cli_ok(
        &[
            "questions",
            "add",
            "--language",
            "en",
            "What was your first concert?",
        ],
        "",
    );
    let id = added.trim().strip_prefix("added ").unwrap().to_owned();
    let listed = env.cli_ok(&["questions", "list", "--language", "en"], "");
    let line = listed.lines().find(|l| l.starts_with(&id)).unwrap();
    assert!(
        line.contains("enabled") && line.contains("first concert"),
        "{line}"
    );

    env.cli_ok(&["questions", "disable", &id], "");
    let listed = env.cli_ok(&["questions", "list", "--language", "en"], "");
    assert!(
        listed
            .lines()
            .find(|l| l.starts_with(&id))
            .unwrap()
            .contains("disabled")
    );
    env.cli_ok(&["questions", "enable", &id], "");
    env.cli_ok(&["questions", "move", &id, "0"], "");
    let listed = env.cli_ok(&["questions", "list", "--language", "en"], "");
    assert!(listed.lines().next().unwrap().starts_with(&id), "{listed}");

    // Bad requests change nothing, and say how to do it right.
    let unknown = env.cli(&["questions", "disable", "en-999"], "");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("twofold questions list"));
    let empty = env.cli(&["questions", "add", "--language", "en", "   "], "");
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("1 to 200 characters"));

    let changes = audit_of(&env, "security_question_changed");
    let details: Vec<&str> = changes
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        details,
        [
            format!("added {id}"),
            format!("disabled {id}"),
            format!("enabled {id}"),
            format!("moved {id} to 0"),
        ]
    );
    assert!(
        changes
            .iter()
            .all(|e| e["actor"].as_str().unwrap().starts_with("cli"))
    );
}
