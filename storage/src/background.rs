//! Threads for the slow file work that must not run under a partition's lock, on the
//! thread serving a request. On this machine's filesystem, mounted with `discard`,
//! freeing a file's blocks waits for the device: 40 ms to unlink 64 MiB, 0.75 s for a
//! 1 GiB segment.
//! - `sluice-files` ([`run`]) syncs rolled segments (then moves the recovery point) and
//!   removes deleted segments. One thread serves the whole process, as Kafka's log
//!   scheduler does: work on one disk gains nothing from running side by side, and jobs
//!   of one partition then run in the order they were queued, which the recovery point
//!   relies on. Shutdown waits for it.
//! - `sluice-removals` ([`run_removal`]) removes deleted partitions' directories, which
//!   are renamed away first; shutdown does not wait for it.
//! - `sluice-reserve` ([`run_reservation`]) reserves disk blocks ahead of busy segments
//!   ([`crate::reserve`]). Not `sluice-files`: a reservation must not wait behind the
//!   sync of a rolled gigabyte. It hands the release of what a sealed segment did not
//!   use to `sluice-files`, after the segment's reservations.

use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

/// A named thread running queued jobs in order, started on first use.
struct Worker {
    name: &'static str,
    tx: OnceLock<Mutex<Sender<Job>>>,
}

impl Worker {
    const fn new(name: &'static str) -> Self {
        Worker {
            name,
            tx: OnceLock::new(),
        }
    }

    fn run(&self, job: Job) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel::<Job>();
            let name = self.name;
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    for job in rx {
                        // One job's panic must not drop the jobs queued after it.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            tracing::error!(thread = name, "a background file job panicked");
                        }
                    }
                })
                .expect("spawning a background file thread");
            Mutex::new(tx)
        });
        let sent = tx.lock().unwrap_or_else(|p| p.into_inner()).send(job);
        if let Err(mpsc::SendError(job)) = sent {
            // Unreachable in practice (the thread catches panics); never lose the work.
            job();
        }
    }
}

static FILES: Worker = Worker::new("sluice-files");

/// Removing directories that were renamed away (deleted partitions). Not waited for at
/// shutdown: a removal cut short leaves a `*-delete` directory that the next start
/// queues again, and a shutdown must not wait 0.6 s per GB of deleted data.
static REMOVALS: Worker = Worker::new("sluice-removals");

static RESERVATIONS: Worker = Worker::new("sluice-reserve");

/// Runs `job` on the background thread, after every job queued before it.
pub fn run(job: impl FnOnce() + Send + 'static) {
    FILES.run(Box::new(job));
}

/// Runs `job`, which reserves or releases a segment's blocks, after every such job
/// queued before it.
pub fn run_reservation(job: impl FnOnce() + Send + 'static) {
    RESERVATIONS.run(Box::new(job));
}

/// Blocks until every job queued so far with [`run`] and [`run_reservation`] has run
/// (clean shutdown, tests). Reservation jobs may queue file jobs, never the reverse, so
/// they are waited for first.
pub fn wait_idle() {
    for worker in [&RESERVATIONS, &FILES] {
        let (tx, rx) = mpsc::channel();
        worker.run(Box::new(move || {
            let _ = tx.send(());
        }));
        let _ = rx.recv();
    }
}

/// Runs `job`, which removes files no longer reachable under a live name, on a thread of
/// its own that shutdown does not wait for.
pub fn run_removal(job: impl FnOnce() + Send + 'static) {
    REMOVALS.run(Box::new(job));
}
