//! The protocol as data (every message round-trips) and the helper's request loop driven by the
//! async client over a socket pair, against a temp dir.

use std::os::unix::fs::PermissionsExt;
use stilt_syncer::proto::{Frame, read_frame};
use stilt_syncer::{
    Client, ClientError, Entry, FileKind, Request, Response, RunSpec, ServeOptions, Stream,
    WriteEntry, hash_bytes,
};

fn roundtrip_req(r: Request) {
    let bytes = r.encode(7);
    let f = read_frame(&mut &bytes[..]).unwrap().unwrap();
    assert_eq!(f.id, 7);
    assert_eq!(Request::decode(&f).unwrap(), r);
}

fn roundtrip_resp(r: Response) {
    let bytes = r.encode(9);
    let f = read_frame(&mut &bytes[..]).unwrap().unwrap();
    assert_eq!(f.id, 9);
    assert_eq!(Response::decode(&f).unwrap(), r);
}

#[test]
fn every_message_round_trips() {
    roundtrip_req(Request::Hello { version: 1 });
    roundtrip_req(Request::Write {
        entries: vec![
            WriteEntry::file("/a/b.txt", 0o600, "héllo"),
            WriteEntry::dir("/a/d", 0o755),
            WriteEntry::symlink("/a/l", "b.txt"),
            WriteEntry {
                mtime_ns: -5,
                ..WriteEntry::file("/x", 0, vec![0u8, 255, 1])
            },
        ],
    });
    roundtrip_req(Request::Delete {
        paths: vec!["/a".into(), "/b c".into()],
    });
    roundtrip_req(Request::Run(RunSpec {
        argv: vec!["sh".into(), "-c".into(), "echo hi".into()],
        cwd: Some("/app".into()),
        env: vec![("A".into(), "1".into())],
        stdin: b"in".to_vec(),
    }));
    roundtrip_req(Request::Run(RunSpec::default()));
    roundtrip_req(Request::List {
        root: "/app".into(),
        hash: true,
    });
    roundtrip_req(Request::Stat {
        path: "/p".into(),
        hash: false,
    });
    roundtrip_req(Request::Read { path: "/p".into() });
    roundtrip_req(Request::ReadLink { path: "/l".into() });
    roundtrip_req(Request::Shutdown);

    let e = Entry {
        path: "x/y".into(),
        kind: FileKind::Symlink,
        mode: 0o777,
        size: 12,
        mtime_ns: 1_700_000_000_123_456_789,
        hash: hash_bytes(b"t"),
    };
    roundtrip_resp(Response::HelloOk {
        version: 1,
        build: "0.1.0".into(),
        pid: 42,
    });
    roundtrip_resp(Response::Done { count: 3 });
    roundtrip_resp(Response::Output {
        stream: Stream::Stderr,
        data: b"oops\n".to_vec(),
    });
    roundtrip_resp(Response::Exit { code: -1 });
    roundtrip_resp(Response::Listing {
        entries: vec![
            e.clone(),
            Entry {
                hash: vec![],
                ..e.clone()
            },
        ],
    });
    roundtrip_resp(Response::Stat { entry: Some(e) });
    roundtrip_resp(Response::Stat { entry: None });
    roundtrip_resp(Response::Data { data: vec![1, 2] });
    roundtrip_resp(Response::Error {
        message: "nope".into(),
    });
}

#[test]
fn corrupt_frames_are_rejected() {
    // A shell's error text instead of a frame: the length is absurd.
    let text = b"sh: stilt-syncer: not found\n";
    assert!(read_frame(&mut &text[..]).is_err());
    // Truncated body.
    let mut bytes = Request::Read { path: "/p".into() }.encode(1);
    bytes.truncate(bytes.len() - 1);
    assert!(read_frame(&mut &bytes[..]).is_err());
    // Trailing garbage inside a frame.
    let f = Frame {
        tag: 0x08,
        id: 1,
        body: vec![1],
    };
    assert!(Request::decode(&f).is_err());
    // Unknown tag.
    let f = Frame {
        tag: 0x42,
        id: 1,
        body: vec![],
    };
    assert!(Request::decode(&f).is_err());
    // Clean EOF between frames.
    assert!(read_frame(&mut &b""[..]).unwrap().is_none());
}

/// A helper serving `root` on one end of a socket pair; the client on the other.
fn start(root: &std::path::Path) -> (Client, std::thread::JoinHandle<std::io::Result<()>>) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let opts = ServeOptions {
        root: Some(root.to_path_buf()),
    };
    let b2 = b.try_clone().unwrap();
    let h = std::thread::spawn(move || stilt_syncer::serve(b, b2, &opts));
    a.set_nonblocking(true).unwrap();
    let s = tokio::net::UnixStream::from_std(a).unwrap();
    let (r, w) = tokio::io::split(s);
    (Client::new(r, w), h)
}

#[tokio::test]
async fn helper_loop_against_a_temp_dir() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (mut c, h) = start(root);

    let info = c.hello().await.unwrap();
    assert_eq!(info.version, stilt_syncer::PROTOCOL_VERSION);

    // Writes create parents, set modes and mtimes, make dirs and symlinks.
    let n = c
        .write(vec![
            WriteEntry::file("/app/src/main.py", 0o755, "print(1)\n"),
            WriteEntry {
                mtime_ns: 1_600_000_000_000_000_000,
                ..WriteEntry::file("/app/README", 0o644, "readme")
            },
            WriteEntry::dir("/app/empty", 0o700),
            WriteEntry::symlink("/app/link", "src/main.py"),
        ])
        .await
        .unwrap();
    assert_eq!(n, 4);
    let p = root.join("app/src/main.py");
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "print(1)\n");
    assert_eq!(
        std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o755
    );
    assert_eq!(
        std::fs::read_link(root.join("app/link")).unwrap(),
        std::path::Path::new("src/main.py")
    );
    assert!(root.join("app/empty").is_dir());

    // Overwrite keeps working; no temp files are left behind.
    c.write(vec![WriteEntry::file(
        "/app/src/main.py",
        0o644,
        "print(2)\n",
    )])
    .await
    .unwrap();
    assert_eq!(std::fs::read_to_string(&p).unwrap(), "print(2)\n");

    // Listing: root first, then sorted, with hashes.
    let list = c.list("/app", true).await.unwrap();
    let names: Vec<_> = list.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(
        names,
        ["", "README", "empty", "link", "src", "src/main.py"],
        "{list:#?}"
    );
    let main = list.iter().find(|e| e.path == "src/main.py").unwrap();
    assert_eq!(main.kind, FileKind::File);
    assert_eq!(main.size, 9);
    assert_eq!(main.hash, hash_bytes(b"print(2)\n"));
    let readme = list.iter().find(|e| e.path == "README").unwrap();
    assert_eq!(readme.mtime_ns, 1_600_000_000_000_000_000);
    assert_eq!(
        list.iter().find(|e| e.path == "link").unwrap().kind,
        FileKind::Symlink
    );

    // Stat and read.
    let st = c.stat("/app/README", true).await.unwrap().unwrap();
    assert_eq!(st.hash, hash_bytes(b"readme"));
    assert!(c.stat("/app/missing", false).await.unwrap().is_none());
    assert_eq!(c.read("/app/README").await.unwrap(), b"readme");
    match c.read("/app/missing").await {
        Err(ClientError::Remote(m)) => assert!(m.contains("/app/missing"), "{m}"),
        other => panic!("{other:?}"),
    }

    // Pipelined delete + write; deleting something missing is fine.
    c.update(
        vec!["/app/src".into(), "/nope".into()],
        vec![WriteEntry::file("/app/new", 0, "n")],
    )
    .await
    .unwrap();
    assert!(!root.join("app/src").exists());
    assert_eq!(std::fs::read_to_string(root.join("app/new")).unwrap(), "n");

    // Run with streaming output, stdin, cwd, env and exit code.
    let mut chunks = Vec::new();
    let code = c
        .run_streaming(
            RunSpec {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    "cat; echo out-$X; echo err >&2; pwd; exit 3".into(),
                ],
                cwd: Some("/app".into()),
                env: vec![("X".into(), "y".into())],
                stdin: b"from-stdin\n".to_vec(),
            },
            |s, d| chunks.push((s, d.to_vec())),
        )
        .await
        .unwrap();
    assert_eq!(code, 3);
    let stdout: Vec<u8> = chunks
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .flat_map(|(_, d)| d.clone())
        .collect();
    let stdout = String::from_utf8(stdout).unwrap();
    assert!(stdout.starts_with("from-stdin\nout-y\n"), "{stdout}");
    assert!(stdout.trim_end().ends_with("/app"), "{stdout}");
    assert!(
        chunks
            .iter()
            .any(|(s, d)| *s == Stream::Stderr && d == b"err\n")
    );

    // A command that does not exist is a remote error; the channel stays usable.
    match c
        .run(RunSpec {
            argv: vec!["/definitely/not/here".into()],
            ..Default::default()
        })
        .await
    {
        Err(ClientError::Remote(m)) => assert!(m.contains("not/here"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(!c.is_broken());
    let out = c
        .run(RunSpec {
            argv: vec!["echo".into(), "still".into(), "alive".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(out.stdout, b"still alive\n");
    assert_eq!(out.exit_code, 0);

    // No stray temp files from the atomic writes.
    let stray: Vec<_> = c
        .list("/", false)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.path.contains(".stilt-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    c.shutdown().await.unwrap();
    h.join().unwrap().unwrap();
}

#[tokio::test]
async fn paths_cannot_escape_the_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (mut c, _h) = start(&root);
    c.hello().await.unwrap();
    c.write(vec![WriteEntry::file("/../../escape", 0, "x")])
        .await
        .unwrap();
    assert!(root.join("escape").exists());
    assert!(!dir.path().join("escape").exists());
}

#[tokio::test]
async fn a_dead_transport_marks_the_client_broken() {
    let (a, b) = tokio::io::duplex(64);
    drop(b);
    let (r, w) = tokio::io::split(a);
    let mut c = Client::new(r, w);
    assert!(matches!(c.hello().await, Err(ClientError::Transport(_))));
    assert!(c.is_broken());
}

#[tokio::test]
async fn pipelined_reads_answer_in_order_and_survive_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _h) = start(dir.path());
    c.hello().await.unwrap();
    let mut paths = Vec::new();
    for i in 0..100 {
        std::fs::write(dir.path().join(format!("f{i}")), format!("content {i}")).unwrap();
        paths.push(format!("/f{i}"));
    }
    paths.insert(50, "/missing".into());
    let got = c.read_many(&paths).await.unwrap();
    assert_eq!(got.len(), 101);
    assert_eq!(got[0].as_deref().unwrap(), b"content 0");
    assert!(got[50].is_err());
    assert_eq!(got[100].as_deref().unwrap(), b"content 99");
    // The channel is still usable.
    assert_eq!(c.read("/f7").await.unwrap(), b"content 7");
}

#[tokio::test]
async fn read_link_answers_the_target_without_following_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("target.txt"), "t").unwrap();
    std::os::unix::fs::symlink("target.txt", dir.path().join("link")).unwrap();
    let (mut c, _h) = start(dir.path());
    c.hello().await.unwrap();
    assert_eq!(c.read_link("/link").await.unwrap(), "target.txt");
    assert!(c.read_link("/target.txt").await.is_err());
}
