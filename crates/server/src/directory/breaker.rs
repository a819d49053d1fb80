//! A circuit breaker around a remote directory (LDAP, RADIUS).
//!
//! A directory that stops answering must not take the server down with it: every sign-in
//! would wait the whole timeout, pile up, and keep hammering a server that is trying to
//! come back. The breaker counts failures in a row; after [`Breaker::TRIPS_AFTER`], it
//! opens and answers "unavailable" at once, without asking the directory, for a cool-down
//! that doubles while the directory stays down (up to [`Breaker::LONGEST_COOL_DOWN`]).
//! When a cool-down ends, one request (a sign-in, or `/readyz`) asks the directory again: an
//! answer closes the breaker and everything works again, without a restart.
//!
//! The breaker also bounds every call by a deadline, so that a directory that hangs (a
//! TCP connection that never answers) costs a request at most that long, whatever the
//! directory's own timeouts do.

use super::{Directory, DirectoryError, DirectoryOutcome};
use async_trait::async_trait;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use twofold_engine::Username;

/// Where the breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Circuit {
    /// Calls go through; `failures` in a row so far.
    Closed { failures: u32 },
    /// Calls are refused until `until`; the next cool-down lasts `next`.
    Open { until: Instant, next: Duration },
    /// One call is asking the directory whether it is back; the others are refused.
    Probing { next: Duration },
}

/// A directory behind a circuit breaker and a deadline.
pub struct Breaker {
    inner: Box<dyn Directory>,
    deadline: Duration,
    circuit: Mutex<Circuit>,
}

impl Breaker {
    /// Failures in a row that open the breaker.
    pub const TRIPS_AFTER: u32 = 3;
    /// The first cool-down.
    pub const FIRST_COOL_DOWN: Duration = Duration::from_secs(2);
    /// The longest cool-down: a directory that comes back is used again within this time.
    pub const LONGEST_COOL_DOWN: Duration = Duration::from_secs(30);

    /// `deadline` bounds every call to the directory, whatever it does.
    pub fn new(inner: Box<dyn Directory>, deadline: Duration) -> Self {
        Self {
            inner,
            deadline,
            circuit: Mutex::new(Circuit::Closed { failures: 0 }),
        }
    }

    fn circuit(&self) -> std::sync::MutexGuard<'_, Circuit> {
        // A poisoned lock only means a panic elsewhere mid-update: the state is still a
        // valid state.
        self.circuit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unavailable(&self, reason: String) -> DirectoryError {
        DirectoryError::Unavailable {
            directory: self.inner.kind(),
            reason,
        }
    }

    /// May a call go to the directory now?
    fn admit(&self) -> Result<(), DirectoryError> {
        let mut circuit = self.circuit();
        match *circuit {
            Circuit::Closed { .. } => Ok(()),
            Circuit::Open { until, next } if Instant::now() >= until => {
                *circuit = Circuit::Probing { next };
                Ok(())
            }
            Circuit::Open { until, .. } => {
                let wait = until.saturating_duration_since(Instant::now());
                Err(self.unavailable(format!(
                    "it failed {} times in a row; it is asked again in {} s",
                    Self::TRIPS_AFTER,
                    wait.as_secs().max(1)
                )))
            }
            Circuit::Probing { .. } => Err(self.unavailable(
                "it failed several times in a row; another request is checking whether it is back"
                    .to_owned(),
            )),
        }
    }

    /// Records how a call went.
    fn settle(&self, answered: bool) {
        let mut circuit = self.circuit();
        let before = *circuit;
        *circuit = match (before, answered) {
            (_, true) => Circuit::Closed { failures: 0 },
            (Circuit::Closed { failures }, false) if failures + 1 < Self::TRIPS_AFTER => {
                Circuit::Closed {
                    failures: failures + 1,
                }
            }
            (Circuit::Closed { .. }, false) => Circuit::Open {
                until: Instant::now() + Self::FIRST_COOL_DOWN,
                next: (Self::FIRST_COOL_DOWN * 2).min(Self::LONGEST_COOL_DOWN),
            },
            (Circuit::Probing { next }, false) => Circuit::Open {
                until: Instant::now() + next,
                next: (next * 2).min(Self::LONGEST_COOL_DOWN),
            },
            // A call admitted before the breaker opened failed too: the breaker stays as
            // it is.
            (open @ Circuit::Open { .. }, false) => open,
        };
        let after = *circuit;
        drop(circuit);
        match (before, after) {
            (Circuit::Closed { .. }, Circuit::Open { until, .. })
            | (Circuit::Probing { .. }, Circuit::Open { until, .. }) => {
                tracing::warn!(
                    directory = self.inner.kind(),
                    retry_in_seconds = until.saturating_duration_since(Instant::now()).as_secs(),
                    "the directory does not answer: sign-ins are refused at once until it is asked again"
                );
            }
            (Circuit::Probing { .. } | Circuit::Open { .. }, Circuit::Closed { .. }) => {
                tracing::info!(
                    directory = self.inner.kind(),
                    "the directory answers again: sign-ins go through"
                );
            }
            _ => {}
        }
    }

    /// Runs `call` through the breaker and under the deadline.
    async fn guarded<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, DirectoryError>>,
    ) -> Result<T, DirectoryError> {
        self.admit()?;
        // A call dropped half-way (the client went away, an outer timeout) counts as a
        // failure: a probe that never reports would leave the breaker probing for ever.
        let mut pending = Unsettled(Some(self));
        let result = match tokio::time::timeout(self.deadline, call).await {
            Ok(result) => result,
            Err(_) => Err(self.unavailable(format!(
                "no answer within {} s",
                self.deadline.as_secs_f32()
            ))),
        };
        pending.0 = None;
        self.settle(result.is_ok());
        result
    }
}

/// A call in progress; settles as a failure if dropped before it ends.
struct Unsettled<'a>(Option<&'a Breaker>);

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if let Some(breaker) = self.0.take() {
            breaker.settle(false);
        }
    }
}

#[async_trait]
impl Directory for Breaker {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    fn account_name(&self, login: &Username) -> Username {
        self.inner.account_name(login)
    }

    async fn check_password(
        &self,
        username: &Username,
        password: &str,
    ) -> Result<DirectoryOutcome, DirectoryError> {
        self.guarded(self.inner.check_password(username, password))
            .await
    }

    async fn health(&self) -> Result<(), DirectoryError> {
        if self.inner.checks_health() {
            return self.guarded(self.inner.health()).await;
        }
        // Nothing to ask: the directory is as the last sign-ins found it. (A probe that
        // asked nothing must not close the breaker.)
        match *self.circuit() {
            Circuit::Closed { .. } => Ok(()),
            Circuit::Open { .. } | Circuit::Probing { .. } => {
                Err(self.unavailable("the last sign-ins found it not answering".to_owned()))
            }
        }
    }

    fn checks_health(&self) -> bool {
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    /// A directory that is up or down, or hangs, as the test says, and counts its calls.
    #[derive(Default)]
    struct Switch {
        down: AtomicBool,
        hangs: AtomicBool,
        asked: AtomicU32,
    }

    struct Remote(Arc<Switch>);

    #[async_trait]
    impl Directory for Remote {
        fn kind(&self) -> &'static str {
            "ldap"
        }
        async fn check_password(
            &self,
            _username: &Username,
            _password: &str,
        ) -> Result<DirectoryOutcome, DirectoryError> {
            self.0.asked.fetch_add(1, Ordering::SeqCst);
            if self.0.hangs.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            if self.0.down.load(Ordering::SeqCst) {
                Err(DirectoryError::Unavailable {
                    directory: "ldap",
                    reason: "connection refused".into(),
                })
            } else {
                Ok(DirectoryOutcome::Rejected)
            }
        }
    }

    fn breaker() -> (Breaker, Arc<Switch>) {
        let switch = Arc::new(Switch::default());
        let breaker = Breaker::new(Box::new(Remote(switch.clone())), Duration::from_secs(5));
        (breaker, switch)
    }

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_directory_is_left_alone_after_three_failures_and_used_again_when_back() {
        let (breaker, switch) = breaker();
        switch.down.store(true, Ordering::SeqCst);
        for _ in 0..10 {
            assert!(breaker.check_password(&alice(), "pw").await.is_err());
        }
        assert_eq!(
            switch.asked.load(Ordering::SeqCst),
            Breaker::TRIPS_AFTER,
            "after three failures the directory is not asked"
        );
        // It comes back; once the cool-down is over, the next sign-in goes through.
        switch.down.store(false, Ordering::SeqCst);
        tokio::time::advance(Breaker::FIRST_COOL_DOWN).await;
        assert_eq!(
            breaker.check_password(&alice(), "pw").await,
            Ok(DirectoryOutcome::Rejected)
        );
        assert_eq!(
            breaker.check_password(&alice(), "pw").await,
            Ok(DirectoryOutcome::Rejected)
        );
        assert_eq!(
            switch.asked.load(Ordering::SeqCst),
            Breaker::TRIPS_AFTER + 2
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_cool_down_doubles_while_the_directory_stays_down_and_is_capped() {
        let (breaker, switch) = breaker();
        switch.down.store(true, Ordering::SeqCst);
        for _ in 0..Breaker::TRIPS_AFTER {
            let _ = breaker.check_password(&alice(), "pw").await;
        }
        let mut cool_down = Breaker::FIRST_COOL_DOWN;
        for _ in 0..8 {
            let asked = switch.asked.load(Ordering::SeqCst);
            tokio::time::advance(cool_down - Duration::from_millis(10)).await;
            let _ = breaker.check_password(&alice(), "pw").await;
            assert_eq!(switch.asked.load(Ordering::SeqCst), asked, "not yet");
            tokio::time::advance(Duration::from_millis(10)).await;
            let _ = breaker.check_password(&alice(), "pw").await;
            assert_eq!(switch.asked.load(Ordering::SeqCst), asked + 1, "one probe");
            cool_down = (cool_down * 2).min(Breaker::LONGEST_COOL_DOWN);
        }
        assert_eq!(cool_down, Breaker::LONGEST_COOL_DOWN);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hanging_directory_costs_a_request_the_deadline_and_no_more() {
        let (breaker, switch) = breaker();
        switch.hangs.store(true, Ordering::SeqCst);
        let started = Instant::now();
        let result = breaker.check_password(&alice(), "pw").await;
        assert!(
            matches!(&result, Err(DirectoryError::Unavailable { reason, .. }) if reason.contains("no answer within 5")),
            "{result:?}"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_abandoned_half_way_does_not_leave_the_breaker_stuck() {
        let (breaker, switch) = breaker();
        switch.down.store(true, Ordering::SeqCst);
        for _ in 0..Breaker::TRIPS_AFTER {
            let _ = breaker.check_password(&alice(), "pw").await;
        }
        tokio::time::advance(Breaker::FIRST_COOL_DOWN).await;
        switch.down.store(false, Ordering::SeqCst);
        switch.hangs.store(true, Ordering::SeqCst);
        // The probe's caller gives up after a second (a client that went away).
        let abandoned = tokio::time::timeout(
            Duration::from_secs(1),
            breaker.check_password(&alice(), "pw"),
        )
        .await;
        assert!(abandoned.is_err());
        // The directory is fine again: after the next cool-down, sign-ins go through.
        switch.hangs.store(false, Ordering::SeqCst);
        tokio::time::advance(Breaker::LONGEST_COOL_DOWN).await;
        assert_eq!(
            breaker.check_password(&alice(), "pw").await,
            Ok(DirectoryOutcome::Rejected)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_directory_that_cannot_be_asked_is_reported_as_the_last_sign_ins_found_it() {
        let (breaker, switch) = breaker();
        assert_eq!(breaker.health().await, Ok(()));
        switch.down.store(true, Ordering::SeqCst);
        for _ in 0..Breaker::TRIPS_AFTER {
            let _ = breaker.check_password(&alice(), "pw").await;
        }
        let asked = switch.asked.load(Ordering::SeqCst);
        // Past the cool-down too: /readyz asks nothing and does not close the breaker.
        tokio::time::advance(Breaker::FIRST_COOL_DOWN).await;
        assert!(breaker.health().await.is_err());
        assert!(breaker.health().await.is_err());
        assert_eq!(switch.asked.load(Ordering::SeqCst), asked);
        // The next sign-in probes; the directory is back, and so is the health.
        switch.down.store(false, Ordering::SeqCst);
        assert!(breaker.check_password(&alice(), "pw").await.is_ok());
        assert_eq!(breaker.health().await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn while_one_request_checks_a_recovering_directory_the_others_are_refused_at_once() {
        let (breaker, switch) = breaker();
        switch.down.store(true, Ordering::SeqCst);
        for _ in 0..Breaker::TRIPS_AFTER {
            let _ = breaker.check_password(&alice(), "pw").await;
        }
        tokio::time::advance(Breaker::FIRST_COOL_DOWN).await;
        switch.down.store(false, Ordering::SeqCst);
        switch.hangs.store(true, Ordering::SeqCst);
        let breaker = Arc::new(breaker);
        let probe = {
            let breaker = breaker.clone();
            tokio::spawn(async move { breaker.check_password(&alice(), "pw").await })
        };
        tokio::task::yield_now().await;
        let other = breaker.check_password(&alice(), "pw").await;
        assert!(
            matches!(&other, Err(DirectoryError::Unavailable { reason, .. }) if reason.contains("checking")),
            "{other:?}"
        );
        assert!(probe.await.unwrap().is_err(), "the probe hit the deadline");
    }
}
