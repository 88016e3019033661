//! A load can be stopped from outside, even inside a loop that calls no builtin.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use stilt_tiltfile::{FakeHost, LoadRequest, load};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn a_runaway_loop_stops_when_cancelled_and_says_where_it_was() {
    let dir = data("runaway");
    let tiltfile = dir.join("Tiltfile");
    let host = FakeHost {
        cwd: dir.clone(),
        ..FakeHost::default()
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, Ordering::Relaxed);
    });
    let mut req = LoadRequest::new(&tiltfile, &host);
    req.cancel = Some(cancel);
    let err = load(&req).unwrap_err();
    canceller.join().unwrap();
    let at = format!("Tiltfile evaluation interrupted at {}:", tiltfile.display());
    assert!(err.message.contains(&at), "{}", err.message);
    let loc = err.location.expect("a location");
    assert!((2..=4).contains(&loc.line), "{loc:?}");
    assert!(err.logs.contains("start"));
}

#[test]
fn an_unset_flag_changes_nothing() {
    let dir = data("comprehension");
    let tiltfile = dir.join("Tiltfile");
    let host = FakeHost {
        cwd: dir.clone(),
        ..FakeHost::default()
    };
    let mut req = LoadRequest::new(&tiltfile, &host);
    req.cancel = Some(Arc::new(AtomicBool::new(false)));
    let r = load(&req).unwrap();
    assert!(r.logs.contains("10"));
}
