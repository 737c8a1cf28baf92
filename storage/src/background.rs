//! One thread for the slow file work that must not run under a partition's lock, on the
//! thread serving a request: syncing rolled segments (then moving the recovery point),
//! removing deleted segments, and removing deleted partitions' directories. On this
//! machine's filesystem, mounted with `discard`, freeing a file's blocks waits for the
//! device: 40 ms to unlink 64 MiB, 0.75 s for a 1 GiB segment. One thread serves the
//! whole process, as Kafka's log scheduler does: work on one disk gains nothing from
//! running side by side, and jobs of one partition then run in the order they were
//! queued, which the recovery point relies on.

use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};

type Job = Box<dyn FnOnce() + Send>;

fn queue() -> &'static Mutex<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sluice-files".into())
            .spawn(move || {
                for job in rx {
                    // One job's panic must not drop the jobs queued after it.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a background file job panicked");
                    }
                }
            })
            .expect("spawning the background file thread");
        Mutex::new(tx)
    })
}

/// Runs `job` on the background thread, after every job queued before it.
pub fn run(job: impl FnOnce() + Send + 'static) {
    let sent = queue()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .send(Box::new(job));
    if let Err(mpsc::SendError(job)) = sent {
        // Unreachable in practice (the thread catches panics); never lose the work.
        job();
    }
}

/// Blocks until every job queued so far has run (clean shutdown, tests).
pub fn wait_idle() {
    let (tx, rx) = mpsc::channel();
    run(move || {
        let _ = tx.send(());
    });
    let _ = rx.recv();
}
