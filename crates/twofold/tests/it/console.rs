//! What the admin console's tests share: users with an authenticator app, an administrator
//! signed in at `/admin` with their second factor, and forms posted with their CSRF token.

use crate::support::*;
use serde_json::{Value, json};

pub const PASSWORD: &str = "correct horse battery";

/// A service account of the SDK, to make users with a factor quickly.
pub struct Sdk {
    pub secret: String,
}

impl Sdk {
    pub fn add(env: &Env) -> Sdk {
        let secret = env
            .cli_ok(&["service-account", "add", "console-tests"], "")
            .trim()
            .to_owned();
        Sdk { secret }
    }

    pub async fn send(
        &self,
        server: &Server,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = server
            .client()
            .request(method, server.url(path))
            .basic_auth("console-tests", Some(&self.secret));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates `user` (password [`PASSWORD`]) with an active authenticator app; returns its
    /// base32 seed.
    pub async fn user_with_app(&self, server: &Server, user: &str) -> String {
        let (status, created) = self
            .send(
                server,
                reqwest::Method::POST,
                "/sdk/v1/users",
                Some(json!({ "username": user, "password": PASSWORD })),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        self.give_app(server, user).await
    }

    /// Gives the existing `user` an active authenticator app; returns its seed.
    pub async fn give_app(&self, server: &Server, user: &str) -> String {
        let (status, enrolment) = self
            .send(
                server,
                reqwest::Method::POST,
                &format!("/sdk/v1/users/{user}/oath"),
                Some(json!({ "kind": "software" })),
            )
            .await;
        assert_eq!(status, 201, "{enrolment}");
        let seed = uri_secret(enrolment["otpauth_uri"].as_str().unwrap());
        let (status, verified) = self
            .send(
                server,
                reqwest::Method::POST,
                &format!("/sdk/v1/users/{user}/oath/verify"),
                Some(json!({ "code": oathtool_totp(&seed, mid_step_now()) })),
            )
            .await;
        assert_eq!(status, 200, "{verified}");
        seed
    }
}

/// A browser-like client signed in to the admin console.
pub struct Console {
    pub client: reqwest::Client,
    pub base: String,
}

impl Console {
    /// Signs `user` in at `/admin/sign-in` with [`PASSWORD`] and the TOTP of `seed`.
    pub async fn sign_in(server: &Server, user: &str, seed: &str) -> Console {
        let console = Console {
            client: server.client(),
            base: server.url(""),
        };
        let response = console.password(user, PASSWORD).await;
        assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
        assert_eq!(location(&response), "/verify");
        let page = console.get_text("/verify").await;
        // A TOTP of the step after the one the SDK's verification used.
        let code = oathtool_totp(seed, mid_step_now() + 30);
        let token = input_value(&page, "csrf_token").unwrap();
        let done = console
            .client
            .post(console.url("/verify"))
            .form(&[("csrf_token", token.as_str()), ("code", code.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
        assert!(location(&done).starts_with("/admin"), "{}", location(&done));
        console
    }

    /// Posts the console's sign-in form (the password step only).
    pub async fn password(&self, user: &str, password: &str) -> reqwest::Response {
        let page = self.get_text("/admin/sign-in").await;
        let token = input_value(&page, "csrf_token").unwrap();
        self.client
            .post(self.url("/admin/sign-in"))
            .form(&[
                ("csrf_token", token.as_str()),
                ("username", user),
                ("password", password),
                ("next", "/admin"),
            ])
            .send()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.unwrap()
    }

    /// The CSRF token of the console's pages (the sign-out form's, on every page).
    pub async fn csrf(&self) -> String {
        let page = self.get_text("/admin").await;
        let form = &page[page.find("action=\"/admin/sign-out\"").expect("signed in")..];
        input_value(form, "csrf_token").unwrap()
    }

    /// Posts `fields` to `path` with the session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf().await;
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        self.client
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
    }
}

/// An owner (`owner`, made with the CLI) signed in to the console, with the SDK account.
pub async fn owner_console(env: &Env, server: &Server) -> (Sdk, Console) {
    let sdk = Sdk::add(env);
    let seed = sdk.user_with_app(server, "owner").await;
    env.cli_ok(&["admin", "add", "owner", "--role", "owner"], "");
    let console = Console::sign_in(server, "owner", &seed).await;
    (sdk, console)
}

/// The audit events of `action`, newest last.
pub fn audit_of(env: &Env, action: &str) -> Vec<Value> {
    env.cli_ok(&["audit", "tail", "-n", "500", "--json"], "")
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["action"] == action)
        .collect()
}
