//! A file too big to read is an error that names the file and the limit, not a load that eats
//! memory.

use stilt_tiltfile::{FakeHost, LoadRequest, load};

#[test]
fn read_file_refuses_a_file_over_the_limit_and_says_which() {
    let dir = std::env::temp_dir().join(format!("stilt-read-limit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Sparse: the size is what counts, nothing is written.
    let big = std::fs::File::create(dir.join("big.bin")).unwrap();
    big.set_len(stilt_tiltfile::MAX_FILE_BYTES + 1).unwrap();
    std::fs::write(dir.join("small.txt"), "ok").unwrap();
    std::fs::write(
        dir.join("Tiltfile"),
        "print(str(read_file('small.txt')))\nread_file('big.bin')\n",
    )
    .unwrap();
    let host = FakeHost {
        cwd: dir.clone(),
        ..FakeHost::default()
    };
    let tiltfile = dir.join("Tiltfile");
    let err = load(&LoadRequest::new(&tiltfile, &host)).unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        err.message.contains("big.bin") && err.message.contains("at most 64 MiB"),
        "{}",
        err.message
    );
    assert_eq!(err.location.expect("a location").line, 2);
    assert!(err.logs.contains("ok"), "{}", err.logs);
}
