//! The async client: speaks the protocol over any `AsyncRead` + `AsyncWrite` pair (a Kubernetes
//! exec's stdout/stdin, a Docker exec attach, an in-memory duplex in tests).

use crate::proto::{
    Entry, Frame, PROTOCOL_VERSION, Request, Response, RunSpec, Stream, WriteEntry, frame_len,
};
use std::io;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Errors of a [`Client`] call.
#[derive(Debug)]
pub enum ClientError {
    /// The transport broke or the other end sent something that is not this protocol; the
    /// channel is unusable and must be reopened.
    Transport(io::Error),
    /// The helper could not do what was asked (a path not writable, a command not found…);
    /// the channel is still fine.
    Remote(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Transport(e) => write!(f, "syncer channel: {e}"),
            ClientError::Remote(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Transport(e)
    }
}

type Result<T> = std::result::Result<T, ClientError>;

/// What the helper said in its greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperInfo {
    pub version: u32,
    pub build: String,
    pub pid: u32,
}

/// Result of a `run`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunOutput {
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Requests [`Client::read_many`] keeps in flight. Small enough that the requests of a window
/// always fit in the transport's buffers (no write/write deadlock with the helper's answers).
pub const READ_WINDOW: usize = 32;

/// One open channel. Calls take `&mut self`: requests on one channel are sequential (wrap it in
/// a mutex to share it). Every call is timed in [`Client::last_duration`].
pub struct Client {
    reader: Box<dyn AsyncRead + Send + Unpin>,
    writer: Box<dyn AsyncWrite + Send + Unpin>,
    next_id: u32,
    broken: bool,
    last: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("next_id", &self.next_id)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Client {
    /// Wrap a transport. Nothing is sent until the first call; call [`Client::hello`] first to
    /// check the other end is the helper.
    pub fn new(
        reader: impl AsyncRead + Send + Unpin + 'static,
        writer: impl AsyncWrite + Send + Unpin + 'static,
    ) -> Self {
        Client {
            reader: Box::new(reader),
            writer: Box::new(writer),
            next_id: 1,
            broken: false,
            last: Duration::ZERO,
        }
    }

    /// True once a transport error happened: the channel must be reopened.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Wall time of the last completed call (request sent → final response read).
    pub fn last_duration(&self) -> Duration {
        self.last
    }

    async fn send(&mut self, req: &Request) -> Result<u32> {
        if self.broken {
            return Err(ClientError::Transport(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "channel is broken",
            )));
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let frame = req.encode(id);
        let r = async {
            self.writer.write_all(&frame).await?;
            self.writer.flush().await
        }
        .await;
        if let Err(e) = r {
            self.broken = true;
            return Err(e.into());
        }
        Ok(id)
    }

    async fn recv(&mut self, id: u32) -> Result<Response> {
        let r = async {
            let mut prefix = [0u8; 4];
            self.reader.read_exact(&mut prefix).await?;
            let len = frame_len(prefix)?;
            let mut payload = vec![0u8; len];
            self.reader.read_exact(&mut payload).await?;
            let frame = Frame::from_payload(payload)?;
            if frame.id != id {
                return Err(crate::proto::invalid(format!(
                    "response for request {} while waiting for {id}",
                    frame.id
                )));
            }
            Response::decode(&frame)
        }
        .await;
        match r {
            Ok(resp) => Ok(resp),
            Err(e) => {
                self.broken = true;
                Err(e.into())
            }
        }
    }

    async fn call(&mut self, req: &Request) -> Result<Response> {
        let start = Instant::now();
        let id = self.send(req).await?;
        let resp = self.recv(id).await?;
        self.last = start.elapsed();
        match resp {
            Response::Error { message } => Err(ClientError::Remote(message)),
            r => Ok(r),
        }
    }

    fn unexpected(&mut self, r: Response) -> ClientError {
        self.broken = true;
        ClientError::Transport(crate::proto::invalid(format!("unexpected response {r:?}")))
    }

    /// Greet the helper; fails if the other end is not a helper of this protocol version.
    pub async fn hello(&mut self) -> Result<HelperInfo> {
        match self
            .call(&Request::Hello {
                version: PROTOCOL_VERSION,
            })
            .await?
        {
            Response::HelloOk {
                version,
                build,
                pid,
            } => {
                if version != PROTOCOL_VERSION {
                    return Err(ClientError::Remote(format!(
                        "helper speaks protocol {version}, we speak {PROTOCOL_VERSION}"
                    )));
                }
                Ok(HelperInfo {
                    version,
                    build,
                    pid,
                })
            }
            r => Err(self.unexpected(r)),
        }
    }

    /// Write files, directories and symlinks.
    pub async fn write(&mut self, entries: Vec<WriteEntry>) -> Result<u32> {
        match self.call(&Request::Write { entries }).await? {
            Response::Done { count } => Ok(count),
            r => Err(self.unexpected(r)),
        }
    }

    /// `rm -rf` paths.
    pub async fn delete(&mut self, paths: Vec<String>) -> Result<u32> {
        match self.call(&Request::Delete { paths }).await? {
            Response::Done { count } => Ok(count),
            r => Err(self.unexpected(r)),
        }
    }

    /// Deletions then writes in one round trip (both requests are sent before reading).
    pub async fn update(&mut self, deletes: Vec<String>, writes: Vec<WriteEntry>) -> Result<()> {
        let start = Instant::now();
        let mut ids = Vec::new();
        if !deletes.is_empty() {
            ids.push(self.send(&Request::Delete { paths: deletes }).await?);
        }
        if !writes.is_empty() {
            ids.push(self.send(&Request::Write { entries: writes }).await?);
        }
        let mut first_err = None;
        for id in ids {
            match self.recv(id).await? {
                Response::Done { .. } => {}
                Response::Error { message } => {
                    first_err.get_or_insert(ClientError::Remote(message));
                }
                r => return Err(self.unexpected(r)),
            }
        }
        self.last = start.elapsed();
        first_err.map_or(Ok(()), Err)
    }

    /// Run a command; each chunk of output is passed to `on_output` as it arrives.
    pub async fn run_streaming(
        &mut self,
        spec: RunSpec,
        mut on_output: impl FnMut(Stream, &[u8]) + Send,
    ) -> Result<i32> {
        let start = Instant::now();
        let id = self.send(&Request::Run(spec)).await?;
        loop {
            match self.recv(id).await? {
                Response::Output { stream, data } => on_output(stream, &data),
                Response::Exit { code } => {
                    self.last = start.elapsed();
                    return Ok(code);
                }
                Response::Error { message } => return Err(ClientError::Remote(message)),
                r => return Err(self.unexpected(r)),
            }
        }
    }

    /// Run a command and collect its output.
    pub async fn run(&mut self, spec: RunSpec) -> Result<RunOutput> {
        let mut out = RunOutput::default();
        let (so, se) = (&mut out.stdout, &mut out.stderr);
        let code = self
            .run_streaming(spec, |s, d| match s {
                Stream::Stdout => so.extend_from_slice(d),
                Stream::Stderr => se.extend_from_slice(d),
            })
            .await?;
        out.exit_code = code;
        Ok(out)
    }

    /// List a tree; the first entry is the root itself (path `""`), the rest sorted by path.
    pub async fn list(&mut self, root: impl Into<String>, hash: bool) -> Result<Vec<Entry>> {
        match self
            .call(&Request::List {
                root: root.into(),
                hash,
            })
            .await?
        {
            Response::Listing { entries } => Ok(entries),
            r => Err(self.unexpected(r)),
        }
    }

    /// Stat one path (`None`: it does not exist).
    pub async fn stat(&mut self, path: impl Into<String>, hash: bool) -> Result<Option<Entry>> {
        match self
            .call(&Request::Stat {
                path: path.into(),
                hash,
            })
            .await?
        {
            Response::Stat { entry } => Ok(entry),
            r => Err(self.unexpected(r)),
        }
    }

    /// Read a whole file.
    pub async fn read(&mut self, path: impl Into<String>) -> Result<Vec<u8>> {
        match self.call(&Request::Read { path: path.into() }).await? {
            Response::Data { data } => Ok(data),
            r => Err(self.unexpected(r)),
        }
    }

    /// Read several files with up to [`READ_WINDOW`] requests in flight: the helper answers in
    /// order, so one round trip serves a whole window. A file that cannot be read is an `Err` in
    /// its slot; the channel stays usable.
    pub async fn read_many(
        &mut self,
        paths: &[String],
    ) -> Result<Vec<std::result::Result<Vec<u8>, String>>> {
        let start = Instant::now();
        let mut out = Vec::with_capacity(paths.len());
        let mut rest = paths;
        while !rest.is_empty() {
            // Bounded by count and request bytes, so a window's requests fit in the buffers.
            let mut n = 0;
            let mut bytes = 0;
            while n < rest.len() && n < READ_WINDOW && (n == 0 || bytes + rest[n].len() <= 16 << 10)
            {
                bytes += rest[n].len();
                n += 1;
            }
            let (window, tail) = rest.split_at(n);
            rest = tail;
            let mut ids = Vec::with_capacity(window.len());
            for p in window {
                ids.push(self.send(&Request::Read { path: p.clone() }).await?);
            }
            for id in ids {
                out.push(match self.recv(id).await? {
                    Response::Data { data } => Ok(data),
                    Response::Error { message } => Err(message),
                    r => return Err(self.unexpected(r)),
                });
            }
        }
        self.last = start.elapsed();
        Ok(out)
    }

    /// The target of a symbolic link.
    pub async fn read_link(&mut self, path: impl Into<String>) -> Result<String> {
        match self.call(&Request::ReadLink { path: path.into() }).await? {
            Response::Data { data } => Ok(String::from_utf8_lossy(&data).into_owned()),
            r => Err(self.unexpected(r)),
        }
    }

    /// Ask the helper to exit, then close our end.
    pub async fn shutdown(mut self) -> Result<()> {
        let r = self.call(&Request::Shutdown).await;
        let _ = self.writer.shutdown().await;
        r.map(|_| ())
    }
}
