//! The admin console's settings, security questions and hardware tokens pages: what an
//! administrator changes there is checked as the CLI checks it, audited in their name, in force
//! on every node, and refused to administrators without the permission.

use crate::console::*;
use crate::support::*;

/// An administrator with `permissions` only (made by the owner's CLI), signed in.
async fn admin_with(
    env: &Env,
    server: &Server,
    sdk: &Sdk,
    name: &str,
    permissions: &[&str],
) -> Console {
    let seed = sdk.user_with_app(server, name).await;
    let mut args = vec!["admin", "add", name];
    for p in permissions {
        args.push("--permission");
        args.push(p);
    }
    env.cli_ok(&args, "");
    Console::sign_in(server, name, &seed).await
}

/// The stored value of a setting, as `twofold settings show` prints it.
fn setting(env: &Env, key: &str) -> String {
    let shown = env.cli_ok(&["settings", "show"], "");
    shown
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .and_then(|rest| rest.trim_start().strip_prefix('='))
                .map(|v| v.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("{key} not in:\n{shown}"))
}

/// The settings form as the page shows it (every field with its value, the markers of the
/// booleans; a checked box sends `true`), with `changes` applied.
fn settings_form(html: &str, changes: &[(&str, Option<&str>)]) -> Vec<(String, String)> {
    let mut form = Vec::new();
    let start = html
        .find("action=\"/admin/settings\"")
        .expect("the settings form");
    let rest = &html[start..];
    let end = rest.find("</form>").unwrap_or(rest.len());
    let body = &rest[..end];
    for tag in body.split('<').skip(1) {
        let attr = |name: &str| -> Option<String> {
            let key = format!(" {name}=\"");
            let at = tag.find(&key)? + key.len();
            let len = tag[at..].find('"')?;
            Some(html_unescape(&tag[at..at + len]))
        };
        if tag.starts_with("input") {
            let (Some(name), kind) = (attr("name"), attr("type").unwrap_or_default()) else {
                continue;
            };
            if kind == "checkbox" {
                let checked = tag.contains(" checked");
                if checked {
                    form.push((name, "true".to_owned()));
                }
            } else if name != "csrf_token" {
                form.push((name, attr("value").unwrap_or_default()));
            }
        } else if tag.starts_with("select") {
            let name = attr("name").unwrap_or_default();
            let after = &body[body.find(tag).unwrap_or(0)..];
            let options = after.split("</select").next().unwrap_or_default();
            let selected = options
                .split("<option")
                .skip(1)
                .find(|o| o.contains(" selected"))
                .and_then(|o| o.split('"').nth(1))
                .unwrap_or_default()
                .to_owned();
            form.push((name, selected));
        } else if tag.starts_with("textarea") {
            let name = attr("name").unwrap_or_default();
            let text = tag.split_once('>').map(|(_, t)| t).unwrap_or_default();
            form.push((name, html_unescape(text)));
        }
    }
    for (key, value) in changes {
        form.retain(|(name, _)| name != key);
        if let Some(value) = value {
            form.push(((*key).to_owned(), (*value).to_owned()));
        }
    }
    form
}

fn html_unescape(s: &str) -> String {
    s.replace("&#x2f;", "/")
        .replace("&#47;", "/")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Posts the settings page with `changes`; returns the response.
async fn save_settings(console: &Console, changes: &[(&str, Option<&str>)]) -> reqwest::Response {
    let page = console.get_text("/admin/settings").await;
    let form = settings_form(&page, changes);
    let fields: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    console.post("/admin/settings", &fields).await
}

#[tokio::test]
async fn console_settings_a_change_on_the_page_is_stored_and_audited_in_the_admins_name() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let page = console.get_text("/admin/settings").await;
    // Every setting is on the page with its explanation from twofold.example.toml.
    for key in [
        "allow_user_login",
        "trusted_ip_ranges",
        "lockout_threshold",
        "sms_mode",
    ] {
        assert!(page.contains(&format!("id=\"setting-{key}\"")), "{key}");
    }
    assert!(
        page.contains("within 2 seconds"),
        "the page says when a change applies"
    );
    assert!(
        page.contains("this many failures for one username"),
        "{page}"
    );
    let response = save_settings(&console, &[("lockout_threshold", Some("7"))]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/admin/settings?saved=1");
    assert_eq!(setting(&env, "lockout_threshold"), "7");
    let changed = audit_of(&env, "setting_changed");
    assert_eq!(
        changed.len(),
        1,
        "only the changed key is written: {changed:?}"
    );
    assert_eq!(changed[0]["actor"], "admin:owner");
    assert_eq!(changed[0]["subject"], "lockout_threshold");
    let saved = console.get_text("/admin/settings?saved=1").await;
    assert!(saved.contains("1 settings saved"), "{saved}");
}

#[tokio::test]
async fn console_settings_a_refused_value_is_shown_next_to_its_field_and_nothing_changes() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let response = save_settings(
        &console,
        &[
            ("lockout_threshold", Some("8")),
            ("session_max_hours", Some("720")),
        ],
    )
    .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("id=\"error-session_max_hours\""), "{page}");
    assert!(page.contains("aria-describedby=\"help-session_max_hours error-session_max_hours\""));
    assert!(page.contains("from 1 to 12"), "the CLI's message: {page}");
    assert!(page.contains("value=\"720\""), "the typed value is kept");
    assert!(
        page.contains("value=\"8\""),
        "the other typed value is kept"
    );
    assert_eq!(setting(&env, "session_max_hours"), "12");
    assert_eq!(setting(&env, "lockout_threshold"), "5", "nothing changed");
    assert!(audit_of(&env, "setting_changed").is_empty());
}

#[tokio::test]
async fn console_settings_a_bad_range_in_the_trusted_list_is_refused_and_a_good_list_is_stored() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let bad = "192.0.2.0/24\n10.0.0.300/8";
    let response = save_settings(&console, &[("trusted_ip_ranges", Some(bad))]).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("id=\"error-trusted_ip_ranges\""), "{page}");
    assert!(page.contains("10.0.0.300/8"), "the typed list is kept");
    assert_eq!(setting(&env, "trusted_ip_ranges"), "[]");
    let good = "192.0.2.0/24\r\n\r\n2001:db8::/32\r\n";
    let response = save_settings(&console, &[("trusted_ip_ranges", Some(good))]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        setting(&env, "trusted_ip_ranges"),
        "[\"192.0.2.0/24\",\"2001:db8::/32\"]"
    );
}

#[tokio::test]
async fn console_settings_a_box_unticked_turns_its_setting_off_and_others_stay() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PUSH_NUMBER_MATCHING", "true");
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let response = save_settings(&console, &[("allow_user_login", None)]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(setting(&env, "allow_user_login"), "false");
    assert_eq!(setting(&env, "push_number_matching"), "true");
    // A form that does not show a boolean (no marker) leaves it as it is.
    let response = console
        .post("/admin/settings", &[("lockout_threshold", "6")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(setting(&env, "push_number_matching"), "true");
    assert_eq!(setting(&env, "lockout_threshold"), "6");
}

#[tokio::test]
async fn console_settings_a_change_reaches_the_other_node_within_seconds() {
    let env = Env::new(Backend::Postgres).await.set(
        "TWOFOLD_SECRETS__KEY",
        "5f0c2a9e7d41b38c6e15a02f94d7b3c8e1a6f05d29c4b7e830f1d6a2c5b98e47",
    );
    let a = env.start();
    let b = env.start_another_node("node-b");
    let (_sdk, console) = owner_console(&env, &a).await;
    let before = b.client().get(b.url("/sign-in")).send().await.unwrap();
    let before = before.text().await.unwrap();
    assert!(!before.contains("Signing in to the portal is turned off"));
    let response = save_settings(&console, &[("allow_user_login", None)]).await;
    assert_eq!(response.status(), 303);
    let started = std::time::Instant::now();
    loop {
        let page = b.client().get(b.url("/sign-in")).send().await.unwrap();
        let page = page.text().await.unwrap();
        if page.contains("Signing in to the portal is turned off") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "node B still offers sign-in"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn console_settings_an_admin_without_the_permission_gets_403_and_changes_nothing() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (sdk, _owner) = owner_console(&env, &server).await;
    let helper = admin_with(&env, &server, &sdk, "helper", &["users.read", "audit.read"]).await;
    for path in ["/admin/settings", "/admin/questions", "/admin/tokens"] {
        let response = helper.get(path).await;
        assert_eq!(response.status(), 403, "{path}");
    }
    let home = helper.get_text("/admin").await;
    assert!(!home.contains("href=\"/admin/settings\""));
    let attacks: [(&str, Vec<(&str, &str)>); 4] = [
        (
            "/admin/settings",
            vec![
                ("boolean_shown", "allow_user_login"),
                ("lockout_threshold", "1"),
            ],
        ),
        (
            "/admin/questions/add",
            vec![("language", "en"), ("text", "Evil?")],
        ),
        (
            "/admin/questions/enabled",
            vec![("language", "en"), ("id", "q-en-1"), ("enabled", "false")],
        ),
        (
            "/admin/questions/edit",
            vec![("language", "en"), ("id", "q-en-1"), ("text", "Evil?")],
        ),
    ];
    for (path, fields) in attacks {
        let response = helper.post(path, &fields).await;
        assert_eq!(response.status(), 403, "{path}");
    }
    let token = helper.csrf().await;
    let (content_type, body) = multipart(
        &token,
        "tokens.csv",
        b"HW-1,3132333435363738393031323334353637383930,totp,6,30\n",
    );
    let response = helper
        .client
        .post(helper.url("/admin/tokens/import"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(setting(&env, "allow_user_login"), "true");
    assert_eq!(setting(&env, "lockout_threshold"), "5");
    assert!(audit_of(&env, "setting_changed").is_empty());
    assert!(audit_of(&env, "security_question_changed").is_empty());
    let tokens = env.cli_ok(&["token", "list"], "");
    assert!(!tokens.contains("HW-1"), "{tokens}");
    // An administrator with tokens.import only sees the tokens, not the settings.
    let importer = admin_with(&env, &server, &sdk, "importer", &["tokens.import"]).await;
    assert_eq!(importer.get("/admin/tokens").await.status(), 200);
    assert_eq!(importer.get("/admin/settings").await.status(), 403);
    let response = importer
        .post("/admin/settings", &[("lockout_threshold", "1")])
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(setting(&env, "lockout_threshold"), "5");
}

/// The questions of `language` on the page, in order: `(id, text, offered)`.
async fn questions(console: &Console, language: &str) -> Vec<(String, String, bool)> {
    let page = console
        .get_text(&format!("/admin/questions?lang={language}"))
        .await;
    page.split("<tr id=\"question-")
        .skip(1)
        .map(|row| {
            let id = row.split('"').next().unwrap_or_default().to_owned();
            let text = input_value(row, "text").unwrap_or_default();
            let offered = !row.contains("name=\"enabled\" value=\"true\"");
            (id, text, offered)
        })
        .collect()
}

#[tokio::test]
async fn console_questions_are_added_reworded_moved_and_disabled_per_language() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let english = questions(&console, "en").await;
    let french = questions(&console, "fr").await;
    assert!(english.len() >= 4 && french.len() >= 4);
    assert_ne!(
        english[0].1, french[0].1,
        "the language switch shows the other list"
    );

    let response = console
        .post(
            "/admin/questions/add",
            &[
                ("language", "fr"),
                ("text", "Quel est le nom de votre première école ?"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let french = questions(&console, "fr").await;
    let added = french.last().unwrap().clone();
    assert_eq!(added.1, "Quel est le nom de votre première école ?");
    assert!(
        !questions(&console, "en")
            .await
            .iter()
            .any(|q| q.0 == added.0)
    );

    let response = console
        .post(
            "/admin/questions/edit",
            &[
                ("language", "fr"),
                ("id", &added.0),
                ("text", "Quel était le nom de votre première école ?"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let response = console
        .post(
            "/admin/questions/edit",
            &[("language", "fr"), ("id", &added.0), ("text", "   ")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.unwrap();
    assert!(
        page.contains(&format!("id=\"error-{}\"", added.0)),
        "{page}"
    );
    assert!(page.contains("1 to 200 characters"), "{page}");

    let response = console
        .post(
            "/admin/questions/move",
            &[("language", "fr"), ("id", &added.0), ("direction", "up")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let french = questions(&console, "fr").await;
    let n = french.len();
    assert_eq!(french[n - 2].0, added.0, "one place up");
    assert_eq!(
        french[n - 2].1,
        "Quel était le nom de votre première école ?"
    );

    let response = console
        .post(
            "/admin/questions/enabled",
            &[("language", "fr"), ("id", &added.0), ("enabled", "false")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let french = questions(&console, "fr").await;
    assert!(!french.iter().find(|q| q.0 == added.0).unwrap().2);
    let changes = audit_of(&env, "security_question_changed");
    assert_eq!(changes.len(), 4, "{changes:?}");
    assert!(changes.iter().all(|e| e["actor"] == "admin:owner"));
}

/// A multipart body with the CSRF token first and the file; `(content type, body)`.
fn multipart(token: &str, file_name: &str, content: &[u8]) -> (String, Vec<u8>) {
    multipart_with(token, file_name, content, &[])
}

fn multipart_with(
    token: &str,
    file_name: &str,
    content: &[u8],
    fields: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let boundary = "----twofold-test-boundary-7d3c";
    let mut body = Vec::new();
    let mut text = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    text("csrf_token", token);
    for (name, value) in fields {
        text(name, value);
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads a token file; returns the import's page path.
async fn upload(
    console: &Console,
    file_name: &str,
    content: &[u8],
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = console.csrf().await;
    let (content_type, body) = multipart_with(&token, file_name, content, fields);
    console
        .client
        .post(console.url("/admin/tokens/import"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Follows an import's status until it is over; returns its last status.
async fn wait_for_import(console: &Console, page: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    let mut seen_progress = Vec::new();
    loop {
        let status: serde_json::Value = console
            .get(&format!("{page}/status"))
            .await
            .json()
            .await
            .unwrap();
        seen_progress.push(status["done"].as_i64().unwrap_or(0));
        if status["finished"] == true {
            return status;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the import did not finish: {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The pre-shared key the vendor's PSKC file is encrypted with.
const KEY_HEX: &str = "12345678901234567890123456789012";

#[tokio::test]
async fn console_tokens_a_large_pskc_file_is_imported_with_its_progress_shown() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let file = env.dir.path().join("many.pskcxml");
    python_run(
        "import sys, os, pskc\n\
         p = pskc.PSKC()\n\
         for i in range(int(sys.argv[2])):\n\
         \x20   p.add_key(id=str(i), serial='HW-%05d' % i, secret=os.urandom(20), algorithm='urn:ietf:params:xml:ns:keyprov:pskc:totp', response_length=6, time_interval=30)\n\
         p.encryption.setup_preshared_key(key=bytes.fromhex(sys.argv[3]), key_name='Pre-shared KEY')\n\
         p.write(sys.argv[1])",
        &[&file.display().to_string(), "3000", KEY_HEX],
    );
    let content = std::fs::read(&file).unwrap();
    assert!(
        content.len() > 64 * 1024,
        "larger than the other routes' limit"
    );
    let response = upload(&console, "many.pskcxml", &content, &[("key", KEY_HEX)]).await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let page = location(&response);
    assert!(page.starts_with("/admin/tokens/import/"), "{page}");
    let first = console.get_text(&page).await;
    assert!(first.contains("<progress"), "{first}");
    assert!(first.contains("/static/import.js"));
    let status = wait_for_import(&console, &page).await;
    assert_eq!(status["state"], "finished", "{status}");
    assert_eq!(status["done"], 3000);
    assert_eq!(status["total"], 3000);
    let done = console.get_text(&page).await;
    assert!(done.contains("3000 tokens imported"), "{done}");
    assert!(done.contains("value=\"3000\""), "the bar is full");
    assert!(!done.contains("id=\"import-refresh\""));
    // The inventory, a page at a time, and the search.
    let list = console.get_text("/admin/tokens").await;
    assert!(list.contains("HW-00000") && list.contains("HW-00049"));
    assert!(!list.contains("HW-00050"));
    let next = console.get_text("/admin/tokens?q=&after=HW-00049").await;
    assert!(next.contains("HW-00050") && !next.contains("HW-00049<"));
    let found = console.get_text("/admin/tokens?q=02999").await;
    assert!(found.contains("HW-02999") && !found.contains("HW-00000"));
    let imported = audit_of(&env, "tokens_imported");
    assert!(!imported.is_empty());
    assert!(imported.iter().all(|e| e["actor"] == "admin:owner"));
}

#[tokio::test]
async fn console_tokens_a_file_with_bad_rows_imports_nothing_and_names_each_row() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let csv = "serial,secret,type,digits,period_or_counter\n\
               HW-1,3132333435363738393031323334353637383930,totp,6,30\n\
               HW-2,not-a-secret,totp,6,30\n\
               # a comment\n\
               HW-3,3132333435363738393031323334353637383930,totp,11,30\n";
    let response = upload(&console, "tokens.csv", csv.as_bytes(), &[]).await;
    assert_eq!(response.status(), 303);
    let page = location(&response);
    let status = wait_for_import(&console, &page).await;
    assert_eq!(status["state"], "refused", "{status}");
    assert_eq!(status["errors"], 2);
    let report = console.get_text(&page).await;
    assert!(report.contains("<td>row 3</td>"), "{report}");
    assert!(report.contains("<td>row 5</td>"), "{report}");
    assert!(!report.contains("<td>row 2</td>"));
    assert!(report.contains("Nothing was imported"));
    let tokens = env.cli_ok(&["token", "list"], "");
    assert!(!tokens.contains("HW-1"), "{tokens}");
}

#[tokio::test]
async fn console_tokens_an_oversized_file_is_refused_with_the_limit() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_HTTP__MAX_IMPORT_BYTES", "200000");
    let server = env.start();
    let (_sdk, console) = owner_console(&env, &server).await;
    let mut csv = String::new();
    let mut i = 0;
    while csv.len() < 250_000 {
        csv.push_str(&format!(
            "HW-{i},3132333435363738393031323334353637383930,totp,6,30\n"
        ));
        i += 1;
    }
    let response = upload(&console, "big.csv", csv.as_bytes(), &[]).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/admin/tokens?too_large=200000");
    let page = console.get("/admin/tokens?too_large=200000").await;
    assert_eq!(page.status(), 413);
    let page = page.text().await.unwrap();
    assert!(page.contains("id=\"token-file-error\""), "{page}");
    assert!(page.contains("0.2 MiB"), "{page}");
    let tokens = env.cli_ok(&["token", "list"], "");
    assert!(!tokens.contains("HW-1"), "{tokens}");
    // Other routes keep their own limit.
    let big_form = "x".repeat(100_000);
    let response = console
        .post("/admin/settings", &[("portal_url", big_form.as_str())])
        .await;
    assert_eq!(response.status(), 413);
}
