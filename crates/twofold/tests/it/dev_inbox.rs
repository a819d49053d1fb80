//! The development inbox of `twofold serve` (`/dev/inbox`): its page, and its lock-down to
//! clients on the server's own machine.

use crate::support::*;

/// The host's own address on its network (not loopback), as `hostname -I` lists it.
fn host_address() -> String {
    let out = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("hostname -I");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
        .find(|a| a.is_ipv4() && !a.is_loopback())
        .map(|a| a.to_string())
        .expect("this test needs an IPv4 address that is not loopback (hostname -I lists none)")
}

#[tokio::test]
async fn the_development_inbox_shows_its_banner_and_its_empty_state_in_english_and_french() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let client = server.client();
    let page = client.get(server.url("/dev/inbox")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<h1>").count(), 1, "{html}");
    assert!(html.contains("<h1>Development inbox</h1>"), "{html}");
    assert!(
        html.contains("Development inbox: messages are not delivered; do not use in production."),
        "{html}"
    );
    assert!(html.contains("No messages yet."), "{html}");

    let french = client
        .get(server.url("/dev/inbox"))
        .header("accept-language", "fr")
        .send()
        .await
        .unwrap();
    assert_eq!(french.status(), 200);
    let html = french.text().await.unwrap();
    assert!(
        html.contains("les messages ne sont pas remis ; ne pas utiliser en production"),
        "{html}"
    );
    assert!(html.contains("Aucun message pour l’instant."), "{html}");
}

#[tokio::test]
async fn an_answer_without_the_csrf_token_is_refused_before_anything_else() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let client = server.client();
    let html = client
        .get(server.url("/dev/inbox"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = input_value(&html, "csrf_token").expect("the page's CSRF token");
    let forged = client
        .post(server.url("/dev/inbox/call-0123456789abcdef/answer"))
        .form(&[("digits", "1#")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let unknown = client
        .post(server.url("/dev/inbox/call-0123456789abcdef/answer"))
        .form(&[("csrf_token", token.as_str()), ("digits", "1#")])
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404, "no such call");
}

#[tokio::test]
async fn a_local_proxy_relaying_a_remote_client_or_a_page_naming_another_host_gets_nothing() {
    // A reverse proxy on the same machine, trusted for its X-Forwarded-For: the requests it
    // relays come from a loopback peer, and must still get nothing.
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_TLS__ENABLED", "false")
        .set("TWOFOLD_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]");
    let server = env.start();
    let client = server.client();
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let plain = client.get(server.url("/dev/inbox")).send().await.unwrap();
    assert_eq!(plain.status(), 200, "the same request without the headers");
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9".to_owned()),
        ("x-forwarded-for", "127.0.0.1".to_owned()),
        ("forwarded", "for=203.0.113.9".to_owned()),
        ("x-real-ip", "203.0.113.9".to_owned()),
        ("via", "1.1 proxy.example".to_owned()),
        // DNS rebinding: another site's name pointed at 127.0.0.1.
        ("host", format!("rebind.example:{port}")),
    ] {
        let response = client
            .get(server.url("/dev/inbox"))
            .header(name, value.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{name}: {value}");
        let html = response.text().await.unwrap();
        assert!(!html.contains("Development inbox"), "{name}: {html}");
    }
}

#[tokio::test]
async fn a_client_on_another_address_gets_nothing_and_serve_warns_at_start() {
    let address = host_address();
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_TLS__ENABLED", "false")
        .set("TWOFOLD_LISTEN", &format!("{address}:0"));
    let server = env.start();
    assert!(
        server.base.starts_with(&format!("http://{address}:")),
        "{}",
        server.banner
    );
    let client = server.client();
    let sign_in = client.get(server.url("/sign-in")).send().await.unwrap();
    assert_eq!(sign_in.status(), 200, "the server answers this client");
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    for host in [
        None,
        Some(format!("localhost:{port}")),
        Some(format!("127.0.0.1:{port}")),
    ] {
        let mut request = client.get(server.url("/dev/inbox"));
        if let Some(host) = &host {
            request = request.header("host", host.as_str());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 404, "Host: {host:?}");
        assert!(!response.text().await.unwrap().contains("Development inbox"));
    }
    let stderr = server.stderr();
    assert!(
        stderr.contains("a console channel runs on a listen address that is not loopback"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Fix: for development, listen on a loopback address"),
        "{stderr}"
    );
}

#[tokio::test]
async fn serve_on_loopback_does_not_warn_about_the_console_channel() {
    let env = Env::new(Backend::Sqlite).await;
    let server = env.start();
    let response = server
        .client()
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        !server.stderr().contains("console channel"),
        "{}",
        server.stderr()
    );
}

#[tokio::test]
async fn the_portal_on_its_own_host_has_no_inbox() {
    let env = Env::new(Backend::Sqlite).await.split();
    let portal = env.start();
    let response = portal
        .client()
        .get(portal.url("/dev/inbox"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let server = portal
        .behind
        .as_ref()
        .expect("the server behind the portal");
    // The server's certificate comes from the topology's test CA.
    let server_client = client_trusting(&env.dir.path().join("test-ca/ca.pem"), true);
    assert_eq!(
        server_client
            .get(server.url("/dev/inbox"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "the server itself, with its console channels, has one"
    );
}

#[tokio::test]
async fn an_unknown_channel_provider_stops_the_start_naming_the_key_the_value_and_the_choices() {
    for (key, value, name) in [
        ("TWOFOLD_CHANNELS__VOICE", "vonage", "channels.voice"),
        ("TWOFOLD_CHANNELS__EMAIL", "sendgrid", "channels.email"),
    ] {
        let env = Env::new(Backend::Sqlite).await.set(key, value);
        let err = env.start_fails();
        assert!(err.contains(&format!("`{name}` = \"{value}\"")), "{err}");
        assert!(err.contains(key), "{err}");
        assert!(err.contains("console"), "{err}");
    }
}
