//! SPDY/3.1 framing, as far as Kubernetes' streaming uses it
//! (`moby/spdystream`): control frames (SYN_STREAM, SYN_REPLY, RST_STREAM,
//! SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE) and data frames, with
//! the name/value header blocks compressed by one zlib stream per direction
//! that starts from SPDY/3's dictionary and is sync-flushed after each
//! frame. No flow control: spdystream neither sends nor honours windows.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// A malformed frame or header block.
#[derive(Debug, thiserror::Error)]
#[error("spdy: {0}")]
pub struct SpdyError(pub String);

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 1;
/// Frames longer than this are refused (the header says up to 16 MiB).
const MAX_FRAME: usize = 1 << 24;

/// RST_STREAM status: cancel.
pub const RST_CANCEL: u32 = 5;

/// SPDY/3's header compression dictionary (draft 3, section 2.6.10.1):
/// length-prefixed header names and values, then a run of status codes,
/// reason phrases, dates and common values. Byte-exact, or the peer's
/// inflate fails.
pub fn dictionary() -> &'static [u8] {
    static DICT: OnceLock<Vec<u8>> = OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410\
411412413414415416417502504505203 Non-Authoritative Information204 No Content\
301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found\
500 Internal Server Error501 Not Implemented503 Service UnavailableJan Feb Mar Apr \
May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT\
chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,\
text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch\
charset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.extend_from_slice(&(w.len() as u32).to_be_bytes());
            d.extend_from_slice(w.as_bytes());
        }
        d.extend_from_slice(TAIL.as_bytes());
        d
    })
}

/// Header name/value pairs (names lower case; repeated names are repeated
/// pairs).
pub type HeaderList = Vec<(String, String)>;

/// A decoded frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// A new stream from the peer.
    SynStream {
        /// Stream ID.
        id: u32,
        /// The peer will send nothing on it.
        fin: bool,
        /// Its headers.
        headers: HeaderList,
    },
    /// The peer accepted a stream we opened.
    SynReply {
        /// Stream ID.
        id: u32,
        /// The peer will send nothing more on it.
        fin: bool,
    },
    /// The peer reset a stream.
    RstStream {
        /// Stream ID.
        id: u32,
    },
    /// A ping to echo (or the echo of ours).
    Ping(u32),
    /// The peer is going away.
    GoAway,
    /// Extra headers; only the FIN flag matters.
    Headers {
        /// Stream ID.
        id: u32,
        /// Half-close.
        fin: bool,
    },
    /// Settings and window updates, ignored.
    Ignored,
    /// Data on a stream.
    Data {
        /// Stream ID.
        id: u32,
        /// The peer's last data on the stream.
        fin: bool,
        /// Payload.
        data: Bytes,
    },
}

/// Parses frames out of a byte stream, inflating header blocks.
pub struct Reader {
    buf: Vec<u8>,
    inflate: Decompress,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            buf: Vec::new(),
            inflate: Decompress::new(true),
        }
    }
}

impl Reader {
    /// Append bytes read from the connection.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SpdyError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([0, self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if len >= MAX_FRAME {
            return Err(SpdyError(format!("frame of {len} bytes")));
        }
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        let head: [u8; 8] = self.buf[..8].try_into().expect("8 bytes");
        let body: Vec<u8> = self.buf[8..8 + len].to_vec();
        self.buf.drain(..8 + len);
        let flags = head[4];
        let fin = flags & FLAG_FIN != 0;
        if head[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) & 0x7fff_ffff;
            return Ok(Some(Frame::Data {
                id,
                fin,
                data: Bytes::from(body),
            }));
        }
        let version = u16::from_be_bytes([head[0] & 0x7f, head[1]]);
        if version != VERSION {
            return Err(SpdyError(format!("unsupported version {version}")));
        }
        let kind = u16::from_be_bytes([head[2], head[3]]);
        let u32_at = |i: usize| -> Result<u32, SpdyError> {
            body.get(i..i + 4)
                .map(|b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
                .ok_or_else(|| SpdyError(format!("short control frame of type {kind}")))
        };
        Ok(Some(match kind {
            SYN_STREAM => {
                let id = u32_at(0)? & 0x7fff_ffff;
                if body.len() < 10 {
                    return Err(SpdyError("short SYN_STREAM".into()));
                }
                let headers = self.headers(&body[10..])?;
                Frame::SynStream { id, fin, headers }
            }
            SYN_REPLY => {
                let id = u32_at(0)? & 0x7fff_ffff;
                self.headers(&body[4..])?;
                Frame::SynReply { id, fin }
            }
            HEADERS => {
                let id = u32_at(0)? & 0x7fff_ffff;
                self.headers(&body[4..])?;
                Frame::Headers { id, fin }
            }
            RST_STREAM => Frame::RstStream {
                id: u32_at(0)? & 0x7fff_ffff,
            },
            PING => Frame::Ping(u32_at(0)?),
            GOAWAY => Frame::GoAway,
            SETTINGS | WINDOW_UPDATE => Frame::Ignored,
            _ => Frame::Ignored,
        }))
    }

    /// Inflate one header block (the zlib stream continues across frames).
    fn headers(&mut self, block: &[u8]) -> Result<HeaderList, SpdyError> {
        let mut out = Vec::with_capacity(block.len() * 4 + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 256 {
                out.reserve(out.capacity());
            }
            let before = self.inflate.total_in();
            let r = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = (self.inflate.total_in() - before) as usize;
            input = &input[used..];
            match r {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    if input.is_empty() && out.capacity() > out.len() {
                        break;
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(dictionary())
                        .map_err(|e| SpdyError(format!("header dictionary: {e}")))?;
                }
                Err(e) => return Err(SpdyError(format!("header block: {e}"))),
            }
        }
        parse_header_block(&out)
    }
}

/// Decode an inflated name/value block.
pub fn parse_header_block(b: &[u8]) -> Result<HeaderList, SpdyError> {
    let short = || SpdyError("short header block".into());
    let mut i = 0;
    let mut take = |n: usize| -> Result<&[u8], SpdyError> {
        let s = b.get(i..i + n).ok_or_else(short)?;
        i += n;
        Ok(s)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut out = Vec::new();
    for _ in 0..count {
        let n = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let name = String::from_utf8_lossy(take(n)?).into_owned();
        let n = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let value = take(n)?;
        for v in value.split(|c| *c == 0) {
            out.push((name.clone(), String::from_utf8_lossy(v).into_owned()));
        }
    }
    Ok(out)
}

/// Encode a name/value block (before compression).
pub fn header_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (n, v) in headers {
        let n = n.to_ascii_lowercase();
        b.extend_from_slice(&(n.len() as u32).to_be_bytes());
        b.extend_from_slice(n.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + body.len());
    f.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(body);
    f
}

/// A data frame.
pub fn data_frame(id: u32, fin: bool, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
    f.push(if fin { FLAG_FIN } else { 0 });
    f.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(data);
    f
}

/// Compresses header blocks; one per direction of a connection.
pub struct Deflater {
    deflate: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        let mut deflate = Compress::new(Compression::default(), true);
        deflate
            .set_dictionary(dictionary())
            .expect("setting a dictionary on a fresh stream");
        Deflater { deflate }
    }
}

impl Deflater {
    /// Compress and sync-flush one header block.
    pub fn compress(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len() + 64);
        let mut input = block;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity() + 64);
            }
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate into a growing buffer");
            input = &input[(self.deflate.total_in() - before) as usize..];
            // Done once all input is in and the flush fit in the buffer.
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
        }
    }

    /// A SYN_STREAM frame.
    pub fn syn_stream(&mut self, id: u32, fin: bool, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&id.to_be_bytes());
        body.extend_from_slice(&0u32.to_be_bytes());
        body.extend_from_slice(&[0, 0]);
        body.extend(self.compress(&header_block(headers)));
        control(SYN_STREAM, if fin { FLAG_FIN } else { 0 }, &body)
    }

    /// A SYN_REPLY frame.
    pub fn syn_reply(&mut self, id: u32, fin: bool, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut body = id.to_be_bytes().to_vec();
        body.extend(self.compress(&header_block(headers)));
        control(SYN_REPLY, if fin { FLAG_FIN } else { 0 }, &body)
    }
}

/// A RST_STREAM frame.
pub fn rst_frame(id: u32, status: u32) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    body.extend_from_slice(&status.to_be_bytes());
    control(RST_STREAM, 0, &body)
}

/// A PING frame (also its echo).
pub fn ping_frame(id: u32) -> Vec<u8> {
    control(PING, 0, &id.to_be_bytes())
}

/// The sending side of a connection: frames are encoded in order (the
/// header compressor's state follows the wire) and queued for one writer.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Mutex<(Deflater, tokio::sync::mpsc::UnboundedSender<Bytes>)>>,
}

impl Sender {
    /// A sender and the queue its frames go to.
    pub fn new() -> (Sender, tokio::sync::mpsc::UnboundedReceiver<Bytes>) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Sender {
                inner: Arc::new(Mutex::new((Deflater::default(), tx))),
            },
            rx,
        )
    }

    fn push(&self, f: impl FnOnce(&mut Deflater) -> Vec<u8>) -> bool {
        let mut g = self.inner.lock().expect("spdy sender lock");
        let frame = f(&mut g.0);
        g.1.send(Bytes::from(frame)).is_ok()
    }

    /// Open stream `id`.
    pub fn syn_stream(&self, id: u32, fin: bool, headers: &[(&str, &str)]) -> bool {
        self.push(|d| d.syn_stream(id, fin, headers))
    }

    /// Accept stream `id`.
    pub fn syn_reply(&self, id: u32, fin: bool) -> bool {
        self.push(|d| d.syn_reply(id, fin, &[]))
    }

    /// Data (or, empty with `fin`, the half-close) on stream `id`.
    pub fn data(&self, id: u32, fin: bool, data: &[u8]) -> bool {
        // Frames carry at most 16 MiB - 1; callers send far smaller chunks.
        self.push(|_| data_frame(id, fin, data))
    }

    /// Reset stream `id`.
    pub fn rst(&self, id: u32, status: u32) -> bool {
        self.push(|_| rst_frame(id, status))
    }

    /// Echo a ping.
    pub fn ping(&self, id: u32) -> bool {
        self.push(|_| ping_frame(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_spdy3s() {
        let d = dictionary();
        assert_eq!(d.len(), 1423);
        assert!(d.starts_with(b"\x00\x00\x00\x07options\x00\x00\x00\x04head"));
        assert!(d.ends_with(b",utf-,*,enq=0."));
    }

    #[test]
    fn frames_round_trip_with_compressed_headers() {
        let mut out = Deflater::default();
        let mut wire = Vec::new();
        wire.extend(out.syn_stream(1, false, &[("streamType", "error")]));
        wire.extend(out.syn_stream(3, true, &[("streamtype", "stdout"), ("port", "80")]));
        wire.extend(out.syn_reply(2, false, &[]));
        wire.extend(data_frame(3, true, b"hello"));
        wire.extend(ping_frame(7));
        wire.extend(rst_frame(5, RST_CANCEL));
        let mut r = Reader::default();
        // Byte by byte: frames only come out once complete.
        let mut frames = Vec::new();
        for b in &wire {
            r.feed(&[*b]);
            while let Some(f) = r.next_frame().unwrap() {
                frames.push(f);
            }
        }
        assert_eq!(
            frames,
            vec![
                Frame::SynStream {
                    id: 1,
                    fin: false,
                    headers: vec![("streamtype".into(), "error".into())]
                },
                Frame::SynStream {
                    id: 3,
                    fin: true,
                    headers: vec![
                        ("streamtype".into(), "stdout".into()),
                        ("port".into(), "80".into())
                    ]
                },
                Frame::SynReply { id: 2, fin: false },
                Frame::Data {
                    id: 3,
                    fin: true,
                    data: Bytes::from_static(b"hello")
                },
                Frame::Ping(7),
                Frame::RstStream { id: 5 },
            ]
        );
    }

    #[test]
    fn header_values_split_on_nul() {
        let b = header_block(&[("a", "x\0y")]);
        assert_eq!(
            parse_header_block(&b).unwrap(),
            vec![("a".into(), "x".into()), ("a".into(), "y".into())]
        );
        assert!(parse_header_block(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn rejects_other_versions() {
        let mut f = control(PING, 0, &1u32.to_be_bytes());
        f[1] = 2;
        let mut r = Reader::default();
        r.feed(&f);
        assert!(r.next_frame().is_err());
    }
}
