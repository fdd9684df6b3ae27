//! The accept loop: HTTP/1.1 connections served by hyper with the limits a public
//! listener needs, so that idle or slow sockets cannot starve anyone.
//!
//! - **Header-read timeout** (hyper's `header_read_timeout`): a client has this long to send
//!   a request's head. hyper arms it whenever it waits for a head, so it is also the idle
//!   keep-alive timeout between two requests on one connection.
//! - **A cap on concurrent connections**: a permit is taken before `accept`, so at the cap
//!   new connections wait in the kernel's backlog instead of taking file descriptors the
//!   store and healthy clients need.
//! - Graceful shutdown on Ctrl-C or SIGTERM: open connections finish their requests.
//!
//! Body limits and the body-read deadline are per route (see `ingest.rs`).

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;

use crate::AppState;

/// Connection limits of a listener.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// How long a client has to send a request head (and the idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 8192,
        }
    }
}

/// Connections the kernel queues for `accept` (`listen(2)`'s backlog). The standard
/// library's 128 (what `TcpListener::bind` gives) let a burst of a thousand connections
/// overflow the queue: their SYNs were dropped and retried one and three seconds later.
/// The kernel caps it at `net.core.somaxconn`.
pub const BACKLOG: u32 = 4096;

/// A listening socket on `addr` with a [`BACKLOG`]-deep accept queue (and `SO_REUSEADDR`,
/// as `TcpListener::bind` sets, so a restart can bind while old connections linger).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves the router on `listener` (plain TCP or [`crate::tls::TlsListener`]) until Ctrl-C
/// or SIGTERM, within the configuration's connection limits.
pub async fn serve<L>(mut listener: L, state: AppState) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let limits = state.config.conn;
    let app = crate::router(state);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (io, addr) = tokio::select! {
            c = listener.accept() => c,
            () = &mut shutdown => break,
        };
        // The peer's address, for the policies' `context.source_ip`: whatever a client sent
        // under that name is replaced.
        let peer = axum::http::HeaderValue::from_str(&addr.ip().to_string()).ok();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                let h = req.headers_mut();
                h.remove(crate::auth::PEER_HEADER);
                if let Some(p) = &peer {
                    h.insert(crate::auth::PEER_HEADER, p.clone());
                }
                req
            },
        ));
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true)
            .serve_connection(TokioIo::new(io), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A connection error (reset, header timeout) only ends that connection.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    // Requests in flight finish; give up on them after a while.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {}
    }
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
