//! The `tokio` feature's async interfaces (`unipc::asynch`), under tokio's
//! multi-threaded runtime, between real processes as everywhere else: each
//! peer is this test binary re-executed in a role, itself async.

mod messages;
mod streams;
mod sync;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use unipc::asynch::AsyncMessenger;
use unipc::message::{Limits, Received, Tag};

use crate::util;

/// How long any single await may take before the test calls it a hang.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Waits for a peer without blocking a runtime worker.
pub async fn wait_success(peer: util::Running) {
    tokio::task::spawn_blocking(move || peer.wait_success())
        .await
        .expect("waiting for the peer");
}

/// Waits for a peer and returns what it printed.
pub async fn wait_stdout(peer: util::Running) -> String {
    let (status, out) = tokio::task::spawn_blocking(move || peer.wait_stdout())
        .await
        .expect("waiting for the peer");
    assert!(status.success(), "peer failed: {status:?}");
    String::from_utf8(out).expect("peer output is text")
}

/// `await` with the test's patience: a hang is a failure, not a stuck run.
pub async fn patient<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}"))
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// [`AsyncMessenger`] as a trait object, so one suite runs over every
/// facility (the trait's methods return `impl Future`, which `dyn` cannot).
pub trait DynMessenger: Send + Sync {
    fn limits(&self) -> unipc::Result<Limits>;
    fn send_tagged<'a>(&'a self, message: &'a [u8], tag: Tag) -> BoxFuture<'a, unipc::Result<()>>;
    fn recv_into<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, unipc::Result<Received>>;
    fn recv_vec(&self) -> BoxFuture<'_, unipc::Result<(Vec<u8>, Tag)>>;
}

impl<T: AsyncMessenger + Send> DynMessenger for T {
    fn limits(&self) -> unipc::Result<Limits> {
        AsyncMessenger::limits(self)
    }
    fn send_tagged<'a>(&'a self, message: &'a [u8], tag: Tag) -> BoxFuture<'a, unipc::Result<()>> {
        Box::pin(AsyncMessenger::send_tagged(self, message, tag))
    }
    fn recv_into<'a>(&'a self, buf: &'a mut [u8]) -> BoxFuture<'a, unipc::Result<Received>> {
        Box::pin(AsyncMessenger::recv_into(self, buf))
    }
    fn recv_vec(&self) -> BoxFuture<'_, unipc::Result<(Vec<u8>, Tag)>> {
        Box::pin(AsyncMessenger::recv_vec(self))
    }
}

impl dyn DynMessenger {
    pub async fn send(&self, message: &[u8]) -> unipc::Result<()> {
        self.send_tagged(message, Tag::None).await
    }
}

/// Polls a future once, returning its output if it was ready: a future
/// that then is dropped was dropped mid-wait.
pub async fn poll_once<F: Future + Unpin>(future: F) -> Option<F::Output> {
    let mut future = Some(future);
    std::future::poll_fn(move |cx| {
        let polled = Pin::new(future.as_mut().expect("polled once")).poll(cx);
        std::task::Poll::Ready(match polled {
            std::task::Poll::Ready(out) => Some(out),
            std::task::Poll::Pending => None,
        })
    })
    .await
}
