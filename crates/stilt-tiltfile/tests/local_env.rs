//! `local()` runs with Tilt's environment: `TILT_PORT` is the web port of this run (not a
//! fixed 10350), `TILT_HOST` the web host.

use stilt_tiltfile::LoadRequest;
use stilt_tiltfile::RealHost;

#[test]
fn local_sees_the_real_web_port_and_host() {
    let dir = std::env::temp_dir().join(format!("stilt-local-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Tiltfile"),
        "print('got ' + str(local('echo $TILT_PORT $TILT_HOST', quiet=True)).strip())\n",
    )
    .unwrap();
    let host = RealHost::new();
    let mut req = LoadRequest::new(dir.join("Tiltfile"), &host);
    req.web_port = 10777;
    req.web_host = "0.0.0.0".into();
    let r = stilt_tiltfile::load(&req).unwrap();
    assert!(r.logs.contains("got 10777 0.0.0.0"), "{}", r.logs);
    std::fs::remove_dir_all(&dir).unwrap();
}
