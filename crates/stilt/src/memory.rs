//! Hands freed heap memory back to the system. glibc keeps what a log flood, a big object or a
//! Tiltfile load freed in its arenas, so without this the resident size of `stilt up` stays at
//! its peak for the rest of the day. A trim walks every free chunk: about a millisecond
//! at 200 resources, 40–60 ms at 1,000, so it is skipped unless the resident size grew since
//! the last one, and an idle `up` spends nothing on it.

use std::sync::atomic::{AtomicU64, Ordering};
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

/// Resident bytes right after the last trim. Freeing does not lower the resident size, so a
/// trim can give back at most what it grew by since: below [`MIN_GAIN`] the trim is skipped.
/// A trim walks every free chunk (a madvise call each): 40–60 ms at 1,000 resources, which an
/// idle `up` should not spend every 20 s for nothing.
static RESIDENT_AFTER_TRIM: AtomicU64 = AtomicU64::new(0);

const MIN_GAIN: u64 = 1 << 20;

/// Whether a trim may give back [`MIN_GAIN`]: the resident size grew by that since the last.
fn worth_trimming(resident_now: u64, resident_after_last_trim: u64) -> bool {
    resident_now >= resident_after_last_trim + MIN_GAIN
}

/// This process's resident size, from `/proc/self/statm` (pages).
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    let last = RESIDENT_AFTER_TRIM.load(Ordering::Relaxed);
    if resident_bytes().is_some_and(|now| !worth_trimming(now, last)) {
        return;
    }
    // SAFETY: malloc_trim only walks and releases glibc's own free lists; it takes its locks
    // itself and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
    if let Some(after) = resident_bytes() {
        RESIDENT_AFTER_TRIM.store(after, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trim_is_worth_it_only_when_the_heap_grew_since_the_last() {
        const MB: u64 = 1 << 20;
        let cases = [
            (60 * MB, 0, true),
            (60 * MB, 60 * MB, false),
            (60 * MB + MB / 2, 60 * MB, false),
            (61 * MB, 60 * MB, true),
            (50 * MB, 60 * MB, false),
        ];
        for (now, last, worth) in cases {
            assert_eq!(worth_trimming(now, last), worth, "{now} after {last}");
        }
        assert!(resident_bytes().is_some_and(|r| r > MB));
    }
}
