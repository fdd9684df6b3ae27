//! Optional TLS (rustls, `ring` provider) from PEM certificate and key files, and
//! optionally client certificates (mTLS) checked against a CA: a verified client's leaf
//! certificate reaches handlers as a [`PeerCertificate`] request extension.
//!
//! Handshakes run in tasks of their own with a deadline, and only completed TLS streams
//! reach axum's accept loop: a client that stalls its handshake never blocks others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish its TLS handshake.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait in the listen backlog, so
/// sockets that never handshake cannot take every file descriptor.
const MAX_HANDSHAKES: usize = 512;

/// Why a certificate and key do not make a TLS identity; each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading certificates from `{}`: {source}", path.display())]
    ReadCertificates {
        path: std::path::PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("`{}` holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)", .0.display())]
    NoCertificate(std::path::PathBuf),
    #[error("reading the private key from `{}`: {source}", path.display())]
    ReadKey {
        path: std::path::PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("the certificate and key do not make a TLS identity: {0}")]
    Identity(rustls::Error),
    #[error("reading client CA certificates from `{}`: {source}", path.display())]
    ReadClientCa {
        path: std::path::PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("client CA `{}`: {source}", path.display())]
    ClientCa {
        path: std::path::PathBuf,
        source: rustls::server::VerifierBuilderError,
    },
}

/// The leaf certificate (DER) a client presented and rustls verified against the client
/// CA: a request extension on every request of that connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub Arc<[u8]>);

/// A connection that may carry a verified client certificate.
pub trait PeerIdentity {
    fn peer_certificate(&self) -> Option<PeerCertificate>;
}

impl PeerIdentity for TcpStream {
    fn peer_certificate(&self) -> Option<PeerCertificate> {
        None
    }
}

impl PeerIdentity for TlsStream<TcpStream> {
    fn peer_certificate(&self) -> Option<PeerCertificate> {
        let (_, conn) = self.get_ref();
        let leaf = conn.peer_certificates()?.first()?;
        Some(PeerCertificate(Arc::from(leaf.as_ref())))
    }
}

/// A rustls server configuration from a PEM certificate chain and a PEM private key
/// (PKCS#8, PKCS#1 or SEC1). Errors name the file and what is wrong with it.
pub fn load(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    load_with_client_ca(cert, key, None)
}

/// [`load`], and with `client_ca` (PEM roots) clients may present a certificate, which
/// must chain to one of them. Clients without one still connect (API tokens remain their
/// proof); a presented certificate that does not verify fails the handshake.
pub fn load_with_client_ca(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let read_certs = |source| TlsError::ReadCertificates {
        path: cert.to_owned(),
        source,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(read_certs)?
        .collect::<Result<_, _>>()
        .map_err(read_certs)?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::ReadKey {
        path: key.to_owned(),
        source,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Identity)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(TlsError::Identity)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn client_verifier(
    path: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, TlsError> {
    let read = |source| TlsError::ReadClientCa {
        path: path.to_owned(),
        source,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<_, _>>()
        .map_err(read)?;
    let mut roots = rustls::RootCertStore::empty();
    // Unparsable certificates are left out; none at all is refused by `build` below.
    roots.add_parsable_certificates(certs);
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|source| TlsError::ClientCa {
            path: path.to_owned(),
            source,
        })
}

/// A listener that yields connections whose TLS handshake completed.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp` (must be called inside the runtime).
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(128);
        let permits = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            while !tx.is_closed() {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let (sock, addr) = match tcp.accept().await {
                    Ok(c) => c,
                    // Out of file descriptors and the like: back off, keep serving.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let done =
                        tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(sock)).await;
                    // The handshake is over either way: the next connection may start one.
                    drop(permit);
                    if let Ok(Ok(stream)) = done {
                        let _ = tx.send((stream, addr)).await;
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
