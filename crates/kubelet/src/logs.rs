//! Container logs from the CRI log files: containerd writes one line per
//! write of the container, `<RFC3339Nano> <stdout|stderr> <P|F> <msg>`, where
//! `P` marks a partial line (the rest follows in the next `P`/`F` entries).
//! This module parses those files and applies the PodLogOptions (tail, since,
//! timestamps, limit) with upstream's semantics, and follows a file while
//! its container runs.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One parsed CRI log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<'a> {
    /// When containerd read it.
    pub timestamp: OffsetDateTime,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// Whether this is the end of a line (`F`), not a fragment (`P`).
    pub full: bool,
    /// The content, without the line's newline.
    pub msg: &'a [u8],
}

/// Parse one line of a CRI log file (without its trailing newline).
pub fn parse_line(line: &[u8]) -> Option<Entry<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let timestamp = OffsetDateTime::parse(ts, &Rfc3339).ok()?;
    let stream = std::str::from_utf8(parts.next()?).ok()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let tags = parts.next()?;
    // Tags are `:`-separated; only the partial/full flag matters.
    let full = !tags.split(|b| *b == b':').any(|t| t == b"P");
    let msg = parts.next().unwrap_or_default();
    Some(Entry {
        timestamp,
        stream,
        full,
        msg,
    })
}

/// The options of a log request, as the kubelet gets them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Keep reading while the container runs.
    pub follow: bool,
    /// Only the last N lines of the file.
    pub tail_lines: Option<u64>,
    /// Only entries at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Prefix every line with its timestamp.
    pub timestamps: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

/// The timestamp as upstream prints it: RFC 3339 with exactly nine
/// fractional digits (so columns line up).
pub fn format_timestamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Turns log file lines into the bytes a client sees, carrying the
/// partial-line state and the byte limit across calls.
#[derive(Debug)]
pub struct Renderer {
    opts: Options,
    /// Whether the next output starts a line (a timestamp is due).
    at_line_start: bool,
    written: u64,
}

impl Renderer {
    /// A renderer for `opts`.
    pub fn new(opts: Options) -> Self {
        Renderer {
            opts,
            at_line_start: true,
            written: 0,
        }
    }

    /// Whether the byte limit is reached (nothing more will be written).
    pub fn done(&self) -> bool {
        self.opts.limit_bytes.is_some_and(|l| self.written >= l)
    }

    /// Render one raw file line (without newline) into `out`. Lines that
    /// are not CRI entries are skipped, as upstream does.
    pub fn line(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if self.done() {
            return;
        }
        let Some(e) = parse_line(line) else {
            return;
        };
        if self.opts.since.is_some_and(|s| e.timestamp < s) {
            return;
        }
        let mut piece = Vec::with_capacity(e.msg.len() + 32);
        if self.opts.timestamps && self.at_line_start {
            piece.extend_from_slice(format_timestamp(e.timestamp).as_bytes());
            piece.push(b' ');
        }
        piece.extend_from_slice(e.msg);
        if e.full {
            piece.push(b'\n');
        }
        self.at_line_start = e.full;
        if let Some(limit) = self.opts.limit_bytes {
            let room = (limit - self.written) as usize;
            piece.truncate(room);
        }
        self.written += piece.len() as u64;
        out.extend_from_slice(&piece);
    }
}

/// The offset in `f` where its last `n` lines start (counting a final line
/// without newline as a line), reading backwards in blocks.
pub fn tail_start<R: Read + Seek>(f: &mut R, n: u64) -> std::io::Result<u64> {
    let len = f.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    const BLOCK: u64 = 8192;
    let mut pos = len;
    let mut seen = 0u64;
    let mut first = true;
    let mut buf = vec![0u8; BLOCK as usize];
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let size = (pos - start) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..size])?;
        for i in (0..size).rev() {
            if buf[i] != b'\n' {
                continue;
            }
            // A newline that ends the file does not start a new line.
            if first && start + i as u64 == len - 1 {
                first = false;
                continue;
            }
            first = false;
            seen += 1;
            if seen == n {
                return Ok(start + i as u64 + 1);
            }
        }
        first = false;
        pos = start;
    }
    Ok(0)
}

/// Where the bytes of a log stream go; an error ends the stream (the
/// client went away).
pub type Sink = tokio::sync::mpsc::Sender<bytes::Bytes>;

/// Stream the log file at `path` into `sink` with `opts`. When following,
/// `running` is asked (at the end of the file, at most twice a second)
/// whether the container still runs; once it does not and the file is
/// drained, the stream ends.
pub async fn stream<F, Fut>(path: &Path, opts: Options, sink: Sink, running: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let follow = opts.follow;
    let tail = opts.tail_lines;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "log file not readable");
            return;
        }
    };
    let start = match tail {
        Some(n) => tail_start(&mut file, n).unwrap_or(0),
        None => 0,
    };
    if file.seek(SeekFrom::Start(start)).is_err() {
        return;
    }
    let mut r = Renderer::new(opts);
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_check = tokio::time::Instant::now();
    loop {
        let n = match file.read(&mut buf) {
            Ok(n) => n,
            Err(_) => return,
        };
        if n > 0 {
            pending.extend_from_slice(&buf[..n]);
            let mut out = Vec::new();
            let mut consumed = 0;
            while let Some(i) = pending[consumed..].iter().position(|b| *b == b'\n') {
                r.line(&pending[consumed..consumed + i], &mut out);
                consumed += i + 1;
            }
            pending.drain(..consumed);
            if !out.is_empty() && sink.send(out.into()).await.is_err() {
                return;
            }
            if r.done() {
                return;
            }
            continue;
        }
        if !follow {
            return;
        }
        // At the end of the file: the container may have exited, in which
        // case everything it wrote is already in the file.
        if last_check.elapsed() >= Duration::from_millis(500) {
            last_check = tokio::time::Instant::now();
            if !running().await {
                // One more read catches what was written before the exit.
                let n = file.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    return;
                }
                pending.extend_from_slice(&buf[..n]);
                continue;
            }
        }
        if sink.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn ts(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &Rfc3339).unwrap()
    }

    fn render(opts: Options, lines: &[&str]) -> String {
        let mut r = Renderer::new(opts);
        let mut out = Vec::new();
        for l in lines {
            r.line(l.as_bytes(), &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_cri_lines() {
        let e = parse_line(b"2016-10-06T00:17:09.669794202Z stdout F log content 1").unwrap();
        assert_eq!(e.stream, "stdout");
        assert!(e.full);
        assert_eq!(e.msg, b"log content 1");
        assert_eq!(e.timestamp, ts("2016-10-06T00:17:09.669794202Z"));
        let p = parse_line(b"2016-10-06T00:17:09.669794202+02:00 stderr P part").unwrap();
        assert!(!p.full);
        assert_eq!(p.stream, "stderr");
        // An empty line written by the container.
        let empty = parse_line(b"2016-10-06T00:17:09Z stdout F ").unwrap();
        assert_eq!(empty.msg, b"");
        assert!(parse_line(b"garbage").is_none());
        assert!(parse_line(b"2016-10-06T00:17:09Z stdin F x").is_none());
        assert!(parse_line(b"notatime stdout F x").is_none());
    }

    #[test]
    fn joins_partial_lines_and_stamps_once() {
        let lines = [
            "2024-01-01T00:00:01.5Z stdout P hel",
            "2024-01-01T00:00:02Z stdout F lo",
            "2024-01-01T00:00:03Z stderr F err",
        ];
        assert_eq!(render(Options::default(), &lines), "hello\nerr\n");
        let stamped = render(
            Options {
                timestamps: true,
                ..Default::default()
            },
            &lines,
        );
        assert_eq!(
            stamped,
            "2024-01-01T00:00:01.500000000Z hello\n2024-01-01T00:00:03.000000000Z err\n"
        );
    }

    #[test]
    fn since_and_limit() {
        let lines = [
            "2024-01-01T00:00:01Z stdout F one",
            "2024-01-01T00:00:02Z stdout F two",
            "2024-01-01T00:00:03Z stdout F three",
        ];
        let since = Options {
            since: Some(ts("2024-01-01T00:00:02Z")),
            ..Default::default()
        };
        assert_eq!(render(since, &lines), "two\nthree\n");
        let limited = Options {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(render(limited, &lines), "one\ntw");
    }

    #[test]
    fn tail_finds_line_starts() {
        let data = b"a\nbb\nccc\n";
        let mut c = Cursor::new(&data[..]);
        assert_eq!(tail_start(&mut c, 1).unwrap(), 5);
        assert_eq!(tail_start(&mut c, 2).unwrap(), 2);
        assert_eq!(tail_start(&mut c, 3).unwrap(), 0);
        assert_eq!(tail_start(&mut c, 10).unwrap(), 0);
        assert_eq!(tail_start(&mut c, 0).unwrap(), 9);
        // Without a final newline the last fragment counts as a line.
        let mut c = Cursor::new(&b"a\nbb"[..]);
        assert_eq!(tail_start(&mut c, 1).unwrap(), 2);
        // Across block boundaries.
        let mut big = Vec::new();
        for i in 0..5000 {
            big.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let mut c = Cursor::new(&big[..]);
        let at = tail_start(&mut c, 3).unwrap() as usize;
        assert_eq!(&big[at..], b"line 4997\nline 4998\nline 4999\n");
    }

    #[tokio::test]
    async fn streams_a_file_with_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(
            &p,
            "2024-01-01T00:00:01Z stdout F one\n2024-01-01T00:00:02Z stdout F two\n2024-01-01T00:00:03Z stdout F three\n",
        )
        .unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let opts = Options {
            tail_lines: Some(2),
            ..Default::default()
        };
        stream(&p, opts, tx, || async { false }).await;
        let mut got = Vec::new();
        while let Some(b) = rx.recv().await {
            got.extend_from_slice(&b);
        }
        assert_eq!(String::from_utf8(got).unwrap(), "two\nthree\n");
    }

    #[tokio::test]
    async fn follow_ends_when_the_container_stops() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        std::fs::write(&p, "2024-01-01T00:00:01Z stdout F one\n").unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let opts = Options {
            follow: true,
            ..Default::default()
        };
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let r2 = running.clone();
        let p2 = p.clone();
        let task = tokio::spawn(async move {
            stream(&p2, opts, tx, move || {
                let r = r2.clone();
                async move { r.load(std::sync::atomic::Ordering::SeqCst) }
            })
            .await
        });
        assert_eq!(&rx.recv().await.unwrap()[..], b"one\n");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"2024-01-01T00:00:02Z stdout F two\n").unwrap();
        assert_eq!(&rx.recv().await.unwrap()[..], b"two\n");
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap();
    }
}
