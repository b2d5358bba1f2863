//! Connection limits for `qa serve`: the app faces reviewers' browsers, and anyone else who
//! can reach its port. A client that opens connections and never finishes a request (or
//! never reads a response) must not exhaust the process's file descriptors and lock
//! reviewers out. So every connection is HTTP/1 with a header-read timeout (hyper's), an
//! idle timeout (no bytes either way while no request is being handled), and a maximum
//! life; each client address may hold a bounded number of connections, and the whole app a
//! bounded total (well under the usual `RLIMIT_NOFILE` of 1024). A connection over a limit is
//! accepted and closed at once, so it leaves the kernel's queue.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

/// How long and how many connections the app keeps.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request's headers must arrive within this long (slowloris).
    pub header_read: Duration,
    /// A connection with no bytes in or out for this long, and no request in progress, is
    /// closed (half-open connections, clients that stop reading).
    pub idle: Duration,
    /// No connection lives longer than this, however busy.
    pub max_life: Duration,
    /// Connections one client address may hold at once.
    pub per_ip: usize,
    /// Connections the app holds at once.
    pub total: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_read: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_life: Duration::from_secs(15 * 60),
            // Generous: a clinic behind one NAT address has many reviewers, each browser
            // several connections; slow ones are timed out anyway.
            per_ip: 128,
            total: 768,
        }
    }
}

/// Open connections, per client address and in all.
#[derive(Debug, Default)]
struct Open {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
}

/// One admitted connection; releases its place when dropped.
struct Admitted {
    open: Arc<Open>,
    ip: IpAddr,
}

impl Open {
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &ConnLimits) -> Option<Admitted> {
        let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let mine = per_ip.entry(ip).or_insert(0);
        if *mine >= limits.per_ip || self.total.load(Ordering::SeqCst) >= limits.total {
            if *mine == 0 {
                per_ip.remove(&ip);
            }
            return None;
        }
        *mine += 1;
        self.total.fetch_add(1, Ordering::SeqCst);
        Some(Admitted {
            open: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut per_ip = self.open.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
        self.open.total.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections until `shutdown` resolves, serving each under `limits`.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let open = Arc::new(Open::default());
    let refused = Arc::new(AtomicU64::new(0));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors or a connection reset before accept: keep serving.
                Err(e) => {
                    tracing::warn!(target: "gatehouse_review", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let Some(admitted) = open.admit(peer.ip(), &limits) else {
            let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(
                    target: "gatehouse_review",
                    "refused {n} connection(s) over the limits ({} per address, {} in all)",
                    limits.per_ip,
                    limits.total
                );
            }
            drop(stream);
            continue;
        };
        let router = router.clone();
        tokio::spawn(connection(stream, peer, router, limits, admitted));
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    _peer: SocketAddr,
    router: Router,
    limits: ConnLimits,
    admitted: Admitted,
) {
    let started = Instant::now();
    let activity = Arc::new(Activity {
        start: started,
        last_ms: AtomicU64::new(0),
        in_flight: AtomicUsize::new(0),
    });
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = {
        let activity = Arc::clone(&activity);
        hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
            let router = router.clone();
            let activity = Arc::clone(&activity);
            async move {
                activity.in_flight.fetch_add(1, Ordering::SeqCst);
                let res = tower::ServiceExt::oneshot(router, req).await;
                activity.in_flight.fetch_sub(1, Ordering::SeqCst);
                activity.touch();
                res
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let tick = (limits.idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = tokio::time::sleep(tick) => {
                let idle = activity.in_flight.load(Ordering::SeqCst) == 0
                    && activity.idle_for() > limits.idle;
                if idle || started.elapsed() > limits.max_life {
                    break; // dropping the connection closes the socket
                }
            }
        }
    }
    drop(admitted);
}

/// When a connection last moved a byte, and whether a request is being handled.
struct Activity {
    start: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A TCP stream that records when bytes move.
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_is_bounded_per_address_and_in_all_and_released_on_drop() {
        let open = Arc::new(Open::default());
        let limits = ConnLimits {
            per_ip: 2,
            total: 3,
            ..ConnLimits::default()
        };
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let a1 = open.admit(a, &limits).unwrap();
        let _a2 = open.admit(a, &limits).unwrap();
        assert!(open.admit(a, &limits).is_none(), "per address");
        let _b1 = open.admit(b, &limits).unwrap();
        assert!(open.admit(b, &limits).is_none(), "in all");
        drop(a1);
        assert!(open.admit(b, &limits).is_some());
    }
}
