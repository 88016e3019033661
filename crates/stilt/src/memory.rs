//! Hands freed heap memory back to the system. glibc keeps what a log flood, a big object or a
//! Tiltfile load freed in its arenas, so without this the resident size of `stilt up` stays at
//! its peak for the rest of the day. Trimming costs about a millisecond, so a slow timer is
//! enough and idle CPU stays at zero in practice.

use std::time::Duration;

const TRIM_EVERY: Duration = Duration::from_secs(20);

/// Seconds after the start at which the heap is trimmed besides the timer: the first load and
/// the first reconcile passes free most of what they allocated within a few seconds, and a
/// user looks at the resident size of a freshly started `up`.
const EARLY_TRIMS: [u64; 3] = [2, 4, 8];

/// glibc gives every thread that allocates under contention an arena of its own (up to eight
/// per core), and memory freed in one arena is not reusable by the others: with a tokio
/// runtime's worker and blocking threads that was a third of the resident size at 1,000
/// resources. Two arenas keep allocation from contending on one lock.
const ARENAS: i32 = 2;

/// Limits glibc's arenas. Call before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    // SAFETY: mallopt only sets a glibc tunable; called from main before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, ARENAS);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

/// Trims the heap a few times early on, then every [`TRIM_EVERY`] for as long as the runtime
/// lives.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let mut waited = 0;
        for at in EARLY_TRIMS {
            tokio::time::sleep(Duration::from_secs(at - waited)).await;
            waited = at;
            trim();
        }
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
    if tracing::enabled!(tracing::Level::DEBUG) {
        // SAFETY: mallinfo2 only reads glibc's counters under its own locks.
        let info = unsafe { libc::mallinfo2() };
        tracing::debug!(
            "heap after trim: {:.1} MB in use, {:.1} MB free in the arenas, {:.1} MB mapped apart",
            info.uordblks as f64 / 1e6,
            info.fordblks as f64 / 1e6,
            info.hblkhd as f64 / 1e6,
        );
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
