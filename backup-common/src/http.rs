//! HTTP plumbing every networked tool shares: bounded requests, the retry
//! policy, and response bodies read as `std::io::Read`.
//!
//! Every request is bounded. Most are bounded by the stall timeout: no byte
//! moving for `--stall-timeout` seconds (waiting for the answer's headers, or
//! between two reads of its body) ends the request, however long a healthy
//! transfer takes. Requests that legitimately keep the connection silent while
//! the server works (Qdrant creating or loading a snapshot) use `waiting`,
//! bounded by the overall `--timeout` instead.
//!
//! The async client runs on a runtime in the calling thread: reqwest's blocking
//! client hands every 8 KiB of a download across threads and manages 160 MB/s
//! here, the async one on our own thread about ten times that.

use anyhow::{Context, Result};
use reqwest::{Client, RequestBuilder, Response};
use std::future::Future;
use std::time::Duration;

/// The timeouts shared by every tool that talks HTTP: the same flags, the same
/// variables, the same meaning.
#[derive(Debug, Clone, clap::Args)]
pub struct TimeoutArgs {
    /// Seconds without a byte moving after which a request is abandoned (a
    /// server that stalls mid-answer)
    #[arg(
        long,
        env = "BACKUP_STALL_TIMEOUT",
        default_value_t = 120,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub stall_timeout: u64,
    /// Seconds a request that waits on the server's work (Qdrant snapshot
    /// creation and upload) may take in all
    #[arg(
        long,
        default_value_t = 3600,
        value_name = "SECONDS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout: u64,
}

impl TimeoutArgs {
    pub fn stall(&self) -> Duration {
        Duration::from_secs(self.stall_timeout)
    }

    pub fn overall(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }
}

/// Connecting never takes this long on a healthy network.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts for a request that may be repeated safely, and the first pause.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

pub struct Http {
    rt: tokio::runtime::Runtime,
    streaming: Client,
    waiting: Client,
    timeouts: TimeoutArgs,
}

impl Http {
    pub fn new(timeouts: &TimeoutArgs) -> Result<Http> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the HTTP runtime")?;
        let streaming = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(timeouts.stall())
            .build()
            .context("cannot set up the HTTP client")?;
        let waiting = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeouts.overall())
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Http {
            rt,
            streaming,
            waiting,
            timeouts: timeouts.clone(),
        })
    }

    /// The client for ordinary requests: bounded by the stall timeout.
    pub fn client(&self) -> &Client {
        &self.streaming
    }

    /// The client for requests that wait on the server's work: bounded by the
    /// overall timeout.
    pub fn waiting(&self) -> &Client {
        &self.waiting
    }

    pub fn timeouts(&self) -> &TimeoutArgs {
        &self.timeouts
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.rt.spawn(f)
    }

    /// Sends once.
    pub fn send(&self, req: RequestBuilder) -> Result<Response, reqwest::Error> {
        // `send()` arms the timeout timers, so it must run inside the runtime.
        self.rt.block_on(async { req.send().await })
    }

    /// Sends a request that may be repeated (GET, HEAD, DELETE, PUT of a whole
    /// body), retrying with backoff while no answer came back (refused, reset,
    /// dropped). A stall is not retried: the bound is what the operator set.
    /// `on_retry` hears about each retry.
    pub fn send_idempotent(
        &self,
        make: impl Fn() -> RequestBuilder,
        mut on_retry: impl FnMut(&reqwest::Error, Duration),
    ) -> Result<Response, reqwest::Error> {
        self.rt.block_on(retrying(make, |e, d| on_retry(e, d)))
    }

    /// A response body as a `Read`, chunk by chunk as it arrives.
    pub fn body(&self, response: Response) -> Body<'_> {
        Body {
            rt: &self.rt,
            response,
            chunk: bytes::Bytes::new(),
        }
    }
}

/// A transport error and its causes as one line, without the URL.
pub fn describe(e: &reqwest::Error) -> String {
    crate::exit::error_chain(&without_url(e))
}

/// The retry policy, for use inside async code (concurrent downloads) too.
pub async fn retrying(
    make: impl Fn() -> RequestBuilder,
    mut on_retry: impl FnMut(&reqwest::Error, Duration),
) -> Result<Response, reqwest::Error> {
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match make().send().await {
            Ok(resp) => return Ok(resp),
            Err(e) if attempt < ATTEMPTS && !e.is_timeout() => {
                on_retry(&e, delay);
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The error without its URL: a presigned S3 URL carries a signature that
/// works as a credential until it expires, and a URL may carry a token.
fn without_url(e: &reqwest::Error) -> impl std::error::Error + '_ {
    struct Stripped<'a>(&'a reqwest::Error, String);
    impl std::fmt::Debug for Stripped<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.1)
        }
    }
    impl std::fmt::Display for Stripped<'_> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.1)
        }
    }
    impl std::error::Error for Stripped<'_> {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            std::error::Error::source(self.0)
        }
    }
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text
            .replace(&format!(" for url ({url})"), "")
            .replace(url.as_str(), "<url>");
    }
    Stripped(e, text)
}

/// A response body read chunk by chunk as it arrives; a stall surfaces as an
/// `io::Error` of kind `TimedOut`.
pub struct Body<'a> {
    rt: &'a tokio::runtime::Runtime,
    response: Response,
    chunk: bytes::Bytes,
}

impl std::io::Read for Body<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.chunk.is_empty() {
            match self.rt.block_on(self.response.chunk()) {
                Ok(Some(c)) => self.chunk = c,
                Ok(None) => return Ok(0),
                Err(e) => {
                    let kind = if e.is_timeout() {
                        std::io::ErrorKind::TimedOut
                    } else {
                        std::io::ErrorKind::Other
                    };
                    return Err(std::io::Error::new(kind, describe(&e)));
                }
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}
