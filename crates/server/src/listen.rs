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
use crate::tls::PeerIdentity;

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
pub async fn serve<L>(listener: L, state: AppState) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    L::Io: PeerIdentity,
{
    let limits = state.config.conn;
    serve_router(listener, crate::router(state), limits).await
}

/// [`serve`] for any router.
async fn serve_router<L>(
    mut listener: L,
    app: axum::Router,
    limits: ConnLimits,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
    L::Io: PeerIdentity,
{
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
        // An mTLS client's verified leaf certificate, for the broker's workload proofs.
        let certificate = io.peer_certificate();
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app.clone(),
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                let h = req.headers_mut();
                h.remove(crate::auth::PEER_HEADER);
                if let Some(p) = &peer {
                    h.insert(crate::auth::PEER_HEADER, p.clone());
                }
                if let Some(c) = &certificate {
                    req.extensions_mut().insert(c.clone());
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    //! mTLS end to end over a real socket: a client CA and a client certificate made with
    //! rcgen, the `TlsListener`, and a handler that reports the certificate it was given.

    use std::sync::Arc;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::tls::{self, PeerCertificate};

    async fn seen(cert: Option<axum::Extension<PeerCertificate>>) -> String {
        cert.map_or_else(|| "none".into(), |c| hex::encode(&*c.0.0))
    }

    fn client_config(
        server: &rcgen::Certificate,
        identity: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(server.der().clone()).unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        match identity {
            Some((cert, key)) => {
                let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
                builder
                    .with_client_auth_cert(vec![cert.der().clone()], key)
                    .unwrap()
            }
            None => builder.with_no_client_auth(),
        }
    }

    /// GET /cert over TLS; the answer's body, or `None` when the connection failed.
    async fn get(addr: std::net::SocketAddr, config: rustls::ClientConfig) -> Option<String> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let sock = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut stream = connector.connect(name, sock).await.ok()?;
        stream
            .write_all(b"GET /cert HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.ok()?;
        answer.split("\r\n\r\n").nth(1).map(str::to_owned)
    }

    fn client_ca(cn: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
    }

    fn client_cert(
        ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    ) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            "spiffe://prod.example/ns/payments/sa/api"
                .try_into()
                .unwrap(),
        )];
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        (params.signed_by(&key, ca).unwrap(), key)
    }

    #[tokio::test]
    async fn handlers_see_a_verified_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let server = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key, ca_file) = (
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
            dir.path().join("client-ca.pem"),
        );
        std::fs::write(&cert, server.cert.pem()).unwrap();
        std::fs::write(&key, server.signing_key.serialize_pem()).unwrap();
        let ca = client_ca("keyward test client CA");
        std::fs::write(&ca_file, ca.pem()).unwrap();

        // A CA file without certificates is refused, and named.
        let err = tls::load_with_client_ca(&cert, &key, Some(&key)).unwrap_err();
        assert!(err.to_string().contains("key.pem"), "{err}");

        let config = tls::load_with_client_ca(&cert, &key, Some(&ca_file)).unwrap();
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = tls::TlsListener::new(tcp, config).unwrap();
        let app = axum::Router::new().route("/cert", axum::routing::get(seen));
        tokio::spawn(serve_router(listener, app, ConnLimits::default()));

        let (client, client_key) = client_cert(&ca);
        let answer = get(
            addr,
            client_config(&server.cert, Some((&client, &client_key))),
        )
        .await;
        assert_eq!(answer, Some(hex::encode(client.der())));
        // Without a certificate: served, with none.
        let answer = get(addr, client_config(&server.cert, None)).await;
        assert_eq!(answer.as_deref(), Some("none"));
        // A certificate from another CA: no handshake, no request.
        let stranger = client_ca("someone else's CA");
        let (other, other_key) = client_cert(&stranger);
        let answer = get(
            addr,
            client_config(&server.cert, Some((&other, &other_key))),
        )
        .await;
        assert_eq!(answer, None);
    }
}
