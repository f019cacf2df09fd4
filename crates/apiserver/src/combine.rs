//! Write combining for HTTP/2 connections.
//!
//! hyper runs each HTTP/2 stream's response body in a task of its own, which
//! hands its frames to the connection's task, and h2 flushes its transport
//! after every data frame bigger than 256 bytes. When one watch event wakes
//! the watches of many streams on one connection (a client-go process
//! multiplexes all its watches on one), that would be one TLS record and one
//! `writev` per stream. Here the connection's task runs one scheduling round
//! after each wake-up, so that every stream woken by the same event has handed
//! over its frame; the frames h2 writes go into a buffer; and the buffer goes
//! to the socket once h2 is done, after each poll of the connection. A write
//! into a buffer past [`HIGH_WATER`] waits for the socket, so the buffer stays
//! bounded and a slow client still pushes back on h2's flow control.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};

/// Bytes buffered at most before a write waits for the socket.
pub const HIGH_WATER: usize = 256 * 1024;

/// The transport and the bytes written to it but not yet sent.
struct State<T> {
    io: T,
    pending: Vec<u8>,
    /// How much of `pending` went out already.
    sent: usize,
}

impl<T: Write + Unpin> State<T> {
    /// Send what is pending; `Ready(Ok)` once all of it went out.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.pending.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.pending[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.pending.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    fn unsent(&self) -> usize {
        self.pending.len() - self.sent
    }
}

/// The transport as the connection sees it: writes are buffered, and flushes
/// are left to [`Combined`], which sends the buffer after each poll.
pub struct CombiningIo<T> {
    state: Arc<Mutex<State<T>>>,
}

/// A connection future over a [`CombiningIo`]: each wake-up is deferred by
/// one scheduling round, and after each poll what the connection wrote goes
/// to the socket in one write.
pub struct Combined<F: Future, T> {
    conn: Pin<Box<F>>,
    state: Arc<Mutex<State<T>>>,
    deferred: bool,
    done: Option<F::Output>,
}

/// Serve a connection over `io` with write combining: `conn` makes the
/// connection future from the combining transport.
pub fn combined<T, F>(io: T, conn: impl FnOnce(CombiningIo<T>) -> F) -> Combined<F, T>
where
    F: Future,
{
    let io = CombiningIo::new(io);
    let state = io.state.clone();
    Combined {
        conn: Box::pin(conn(io)),
        state,
        deferred: false,
        done: None,
    }
}

impl<T> CombiningIo<T> {
    fn new(io: T) -> Self {
        CombiningIo {
            state: Arc::new(Mutex::new(State {
                io,
                pending: Vec::new(),
                sent: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Only the connection's own task touches the state, so a poisoned
        // lock can only come from a panic in that task, which ends it anyway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn lock<T>(state: &Mutex<State<T>>) -> MutexGuard<'_, State<T>> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T: Read + Unpin> Read for CombiningIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.lock().io).poll_read(cx, buf)
    }
}

impl<T: Write + Unpin> CombiningIo<T> {
    /// Make room: past the high-water mark, wait until the socket took what
    /// is pending.
    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<io::Result<MutexGuard<'_, State<T>>>> {
        let mut s = self.lock();
        if s.unsent() >= HIGH_WATER {
            ready!(s.poll_send(cx))?;
        }
        Poll::Ready(Ok(s))
    }
}

impl<T: Write + Unpin> Write for CombiningIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut s = ready!(self.poll_room(cx))?;
        s.pending.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut s = ready!(self.poll_room(cx))?;
        let mut n = 0;
        for b in bufs {
            s.pending.extend_from_slice(b);
            n += b.len();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Sent by `Combined` after this poll of the connection.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut s = self.lock();
        ready!(s.poll_send(cx))?;
        ready!(Pin::new(&mut s.io).poll_flush(cx))?;
        Pin::new(&mut s.io).poll_shutdown(cx)
    }
}

impl<F, T> Future for Combined<F, T>
where
    F: Future,
    T: Write + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if this.done.is_none() {
            if !this.deferred {
                // A task that wakes itself while being polled is queued behind
                // the tasks already runnable, which include the other streams
                // woken by the same event.
                this.deferred = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.deferred = false;
            if let Poll::Ready(out) = this.conn.as_mut().poll(cx) {
                this.done = Some(out);
            }
        }
        let sent = {
            let mut s = lock(&this.state);
            match s.poll_send(cx) {
                Poll::Ready(Ok(())) => match Pin::new(&mut s.io).poll_flush(cx) {
                    Poll::Ready(r) => Poll::Ready(r),
                    Poll::Pending => Poll::Pending,
                },
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        };
        match (this.done.is_some(), sent) {
            // The connection ended: return once its last bytes went out (or
            // could not).
            (true, Poll::Ready(_)) => Poll::Ready(this.done.take().expect("checked")),
            (true, Poll::Pending) => Poll::Pending,
            // A failed send surfaces through the connection's next read or
            // write on the same transport; the socket's waker is registered
            // when the send is pending.
            (false, _) => Poll::Pending,
        }
    }
}

// Nothing in `Combined` relies on being pinned: the connection is boxed.
impl<F: Future, T> Unpin for Combined<F, T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncReadExt;

    /// A connection stand-in: writes `chunks` through the combining transport,
    /// flushing after each as h2 does, then finishes.
    async fn writer(io: Arc<tokio::sync::Mutex<CombiningIo<TokioIo<tokio::io::DuplexStream>>>>) {
        let chunks: [&[u8]; 3] = [b"one ", b"two ", b"three"];
        for c in chunks {
            let mut io = io.lock().await;
            std::future::poll_fn(|cx| Pin::new(&mut *io).poll_write(cx, c))
                .await
                .unwrap();
            std::future::poll_fn(|cx| Pin::new(&mut *io).poll_flush(cx))
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn writes_leave_together_after_the_poll() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        combined(TokioIo::new(a), |io| {
            writer(Arc::new(tokio::sync::Mutex::new(io)))
        })
        .await;
        let mut got = vec![0u8; 64];
        let n = b.read(&mut got).await.unwrap();
        // One read gets all three writes: they were sent as one.
        assert_eq!(&got[..n], b"one two three");
    }

    #[tokio::test]
    async fn nothing_is_sent_before_the_connection_yields() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let io = CombiningIo::new(TokioIo::new(a));
        let mut io = io;
        std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, b"held"))
            .await
            .unwrap();
        std::future::poll_fn(|cx| Pin::new(&mut io).poll_flush(cx))
            .await
            .unwrap();
        let mut got = [0u8; 8];
        let read =
            tokio::time::timeout(std::time::Duration::from_millis(50), b.read(&mut got)).await;
        assert!(read.is_err(), "a flush alone sent the bytes");
        // Shutting down sends what is pending.
        std::future::poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx))
            .await
            .unwrap();
        let n = b.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"held");
    }

    #[tokio::test]
    async fn past_the_high_water_mark_writes_wait_for_the_socket() {
        // A pipe that holds 1 KiB: the buffer fills to the mark, then a write
        // stays pending until the reader drains.
        let (a, mut b) = tokio::io::duplex(1024);
        let mut io = CombiningIo::new(TokioIo::new(a));
        let big = vec![7u8; HIGH_WATER];
        std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, &big))
            .await
            .unwrap();
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut io).poll_write(&mut cx, b"x").is_pending());
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            let mut buf = vec![0u8; 64 * 1024];
            while sink.len() < HIGH_WATER + 1 {
                let n = b.read(&mut buf).await.unwrap();
                sink.extend_from_slice(&buf[..n]);
            }
            sink.len()
        });
        std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, b"x"))
            .await
            .unwrap();
        std::future::poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx))
            .await
            .unwrap();
        assert_eq!(drain.await.unwrap(), HIGH_WATER + 1);
    }
}
