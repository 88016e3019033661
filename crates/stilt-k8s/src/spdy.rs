//! The SPDY/3.1 frames a port-forward client needs (the kubelet's port-forward protocol runs
//! over SPDY; since Kubernetes 1.30 the API server tunnels it through a WebSocket).
//!
//! Only what a client opening streams uses is encoded: SYN_STREAM, DATA, RST_STREAM and PING.
//! Of what the server sends, SYN_REPLY, DATA, RST_STREAM, PING and GOAWAY are decoded; other
//! control frames (SETTINGS, WINDOW_UPDATE, HEADERS) are skipped. The kubelet's SPDY library
//! enforces no flow control, so neither does this.
//!
//! Header blocks are one zlib stream per connection direction. Ours is written with stored
//! (uncompressed) deflate blocks, which every inflater reads whatever dictionary it was given;
//! the server's header blocks are skipped unread (a reply's headers carry nothing we use).

use bytes::{Buf, BufMut, Bytes, BytesMut};

const VERSION: u16 = 3;
const CONTROL: u16 = 0x8000;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
/// The FIN flag, on DATA and on SYN_STREAM / SYN_REPLY.
const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status: the endpoint no longer wants the stream.
pub const CANCEL: u32 = 5;
/// The longest DATA payload this client sends (the frame allows 16 MiB).
pub const MAX_DATA: usize = 32 * 1024;

/// A frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynReply {
        stream: u32,
        fin: bool,
    },
    Data {
        stream: u32,
        fin: bool,
        data: Bytes,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_stream: u32,
        status: u32,
    },
    /// A control frame this client has no use for.
    Skipped {
        kind: u16,
    },
}

/// Takes one whole frame off the front of `buf`; `None` until one has arrived completely.
pub fn parse(buf: &mut BytesMut) -> Option<Frame> {
    if buf.len() < 8 {
        return None;
    }
    let len = (u32::from_be_bytes([0, buf[5], buf[6], buf[7]])) as usize;
    if buf.len() < 8 + len {
        return None;
    }
    let mut frame = buf.split_to(8 + len).freeze();
    let first = frame.get_u32();
    let flags = frame.get_u8();
    frame.advance(3);
    let fin = flags & FLAG_FIN != 0;
    if first & 0x8000_0000 == 0 {
        return Some(Frame::Data {
            stream: first,
            fin,
            data: frame,
        });
    }
    let kind = (first & 0xffff) as u16;
    let u32_at = |frame: &Bytes, at: usize| -> u32 {
        frame
            .get(at..at + 4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some(match kind {
        SYN_REPLY => Frame::SynReply {
            stream: u32_at(&frame, 0) & 0x7fff_ffff,
            fin,
        },
        RST_STREAM => Frame::RstStream {
            stream: u32_at(&frame, 0) & 0x7fff_ffff,
            status: u32_at(&frame, 4),
        },
        PING => Frame::Ping {
            id: u32_at(&frame, 0),
        },
        GOAWAY => Frame::GoAway {
            last_stream: u32_at(&frame, 0) & 0x7fff_ffff,
            status: u32_at(&frame, 4),
        },
        kind => Frame::Skipped { kind },
    })
}

fn control(out: &mut BytesMut, kind: u16, flags: u8, len: usize) {
    out.put_u16(CONTROL | VERSION);
    out.put_u16(kind);
    out.put_u8(flags);
    out.put_uint(len as u64, 3);
}

/// A DATA frame (`fin`: the last one this side sends on the stream).
pub fn data(stream: u32, fin: bool, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(8 + payload.len());
    out.put_u32(stream & 0x7fff_ffff);
    out.put_u8(if fin { FLAG_FIN } else { 0 });
    out.put_uint(payload.len() as u64, 3);
    out.put_slice(payload);
    out.freeze()
}

pub fn rst_stream(stream: u32, status: u32) -> Bytes {
    let mut out = BytesMut::with_capacity(16);
    control(&mut out, RST_STREAM, 0, 8);
    out.put_u32(stream & 0x7fff_ffff);
    out.put_u32(status);
    out.freeze()
}

pub fn ping(id: u32) -> Bytes {
    let mut out = BytesMut::with_capacity(12);
    control(&mut out, PING, 0, 4);
    out.put_u32(id);
    out.freeze()
}

/// Writes this side's header blocks: one zlib stream across all SYN_STREAMs of a connection,
/// so frames must go out in the order they were encoded.
#[derive(Default)]
pub struct HeaderWriter {
    started: bool,
}

impl HeaderWriter {
    /// A SYN_STREAM opening `stream` with `headers` (names lowercase, as SPDY requires).
    pub fn syn_stream(&mut self, stream: u32, headers: &[(&str, &str)]) -> Bytes {
        let block = self.block(headers);
        let mut out = BytesMut::with_capacity(18 + block.len());
        control(&mut out, SYN_STREAM, 0, 10 + block.len());
        out.put_u32(stream & 0x7fff_ffff);
        out.put_u32(0); // no associated stream
        out.put_u16(0); // priority 0 (highest), slot 0
        out.put_slice(&block);
        out.freeze()
    }

    fn block(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = Vec::new();
        plain.put_u32(headers.len() as u32);
        for (name, value) in headers {
            plain.put_u32(name.len() as u32);
            plain.put_slice(name.as_bytes());
            plain.put_u32(value.len() as u32);
            plain.put_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(plain.len() + 16);
        if !self.started {
            // zlib: deflate with a 32 KiB window, no preset dictionary id, no compression.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        for chunk in plain.chunks(u16::MAX as usize) {
            // A stored block that is not the last: BFINAL 0, BTYPE 00, then LEN and !LEN.
            let len = chunk.len() as u16;
            out.push(0);
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(chunk);
        }
        // A sync flush (an empty stored block) ends every block, as zlib's Z_SYNC_FLUSH does:
        // an inflater hands out what it decoded only at a block boundary it has seen, and one
        // that reads past the frame for it fails the next header block.
        out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syn_stream_layout_and_stored_header_blocks() {
        let mut w = HeaderWriter::default();
        let first = w.syn_stream(1, &[("streamtype", "data"), ("port", "80")]);
        // Control bit + version 3, type 1, no flags, then the length of the rest.
        assert_eq!(&first[..5], &[0x80, 0x03, 0x00, 0x01, 0x00]);
        let len = u32::from_be_bytes([0, first[5], first[6], first[7]]) as usize;
        assert_eq!(first.len(), 8 + len);
        assert_eq!(&first[8..12], &1u32.to_be_bytes());
        // The first block starts the zlib stream; stored block header, then the plain block.
        let block = &first[18..];
        assert_eq!(&block[..3], &[0x78, 0x01, 0x00]);
        let stored = u16::from_le_bytes([block[3], block[4]]);
        assert_eq!(u16::from_le_bytes([block[5], block[6]]), !stored);
        let plain = &block[7..];
        assert_eq!(plain.len(), stored as usize + 5);
        assert_eq!(
            &plain[stored as usize..],
            &[0, 0, 0, 0xff, 0xff],
            "sync flush"
        );
        assert_eq!(&plain[..4], &2u32.to_be_bytes());
        assert_eq!(&plain[4..8], &10u32.to_be_bytes());
        assert_eq!(&plain[8..18], b"streamtype");
        // Later blocks continue the same stream: no zlib header again.
        let second = w.syn_stream(3, &[("port", "80")]);
        assert_eq!(second[18], 0x00);
        assert_eq!(&second[8..12], &3u32.to_be_bytes());
    }

    #[test]
    fn frames_are_parsed_only_when_whole() {
        let mut buf = BytesMut::new();
        let d = data(3, true, b"hello");
        buf.extend_from_slice(&d[..6]);
        assert_eq!(parse(&mut buf), None);
        buf.extend_from_slice(&d[6..]);
        buf.extend_from_slice(&ping(2));
        buf.extend_from_slice(&rst_stream(5, CANCEL));
        assert_eq!(
            parse(&mut buf),
            Some(Frame::Data {
                stream: 3,
                fin: true,
                data: Bytes::from_static(b"hello")
            })
        );
        assert_eq!(parse(&mut buf), Some(Frame::Ping { id: 2 }));
        assert_eq!(
            parse(&mut buf),
            Some(Frame::RstStream {
                stream: 5,
                status: CANCEL
            })
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn server_control_frames() {
        // SYN_REPLY for stream 7 with FIN and a (skipped) header block.
        let mut buf = BytesMut::new();
        buf.extend_from_slice(&[0x80, 0x03, 0x00, 0x02, 0x01, 0x00, 0x00, 0x06]);
        buf.extend_from_slice(&7u32.to_be_bytes());
        buf.extend_from_slice(&[0xaa, 0xbb]);
        // GOAWAY, last good stream 9, status 0.
        buf.extend_from_slice(&[0x80, 0x03, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08]);
        buf.extend_from_slice(&9u32.to_be_bytes());
        buf.extend_from_slice(&0u32.to_be_bytes());
        // SETTINGS with no entries.
        buf.extend_from_slice(&[0x80, 0x03, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 0]);
        assert_eq!(
            parse(&mut buf),
            Some(Frame::SynReply {
                stream: 7,
                fin: true
            })
        );
        assert_eq!(
            parse(&mut buf),
            Some(Frame::GoAway {
                last_stream: 9,
                status: 0
            })
        );
        assert_eq!(parse(&mut buf), Some(Frame::Skipped { kind: 4 }));
        assert_eq!(parse(&mut buf), None);
    }
}
