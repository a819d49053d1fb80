//! The mobile app in the portal, end to end with the workspace's `twofold-authenticator` as
//! the user's device: the wizard's "Mobile app" step (an activation code, its address and QR
//! code, "Authenticate me now" with the number to choose), signing in by approving a request
//! with the number the page shows, a wrong number, a denial, "not me", a request sent again
//! after it expired, the account page's devices (removing one, the device limit) and a
//! change confirmed in the app.

use crate::factors::sign_out;
use crate::support::*;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery";

/// A server whose users choose between the mobile app and an authenticator app (OATH).
async fn app_env(backend: Backend) -> Env {
    Env::new(backend)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_MOBILE_APP_ACTIVATION", "true")
        .set("TWOFOLD_SETTINGS__ALLOW_METHOD_SELECTION", "true")
        .set(
            "TWOFOLD_SETTINGS__SELECTABLE_METHODS",
            r#"["mobile_app","oath"]"#,
        )
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

/// Posts the form of `html` that goes to `action`, with its token and `fields`.
async fn post_form(
    client: &reqwest::Client,
    server: &Server,
    html: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = form_token(html, action);
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    client
        .post(server.url(action))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// The text of the element `<tag id="id" …>…</tag>` (unescaped).
fn element_text(html: &str, tag: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in page:\n{html}"));
    let open = start + html[start..].find('>').unwrap() + 1;
    let close = open + html[open..].find(&format!("</{tag}>")).unwrap();
    html_unescape(&html[open..close])
}

/// The number the page shows to choose in the app.
fn page_number(html: &str) -> u8 {
    element_text(html, "p", "push-number")
        .trim()
        .parse()
        .unwrap()
}

/// The user's device: the workspace's authenticator with a data directory of its own,
/// trusting the certificate of the server the activation code names (the MFA server behind
/// a portal on its own host).
struct Device {
    dir: PathBuf,
    ca_file: PathBuf,
}

impl Device {
    fn new(env: &Env, server: &Server, name: &str) -> Device {
        let ca_file = if server.behind.is_some() {
            env.dir.path().join("test-ca/ca.pem")
        } else {
            server.cert_file()
        };
        Device {
            dir: env.dir.path().join(format!("device-{name}")),
            ca_file,
        }
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        authenticator(&self.dir, &self.ca_file, args)
    }

    /// Runs a command that must succeed; returns its standard output.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "twofold-authenticator {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The requests waiting now (`pending --json`), waiting a little for one to arrive.
    fn pending(&self) -> Vec<Value> {
        for _ in 0..50 {
            let rows: Vec<Value> = serde_json::from_str(&self.ok(&["pending", "--json"])).unwrap();
            if !rows.is_empty() {
                return rows;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("no request reached the device");
    }

    /// The one waiting request: its id and its three numbers.
    fn request(&self) -> (String, Vec<u8>, Value) {
        let rows = self.pending();
        assert_eq!(rows.len(), 1, "one request at a time: {rows:?}");
        let row = rows[0].clone();
        let numbers = row["numbers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap() as u8)
            .collect();
        (row["id"].as_str().unwrap().to_owned(), numbers, row)
    }

    /// Approves the waiting request with `number`; returns what the server said.
    fn approve(&self, id: &str, number: u8) -> String {
        self.ok(&["approve", id, "--number", &number.to_string()])
            .trim()
            .to_owned()
    }
}

/// Signs a new user in and chooses "Mobile app" on the wizard's method page; returns the
/// mobile app's page.
async fn choose_mobile_app(client: &reqwest::Client, server: &Server, user: &str) -> String {
    let first = sign_in(client, server, user, PASSWORD).await;
    assert_eq!(location(&first), "/enroll");
    let enroll = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(location(&enroll), "/enroll/method");
    let method = get_html(client, server, "/enroll/method").await;
    assert!(
        method.contains("type=\"radio\" name=\"method\" value=\"mobile_app\""),
        "{method}"
    );
    assert!(method.contains("> Mobile app</label>"), "{method}");
    let chosen = post_form(
        client,
        server,
        &method,
        "/enroll/method",
        &[("method", "mobile_app")],
    )
    .await;
    assert_eq!(chosen.status(), 303);
    assert_eq!(location(&chosen), "/enroll/app");
    let html = get_html(client, server, "/enroll/app").await;
    assert_eq!(html.matches("<h1>").count(), 1, "{html}");
    assert!(html.contains("<h1>Activate the mobile app</h1>"), "{html}");
    assert!(html.contains("twofold-authenticator"), "{html}");
    assert!(html.contains("Twofold protocol"), "{html}");
    assert!(
        !html.contains("<svg"),
        "no code before it is asked for: {html}"
    );
    assert!(
        !html.contains("action=\"/enroll/app/test\""),
        "nothing to test before a device is activated: {html}"
    );
    html
}

/// Presses "Generate activation code"; returns the page with the code, the address and the
/// QR code.
async fn generate_code(client: &reqwest::Client, server: &Server, page: &str) -> String {
    let shown = post_form(client, server, page, "/enroll/app/code", &[]).await;
    assert_eq!(shown.status(), 200);
    let html = shown.text().await.unwrap();
    assert!(html.contains("<svg"), "{html}");
    assert!(
        html.contains("role=\"img\" aria-label=\"QR code that activates the app"),
        "the QR code is named for screen readers: {html}"
    );
    assert!(html.contains("The code works once, until "), "{html}");
    html
}

/// The address and the code the page shows for typing.
fn shown_url_and_code(html: &str) -> (String, String) {
    let url = element_text(html, "code", "activation-url");
    let code = element_text(html, "code", "activation-code");
    assert_eq!(code.len(), 19, "four groups of four: {code}");
    assert_eq!(code.matches('-').count(), 3, "{code}");
    (url, code)
}

/// Presses "Authenticate me now", approves in the app with the number the page shows, and
/// lets the page go on; returns where it went.
async fn authenticate_me_now(client: &reqwest::Client, server: &Server, device: &Device) -> String {
    let page = get_html(client, server, "/enroll/app").await;
    assert!(page.contains("Authenticate me now"), "{page}");
    let waiting = post_form(client, server, &page, "/enroll/app/test", &[]).await;
    assert_eq!(waiting.status(), 200);
    let waiting = waiting.text().await.unwrap();
    let number = page_number(&waiting);
    assert!(
        waiting.contains(&format!("Choose {number} in the app.")),
        "{waiting}"
    );
    assert!(waiting.contains("data-status-url=\"/enroll/app/status\""));
    let (id, numbers, row) = device.request();
    assert!(numbers.contains(&number), "{numbers:?} holds {number}");
    assert_eq!(row["context"]["purpose"], "activation_test", "{row}");
    let status: Value = client
        .get(server.url("/enroll/app/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["decided"], false, "{status}");
    assert_eq!(device.approve(&id, number), "approved");
    let status: Value = client
        .get(server.url("/enroll/app/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["decided"], true, "{status}");
    assert_eq!(status["outcome"], "passed", "{status}");
    // Without JavaScript, the button does what the script does.
    let went_on = post_form(client, server, &waiting, "/enroll/app/check", &[]).await;
    assert_eq!(went_on.status(), 303);
    location(&went_on)
}

/// A new user enrols the mobile app through the wizard (the code typed from the page) and
/// ends on their account page; returns their device.
async fn enrol(env: &Env, client: &reqwest::Client, server: &Server, user: &str) -> Device {
    enrol_from(env, client, server, user).await.0
}

/// `enrol`, also returning the address the page gave the device.
async fn enrol_from(
    env: &Env,
    client: &reqwest::Client,
    server: &Server,
    user: &str,
) -> (Device, String) {
    let page = choose_mobile_app(client, server, user).await;
    let with_code = generate_code(client, server, &page).await;
    let (url, code) = shown_url_and_code(&with_code);
    let device = Device::new(env, server, user);
    let activated = device.ok(&["activate", &url, &code, "--name", "Ada's phone"]);
    assert!(activated.contains("Activated"), "{activated}");
    let went = authenticate_me_now(client, server, &device).await;
    assert_eq!(went, "/enroll", "the wizard goes on");
    let done = client.get(server.url("/enroll")).send().await.unwrap();
    assert_eq!(done.status(), 303);
    assert_eq!(
        location(&done),
        "/account",
        "nothing else to enrol: signed in"
    );
    let account = get_html(client, server, "/account").await;
    assert!(
        account.contains("<dd id=\"profile-method\">Mobile app</dd>"),
        "{account}"
    );
    assert!(account.contains("Ada&#39;s phone"), "{account}");
    (device, url)
}

/// Signs in with the password; returns the second-factor page, which shows a number.
async fn sign_in_to_push(client: &reqwest::Client, server: &Server, user: &str) -> String {
    let response = sign_in(client, server, user, PASSWORD).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/verify");
    let page = get_html(client, server, "/verify").await;
    assert!(page.contains("<h1>Verify it&#39;s you</h1>"), "{page}");
    assert!(page.contains("We sent a request to your app."), "{page}");
    let number = page_number(&page);
    assert!(
        page.contains(&format!("Choose {number} in the app.")),
        "{page}"
    );
    assert!(page.contains("data-status-url=\"/verify/phone/status\""));
    page
}

async fn verify_status(client: &reqwest::Client, server: &Server) -> Value {
    client
        .get(server.url("/verify/phone/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Signs in again by approving, in the app, the number the page shows.
async fn sign_in_with_app(client: &reqwest::Client, server: &Server, device: &Device, user: &str) {
    let page = sign_in_to_push(client, server, user).await;
    let number = page_number(&page);
    let (id, numbers, row) = device.request();
    assert!(numbers.contains(&number));
    assert_eq!(row["context"]["purpose"], "sign_in", "{row}");
    assert_eq!(row["context"]["username"], user, "{row}");
    assert_eq!(verify_status(client, server).await["decided"], false);
    assert_eq!(device.approve(&id, number), "approved");
    assert_eq!(verify_status(client, server).await["decided"], true);
    // Without JavaScript, the button does what the script does.
    let signed_in = post_form(client, server, &page, "/verify/phone", &[]).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(location(&signed_in), "/account");
    let account = get_html(client, server, "/account").await;
    assert!(
        account.contains(&format!("Signed in as {user}.")),
        "{account}"
    );
    assert!(account.contains("last used"), "{account}");
    assert!(account.contains("offline codes"), "{account}");
}

/// The whole path: enrol from the wizard, sign out, sign in again by approving the number
/// the page shows.
async fn enrol_then_sign_in(env: Env) {
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    sign_out(&client, &server).await;
    sign_in_with_app(&client, &server, &device, "ada").await;
}

#[tokio::test]
async fn a_user_enrols_the_mobile_app_in_the_wizard_and_signs_in_by_choosing_the_number_on_sqlite()
{
    enrol_then_sign_in(app_env(Backend::Sqlite).await).await;
}

#[tokio::test]
async fn a_user_enrols_the_mobile_app_in_the_wizard_and_signs_in_by_choosing_the_number_on_postgresql()
 {
    enrol_then_sign_in(app_env(Backend::Postgres).await).await;
}

#[tokio::test]
async fn a_split_portal_enrols_the_mobile_app_and_the_device_talks_to_the_mfa_server() {
    let env = app_env(Backend::Sqlite).await.split();
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let (device, url) = enrol_from(&env, &client, &server, "ada").await;
    let behind = server.behind.as_deref().unwrap();
    assert_eq!(
        url.trim_end_matches('/'),
        behind.base,
        "without portal_url, the code names the MFA server"
    );
    sign_out(&client, &server).await;
    sign_in_with_app(&client, &server, &device, "ada").await;
}

#[tokio::test]
async fn the_activation_qr_code_on_the_page_carries_the_address_and_the_code() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let page = choose_mobile_app(&client, &server, "ada").await;
    let with_code = generate_code(&client, &server, &page).await;
    let svg = between(&with_code, "<svg", "</svg>");
    let scanned = decode_qr_svg(svg, env.dir.path());
    let uri = url::Url::parse(&scanned).unwrap();
    assert_eq!(uri.scheme(), "twofold", "{scanned}");
    assert_eq!(uri.host_str(), Some("activate"), "{scanned}");
    let get = |name: &str| {
        uri.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("{name} in {scanned}"))
    };
    let (url, code) = (get("url"), get("code"));
    assert_eq!((url.clone(), code.clone()), shown_url_and_code(&with_code));
    // The device activates with what the QR code carried.
    let device = Device::new(&env, &server, "ada");
    device.ok(&["activate", &url, &code]);
    assert_eq!(
        authenticate_me_now(&client, &server, &device).await,
        "/enroll"
    );
    // The code was good once.
    let again = Device::new(&env, &server, "thief");
    let refused = again.run(&["activate", &url, &code]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("invalid_activation_code"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn choosing_another_number_than_the_pages_denies_the_sign_in() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    sign_out(&client, &server).await;

    let page = sign_in_to_push(&client, &server, "ada").await;
    let number = page_number(&page);
    let (id, numbers, _) = device.request();
    let other = *numbers.iter().find(|n| **n != number).unwrap();
    assert_eq!(device.approve(&id, other), "denied (invalid_code)");
    let ended = post_form(&client, &server, &page, "/verify/phone", &[]).await;
    assert_eq!(ended.status(), 401);
    let html = ended.text().await.unwrap();
    assert!(
        html.contains("A different number was chosen in your app, so the sign-in was denied."),
        "{html}"
    );
    // The sign-in is over: nothing signs in with it any more.
    let account = client.get(server.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 303);
    assert!(
        location(&account).starts_with("/sign-in"),
        "{}",
        location(&account)
    );
}

#[tokio::test]
async fn denying_in_the_app_ends_the_sign_in_and_says_so() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    sign_out(&client, &server).await;

    let page = sign_in_to_push(&client, &server, "ada").await;
    let (id, _, _) = device.request();
    assert_eq!(
        device.ok(&["deny", &id]).trim(),
        "denied (declined)",
        "the app is told"
    );
    let ended = post_form(&client, &server, &page, "/verify/phone", &[]).await;
    assert_eq!(ended.status(), 401);
    let html = ended.text().await.unwrap();
    assert!(
        html.contains("The request was denied in your app. Sign in again."),
        "{html}"
    );
}

#[tokio::test]
async fn not_me_in_the_app_blocks_the_user() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    sign_out(&client, &server).await;

    let page = sign_in_to_push(&client, &server, "ada").await;
    let (id, _, _) = device.request();
    assert_eq!(
        device.ok(&["deny", &id, "--not-me"]).trim(),
        "fraud reported"
    );
    let ended = post_form(&client, &server, &page, "/verify/phone", &[]).await;
    assert_ne!(ended.status(), 200, "not signed in");
    assert_ne!(location(&ended), "/account");

    let again = sign_in(&client, &server, "ada", PASSWORD).await;
    assert_eq!(again.status(), 403);
    let html = again.text().await.unwrap();
    assert!(
        html.contains("This account is blocked after a fraud report"),
        "{html}"
    );
}

#[tokio::test]
async fn an_expired_request_is_sent_again_from_the_page_with_a_new_number() {
    let env = app_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__PUSH_REQUEST_SECONDS", "10");
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    sign_out(&client, &server).await;

    let page = sign_in_to_push(&client, &server, "ada").await;
    assert!(!page.contains("action=\"/verify/app/again\""), "{page}");
    let (old, _, _) = device.request();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let status = verify_status(&client, &server).await;
    assert_eq!(status["decided"], false, "{status}");
    assert_eq!(status["expired"], true, "{status}");
    let expired = get_html(&client, &server, "/verify").await;
    assert!(
        expired.contains("The request expired before it was answered."),
        "{expired}"
    );
    let sent = post_form(&client, &server, &expired, "/verify/app/again", &[]).await;
    assert_eq!(sent.status(), 303);
    assert_eq!(location(&sent), "/verify");
    let fresh = get_html(&client, &server, "/verify").await;
    assert!(!fresh.contains("The request expired"), "{fresh}");
    let number = page_number(&fresh);
    let (id, numbers, _) = device.request();
    assert_ne!(id, old, "a new request");
    assert!(numbers.contains(&number));
    assert_eq!(device.approve(&id, number), "approved");
    let signed_in = post_form(&client, &server, &fresh, "/verify/phone", &[]).await;
    assert_eq!(location(&signed_in), "/account");
}

#[tokio::test]
async fn a_device_removed_on_the_account_page_is_unknown_to_the_server() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains("<h2 id=\"app-heading\">Mobile app</h2>"),
        "{account}"
    );
    assert!(account.contains("never used") || account.contains("last used"));
    let device_id = input_value(
        &account[account.find("action=\"/account/app/remove\"").unwrap()..],
        "device_id",
    )
    .unwrap();
    assert!(
        account.contains("aria-label=\"Remove Ada&#39;s phone\""),
        "{account}"
    );
    let removed = post_form(
        &client,
        &server,
        &account,
        "/account/app/remove",
        &[("device_id", device_id.as_str())],
    )
    .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(location(&removed), "/account?changed=device-removed");
    let account = get_html(&client, &server, "/account?changed=device-removed").await;
    assert!(account.contains("The device is removed"), "{account}");
    assert!(account.contains("No device is activated."), "{account}");
    assert!(account.contains("id=\"activate-app\""), "{account}");

    let refused = device.run(&["pending", "--json"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("unknown_device"), "{stderr}");
}

#[tokio::test]
async fn at_the_device_limit_no_other_device_is_offered_or_activated() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    enrol(&env, &client, &server, "ada").await;
    let account = get_html(&client, &server, "/account").await;
    assert!(!account.contains("id=\"activate-app\""), "{account}");
    assert!(
        account.contains("You have reached the most activated devices allowed (1)."),
        "{account}"
    );
    let page = get_html(&client, &server, "/enroll/app").await;
    assert!(!page.contains("action=\"/enroll/app/code\""), "{page}");
    assert!(page.contains("id=\"cannot-activate\""), "{page}");
    // A code asked for anyway (a form kept from before) is refused.
    let token = form_token(&page, "/enroll/app/test");
    let refused = client
        .post(server.url("/enroll/app/code"))
        .form(&[("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("the most allowed. Remove one first."),
        "{html}"
    );
}

#[tokio::test]
async fn a_change_on_the_account_page_is_confirmed_in_the_app() {
    let env = app_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__ALLOW_ONE_TIME_BYPASS", "true");
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    // A bypass (started while the app's approval is fresh) signs the next sign-in in with
    // the password alone: that session has proved no second factor.
    let account = get_html(&client, &server, "/account").await;
    let started = post_form(&client, &server, &account, "/account/bypass", &[]).await;
    assert_eq!(started.status(), 200);
    sign_out(&client, &server).await;
    let bypassed = sign_in(&client, &server, "ada", PASSWORD).await;
    assert_eq!(location(&bypassed), "/account");

    // Removing the device asks to confirm first.
    let account = get_html(&client, &server, "/account").await;
    let device_id = input_value(
        &account[account.find("action=\"/account/app/remove\"").unwrap()..],
        "device_id",
    )
    .unwrap();
    let asked = post_form(
        &client,
        &server,
        &account,
        "/account/app/remove",
        &[("device_id", device_id.as_str())],
    )
    .await;
    assert_eq!(location(&asked), "/verify");
    let mut verify = get_html(&client, &server, "/verify").await;
    assert!(verify.contains("Confirm it&#39;s you"), "{verify}");
    if !verify.contains("id=\"push-number\"") {
        // The offline codes are asked first; the app is offered instead.
        assert!(
            verify.contains("Send a request to my app instead"),
            "{verify}"
        );
        let switched = post_form(
            &client,
            &server,
            &verify,
            "/verify/fallback",
            &[("challenge", "mobile_app")],
        )
        .await;
        assert_eq!(location(&switched), "/verify");
        verify = get_html(&client, &server, "/verify").await;
    }
    let number = page_number(&verify);
    let (id, _, row) = device.request();
    assert_eq!(row["context"]["purpose"], "confirm_change", "{row}");
    assert_eq!(device.approve(&id, number), "approved");
    let confirmed = post_form(&client, &server, &verify, "/verify/phone", &[]).await;
    assert_eq!(location(&confirmed), "/account?changed=confirmed");

    let account = get_html(&client, &server, "/account?changed=confirmed").await;
    let removed = post_form(
        &client,
        &server,
        &account,
        "/account/app/remove",
        &[("device_id", device_id.as_str())],
    )
    .await;
    assert_eq!(location(&removed), "/account?changed=device-removed");
}

#[tokio::test]
async fn a_wrong_number_at_authenticate_me_now_is_shown_and_may_be_tried_again() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let page = choose_mobile_app(&client, &server, "ada").await;
    let with_code = generate_code(&client, &server, &page).await;
    let (url, code) = shown_url_and_code(&with_code);
    let device = Device::new(&env, &server, "ada");
    device.ok(&["activate", &url, &code]);

    let page = get_html(&client, &server, "/enroll/app").await;
    let waiting = post_form(&client, &server, &page, "/enroll/app/test", &[])
        .await
        .text()
        .await
        .unwrap();
    let number = page_number(&waiting);
    let (id, numbers, _) = device.request();
    let other = *numbers.iter().find(|n| **n != number).unwrap();
    assert_eq!(device.approve(&id, other), "denied (invalid_code)");
    let failed = post_form(&client, &server, &waiting, "/enroll/app/check", &[]).await;
    assert_eq!(failed.status(), 200);
    let html = failed.text().await.unwrap();
    assert!(
        html.contains("A different number was chosen in the app, so the request was denied."),
        "{html}"
    );
    // Still in the wizard, and the test may be tried again.
    assert!(html.contains("action=\"/enroll/app/test\""), "{html}");
    assert_eq!(
        authenticate_me_now(&client, &server, &device).await,
        "/enroll"
    );
}

#[tokio::test]
async fn the_mobile_app_pages_speak_french() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    sign_out(&client, &server).await;
    let token = sign_in_token(&client, &server).await;
    let response = client
        .post(server.url("/sign-in"))
        .header("accept-language", "fr")
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "ada"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/verify");
    let page = client
        .get(server.url("/verify"))
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let number = page_number(&page);
    assert!(
        page.contains(&format!("Choisissez {number} dans l’application.")),
        "{page}"
    );
    let (id, _, _) = device.request();
    device.approve(&id, number);
}

#[tokio::test]
async fn a_second_sign_in_while_a_request_waits_sends_nothing_and_says_why() {
    let env = app_env(Backend::Sqlite).await;
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    let device = enrol(&env, &client, &server, "ada").await;
    sign_out(&client, &server).await;
    let page = sign_in_to_push(&client, &server, "ada").await;

    // Someone else with the password, while Ada's request waits: no second request.
    let other = server.client();
    let refused = sign_in(&other, &server, "ada", PASSWORD).await;
    assert_eq!(refused.status(), 503);
    let html = refused.text().await.unwrap();
    assert!(
        html.contains("A request is already waiting in your app"),
        "{html}"
    );
    assert_eq!(device.pending().len(), 1, "still one request");

    let number = page_number(&page);
    let (id, _, _) = device.request();
    assert_eq!(device.approve(&id, number), "approved");
    let signed_in = post_form(&client, &server, &page, "/verify/phone", &[]).await;
    assert_eq!(location(&signed_in), "/account");
}

#[tokio::test]
async fn a_second_device_is_activated_from_the_account_page_up_to_the_limit() {
    let env = app_env(Backend::Sqlite)
        .await
        .set("TWOFOLD_SETTINGS__MOBILE_APP_DEVICE_LIMIT", "2");
    env.add_user("ada", PASSWORD);
    let server = env.start();
    let client = server.client();
    enrol(&env, &client, &server, "ada").await;
    let account = get_html(&client, &server, "/account").await;
    assert!(
        account.contains("<a href=\"/enroll/app\" id=\"activate-app\">Activate another device</a>"),
        "{account}"
    );

    let page = get_html(&client, &server, "/enroll/app").await;
    assert!(
        !page.contains("Set up your account"),
        "not the wizard: {page}"
    );
    let with_code = generate_code(&client, &server, &page).await;
    let (url, code) = shown_url_and_code(&with_code);
    let laptop = Device::new(&env, &server, "laptop");
    laptop.ok(&["activate", &url, &code, "--name", "Ada's laptop"]);
    assert_eq!(
        authenticate_me_now(&client, &server, &laptop).await,
        "/account?changed=app"
    );
    let account = get_html(&client, &server, "/account?changed=app").await;
    assert!(account.contains("Your mobile app works"), "{account}");
    assert!(account.contains("Ada&#39;s phone"), "{account}");
    assert!(account.contains("Ada&#39;s laptop"), "{account}");
    assert!(
        account.contains("<dd id=\"profile-method\">Mobile app</dd>"),
        "{account}"
    );
    assert!(!account.contains("id=\"activate-app\""), "{account}");
    assert!(
        account.contains("You have reached the most activated devices allowed (2)."),
        "{account}"
    );
}
