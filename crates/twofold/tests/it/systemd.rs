//! What systemd sees of the server: readiness and shutdown through NOTIFY_SOCKET
//! (`Type=notify` in the package's units), and the first-user instructions it logs.

use crate::support::*;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// A NOTIFY_SOCKET as systemd makes one: a datagram socket the service writes to.
struct NotifySocket {
    socket: UnixDatagram,
    path: String,
}

impl NotifySocket {
    fn new(env: &Env) -> NotifySocket {
        let path = env.dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        NotifySocket {
            socket,
            path: path.display().to_string(),
        }
    }

    /// The next notice (one datagram, one `KEY=value` a line).
    fn next(&self) -> String {
        let mut buffer = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buffer)
            .expect("a notice on NOTIFY_SOCKET within 30 s");
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }
}

#[tokio::test]
async fn serve_tells_systemd_it_is_ready_once_readyz_answers_and_that_it_stops_on_sigterm() {
    let env = Env::new(Backend::Sqlite).await;
    let notify = NotifySocket::new(&env);
    let env = env.set("NOTIFY_SOCKET", &notify.path);
    let mut server = env.start();

    let ready = notify.next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let port = server.base.rsplit(':').next().unwrap();
    assert!(
        ready
            .lines()
            .any(|l| l == format!("STATUS=Twofold: listening on 127.0.0.1:{port}")),
        "{ready:?}"
    );
    // By then the store is open and the server answers.
    let readyz = server
        .client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);

    let status = server.terminate();
    let stopping = notify.next();
    assert_eq!(stopping.trim_end(), "STOPPING=1");
    assert!(status.success(), "{status:?}: {}", server.stderr());
}

#[tokio::test]
async fn the_split_portal_tells_systemd_it_is_ready_too() {
    let env = Env::new(Backend::Sqlite).await.split();
    let notify = NotifySocket::new(&env);
    // Both processes get the variable here; each says who it is in STATUS.
    let env = env.set("NOTIFY_SOCKET", &notify.path);
    let mut portal = env.start();
    let notices = [notify.next(), notify.next()];
    let port = portal.base.rsplit(':').next().unwrap();
    let from_portal = notices
        .iter()
        .find(|n| n.contains("STATUS=Twofold portal:"))
        .unwrap_or_else(|| panic!("no notice from the portal: {notices:?}"));
    assert!(
        from_portal.lines().any(|l| l == "READY=1"),
        "{from_portal:?}"
    );
    assert!(
        from_portal.contains(&format!("listening on 127.0.0.1:{port}")),
        "{from_portal:?}"
    );
    assert!(portal.terminate().success());
}

#[tokio::test]
async fn a_notify_socket_that_cannot_be_reached_is_logged_and_the_server_still_serves() {
    let env = Env::new(Backend::Sqlite).await;
    let missing = env.dir.path().join("no-such-directory/notify");
    let env = env.set("NOTIFY_SOCKET", &missing.display().to_string());
    let server = env.start();
    let readyz = server
        .client()
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status(), 200);
    let started = std::time::Instant::now();
    while !server
        .stderr()
        .contains("could not notify the service manager")
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no warning about NOTIFY_SOCKET: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_server_started_with_a_configuration_file_prints_first_user_commands_that_name_it() {
    let env = Env::new(Backend::Sqlite).await;
    let file = env.dir.path().join("twofold.toml");
    std::fs::write(&file, "[log]\nlevel = \"warn\"\n").unwrap();
    let file = file.display().to_string();
    let env = env.set("TWOFOLD_CONFIG", &file);
    let server = env.start();
    // Started from the build directory: the commands go through cargo, with the file.
    assert!(
        server.banner.contains(&format!(
            "| cargo run --release -- --config {file} user add alice --password-stdin"
        )),
        "{}",
        server.banner
    );
    assert!(
        server.banner.contains(&format!(
            "twofold --config {file} user add alice --password-stdin"
        )),
        "{}",
        server.banner
    );
    assert!(
        server.banner.contains(&format!(
            "cargo run --release -- --config {file} admin add alice --role owner"
        )),
        "{}",
        server.banner
    );
}
