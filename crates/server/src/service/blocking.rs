//! CPU-bound work (argon2, PBKDF2) off the async workers, a bounded number at a time.
//!
//! An argon2 verification takes tens of milliseconds of CPU; a password-protected PSKC
//! file's PBKDF2 may take seconds to minutes. Run on a Tokio worker, either stalls every
//! request that worker would have served, `/healthz` included. `spawn_blocking` alone moves
//! them off the workers but queues without bound: a flood of password guesses would start
//! hundreds of blocking threads (Tokio allows 512) and keep them all busy. A [`BlockingPool`]
//! lets at most `permits` jobs run at once; the others wait as ordinary async tasks, in
//! order (Tokio's semaphore is fair), holding no thread.

use super::ServiceError;
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct BlockingPool {
    permits: Arc<Semaphore>,
}

impl BlockingPool {
    /// A pool that runs at most `permits` jobs at once (at least one).
    pub fn new(permits: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
        }
    }

    /// One job at a time per core: hashing cannot use more CPU than there is.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `job` on Tokio's blocking threads once a permit is free.
    pub async fn run<T, F>(&self, job: F) -> Result<T, ServiceError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| ServiceError::Internal("the blocking pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _held_until_done = permit;
            job()
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("a blocking job failed: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_jobs_run_at_once_than_the_pool_has_permits() {
        let pool = BlockingPool::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..12 {
            let (pool, running, most) = (pool.clone(), running.clone(), most.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        for job in jobs {
            assert!(matches!(job.await, Ok(Ok(()))));
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} jobs ran at once");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_async_worker_stays_free_while_a_job_runs() {
        // One worker thread: if the job ran on it, the timer below could not fire first.
        let pool = BlockingPool::new(1);
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let job = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(move || wait.recv_timeout(Duration::from_secs(30)))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!job.is_finished(), "the job waits for its release");
        assert!(release.send(()).is_ok());
        assert!(matches!(job.await, Ok(Ok(Ok(())))));
    }
}
