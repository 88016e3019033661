//! Hands freed heap memory back to the system. glibc keeps what a log flood, a big object or a
//! Tiltfile load freed in its arenas, so without this the resident size of `stilt up` stays at
//! its peak for the rest of the day. A trim walks every free chunk: 10–20 ms at 200 resources
//! and 40–60 ms at 1,000 on a 2-core VM, so it runs once the start-up burst is over and then
//! only when the resident size grew since the last one: an idle `up` spends nothing on it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const TRIM_EVERY: Duration = Duration::from_secs(20);

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

/// Trims the heap once the start-up burst is over, then every [`TRIM_EVERY`] for as long as the
/// runtime lives.
pub fn spawn_trimmer() {
    tokio::spawn(async {
        let start = std::time::Instant::now();
        let mut cpu_at_trim = Duration::ZERO;
        let mut cpu = process_cpu();
        while start.elapsed() < EARLY {
            tokio::time::sleep(QUIET_CHECK).await;
            let mut now = process_cpu();
            if early_trim_due(now.saturating_sub(cpu), now.saturating_sub(cpu_at_trim)) {
                trim();
                // The trim's own CPU is neither work since the trim nor a busy check.
                now = process_cpu();
                cpu_at_trim = now;
            }
            cpu = now;
        }
        let mut tick = tokio::time::interval(TRIM_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            trim();
        }
    });
}

/// For this long after the start the heap is trimmed as soon as the process goes quiet: the
/// first load and reconcile passes free most of what they allocated, and a user looks at the
/// resident size of a freshly started `up`. A trim during the burst would be wasted, and one at
/// a fixed time after it (2, 4, 8 s before) was the only CPU an otherwise idle `up` used.
const EARLY: Duration = Duration::from_secs(10);

const QUIET_CHECK: Duration = Duration::from_millis(250);

/// Whether to trim now, early on: the last [`QUIET_CHECK`] used under 5 ms of CPU (2% of a
/// core), and real work (50 ms of CPU) was done since the last trim.
fn early_trim_due(cpu_last_check: Duration, cpu_since_trim: Duration) -> bool {
    cpu_last_check < Duration::from_millis(5) && cpu_since_trim > Duration::from_millis(50)
}

/// User and system CPU time of this process.
fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Resident bytes right after the last trim. Freeing does not lower the resident size, so a
/// trim can give back at most what it grew by since: below [`MIN_GAIN`] the trim is skipped.
/// An idle `up` should not spend a trim's tens of milliseconds every 20 s for nothing.
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

    #[test]
    fn early_on_the_heap_is_trimmed_when_quiet_after_work() {
        let ms = Duration::from_millis;
        let cases = [
            // (CPU in the last check, CPU since the last trim, trim?)
            (ms(0), ms(800), true),
            (ms(4), ms(51), true),
            (ms(120), ms(800), false),
            (ms(5), ms(800), false),
            (ms(0), ms(10), false),
        ];
        for (last, since, due) in cases {
            assert_eq!(early_trim_due(last, since), due, "{last:?} / {since:?}");
        }
        let before = process_cpu();
        let spin = std::time::Instant::now();
        while spin.elapsed() < ms(30) {
            std::hint::black_box(before);
        }
        assert!(process_cpu() > before);
    }
}
