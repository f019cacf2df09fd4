use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::BoxStream;
use futures::Stream;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use crate::{Result, WatchResponse};

/// The consumer end of a watch. Items arrive in revision order; an `Err` is
/// final. Dropping the stream cancels the watch.
pub struct WatchStream {
    source: Source,
}

enum Source {
    /// Fed by a producer task, aborted on drop.
    Channel {
        rx: mpsc::Receiver<Result<WatchResponse>>,
        producer: Option<AbortHandle>,
    },
    /// Driven directly by the consumer's polls.
    Stream(BoxStream<'static, Result<WatchResponse>>),
}

impl WatchStream {
    /// Wrap a channel fed by a producer task; the task is aborted when the stream
    /// is dropped.
    pub fn new(rx: mpsc::Receiver<Result<WatchResponse>>, producer: Option<AbortHandle>) -> Self {
        WatchStream {
            source: Source::Channel { rx, producer },
        }
    }

    /// Wrap a stream that does its work when polled.
    pub fn from_stream(s: BoxStream<'static, Result<WatchResponse>>) -> Self {
        WatchStream {
            source: Source::Stream(s),
        }
    }

    /// The next response, or `None` once the watch has ended.
    pub async fn next(&mut self) -> Option<Result<WatchResponse>> {
        futures::StreamExt::next(self).await
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match &mut self.source {
            Source::Channel { rx, .. } => rx.poll_recv(cx),
            Source::Stream(s) => s.as_mut().poll_next(cx),
        }
    }
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        if let Source::Channel {
            producer: Some(h), ..
        } = &mut self.source
        {
            h.abort();
        }
    }
}
