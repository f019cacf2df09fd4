use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::{Result, WatchResponse};

/// The consumer end of a watch. Items arrive in revision order; an `Err` is
/// final. Dropping the stream cancels the watch.
pub struct WatchStream {
    rx: mpsc::Receiver<Result<WatchResponse>>,
    producer: Option<AbortHandle>,
}

impl WatchStream {
    /// Wrap a channel fed by a producer task; the task is aborted when the stream
    /// is dropped.
    pub fn new(rx: mpsc::Receiver<Result<WatchResponse>>, producer: Option<AbortHandle>) -> Self {
        WatchStream { rx, producer }
    }

    /// The next response, or `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchResponse>> {
        self.rx.recv().await
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if let Some(h) = self.producer.take() {
            h.abort();
        }
    }
}
