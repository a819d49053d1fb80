//! The portal's phone pages end to end, with the console channel: the method page, the phone
//! form, the call or text that proves the number (answered in `/dev/inbox`), the wizard
//! going on, signing in with a call or a text, the account page's change of number, and
//! the pages in French.

use crate::factors::{post_code, sign_out};
use crate::support::*;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";
/// A French mobile number, as people type it and as the pages show it.
const NUMBER: &str = "+33 6 12 34 56 78";
const NUMBER_E164: &str = "+33612345678";
const OTHER_NUMBER: &str = "+33 6 98 76 54 32";
const OTHER_E164: &str = "+33698765432";

/// A server whose users choose among phone calls, texts and the authenticator app, and
/// answer security questions at the end of the wizard.
async fn phone_env(backend: Backend) -> Env {
    Env::new(backend)
        .await
        .set(
            "TWOFOLD_SETTINGS__SELECTABLE_METHODS",
            r#"["phone_call","sms","oath"]"#,
        )
        .set("TWOFOLD_SETTINGS__SECURITY_QUESTIONS_FALLBACK", "true")
}

async fn get_html(client: &reqwest::Client, server: &Server, path: &str) -> String {
    let response = client.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.text().await.unwrap()
}

/// The CSRF token of the form posting to `action` in `html`.
fn form_token(html: &str, action: &str) -> String {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form to {action}:\n{html}"));
    input_value(&html[at..], "csrf_token").unwrap()
}

/// The hidden fields of the form posting to `action` (what the page carries on).
fn hidden_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let at = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form to {action}:\n{html}"));
    let form = &html[at..at + html[at..].find("</form>").unwrap()];
    form.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|tag| {
            let name = input_value_attr(tag, "name")?;
            let value = input_value_attr(tag, "value").unwrap_or_default();
            Some((name, html_unescape(&value)))
        })
        .collect()
}

fn input_value_attr(tag: &str, attr: &str) -> Option<String> {
    let needle = format!("{attr}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(tag[start..end].to_owned())
}

// ---- the development inbox, as a developer at the console uses it ----

/// One entry of `/dev/inbox`: its id, and its text as the page shows it.
struct Entry {
    id: String,
    html: String,
}

/// The entries of the inbox, newest first.
fn entries(html: &str) -> Vec<Entry> {
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find("<li id=\"") {
        let start = at + "<li id=\"".len();
        let end = start + rest[start..].find('"').unwrap();
        let id = rest[start..end].to_owned();
        let stop = rest[end..]
            .find("<li id=\"")
            .map(|s| end + s)
            .unwrap_or(rest.len());
        found.push(Entry {
            id,
            html: rest[end..stop].to_owned(),
        });
        rest = &rest[stop..];
    }
    found
}

/// The developer's view of `/dev/inbox` (a browser of their own), on the server that places
/// the calls (behind the portal, in the split deployment).
struct Inbox<'a> {
    client: reqwest::Client,
    server: &'a Server,
}

impl<'a> Inbox<'a> {
    fn new(server: &'a Server) -> Inbox<'a> {
        Inbox {
            client: server.client(),
            server,
        }
    }

    /// The inbox of the server behind a portal of its own (its certificate from the test CA).
    fn behind(env: &Env, portal: &'a Server) -> Inbox<'a> {
        Inbox {
            client: client_trusting(&env.dir.path().join("test-ca/ca.pem"), true),
            server: portal
                .behind
                .as_deref()
                .expect("the server behind the portal"),
        }
    }

    async fn page(&self) -> String {
        get_html(&self.client, self.server, "/dev/inbox").await
    }

    /// The newest entry whose id starts with `kind` (`call-`, `text-`) other than those in
    /// `seen`, waiting a little for it to arrive.
    async fn newest(&self, kind: &str, seen: &[String]) -> Entry {
        for _ in 0..50 {
            let html = self.page().await;
            if let Some(entry) = entries(&html)
                .into_iter()
                .find(|e| e.id.starts_with(kind) && !seen.contains(&e.id))
            {
                return entry;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no new {kind} entry in /dev/inbox:\n{}", self.page().await);
    }

    /// Answers the call `id` by pressing `digits`.
    async fn answer(&self, id: &str, digits: &str) {
        let html = self.page().await;
        let token = form_token(&html, &format!("/dev/inbox/{id}/answer"));
        let answered = self
            .client
            .post(self.server.url(&format!("/dev/inbox/{id}/answer")))
            .form(&[("csrf_token", token.as_str()), ("digits", digits)])
            .send()
            .await
            .unwrap();
        assert_eq!(answered.status(), 303, "answering {id} with {digits}");
    }
}

/// The six-digit code in a text's entry.
fn texted_code(entry: &Entry) -> String {
    let body = between(&entry.html, "<pre class=\"message-body\">", "</pre>");
    let digits: Vec<String> = body
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 6)
        .map(str::to_owned)
        .collect();
    assert_eq!(digits.len(), 1, "one code in the text: {body}");
    digits[0].clone()
}

// ---- the steps of the wizard ----

/// Signs a new user in and chooses `method` on the method page the wizard opens with;
/// returns the phone form.
async fn choose_method(
    client: &reqwest::Client,
    server: &Server,
    user: &str,
    method: &str,
) -> String {
    let first = sign_in(client, server, user, PASSWORD).await;
    assert_eq!(location(&first), "/enroll");
    let enroll = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(enroll.status(), 303);
    assert_eq!(location(&enroll), "/enroll/method");
    let html = get_html(client, server, "/enroll/method").await;
    assert_eq!(html.matches("<h1>").count(), 1, "{html}");
    assert!(
        html.contains("<h1>Choose how to confirm it&#39;s you</h1>"),
        "{html}"
    );
    for (value, label) in [
        ("phone_call", "Phone call"),
        ("sms", "Text message"),
        ("oath", "Authenticator app"),
    ] {
        assert!(
            html.contains(&format!("type=\"radio\" name=\"method\" value=\"{value}\"")),
            "{html}"
        );
        assert!(
            html.contains(&format!("> {label}</label>")),
            "{label}: {html}"
        );
    }
    let token = form_token(&html, "/enroll/method");
    let chosen = client
        .post(server.url("/enroll/method"))
        .form(&[("csrf_token", token.as_str()), ("method", method)])
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), 303);
    let to = location(&chosen);
    assert_eq!(to, format!("/enroll/phone?method={method}"));
    let form = get_html(client, server, &to).await;
    assert_eq!(form.matches("<h1>").count(), 1, "{form}");
    assert!(
        form.contains("<label for=\"number\">Phone number</label>"),
        "{form}"
    );
    assert!(
        form.contains("id=\"number\" name=\"number\" type=\"tel\" autocomplete=\"tel\""),
        "{form}"
    );
    form
}

/// Posts the phone form with `number`.
async fn post_phone(
    client: &reqwest::Client,
    server: &Server,
    form_html: &str,
    number: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = hidden_fields(form_html, "/enroll/phone");
    fields.push(("number".into(), number.into()));
    fields.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    client
        .post(server.url("/enroll/phone"))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// Posts the waiting page's form (what its button, or its script, does).
async fn post_check(
    client: &reqwest::Client,
    server: &Server,
    waiting: &str,
    outcome: Option<&str>,
) -> reqwest::Response {
    let mut fields = hidden_fields(waiting, "/enroll/phone/check");
    if let Some(outcome) = outcome {
        fields.retain(|(k, _)| k != "outcome");
        fields.push(("outcome".into(), outcome.into()));
    }
    client
        .post(server.url("/enroll/phone/check"))
        .form(&fields)
        .send()
        .await
        .unwrap()
}

/// Goes through the rest of the wizard: the security questions, then the account page.
async fn finish_wizard(client: &reqwest::Client, server: &Server) {
    let next = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(location(&next), "/enroll/questions");
    let page = get_html(client, server, "/enroll/questions").await;
    let token = form_token(&page, "/enroll/questions");
    let mut fields = vec![("csrf_token".to_owned(), token)];
    for i in 1..=4 {
        fields.push((format!("question-{i}"), format!("en-{i}")));
        fields.push((format!("answer-{i}"), format!("answer number {i}")));
    }
    let saved = client
        .post(server.url("/enroll/questions"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(location(&saved), "/enroll");
    let done = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account");
}

/// Enrols a new user with a phone call to `NUMBER` answered with `#` (no JavaScript: the
/// waiting page's button continues). Returns the ids of the inbox entries seen.
async fn enrol_by_phone_call(
    client: &reqwest::Client,
    server: &Server,
    inbox: &Inbox<'_>,
    user: &str,
) -> Vec<String> {
    let form = choose_method(client, server, user, "phone_call").await;
    assert!(form.contains(">Call me now</button>"), "{form}");
    let waiting = post_phone(client, server, &form, NUMBER, &[]).await;
    assert_eq!(waiting.status(), 200);
    let waiting = waiting.text().await.unwrap();
    assert_eq!(waiting.matches("<h1>").count(), 1, "{waiting}");
    assert!(waiting.contains(&format!("Calling {NUMBER}…")), "{waiting}");
    assert!(
        waiting.contains("data-status-url=\"/enroll/phone/status\""),
        "{waiting}"
    );

    let call = inbox.newest("call-", &[]).await;
    assert!(call.html.contains(NUMBER_E164), "{}", call.html);
    // Not answered yet: the button finds it still calling, and nothing is stored.
    let still = post_check(client, server, &waiting, None).await;
    assert_eq!(still.status(), 200);
    assert!(still.text().await.unwrap().contains("Calling"));
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/enroll/method",
        "no method stored before the call is answered"
    );

    inbox.answer(&call.id, "#").await;
    let saved = post_check(client, server, &waiting, None).await;
    assert_eq!(
        saved.status(),
        303,
        "{}",
        saved.text().await.unwrap_or_default()
    );
    assert_eq!(location(&saved), "/enroll");
    vec![call.id]
}

/// Signs in with the password, and with a call to the user's phone answered with `digits`
/// until signed in.
async fn sign_in_by_phone_call(
    client: &reqwest::Client,
    server: &Server,
    inbox: &Inbox<'_>,
    user: &str,
    seen: &mut Vec<String>,
) {
    let response = sign_in(client, server, user, PASSWORD).await;
    assert_eq!(location(&response), "/verify");
    let page = get_html(client, server, "/verify").await;
    assert!(page.contains("Calling +33 6 •• •• •• 78…"), "{page}");
    let call = inbox.newest("call-", seen).await;
    seen.push(call.id.clone());
    inbox.answer(&call.id, "#").await;
    let token = form_token(&page, "/verify/phone");
    let signed = client
        .post(server.url("/verify/phone"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(location(&signed), "/account");
}

async fn phone_call_enrolment_then_sign_in(backend: Backend, split: bool) {
    // Without security questions: the proved phone alone finishes the wizard.
    let env = topology(
        phone_env(backend)
            .await
            .set("TWOFOLD_SETTINGS__SECURITY_QUESTIONS_FALLBACK", "false"),
        split,
    );
    env.add_user("alice", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = if split {
        Inbox::behind(&env, &server)
    } else {
        Inbox::new(&server)
    };
    let mut seen = enrol_by_phone_call(&client, &server, &inbox, "alice").await;
    let done = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account", "the wizard is over");
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains("id=\"profile-method\">Phone call<"),
        "{account}"
    );
    assert!(
        account.contains(&format!("id=\"profile-phone\">{NUMBER}<")),
        "{account}"
    );
    sign_out(&client, &server).await;
    sign_in_by_phone_call(&client, &server, &inbox, "alice", &mut seen).await;
    let account = get_html(&client, &server, "/account").await;
    assert!(account.contains("<h1>Your account</h1>"), "{account}");
}

#[tokio::test]
async fn a_new_user_enrols_by_phone_call_and_signs_in_with_a_call_answered_with_pound_on_sqlite() {
    phone_call_enrolment_then_sign_in(Backend::Sqlite, false).await;
}

#[tokio::test]
async fn a_new_user_enrols_by_phone_call_and_signs_in_with_a_call_answered_with_pound_on_postgres()
{
    phone_call_enrolment_then_sign_in(Backend::Postgres, false).await;
}

#[tokio::test]
async fn a_new_user_enrols_by_phone_call_and_signs_in_through_a_portal_on_its_own_host() {
    phone_call_enrolment_then_sign_in(Backend::Sqlite, true).await;
}

#[tokio::test]
async fn a_new_user_enrols_by_text_message_typing_the_texted_code_and_signs_in_the_same_way() {
    let env = phone_env(Backend::Sqlite).await;
    env.add_user("bob", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    let form = choose_method(&client, &server, "bob", "sms").await;
    assert!(form.contains(">Text me now</button>"), "{form}");
    let page = post_phone(&client, &server, &form, NUMBER, &[]).await;
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains(&format!("We texted a code to {NUMBER}. Type it here.")),
        "{page}"
    );
    let text = inbox.newest("text-", &[]).await;
    assert!(text.html.contains(NUMBER_E164), "{}", text.html);
    let code = texted_code(&text);

    // A wrong code: refused on the same page, nothing stored.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let mut fields = hidden_fields(&page, "/enroll/phone/code");
    fields.push(("code".into(), wrong.into()));
    let refused = client
        .post(server.url("/enroll/phone/code"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_ne!(refused.status(), 303);
    let refused = refused.text().await.unwrap();
    assert!(refused.contains("id=\"enroll-error\""), "{refused}");
    assert!(
        refused.contains("action=\"/enroll/phone/code\""),
        "{refused}"
    );
    assert_eq!(
        location(&client.get(server.url("/enroll")).send().await.unwrap()),
        "/enroll/method",
        "nothing stored after a wrong code"
    );

    let mut fields = hidden_fields(&page, "/enroll/phone/code");
    fields.push(("code".into(), code.clone()));
    let saved = client
        .post(server.url("/enroll/phone/code"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        saved.status(),
        303,
        "{}",
        saved.text().await.unwrap_or_default()
    );
    assert_eq!(location(&saved), "/enroll");
    finish_wizard(&client, &server).await;
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains("id=\"profile-method\">Text message<"),
        "{account}"
    );
    sign_out(&client, &server).await;

    // Signing in: a new text, its code typed in the page.
    let response = sign_in(&client, &server, "bob", PASSWORD).await;
    assert_eq!(location(&response), "/verify");
    let verify = get_html(&client, &server, "/verify").await;
    assert!(verify.contains("We texted a code to"), "{verify}");
    let text = inbox.newest("text-", &[text.id]).await;
    let code = texted_code(&text);
    let signed = post_code(&client, &server, &verify, &code).await;
    assert_eq!(signed.status(), 303);
    assert_eq!(location(&signed), "/account");
}

#[tokio::test]
async fn with_pins_required_the_call_asks_for_the_pin_again_after_a_wrong_one_and_the_right_one_signs_in()
 {
    let env = phone_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PIN_REQUIRED", "true");
    env.add_user("carol", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    let mut seen = enrol_by_phone_call(&client, &server, &inbox, "carol").await;
    // The wizard goes on to the PIN.
    let next = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(location(&next), "/enroll/pin");
    let pin_page = get_html(&client, &server, "/enroll/pin").await;
    let token = form_token(&pin_page, "/enroll/pin");
    let set = client
        .post(server.url("/enroll/pin"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("pin", "482915"),
            ("pin_confirm", "482915"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&set), "/enroll");
    finish_wizard(&client, &server).await;
    sign_out(&client, &server).await;

    let response = sign_in(&client, &server, "carol", PASSWORD).await;
    assert_eq!(location(&response), "/verify");
    let page = get_html(&client, &server, "/verify").await;
    let call = inbox.newest("call-", &seen).await;
    seen.push(call.id.clone());
    assert!(
        call.html
            .contains("To approve, type your PIN, then press the pound key."),
        "{}",
        call.html
    );
    inbox.answer(&call.id, "111111#").await;
    let again = inbox.page().await;
    let entry = entries(&again)
        .into_iter()
        .find(|e| e.id == call.id)
        .unwrap();
    assert!(
        entry.html.contains("That PIN is not right."),
        "{}",
        entry.html
    );
    let token = form_token(&page, "/verify/phone");
    let waiting = client
        .post(server.url("/verify/phone"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(waiting.status(), 200, "a wrong PIN does not sign in");
    assert!(waiting.text().await.unwrap().contains("Calling"));

    inbox.answer(&call.id, "482915#").await;
    let signed = client
        .post(server.url("/verify/phone"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(location(&signed), "/account");
}

#[tokio::test]
async fn a_number_that_is_not_a_phone_is_refused_next_to_its_field_kept_and_nothing_is_called() {
    let env = phone_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PROMPT_FOR_BACKUP_PHONE", "true");
    env.add_user("dave", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    let form = choose_method(&client, &server, "dave", "phone_call").await;
    assert!(
        form.contains("<label for=\"backup_number\">"),
        "the backup phone is asked: {form}"
    );

    let refused = post_phone(&client, &server, &form, "+33 my phone", &[]).await;
    assert_eq!(refused.status(), 400);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("id=\"number-error\">That is not a phone number"),
        "{html}"
    );
    assert!(
        html.contains("value=\"+33 my phone\""),
        "the input is kept: {html}"
    );

    // A good primary number with a wrong backup: the backup is refused, and the primary is
    // not called either.
    let refused = post_phone(
        &client,
        &server,
        &form,
        NUMBER,
        &[("backup_number", "+33 1")],
    )
    .await;
    assert_eq!(refused.status(), 400);
    let html = refused.text().await.unwrap();
    assert!(html.contains("id=\"backup-number-error\""), "{html}");
    assert!(!html.contains("id=\"number-error\""), "{html}");
    assert!(html.contains(&format!("value=\"{NUMBER}\"")), "{html}");

    // A method the settings do not offer, forged into the form: refused.
    let forged = client
        .post(server.url("/enroll/phone"))
        .form(&[
            ("csrf_token", form_token(&form, "/enroll/phone").as_str()),
            ("method", "mobile_app"),
            ("number", NUMBER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);

    let html = inbox.page().await;
    assert!(
        html.contains("id=\"inbox-empty\""),
        "nothing was called: {html}"
    );
}

#[tokio::test]
async fn changing_the_phone_on_the_account_page_calls_the_new_number_and_stores_it_only_once_answered()
 {
    let env = phone_env(Backend::Sqlite).await;
    env.add_user("erin", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    let seen = enrol_by_phone_call(&client, &server, &inbox, "erin").await;
    finish_wizard(&client, &server).await;
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains("href=\"/enroll/phone?method=phone_call\" id=\"change-phone\""),
        "{account}"
    );
    assert!(account.contains("id=\"change-method\""), "{account}");

    let form = get_html(&client, &server, "/enroll/phone?method=phone_call").await;
    assert!(
        !form.contains("Set up your account"),
        "not the wizard: {form}"
    );
    let waiting = post_phone(&client, &server, &form, OTHER_NUMBER, &[]).await;
    assert_eq!(waiting.status(), 200);
    let waiting = waiting.text().await.unwrap();
    assert!(
        waiting.contains(&format!("Calling {OTHER_NUMBER}…")),
        "{waiting}"
    );
    let call = inbox.newest("call-", &seen).await;
    assert!(
        call.html.contains(OTHER_E164),
        "the new number is called: {}",
        call.html
    );

    // The waiting page's script asks; not decided yet, and the old number stays.
    let status = client
        .get(server.url("/enroll/phone/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert_eq!(
        status.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"decided": false})
    );
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains(&format!("id=\"profile-phone\">{NUMBER}<")),
        "the old number until the new one answers: {account}"
    );

    inbox.answer(&call.id, "#").await;
    let status: serde_json::Value = client
        .get(server.url("/enroll/phone/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status,
        serde_json::json!({"decided": true, "outcome": "saved"})
    );
    // The script then submits the form with what it learnt.
    let done = post_check(&client, &server, &waiting, Some("saved")).await;
    assert_eq!(done.status(), 303);
    assert_eq!(location(&done), "/account?changed=phone");
    let account = get_html(&client, &server, "/account?changed=phone").await;
    assert!(
        account.contains("Your phone numbers are saved."),
        "{account}"
    );
    assert!(
        account.contains(&format!("id=\"profile-phone\">{OTHER_NUMBER}<")),
        "{account}"
    );
}

#[tokio::test]
async fn the_phone_pages_speak_french_to_a_french_browser() {
    let env = phone_env(Backend::Sqlite).await;
    env.add_user("fanny", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    let fr = |path: &str| client.get(server.url(path)).header("accept-language", "fr");
    let first = sign_in(&client, &server, "fanny", PASSWORD).await;
    assert_eq!(location(&first), "/enroll");
    let method = fr("/enroll/method")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        method.contains("<h1>Choisissez comment confirmer votre identité</h1>"),
        "{method}"
    );
    assert!(method.contains("> Appel téléphonique</label>"), "{method}");
    assert!(method.contains("> SMS</label>"), "{method}");
    let form = fr("/enroll/phone?method=phone_call")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        form.contains("<label for=\"number\">Numéro de téléphone</label>"),
        "{form}"
    );
    assert!(form.contains(">M’appeler maintenant</button>"), "{form}");

    let mut fields = hidden_fields(&form, "/enroll/phone");
    fields.push(("number".into(), "+33 my phone".into()));
    let refused = client
        .post(server.url("/enroll/phone"))
        .header("accept-language", "fr")
        .form(&fields)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        refused.contains("id=\"number-error\">Ce n&#39;est pas un numéro de téléphone"),
        "{refused}"
    );
    assert!(refused.contains("lang=\"fr\""), "{refused}");

    // The language chosen with the switcher is the account's: calls speak it too.
    let switched = client
        .post(server.url("/language"))
        .form(&[
            ("csrf_token", form_token(&form, "/language").as_str()),
            ("language", "fr"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);

    let mut fields = hidden_fields(&form, "/enroll/phone");
    fields.push(("number".into(), NUMBER.into()));
    let waiting = client
        .post(server.url("/enroll/phone"))
        .header("accept-language", "fr")
        .form(&fields)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        waiting.contains(&format!("Appel du {NUMBER}…")),
        "{waiting}"
    );
    assert!(
        waiting.contains("J&#39;ai répondu : continuer"),
        "{waiting}"
    );
    let call = inbox.newest("call-", &[]).await;
    assert!(
        call.html
            .contains("Pour approuver, appuyez sur la touche dièse."),
        "the call speaks the account's language: {}",
        call.html
    );
}

#[tokio::test]
async fn a_phone_form_without_its_csrf_token_is_refused_and_calls_nobody() {
    let env = phone_env(Backend::Sqlite).await;
    env.add_user("gina", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    choose_method(&client, &server, "gina", "phone_call").await;
    // A page on another site posting the form in the user's browser: no token.
    let forged = client
        .post(server.url("/enroll/phone"))
        .form(&[("method", "phone_call"), ("number", OTHER_NUMBER)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let html = inbox.page().await;
    assert!(
        html.contains("id=\"inbox-empty\""),
        "nothing was called: {html}"
    );
}

#[tokio::test]
async fn someone_with_only_the_password_cannot_put_their_own_number_on_the_account() {
    let env = phone_env(Backend::Sqlite).await;
    env.add_user("hugo", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    let seen = enrol_by_phone_call(&client, &server, &inbox, "hugo").await;
    finish_wizard(&client, &server).await;
    sign_out(&client, &server).await;

    // The attacker knows the password: the sign-in waits for a call to Hugo's phone.
    let attacker = server.client();
    let response = sign_in(&attacker, &server, "hugo", PASSWORD).await;
    assert_eq!(location(&response), "/verify");
    let page = get_html(&attacker, &server, "/verify").await;
    let token = form_token(&page, "/verify/phone");
    for path in ["/enroll/phone", "/enroll/phone/code", "/enroll/phone/check"] {
        let tried = attacker
            .post(server.url(path))
            .form(&[
                ("csrf_token", token.as_str()),
                ("method", "phone_call"),
                ("number", OTHER_NUMBER),
                ("code", "123456"),
                ("outcome", "saved"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(tried.status(), 303, "{path}");
        assert_eq!(
            location(&tried),
            "/verify",
            "{path}: sent back to the second factor"
        );
    }
    let status = attacker
        .get(server.url("/enroll/phone/status"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&status), "/verify");
    let html = inbox.page().await;
    for entry in entries(&html) {
        assert!(
            !entry.html.contains(OTHER_E164),
            "the attacker's number was called: {}",
            entry.html
        );
    }
    assert_eq!(
        entries(&html)
            .iter()
            .filter(|e| !seen.contains(&e.id))
            .count(),
        1,
        "only the sign-in's call to Hugo's own phone: {html}"
    );
}

#[tokio::test]
async fn a_forged_outcome_does_not_make_the_account_page_say_an_unproved_number_is_saved() {
    let env = phone_env(Backend::Sqlite).await;
    env.add_user("iris", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    enrol_by_phone_call(&client, &server, &inbox, "iris").await;
    finish_wizard(&client, &server).await;
    let form = get_html(&client, &server, "/enroll/phone?method=phone_call").await;
    // No check under way, and the form says "saved" for a number never called.
    let forged = client
        .post(server.url("/enroll/phone/check"))
        .form(&[
            ("csrf_token", form_token(&form, "/enroll/phone").as_str()),
            ("method", "phone_call"),
            ("number", OTHER_NUMBER),
            ("outcome", "saved"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 200, "the form again, not the account page");
    let html = forged.text().await.unwrap();
    assert!(html.contains("action=\"/enroll/phone\""), "{html}");
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains(&format!("id=\"profile-phone\">{NUMBER}<")),
        "{account}"
    );
}

#[tokio::test]
async fn a_new_number_whose_call_gets_three_wrong_pins_is_not_stored_and_the_form_says_why() {
    let env = phone_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PIN_REQUIRED", "true");
    env.add_user("jack", PASSWORD);
    let server = env.start();
    let client = server.client();
    let inbox = Inbox::new(&server);
    let seen = enrol_by_phone_call(&client, &server, &inbox, "jack").await;
    let pin_page = get_html(&client, &server, "/enroll/pin").await;
    let set = client
        .post(server.url("/enroll/pin"))
        .form(&[
            ("csrf_token", form_token(&pin_page, "/enroll/pin").as_str()),
            ("pin", "482915"),
            ("pin_confirm", "482915"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&set), "/enroll");
    finish_wizard(&client, &server).await;

    let form = get_html(&client, &server, "/enroll/phone?method=phone_call").await;
    let waiting = post_phone(
        &client,
        &server,
        &form,
        OTHER_NUMBER,
        &[("extension", "42")],
    )
    .await;
    let waiting = waiting.text().await.unwrap();
    let call = inbox.newest("call-", &seen).await;
    assert!(call.html.contains(OTHER_E164), "{}", call.html);
    for _ in 0..3 {
        inbox.answer(&call.id, "111111#").await;
    }
    let ended = post_check(&client, &server, &waiting, None).await;
    assert_eq!(ended.status(), 200);
    let html = ended.text().await.unwrap();
    assert!(
        html.contains("id=\"enroll-error\">The PIN or code was wrong too many times. Try again."),
        "{html}"
    );
    assert!(
        html.contains(&format!("value=\"{OTHER_NUMBER}\"")),
        "{html}"
    );
    assert!(
        html.contains("value=\"42\""),
        "the extension is kept: {html}"
    );
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains(&format!("id=\"profile-phone\">{NUMBER}<")),
        "the old number stays: {account}"
    );
}

#[tokio::test]
async fn a_user_who_may_not_choose_a_method_cannot_forge_another_into_the_phone_form() {
    let env = phone_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_METHOD_SELECTION", "false");
    env.add_user("alice", PASSWORD);
    let secret = env
        .cli_ok(&["service-account", "add", "app1"], "")
        .trim()
        .to_owned();
    let server = env.start();
    // The administrator's application chose phone calls for alice, who has no phone yet
    // (as a directory import's [[sync]] method does).
    let chosen = server
        .client()
        .patch(server.url("/sdk/v1/users/alice"))
        .basic_auth("app1", Some(&secret))
        .json(&serde_json::json!({ "method": "phone_call" }))
        .send()
        .await
        .unwrap();
    assert_eq!(chosen.status(), 200);
    let client = server.client();
    let inbox = Inbox::new(&server);
    sign_in(&client, &server, "alice", PASSWORD).await;
    let next = client.get(server.url("/enroll")).send().await.unwrap();
    let to = location(&next);
    assert!(to.starts_with("/enroll/phone"), "{to}");
    let form = get_html(&client, &server, &to).await;
    let token = form_token(&form, "/enroll/phone");

    let forged = client
        .post(server.url("/enroll/phone"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("method", "sms"),
            ("number", NUMBER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    let html = inbox.page().await;
    assert!(
        html.contains("id=\"inbox-empty\""),
        "nothing was sent: {html}"
    );

    // Her own method goes through.
    let own = client
        .post(server.url("/enroll/phone"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("method", "phone_call"),
            ("number", NUMBER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);
    let html = inbox.page().await;
    assert!(
        !html.contains("id=\"inbox-empty\""),
        "the call was placed: {html}"
    );
}

/// A call of the portal's RPC, as a portal on its own host (or an attacker holding its
/// credential) sends it.
async fn portal_rpc(server: &Server, secret: &str, body: serde_json::Value) -> serde_json::Value {
    let response = server
        .client()
        .post(server.url("/sdk/v1/portal/rpc"))
        .basic_auth("frontend", Some(secret))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_server_refuses_a_method_the_user_may_not_choose_whatever_the_portal_sends() {
    let env = phone_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_METHOD_SELECTION", "false");
    env.add_user("alice", PASSWORD);
    let portal = env
        .cli_ok(
            &["service-account", "add", "frontend", "--role", "portal"],
            "",
        )
        .trim()
        .to_owned();
    let server = env.start();
    let inbox = Inbox::new(&server);
    let client = serde_json::json!({ "ip": null, "user_agent": null });
    let signed = portal_rpc(
        &server,
        &portal,
        serde_json::json!({
            "call": "sign_in", "username": "alice", "password": PASSWORD,
            "next": null, "replacing": null, "client": client,
        }),
    )
    .await;
    let session = signed["done"]["started"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{signed}"))
        .to_owned();
    // Users may not choose: the settings give the authenticator app; a portal asking the
    // server to prove a phone for text messages is refused, and nothing is sent.
    let refused = portal_rpc(
        &server,
        &portal,
        serde_json::json!({
            "call": "begin_phone_check", "session": session, "method": "sms",
            "primary": { "number": NUMBER, "extension": null }, "backup": null,
            "client": client,
        }),
    )
    .await;
    assert!(refused.get("refused").is_some(), "{refused}");
    let html = inbox.page().await;
    assert!(
        html.contains("id=\"inbox-empty\""),
        "nothing was sent: {html}"
    );
}
