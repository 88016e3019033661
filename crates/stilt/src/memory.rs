//! Hands freed heap memory back to the system. glibc keeps what a log flood, a big object or a
//! Tiltfile load freed in its arenas, so without this the resident size of `stilt up` stays at
//! its peak for the rest of the day. Trimming costs about a millisecond, so a slow timer is
//! enough and idle CPU stays at zero in practice.

use std::time::Duration;

const TRIM_EVERY: Duration = Duration::from_secs(20);

/// Trims the heap every [`TRIM_EVERY`] for as long as the runtime lives.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            trim();
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks and releases glibc's own free lists; it takes its locks
    // itself and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
