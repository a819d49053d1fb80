//! The admin console's permissions as a table: every route the console declares (`twofold
//! admin routes`), asked by an administrator without its permission, with it for another
//! group, and with it for the user's own group.

use crate::console::*;
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;

/// The routes anyone may open, and those any administrator may.
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/admin/sign-in"),
    ("POST", "/admin/sign-in"),
    ("GET", "/admin/bootstrap"),
    ("POST", "/admin/bootstrap"),
];
const ANY_ADMIN: &[(&str, &str)] = &[("GET", "/admin"), ("POST", "/admin/sign-out")];

struct Route {
    method: String,
    path: String,
    needs: String,
}

impl Route {
    fn about_a_user(&self) -> bool {
        self.path.contains("{username}")
    }

    /// The path with its parameters filled: the user is `user`, any other id a made-up one.
    fn concrete(&self, user: &str) -> String {
        let mut out = String::new();
        for segment in self.path.split('/').skip(1) {
            out.push('/');
            if segment == "{username}" {
                out.push_str(user);
            } else if segment.starts_with('{') {
                out.push('0');
            } else {
                out.push_str(segment);
            }
        }
        out
    }
}

fn declared(env: &Env) -> Vec<Route> {
    env.cli_ok(&["admin", "routes", "--json"], "")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Route {
                method: v["method"].as_str().unwrap().to_owned(),
                path: v["path"].as_str().unwrap().to_owned(),
                needs: v["needs"].as_str().unwrap().to_owned(),
            }
        })
        .collect()
}

const ALL: [&str; 15] = [
    "users.read",
    "users.create",
    "users.update",
    "users.delete",
    "users.factors",
    "users.credentials",
    "users.bypass",
    "users.block",
    "tokens.import",
    "directory.sync",
    "audit.read",
    "audit.export",
    "reports.read",
    "settings.write",
    "admins.manage",
];

/// The console's refusal for want of a permission (403, with its message): not to be
/// confused with a 403 of the domain, such as a bypass while bypasses are turned off.
const REFUSED: u16 = 0;

/// Asks `route` about `user`: [`REFUSED`] for the console's permission refusal, else the
/// status.
async fn ask(console: &Console, route: &Route, user: &str) -> u16 {
    let path = route.concrete(user);
    let response = match route.method.as_str() {
        "GET" => console.get(&path).await,
        "POST" => console.post(&path, &[]).await,
        other => panic!("a console route with method {other}"),
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status == 403 && body.contains("You do not have the permission this needs") {
        REFUSED
    } else {
        status
    }
}

/// Makes `name` an administrator with `args` and signs them in.
async fn admin(env: &Env, server: &Server, sdk: &Sdk, name: &str, args: &[&str]) -> Console {
    let seed = sdk.user_with_app(server, name).await;
    let mut cli = vec!["admin", "add", name];
    cli.extend_from_slice(args);
    env.cli_ok(&cli, "");
    Console::sign_in(server, name, &seed).await
}

#[tokio::test]
async fn every_console_route_declares_what_it_needs_and_refuses_everyone_else() {
    // Some forty administrators sign in from 127.0.0.1 within a minute or two: above the
    // per-address limits a real office would meet, so they are raised here.
    let env = Env::new(Backend::Sqlite)
        .await
        .set("TWOFOLD_LIMITS__SIGN_IN_PER_IP_PER_MINUTE", "100000")
        .set("TWOFOLD_LIMITS__SECOND_FACTOR_PER_IP_PER_MINUTE", "100000");
    env.add_user("sam", PASSWORD);
    env.add_user("olga", PASSWORD);
    env.cli_ok(&["group", "add", "Sales", "sam"], "");
    env.cli_ok(&["group", "add", "Other", "olga"], "");
    let routes = declared(&env);
    assert!(routes.len() > 5, "the console declares its routes");

    // Every route needs something, and only the sign-in and the bootstrap link are open.
    let mut permissions = BTreeSet::new();
    for r in &routes {
        assert!(
            r.path == "/admin" || r.path.starts_with("/admin/"),
            "{}",
            r.path
        );
        let key = (r.method.as_str(), r.path.as_str());
        match r.needs.as_str() {
            "public" => assert!(PUBLIC.contains(&key), "{key:?} must not be public"),
            "admin" => assert!(ANY_ADMIN.contains(&key), "{key:?} needs a permission"),
            p => {
                assert!(ALL.contains(&p), "{key:?} needs an unknown permission {p}");
                permissions.insert(p.to_owned());
            }
        }
    }

    // Every permission opens at least one page or form (the directory sync is run with
    // `twofold users sync` and on its schedule; the console has no form for it yet).
    for p in ALL.iter().filter(|p| **p != "directory.sync") {
        assert!(permissions.contains(*p), "no console route needs {p}");
    }

    let server = env.start();
    let (sdk, _owner) = owner_console(&env, &server).await;
    let mut checked = 0;
    // Destructive routes last, so the user they name is there for the others.
    let mut ordered: Vec<&Route> = routes.iter().collect();
    ordered.sort_by_key(|r| r.path.contains("delete"));
    for (i, permission) in permissions.iter().enumerate() {
        let mine: Vec<&&Route> = ordered.iter().filter(|r| r.needs == *permission).collect();
        // Everything but this permission, for everyone.
        let mut args: Vec<&str> = Vec::new();
        for p in ALL.iter().filter(|p| **p != permission.as_str()) {
            args.push("--permission");
            args.push(p);
        }
        let without = admin(&env, &server, &sdk, &format!("without{i}"), &args).await;
        for r in &mine {
            assert_eq!(
                ask(&without, r, "sam").await,
                REFUSED,
                "{} {} without {permission}",
                r.method,
                r.path
            );
            checked += 1;
        }
        if permission.starts_with("users.") {
            // This permission for another group: nothing about sam, nor about nobody.
            let other = admin(
                &env,
                &server,
                &sdk,
                &format!("other{i}"),
                &["--permission", permission, "--scope", "group:Other"],
            )
            .await;
            let sales = admin(
                &env,
                &server,
                &sdk,
                &format!("sales{i}"),
                &["--permission", permission, "--scope", "group:Sales"],
            )
            .await;
            for r in mine.iter().filter(|r| r.about_a_user()) {
                assert_eq!(
                    ask(&other, r, "sam").await,
                    REFUSED,
                    "{} {} for Other",
                    r.method,
                    r.path
                );
                assert_eq!(
                    ask(&other, r, "nobody-by-that-name").await,
                    REFUSED,
                    "{} {} for a user who does not exist",
                    r.method,
                    r.path
                );
                assert_ne!(
                    ask(&sales, r, "sam").await,
                    REFUSED,
                    "{} {} for Sales",
                    r.method,
                    r.path
                );
                checked += 3;
            }
        } else {
            let holder = admin(
                &env,
                &server,
                &sdk,
                &format!("holder{i}"),
                &["--permission", permission],
            )
            .await;
            for r in &mine {
                assert_ne!(
                    ask(&holder, r, "sam").await,
                    REFUSED,
                    "{} {} with {permission}",
                    r.method,
                    r.path
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= routes.len() - PUBLIC.len() - ANY_ADMIN.len());
}
