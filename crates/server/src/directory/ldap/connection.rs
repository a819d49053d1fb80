//! Connections to the directory: opened with TLS as configured, every step bounded by the
//! timeout, and a small pool of connections bound as the service account for searches.

use crate::directory::DirectoryError;
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use rustls::ClientConfig;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

pub(super) fn unavailable(reason: impl Into<String>) -> DirectoryError {
    DirectoryError::Unavailable {
        directory: "ldap",
        reason: reason.into(),
    }
}

/// One open connection. Dropping it stops the task that drives it, which closes the
/// socket: a connection that timed out or failed is never used again.
pub(super) struct Connection {
    pub(super) ldap: Ldap,
    driver: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// How to reach the directory.
pub(super) struct Connector {
    pub(super) url: String,
    pub(super) starttls: bool,
    pub(super) tls: Arc<ClientConfig>,
    pub(super) timeout: Duration,
}

impl Connector {
    /// Runs one directory operation, bounded by the timeout. `what` names it for the
    /// operator ("StartTLS", "the service account's bind").
    pub(super) async fn bounded<T>(
        &self,
        what: &str,
        operation: impl Future<Output = Result<T, LdapError>>,
    ) -> Result<T, DirectoryError> {
        let too_slow = || {
            unavailable(format!(
                "{} did not answer {what} within {} s (ldap.timeout_seconds)",
                self.url,
                self.timeout.as_secs()
            ))
        };
        match tokio::time::timeout(self.timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(LdapError::Timeout { .. })) | Err(_) => Err(too_slow()),
            Ok(Err(e)) => Err(unavailable(format!("{} ({what}): {e}", self.url))),
        }
    }

    /// Opens a connection: TCP, then TLS (LDAPS) or StartTLS as configured, within the
    /// timeout.
    pub(super) async fn connect(&self) -> Result<Connection, DirectoryError> {
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls)
            .set_config(self.tls.clone());
        let what = if self.starttls {
            "the connection and StartTLS"
        } else {
            "the connection"
        };
        let (conn, ldap) = self
            .bounded(what, LdapConnAsync::with_settings(settings, &self.url))
            .await?;
        let driver = tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(error = %e, "LDAP connection closed");
            }
        });
        Ok(Connection { ldap, driver })
    }
}

/// Connections bound as the service account, at most `size` at once: a sign-in waits (at
/// most the timeout) for one to be free rather than opening more.
pub(super) struct Pool {
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

/// A connection taken from the pool. Give it back with [`Pool::put`] after an operation
/// that went well; dropped otherwise, it is closed.
pub(super) struct Pooled {
    pub(super) connection: Connection,
    /// Whether the connection had served before (it may have gone stale since).
    pub(super) reused: bool,
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub(super) fn new(size: usize) -> Self {
        Self {
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    /// A connection bound as the service account: an idle one that is still open, or a
    /// new one.
    pub(super) async fn take(
        &self,
        connector: &Connector,
        bind_dn: &str,
        bind_password: &str,
    ) -> Result<Pooled, DirectoryError> {
        let permit = tokio::time::timeout(connector.timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                unavailable(format!(
                    "every connection to {} stayed busy for {} s (ldap.pool_size, ldap.timeout_seconds)",
                    connector.url,
                    connector.timeout.as_secs()
                ))
            })?
            .map_err(|_| unavailable("the connection pool is closed"))?;
        while let Some(mut connection) = self.pop_idle() {
            if !connection.ldap.is_closed() {
                return Ok(Pooled {
                    connection,
                    reused: true,
                    _permit: permit,
                });
            }
        }
        let mut connection = connector.connect().await?;
        let result = connector
            .bounded(
                "the service account's bind",
                connection.ldap.simple_bind(bind_dn, bind_password),
            )
            .await?;
        if result.rc != 0 {
            return Err(unavailable(format!(
                "{} refused the service account {bind_dn:?} (result {}: {}). Fix: check ldap.bind_dn and its password",
                connector.url, result.rc, result.text
            )));
        }
        Ok(Pooled {
            connection,
            reused: false,
            _permit: permit,
        })
    }

    fn pop_idle(&self) -> Option<Connection> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    /// Keeps a connection that just served well for the next operation.
    pub(super) fn put(&self, pooled: Pooled) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(pooled.connection);
        }
    }
}
