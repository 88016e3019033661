//! The helper's request loop: blocking std I/O only, so the static binary stays small and has
//! no runtime. It runs inside the container with the exec's stdin/stdout as its transport.

use crate::proto::{
    Entry, FileKind, Frame, PROTOCOL_VERSION, Request, Response, RunSpec, Stream, WriteEntry,
    hash_bytes, read_frame,
};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

/// Options of [`serve`].
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Resolve every absolute path under this directory instead of `/` (tests, fakes).
    pub root: Option<PathBuf>,
}

/// Answer requests from `input` on `output` until end of input or `Shutdown`.
///
/// Errors of single requests are answered with `Response::Error` and the loop continues; only
/// transport errors (and malformed frames) end it.
pub fn serve<R: Read, W: Write>(mut input: R, output: W, opts: &ServeOptions) -> io::Result<()> {
    let mut out = io::BufWriter::new(output);
    while let Some(frame) = read_frame(&mut input)? {
        let id = frame.id;
        let req = match Request::decode(&frame) {
            Ok(r) => r,
            Err(e) => {
                send(
                    &mut out,
                    id,
                    &Response::Error {
                        message: format!("bad request: {e}"),
                    },
                )?;
                out.flush()?;
                continue;
            }
        };
        let shutdown = matches!(req, Request::Shutdown);
        handle(&mut out, id, req, opts)?;
        out.flush()?;
        if shutdown {
            break;
        }
    }
    Ok(())
}

fn send<W: Write>(out: &mut W, id: u32, r: &Response) -> io::Result<()> {
    out.write_all(&r.encode(id))
}

fn handle<W: Write>(out: &mut W, id: u32, req: Request, opts: &ServeOptions) -> io::Result<()> {
    let res = match req {
        Request::Hello { .. } => Ok(Response::HelloOk {
            version: PROTOCOL_VERSION,
            build: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
        }),
        Request::Write { entries } => write_entries(&entries, opts),
        Request::Delete { paths } => delete_paths(&paths, opts),
        Request::Run(spec) => return run(out, id, spec, opts),
        Request::List { root, hash } => list(&root, hash, opts),
        Request::Stat { path, hash } => {
            let p = resolve(&path, opts);
            match fs::symlink_metadata(&p) {
                Ok(md) => entry_for(&p, path.clone(), &md, hash)
                    .map(|e| Response::Stat { entry: Some(e) }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Response::Stat { entry: None }),
                Err(e) => Err(ctx(e, "stat", &path)),
            }
        }
        Request::Read { path } => fs::read(resolve(&path, opts))
            .map(|data| Response::Data { data })
            .map_err(|e| ctx(e, "read", &path)),
        Request::ReadLink { path } => fs::read_link(resolve(&path, opts))
            .map(|target| Response::Data {
                data: target.into_os_string().into_encoded_bytes(),
            })
            .map_err(|e| ctx(e, "readlink", &path)),
        Request::Shutdown => Ok(Response::Done { count: 0 }),
    };
    let resp = res.unwrap_or_else(|e| Response::Error {
        message: e.to_string(),
    });
    send(out, id, &resp)
}

fn ctx(e: io::Error, op: &str, path: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{op} {path}: {e}"))
}

/// Map a container path to the local one: `root` + the path's normal components. `..` cannot
/// climb above the root.
fn resolve(path: &str, opts: &ServeOptions) -> PathBuf {
    let Some(root) = &opts.root else {
        return PathBuf::from(path);
    };
    let mut p = root.clone();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => p.push(n),
            Component::ParentDir if p != *root => {
                p.pop();
            }
            _ => {}
        }
    }
    p
}

fn write_entries(entries: &[WriteEntry], opts: &ServeOptions) -> io::Result<Response> {
    for w in entries {
        write_one(w, &resolve(&w.path, opts)).map_err(|e| ctx(e, "write", &w.path))?;
    }
    Ok(Response::Done {
        count: entries.len() as u32,
    })
}

fn write_one(w: &WriteEntry, p: &Path) -> io::Result<()> {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent)?;
    }
    match w.kind {
        FileKind::Dir => {
            if let Ok(md) = fs::symlink_metadata(p)
                && !md.is_dir()
            {
                fs::remove_file(p)?;
            }
            fs::create_dir_all(p)?;
            let mode = if w.mode == 0 { 0o755 } else { w.mode };
            fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
        }
        FileKind::Symlink => {
            let target = String::from_utf8_lossy(&w.data).into_owned();
            remove_any(p)?;
            std::os::unix::fs::symlink(target, p)?;
        }
        FileKind::File | FileKind::Other => {
            let mode = if w.mode == 0 { 0o644 } else { w.mode };
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            let tmp = p.with_file_name(format!(
                ".{}.stilt-{}",
                name.unwrap_or_default(),
                std::process::id()
            ));
            // A directory in the way is replaced, as tar does.
            if let Ok(md) = fs::symlink_metadata(p)
                && md.is_dir()
            {
                fs::remove_dir_all(p)?;
            }
            let staged = (|| {
                let mut f = fs::File::create(&tmp).map_err(|e| (Stage::Create, e))?;
                let written = (|| {
                    f.write_all(&w.data)?;
                    f.set_permissions(fs::Permissions::from_mode(mode))?;
                    if w.mtime_ns != 0 {
                        f.set_modified(time_from_ns(w.mtime_ns))?;
                    }
                    Ok(())
                })();
                drop(f);
                written.map_err(|e| (Stage::Write, e))?;
                fs::rename(&tmp, p).map_err(|e| (Stage::Rename, e))
            })();
            if let Err((stage, e)) = staged {
                let _ = fs::remove_file(&tmp);
                if !write_in_place_after(stage, &e) {
                    return Err(e);
                }
                // Renaming can fail where writing in place works (a bind-mounted file).
                let mut f = fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(p)
                    .map_err(|_| e)?;
                f.write_all(&w.data)?;
                f.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            return Ok(());
        }
    }
    if w.mtime_ns != 0 && w.kind == FileKind::Dir {
        let f = fs::File::open(p)?;
        f.set_modified(time_from_ns(w.mtime_ns))?;
    }
    Ok(())
}

/// The step of staging a file (a temporary file beside it, renamed over it) that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Create,
    Write,
    Rename,
}

/// Whether a file whose staging failed is written in place instead. Only when the temporary
/// file could not be created or renamed over the target (a bind-mounted file, a directory where
/// only the file is writable); never when writing the data failed or the filesystem is full or
/// over quota: writing in place would then truncate the file and leave part of the new one.
fn write_in_place_after(stage: Stage, e: &io::Error) -> bool {
    let full = matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    );
    !full && stage != Stage::Write
}

fn time_from_ns(ns: i64) -> std::time::SystemTime {
    if ns >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(ns as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_nanos(ns.unsigned_abs())
    }
}

fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn delete_paths(paths: &[String], opts: &ServeOptions) -> io::Result<Response> {
    for path in paths {
        remove_any(&resolve(path, opts)).map_err(|e| ctx(e, "delete", path))?;
    }
    Ok(Response::Done {
        count: paths.len() as u32,
    })
}

fn kind_of(md: &fs::Metadata) -> FileKind {
    let ft = md.file_type();
    if ft.is_symlink() {
        FileKind::Symlink
    } else if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    }
}

fn entry_for(p: &Path, name: String, md: &fs::Metadata, hash: bool) -> io::Result<Entry> {
    let kind = kind_of(md);
    let hash = match (hash, kind) {
        (true, FileKind::File) => hash_file(p)?,
        (true, FileKind::Symlink) => hash_bytes(fs::read_link(p)?.as_os_str().as_encoded_bytes()),
        _ => Vec::new(),
    };
    Ok(Entry {
        path: name,
        kind,
        mode: md.mode() & 0o7777,
        size: md.len(),
        mtime_ns: md.mtime() * 1_000_000_000 + md.mtime_nsec(),
        hash,
    })
}

fn hash_file(p: &Path) -> io::Result<Vec<u8>> {
    use sha2::Digest;
    let mut f = fs::File::open(p)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}

fn list(root: &str, hash: bool, opts: &ServeOptions) -> io::Result<Response> {
    let base = resolve(root, opts);
    let md = fs::symlink_metadata(&base).map_err(|e| ctx(e, "list", root))?;
    let mut entries = vec![entry_for(&base, String::new(), &md, hash)?];
    if md.is_dir() {
        let mut stack = vec![(base, String::new())];
        while let Some((dir, rel)) = stack.pop() {
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                // Unreadable subdirectories are skipped rather than failing the whole listing.
                Err(_) => continue,
            };
            let mut children: Vec<_> = rd.filter_map(|e| e.ok()).collect();
            children.sort_by_key(|e| e.file_name());
            for child in children {
                let name = child.file_name().to_string_lossy().into_owned();
                let crel = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let p = child.path();
                let Ok(cmd) = fs::symlink_metadata(&p) else {
                    continue;
                };
                let e = match entry_for(&p, crel.clone(), &cmd, hash) {
                    Ok(e) => e,
                    Err(_) => entry_for(&p, crel.clone(), &cmd, false)?,
                };
                entries.push(e);
                if cmd.is_dir() {
                    stack.push((p, crel));
                }
            }
        }
    }
    entries[1..].sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Response::Listing { entries })
}

fn run<W: Write>(out: &mut W, id: u32, spec: RunSpec, opts: &ServeOptions) -> io::Result<()> {
    let Some((prog, args)) = spec.argv.split_first() else {
        return send(
            out,
            id,
            &Response::Error {
                message: "run: empty command".into(),
            },
        );
    };
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if spec.stdin.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(resolve(cwd, opts));
    } else if let Some(root) = &opts.root {
        cmd.current_dir(root);
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return send(
                out,
                id,
                &Response::Error {
                    message: format!("run {prog}: {e}"),
                },
            );
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let data = spec.stdin;
        std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
    }
    let (tx, rx) = mpsc::channel::<(Stream, Vec<u8>)>();
    let mut readers = Vec::new();
    for (stream, pipe) in [
        (
            Stream::Stdout,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            Stream::Stderr,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let Some(mut pipe) = pipe else { continue };
        let tx = tx.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send((stream, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                }
            }
        }));
    }
    drop(tx);
    for (stream, data) in rx {
        send(out, id, &Response::Output { stream, data })?;
        out.flush()?;
    }
    for r in readers {
        let _ = r.join();
    }
    let status = child.wait()?;
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    send(out, id, &Response::Exit { code })
}

/// Decode one frame as a request (exposed for transports that read frames themselves).
pub fn decode_request(frame: &Frame) -> io::Result<Request> {
    Request::decode(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_failed_create_or_rename_falls_back_to_writing_in_place() {
        let err = |kind| io::Error::from(kind);
        let enospc = io::Error::from_raw_os_error(28);
        let edquot = io::Error::from_raw_os_error(122);
        // (stage, error) → write in place
        let cases = [
            (Stage::Rename, err(io::ErrorKind::ResourceBusy), true),
            (Stage::Rename, err(io::ErrorKind::CrossesDevices), true),
            (Stage::Create, err(io::ErrorKind::PermissionDenied), true),
            (Stage::Create, err(io::ErrorKind::ReadOnlyFilesystem), true),
            (Stage::Write, enospc, false),
            (Stage::Write, edquot, false),
            (Stage::Write, err(io::ErrorKind::Other), false),
            (Stage::Create, io::Error::from_raw_os_error(28), false),
            (Stage::Rename, io::Error::from_raw_os_error(122), false),
        ];
        for (stage, e, want) in cases {
            assert_eq!(write_in_place_after(stage, &e), want, "{stage:?} {e}");
        }
    }
}
