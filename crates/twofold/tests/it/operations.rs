//! Health, readiness, metrics, TLS, headers, proxies and the audit log.

use crate::support::*;

#[tokio::test]
async fn healthz_and_readyz_answer_over_https_with_a_self_signed_certificate_kept_across_restarts()
{
    let env = Env::new(Backend::Sqlite).await.password_only();
    let first = env.start();
    assert!(first.base.starts_with("https://127.0.0.1:"));
    assert!(
        first.banner.contains("self-signed, generated now"),
        "{}",
        first.banner
    );
    assert!(
        first.banner.contains("No users yet. Add the first one"),
        "{}",
        first.banner
    );
    let fingerprint = first
        .banner
        .lines()
        .find_map(|l| l.trim().strip_prefix("SHA-256:"))
        .map(|s| s.trim().to_owned())
        .expect("the fingerprint is printed");
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");

    // The certificate the client trusts is the one in the data directory, verified for real.
    let client = first.client();
    let health = client.get(first.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = client.get(first.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    drop(first);

    let second = env.start();
    assert!(second.banner.contains("(self-signed)"), "{}", second.banner);
    assert!(
        second.banner.contains(&fingerprint),
        "the same certificate after a restart"
    );
    assert_eq!(
        second
            .client()
            .get(second.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_configured_pem_certificate_is_used_as_given() {
    let source = Env::new(Backend::Sqlite).await.password_only();
    let generated = source.start();
    let fingerprint = generated
        .banner
        .lines()
        .find(|l| l.contains("SHA-256:"))
        .unwrap()
        .to_owned();
    drop(generated);
    let tls = source.data_dir().join("tls");
    let env = Env::new(Backend::Sqlite)
        .await
        .password_only()
        .set(
            "TWOFOLD_TLS__CERT_FILE",
            &tls.join("cert.pem").display().to_string(),
        )
        .set(
            "TWOFOLD_TLS__KEY_FILE",
            &tls.join("key.pem").display().to_string(),
        );
    let server = env.start();
    assert!(server.banner.contains("(configured)"), "{}", server.banner);
    assert!(server.banner.contains(&fingerprint));
    assert!(
        !env.data_dir().join("tls/cert.pem").exists(),
        "nothing generated"
    );
    let client = client_trusting(&tls.join("cert.pem"), true);
    assert_eq!(
        client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    let server = env.start();
    let client = server.client();
    for path in ["/sign-in", "/healthz", "/no-such-page"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        let h = response.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(
            h.get("strict-transport-security")
                .unwrap()
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert!(h.get("x-request-id").is_some());
    }
    let missing = client
        .get(server.url("/no-such-page"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let html = missing.text().await.unwrap();
    assert!(html.contains("There is no page at this address."), "{html}");
    let css = client
        .get(server.url("/static/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        css.headers().get("content-type").unwrap(),
        "text/css; charset=utf-8"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_sign_ins_by_result() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("mia", "mia's password");
    let server = env.start();
    let client = server.client();
    assert_eq!(
        sign_in(&client, &server, "mia", "mia's password")
            .await
            .status(),
        303
    );
    let other = server.client();
    assert_eq!(
        sign_in(&other, &server, "mia", "wrong password")
            .await
            .status(),
        401
    );
    let text = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("twofold_sign_ins_total{result=\"success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("twofold_sign_ins_total{result=\"failure\"} 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "twofold_http_requests_total{route=\"/sign-in\",method=\"GET\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("twofold_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn the_audit_log_records_sign_ins_with_address_and_agent_and_cli_changes() {
    let env = Env::new(Backend::Sqlite).await.password_only();
    env.add_user("noor", "noor's password");
    env.cli_ok(&["user", "set", "noor", "--email", "noor@example.com"], "");
    let server = env.start();
    let client = server.client();
    let token = sign_in_token(&client, &server).await;
    client
        .post(server.url("/sign-in"))
        .header("user-agent", "AuditTest/1.0")
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "noor"),
            ("password", "wrong password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        sign_in(&client, &server, "noor", "noor's password")
            .await
            .status(),
        303
    );

    let tail = env.cli_ok(&["audit", "tail", "--json", "-n", "50"], "");
    let events: Vec<serde_json::Value> = tail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let find = |action: &str, outcome: &str| {
        events
            .iter()
            .find(|e| e["action"] == action && e["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {action}/{outcome} in {tail}"))
    };
    let created = find("user_created", "success");
    assert_eq!(created["actor"], "cli:tester");
    assert_eq!(find("user_updated", "success")["detail"], "changed: email");
    let failed = find("sign_in", "failure");
    assert_eq!(failed["client_ip"], "127.0.0.1");
    assert_eq!(failed["user_agent"], "AuditTest/1.0");
    assert_eq!(failed["detail"], "invalid_credentials");
    assert_eq!(find("sign_in", "success")["subject"], "noor");
    assert!(
        !tail.contains("noor's password") && !tail.contains("wrong password"),
        "no secrets in the log"
    );

    let text = env.cli_ok(&["audit", "tail", "-n", "1"], "");
    assert!(
        text.contains("sign_in success actor=portal user=\"noor\" ip=\"127.0.0.1\""),
        "{text}"
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_plain_http_believes_forwarded_for_and_not_otherwise() {
    let env = Env::new(Backend::Sqlite)
        .await
        .password_only()
        .set("TWOFOLD_TLS__ENABLED", "false")
        .set("TWOFOLD_HTTP__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]");
    env.add_user("otto", "otto's password");
    let server = env.start();
    assert!(server.base.starts_with("http://"), "{}", server.banner);
    let client = server.client();
    let token = sign_in_token(&client, &server).await;
    client
        .post(server.url("/sign-in"))
        .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "otto"),
            ("password", "nope nope"),
        ])
        .send()
        .await
        .unwrap();
    let tail = env.cli_ok(&["audit", "tail", "-n", "1"], "");
    assert!(tail.contains("ip=\"203.0.113.9\""), "{tail}");
    drop(server);

    let untrusted = Env::new(Backend::Sqlite)
        .await
        .password_only()
        .set("TWOFOLD_TLS__ENABLED", "false");
    let server = untrusted.start();
    let client = server.client();
    let token = sign_in_token(&client, &server).await;
    client
        .post(server.url("/sign-in"))
        .header("x-forwarded-for", "203.0.113.9")
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "otto"),
            ("password", "nope nope"),
        ])
        .send()
        .await
        .unwrap();
    let tail = untrusted.cli_ok(&["audit", "tail", "-n", "1"], "");
    assert!(tail.contains("ip=\"127.0.0.1\""), "{tail}");
}

#[tokio::test]
async fn readyz_says_503_while_postgresql_refuses_connections_or_writes_and_recovers() {
    let env = Env::new(Backend::Postgres).await.password_only();
    let url = env.vars["TWOFOLD_DATABASE__URL"].clone();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let server = env.start();
    let client = server.client();
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let token = sign_in_token(&client, &server).await;

    let cut = format!(
        "ALTER DATABASE {db} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';"
    );
    postgres_admin(&cut).await;
    let ready = client.get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    // The portal says so in words, not with a trace.
    let page = client
        .post(server.url("/sign-in"))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "x"),
            ("password", "y"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 503, "{}", server.stderr());
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("temporarily unavailable")
    );

    postgres_admin(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true;")).await;
    let mut recovered = false;
    for _ in 0..50 {
        if client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            == 200
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(recovered, "ready again once the database is back");

    let read_only = format!(
        "ALTER DATABASE {db} SET default_transaction_read_only = on; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}';"
    );
    postgres_admin(&read_only).await;
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
}
