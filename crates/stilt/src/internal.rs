//! Tiny helpers the demo project runs, so it needs nothing but Stilt: a static file server and an
//! HTTP GET.

use crate::args::Internal;
use anyhow::{Context, Result, bail};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub fn run(cmd: Internal) -> Result<ExitCode> {
    match cmd {
        Internal::ServeDir { port, dir } => serve_dir(port, dir),
        Internal::HttpGet { url } => {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .into();
            let mut resp = agent
                .get(&url)
                .call()
                .with_context(|| format!("GET {url}"))?;
            let code = resp.status().as_u16();
            print!("{}", resp.body_mut().read_to_string()?);
            if !(200..400).contains(&code) {
                bail!("GET {url}: HTTP {code}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn safe_join(root: &Path, url_path: &str) -> Option<PathBuf> {
    let rel = url_path.split('?').next()?.trim_start_matches('/');
    let mut p = root.to_path_buf();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(part) => p.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if p.is_dir() {
        p.push("index.html");
    }
    Some(p)
}

fn serve_dir(port: u16, dir: PathBuf) -> Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.with_context(|| format!("listening on 127.0.0.1:{port}"))?;
        println!("Serving {} on http://localhost:{port}", dir.display());
        loop {
            let (mut sock, _) = listener.accept().await?;
            let dir = dir.clone();
            tokio::spawn(async move {
                // Read the whole request head, however the client split its writes.
                let mut buf = Vec::with_capacity(1024);
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 64 * 1024 {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&buf);
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, body) = match safe_join(&dir, &path).map(std::fs::read) {
                    Some(Ok(body)) => ("200 OK", body),
                    _ => ("404 Not Found", b"not found\n".to_vec()),
                };
                println!("GET {path} {}", &status[..3]);
                let head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n", body.len());
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
            });
        }
    })
}
