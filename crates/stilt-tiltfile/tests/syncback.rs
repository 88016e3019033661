//! `ext://syncback` is served by Stilt itself: no extension repo, no network, nothing watched.

use std::path::Path;

use stilt_tiltfile::FakeHost;
use stilt_tiltfile::LoadRequest;
use stilt_tiltfile::load;

#[test]
fn syncback_loads_without_any_extension_repo() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/syncback_positional");
    let host = FakeHost {
        cwd: dir.clone(),
        ..FakeHost::default()
    };
    assert!(!host.env.contains_key("STILT_EXTENSIONS_DIR"));
    let req = LoadRequest::new(dir.join("Tiltfile"), &host);
    assert!(req.extensions_dir.is_none());
    let res = load(&req).expect("load");
    assert!(
        res.config_files
            .iter()
            .all(|p| !p.to_string_lossy().contains("<stilt>")),
        "the built-in module must not be a config file: {:?}",
        res.config_files
    );
    let sb = res
        .objects
        .iter()
        .find(|o| o.kind() == "Syncback")
        .expect("Syncback object");
    assert_eq!(sb.name(), "backend-sync");
    assert!(sb.validate().is_empty(), "{:?}", sb.validate());
    let repo = res
        .objects
        .iter()
        .find(|o| o.kind() == "ExtensionRepo")
        .expect("ExtensionRepo")
        .to_value();
    assert_eq!(
        repo["spec"]["url"],
        "https://github.com/tilt-dev/tilt-extensions"
    );
}
