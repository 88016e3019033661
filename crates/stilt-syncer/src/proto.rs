//! Wire format: frames, requests and responses.
//!
//! Every message is one frame:
//!
//! ```text
//! len: u32 BE   -- number of bytes after this field (tag + id + body)
//! tag: u8       -- request (0x01..) or response (0x81..) type
//! id:  u32 BE   -- request id, echoed by every response frame to that request
//! body          -- fields in declaration order, see below
//! ```
//!
//! Field encodings: integers big-endian; `bytes` = u32 length + data; `str` = `bytes` holding
//! UTF-8 (paths that are not UTF-8 are sent lossily); `Option<T>` = u8 0/1 then `T`;
//! `Vec<T>` = u32 count then items.
//!
//! Requests are answered in order. A `Run` request is answered by zero or more `Output` frames
//! and then one `Exit` frame; every other request by exactly one frame. Any request may be
//! answered by `Error` instead. Clients may pipeline (send several requests before reading).

use std::io;

/// Bumped on any incompatible change of the wire format.
pub const PROTOCOL_VERSION: u32 = 2;
/// Sent in `HelloOk` so a client can tell the helper apart from a shell printing an error.
pub const MAGIC: &[u8; 8] = b"STILTSYN";
/// Frames larger than this are refused (a corrupted length must not allocate gigabytes).
pub const MAX_FRAME: usize = 512 << 20;

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileKind {
    File = 0,
    Dir = 1,
    Symlink = 2,
    Other = 3,
}

impl FileKind {
    fn from_u8(v: u8) -> io::Result<Self> {
        Ok(match v {
            0 => Self::File,
            1 => Self::Dir,
            2 => Self::Symlink,
            3 => Self::Other,
            _ => return Err(invalid(format!("bad file kind {v}"))),
        })
    }
}

/// One path to create by a `Write` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteEntry {
    /// Absolute path in the container.
    pub path: String,
    pub kind: FileKind,
    /// Permission bits (e.g. 0o644). 0 means "default" (0o644 files, 0o755 dirs).
    pub mode: u32,
    /// Modification time in ns since the epoch; 0 leaves the time of the write.
    pub mtime_ns: i64,
    /// File contents, or the link target for a symlink; empty for a directory.
    pub data: Vec<u8>,
}

impl WriteEntry {
    /// A regular file.
    pub fn file(path: impl Into<String>, mode: u32, data: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.into(),
            kind: FileKind::File,
            mode,
            mtime_ns: 0,
            data: data.into(),
        }
    }
    /// A directory (created with parents).
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Self {
            path: path.into(),
            kind: FileKind::Dir,
            mode,
            mtime_ns: 0,
            data: Vec::new(),
        }
    }
    /// A symbolic link to `target`.
    pub fn symlink(path: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            kind: FileKind::Symlink,
            mode: 0o777,
            mtime_ns: 0,
            data: target.into().into_bytes(),
        }
    }
}

/// One entry of a `Listing` / `Stat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the listed root (`""` for the root itself); absolute for `Stat`.
    pub path: String,
    pub kind: FileKind,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i64,
    /// SHA-256 of the contents (files) or link target (symlinks) when asked for; else empty.
    pub hash: Vec<u8>,
}

/// A command to run in the container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunSpec {
    pub argv: Vec<String>,
    pub cwd: Option<String>,
    /// Added to (or replacing in) the helper's environment.
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
}

/// Client → helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Hello {
        version: u32,
    },
    /// Create files/dirs/symlinks (parents as needed). Files are written to a temp name and
    /// renamed into place, so readers never see half a file.
    Write {
        entries: Vec<WriteEntry>,
    },
    /// `rm -rf` each path; missing paths are fine.
    Delete {
        paths: Vec<String>,
    },
    Run(RunSpec),
    /// Walk a tree (not following symlinks). `hash`: include SHA-256 of each file.
    List {
        root: String,
        hash: bool,
    },
    Stat {
        path: String,
        hash: bool,
    },
    Read {
        path: String,
    },
    /// The target of a symbolic link (answered with `Data`).
    ReadLink {
        path: String,
    },
    /// Answer `Done` and exit.
    Shutdown,
}

/// Which output stream a chunk of `Run` output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

/// Helper → client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    HelloOk {
        version: u32,
        /// The helper's crate version, e.g. `0.1.0`.
        build: String,
        pid: u32,
    },
    /// Success of Write/Delete/Shutdown; `count` = entries handled.
    Done {
        count: u32,
    },
    Output {
        stream: Stream,
        data: Vec<u8>,
    },
    /// Exit status of a `Run`; a signal `n` is reported as `128 + n`.
    Exit {
        code: i32,
    },
    Listing {
        entries: Vec<Entry>,
    },
    /// `None`: the path does not exist.
    Stat {
        entry: Option<Entry>,
    },
    Data {
        data: Vec<u8>,
    },
    Error {
        message: String,
    },
}

mod tag {
    pub const HELLO: u8 = 0x01;
    pub const WRITE: u8 = 0x02;
    pub const DELETE: u8 = 0x03;
    pub const RUN: u8 = 0x04;
    pub const LIST: u8 = 0x05;
    pub const STAT: u8 = 0x06;
    pub const READ: u8 = 0x07;
    pub const SHUTDOWN: u8 = 0x08;
    pub const READLINK: u8 = 0x09;

    pub const HELLO_OK: u8 = 0x81;
    pub const DONE: u8 = 0x82;
    pub const OUTPUT: u8 = 0x83;
    pub const EXIT: u8 = 0x84;
    pub const LISTING: u8 = 0x85;
    pub const STAT_R: u8 = 0x86;
    pub const DATA: u8 = 0x87;
    pub const ERROR: u8 = 0xFF;
}

pub(crate) fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

// ---------------------------------------------------------------------------------------------
// Encoding

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn start(tag: u8, id: u32) -> Self {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&[0, 0, 0, 0, tag]);
        v.extend_from_slice(&id.to_be_bytes());
        Enc(v)
    }
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }
    fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }
    fn strs(&mut self, v: &[String]) {
        self.u32(v.len() as u32);
        for s in v {
            self.str(s);
        }
    }
    fn entry(&mut self, e: &Entry) {
        self.str(&e.path);
        self.u8(e.kind as u8);
        self.u32(e.mode);
        self.u64(e.size);
        self.i64(e.mtime_ns);
        self.bytes(&e.hash);
    }
    fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_be_bytes());
        self.0
    }
}

struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(invalid("truncated frame"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> io::Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn i32(&mut self) -> io::Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().unwrap()))
    }
    fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn i64(&mut self) -> io::Result<i64> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn bytes(&mut self) -> io::Result<Vec<u8>> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn str(&mut self) -> io::Result<String> {
        String::from_utf8(self.bytes()?).map_err(|_| invalid("string is not UTF-8"))
    }
    fn count(&mut self) -> io::Result<usize> {
        let n = self.u32()? as usize;
        // Every item takes at least one byte: a count larger than the rest is corrupt.
        if n > self.0.len() {
            return Err(invalid("count larger than frame"));
        }
        Ok(n)
    }
    fn strs(&mut self) -> io::Result<Vec<String>> {
        let n = self.count()?;
        (0..n).map(|_| self.str()).collect()
    }
    fn entry(&mut self) -> io::Result<Entry> {
        Ok(Entry {
            path: self.str()?,
            kind: FileKind::from_u8(self.u8()?)?,
            mode: self.u32()?,
            size: self.u64()?,
            mtime_ns: self.i64()?,
            hash: self.bytes()?,
        })
    }
    fn end(&self) -> io::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(invalid("trailing bytes in frame"))
        }
    }
}

/// A decoded frame header plus its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub tag: u8,
    pub id: u32,
    pub body: Vec<u8>,
}

impl Frame {
    /// Split a frame's payload (everything after the length prefix).
    pub fn from_payload(mut payload: Vec<u8>) -> io::Result<Frame> {
        if payload.len() < 5 {
            return Err(invalid("frame shorter than its header"));
        }
        let tag = payload[0];
        let id = u32::from_be_bytes(payload[1..5].try_into().unwrap());
        payload.drain(..5);
        Ok(Frame {
            tag,
            id,
            body: payload,
        })
    }
}

/// Parse a frame's length prefix and check it against [`MAX_FRAME`].
pub fn frame_len(prefix: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(prefix) as usize;
    if !(5..=MAX_FRAME).contains(&len) {
        return Err(invalid(format!(
            "bad frame length {len} (is the other end speaking this protocol?)"
        )));
    }
    Ok(len)
}

impl Request {
    /// Encode as one complete frame (length prefix included).
    pub fn encode(&self, id: u32) -> Vec<u8> {
        let mut e;
        match self {
            Request::Hello { version } => {
                e = Enc::start(tag::HELLO, id);
                e.u32(*version);
            }
            Request::Write { entries } => {
                e = Enc::start(tag::WRITE, id);
                e.u32(entries.len() as u32);
                for w in entries {
                    e.str(&w.path);
                    e.u8(w.kind as u8);
                    e.u32(w.mode);
                    e.i64(w.mtime_ns);
                    e.bytes(&w.data);
                }
            }
            Request::Delete { paths } => {
                e = Enc::start(tag::DELETE, id);
                e.strs(paths);
            }
            Request::Run(r) => {
                e = Enc::start(tag::RUN, id);
                e.strs(&r.argv);
                match &r.cwd {
                    Some(c) => {
                        e.u8(1);
                        e.str(c);
                    }
                    None => e.u8(0),
                }
                e.u32(r.env.len() as u32);
                for (k, v) in &r.env {
                    e.str(k);
                    e.str(v);
                }
                e.bytes(&r.stdin);
            }
            Request::List { root, hash } => {
                e = Enc::start(tag::LIST, id);
                e.str(root);
                e.u8(*hash as u8);
            }
            Request::Stat { path, hash } => {
                e = Enc::start(tag::STAT, id);
                e.str(path);
                e.u8(*hash as u8);
            }
            Request::Read { path } => {
                e = Enc::start(tag::READ, id);
                e.str(path);
            }
            Request::ReadLink { path } => {
                e = Enc::start(tag::READLINK, id);
                e.str(path);
            }
            Request::Shutdown => e = Enc::start(tag::SHUTDOWN, id),
        }
        e.finish()
    }

    /// Decode a request frame.
    pub fn decode(frame: &Frame) -> io::Result<Request> {
        let mut d = Dec(&frame.body);
        let r = match frame.tag {
            tag::HELLO => Request::Hello { version: d.u32()? },
            tag::WRITE => {
                let n = d.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(WriteEntry {
                        path: d.str()?,
                        kind: FileKind::from_u8(d.u8()?)?,
                        mode: d.u32()?,
                        mtime_ns: d.i64()?,
                        data: d.bytes()?,
                    });
                }
                Request::Write { entries }
            }
            tag::DELETE => Request::Delete { paths: d.strs()? },
            tag::RUN => {
                let argv = d.strs()?;
                let cwd = if d.u8()? == 1 { Some(d.str()?) } else { None };
                let n = d.count()?;
                let mut env = Vec::with_capacity(n);
                for _ in 0..n {
                    env.push((d.str()?, d.str()?));
                }
                Request::Run(RunSpec {
                    argv,
                    cwd,
                    env,
                    stdin: d.bytes()?,
                })
            }
            tag::LIST => Request::List {
                root: d.str()?,
                hash: d.u8()? != 0,
            },
            tag::STAT => Request::Stat {
                path: d.str()?,
                hash: d.u8()? != 0,
            },
            tag::READ => Request::Read { path: d.str()? },
            tag::READLINK => Request::ReadLink { path: d.str()? },
            tag::SHUTDOWN => Request::Shutdown,
            t => return Err(invalid(format!("unknown request tag {t:#x}"))),
        };
        d.end()?;
        Ok(r)
    }
}

impl Response {
    /// Encode as one complete frame (length prefix included).
    pub fn encode(&self, id: u32) -> Vec<u8> {
        let mut e;
        match self {
            Response::HelloOk {
                version,
                build,
                pid,
            } => {
                e = Enc::start(tag::HELLO_OK, id);
                e.0.extend_from_slice(MAGIC);
                e.u32(*version);
                e.str(build);
                e.u32(*pid);
            }
            Response::Done { count } => {
                e = Enc::start(tag::DONE, id);
                e.u32(*count);
            }
            Response::Output { stream, data } => {
                e = Enc::start(tag::OUTPUT, id);
                e.u8(*stream as u8);
                e.bytes(data);
            }
            Response::Exit { code } => {
                e = Enc::start(tag::EXIT, id);
                e.i32(*code);
            }
            Response::Listing { entries } => {
                e = Enc::start(tag::LISTING, id);
                e.u32(entries.len() as u32);
                for en in entries {
                    e.entry(en);
                }
            }
            Response::Stat { entry } => {
                e = Enc::start(tag::STAT_R, id);
                match entry {
                    Some(en) => {
                        e.u8(1);
                        e.entry(en);
                    }
                    None => e.u8(0),
                }
            }
            Response::Data { data } => {
                e = Enc::start(tag::DATA, id);
                e.bytes(data);
            }
            Response::Error { message } => {
                e = Enc::start(tag::ERROR, id);
                e.str(message);
            }
        }
        e.finish()
    }

    /// Decode a response frame.
    pub fn decode(frame: &Frame) -> io::Result<Response> {
        let mut d = Dec(&frame.body);
        let r = match frame.tag {
            tag::HELLO_OK => {
                if d.take(MAGIC.len())? != MAGIC {
                    return Err(invalid("bad magic in hello"));
                }
                Response::HelloOk {
                    version: d.u32()?,
                    build: d.str()?,
                    pid: d.u32()?,
                }
            }
            tag::DONE => Response::Done { count: d.u32()? },
            tag::OUTPUT => Response::Output {
                stream: match d.u8()? {
                    1 => Stream::Stdout,
                    2 => Stream::Stderr,
                    s => return Err(invalid(format!("bad stream {s}"))),
                },
                data: d.bytes()?,
            },
            tag::EXIT => Response::Exit { code: d.i32()? },
            tag::LISTING => {
                let n = d.count()?;
                let mut entries = Vec::with_capacity(n);
                for _ in 0..n {
                    entries.push(d.entry()?);
                }
                Response::Listing { entries }
            }
            tag::STAT_R => Response::Stat {
                entry: if d.u8()? == 1 { Some(d.entry()?) } else { None },
            },
            tag::DATA => Response::Data { data: d.bytes()? },
            tag::ERROR => Response::Error { message: d.str()? },
            t => return Err(invalid(format!("unknown response tag {t:#x}"))),
        };
        d.end()?;
        Ok(r)
    }
}

/// Read one frame from a blocking reader. `Ok(None)` on a clean end of stream.
pub fn read_frame<R: io::Read>(r: &mut R) -> io::Result<Option<Frame>> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = frame_len(prefix)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    Frame::from_payload(payload).map(Some)
}

/// SHA-256 of some bytes, as used in listings (compare with local files).
pub fn hash_bytes(data: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(data).to_vec()
}
