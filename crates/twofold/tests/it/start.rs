//! A bad configuration or an unusable database stops the start with a clear message.

use crate::support::*;

#[tokio::test]
async fn a_bad_listen_address_names_the_key_the_value_and_the_fix() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_LISTEN", "localhost");
    let err = env.start_fails();
    assert!(err.contains("`listen` = \"localhost\""), "{err}");
    assert!(err.contains("TWOFOLD_LISTEN"), "{err}");
    assert!(err.contains("127.0.0.1:8443"), "{err}");
}

#[tokio::test]
async fn an_unknown_key_in_the_file_is_named_and_nothing_starts() {
    let env = Env::new(Backend::Sqlite).await;
    let file = env.dir.path().join("twofold.toml");
    std::fs::write(&file, "[database]\nmax_conections = 4\n").unwrap();
    let env = env.set("TWOFOLD_CONFIG", &file.display().to_string());
    let err = env.start_fails();
    assert!(
        err.contains("unknown configuration key `database.max_conections`"),
        "{err}"
    );
    assert!(
        err.contains("max_connections"),
        "the allowed keys are listed: {err}"
    );
    assert!(
        !env.data_dir().join("twofold.db").exists(),
        "nothing was created"
    );
}

#[tokio::test]
async fn malformed_toml_is_reported_with_its_line() {
    let env = Env::new(Backend::Sqlite).await;
    let file = env.dir.path().join("twofold.toml");
    std::fs::write(&file, "listen = \"127.0.0.1:0\"\n[tls\nenabled = true\n").unwrap();
    let err = env
        .set("TWOFOLD_CONFIG", &file.display().to_string())
        .start_fails();
    assert!(err.contains("line 2"), "{err}");
}

#[tokio::test]
async fn an_unreadable_certificate_stops_the_start() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_TLS__CERT_FILE", "/nonexistent/cert.pem")
        .set("TWOFOLD_TLS__KEY_FILE", "/nonexistent/key.pem");
    let err = env.start_fails();
    assert!(
        err.contains("tls.cert_file = /nonexistent/cert.pem: cannot be read"),
        "{err}"
    );
}

#[tokio::test]
async fn a_certificate_file_without_a_certificate_is_refused() {
    let env = Env::new(Backend::Sqlite).await;
    let cert = env.dir.path().join("cert.pem");
    std::fs::write(&cert, "this is not PEM\n").unwrap();
    let env = env
        .set("TWOFOLD_TLS__CERT_FILE", &cert.display().to_string())
        .set("TWOFOLD_TLS__KEY_FILE", &cert.display().to_string());
    let err = env.start_fails();
    assert!(err.contains("holds no PEM certificate"), "{err}");
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_without_printing_its_password() {
    let env = Env::new(Backend::Sqlite)
        .await
        .set(
            "TWOFOLD_DATABASE__URL",
            "postgres://twofold:s3cret-pw@127.0.0.1:9/twofold",
        )
        .set("TWOFOLD_DATABASE__CONNECT_TIMEOUT_SECONDS", "2");
    let err = env.start_fails();
    assert!(err.contains("cannot be reached"), "{err}");
    assert!(err.contains("PostgreSQL at 127.0.0.1:9/twofold"), "{err}");
    assert!(err.contains("Fix:"), "{err}");
    assert!(!err.contains("s3cret-pw"), "{err}");
}

#[tokio::test]
async fn a_read_only_database_stops_the_start() {
    let env = Env::new(Backend::Postgres).await;
    let url = env.vars["TWOFOLD_DATABASE__URL"].clone();
    let db = url.rsplit('/').next().unwrap().to_owned();
    postgres_admin(&format!(
        "ALTER DATABASE {db} SET default_transaction_read_only = on;"
    ))
    .await;
    let err = env.start_fails();
    assert!(err.contains("is read-only"), "{err}");
}

#[tokio::test]
async fn the_port_in_use_is_a_clear_error() {
    let env = Env::new(Backend::Sqlite).await;
    let first = env.start();
    let port = first.base.rsplit(':').next().unwrap().to_owned();
    let second = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_LISTEN", &format!("127.0.0.1:{port}"));
    let err = second.start_fails();
    assert!(err.contains("cannot listen there"), "{err}");
}
