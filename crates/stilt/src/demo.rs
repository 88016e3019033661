//! `stilt demo`: a sample project written to a temporary directory and run. It needs nothing but
//! Stilt: a compile step, a web server (Stilt's own file server) with a readiness probe and a link,
//! and a test that fetches the page.

use crate::args::{CiArgs, DemoArgs, UpArgs};
use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;

pub fn write_project(dir: &Path, app_port: u16) -> Result<()> {
    let stilt = std::env::current_exe().context("locating the stilt binary")?;
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(
        dir.join("src/index.html"),
        "<!doctype html>\n<title>Stilt demo</title>\n<h1>Hello from the Stilt demo!</h1>\n<p>Edit src/index.html and save: Stilt rebuilds and the server restarts.</p>\n",
    )?;
    let tiltfile = format!(
        r#"# The Stilt demo: edit src/index.html and watch `compile` and `web` update.
stilt = "{stilt}"
port = {app_port}

local_resource(
    'compile',
    cmd='mkdir -p build && cp src/index.html build/index.html && date > build/built-at.txt && echo compiled',
    deps=['src'],
    labels=['app'],
)

local_resource(
    'web',
    serve_cmd='"%s" internal serve-dir --port %d build' % (stilt, port),
    readiness_probe=probe(period_secs=1, http_get=http_get_action(port=port, path='/')),
    links=[link('http://localhost:%d/' % port, 'demo page')],
    resource_deps=['compile'],
    labels=['app'],
)

local_resource(
    'test',
    cmd='"%s" internal http-get http://localhost:%d/ | grep -q "Hello from the Stilt demo"' % (stilt, port),
    resource_deps=['web'],
    labels=['test'],
)
"#,
        stilt = stilt.display(),
    );
    std::fs::write(dir.join("Tiltfile"), tiltfile)?;
    Ok(())
}

pub fn demo(a: DemoArgs, web: crate::up::WebAddr) -> Result<ExitCode> {
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => tempfile::Builder::new()
            .prefix("stilt-demo-")
            .tempdir()?
            .keep(),
    };
    write_project(&dir, a.app_port)?;
    eprintln!("stilt demo: project written to {}", dir.display());
    std::env::set_current_dir(&dir)?;
    let file = dir.join("Tiltfile");
    if a.ci {
        return crate::up::ci(
            CiArgs {
                file,
                timeout: Some("5m".into()),
                api_port: 0,
                kube: Default::default(),
                tilt: Default::default(),
                args: vec![],
            },
            web,
        );
    }
    eprintln!(
        "stilt demo: the page will be at http://localhost:{}/ once `web` is ready",
        a.app_port
    );
    crate::up::up(
        UpArgs {
            file,
            stream: None,
            api_port: 0,
            kube: Default::default(),
            tilt: Default::default(),
            args: vec![],
        },
        web,
    )
}
