//! The in-container helper: `stilt-syncer [serve] [--root DIR]` answers framed requests on
//! stdin/stdout; `stilt-syncer --version` prints the build.
//!
//! Build it static (no musl target here): `RUSTFLAGS="-C target-feature=+crt-static" cargo build
//! --target x86_64-unknown-linux-gnu -p stilt-syncer --release --no-default-features`.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut opts = stilt_syncer::ServeOptions::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "serve" => {}
            "--version" | "version" => {
                println!(
                    "{} {} protocol {}",
                    stilt_syncer::HELPER_NAME,
                    env!("CARGO_PKG_VERSION"),
                    stilt_syncer::PROTOCOL_VERSION
                );
                return;
            }
            "--root" => opts.root = args.next().map(PathBuf::from),
            other => {
                eprintln!("stilt-syncer: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    if let Err(e) = stilt_syncer::serve(stdin, stdout, &opts) {
        eprintln!("stilt-syncer: {e}");
        std::process::exit(1);
    }
}
