//! In-process TLS (rustls on ring) with certificate reload.
//!
//! The certificate and key named by `TLS_CERT_PATH` / `TLS_KEY_PATH` are loaded at start (a
//! missing, unparsable or mismatched pair is a start-up error) and polled every
//! [`crate::reload::INTERVAL`]: when their bytes change, the new pair is parsed and checked, then
//! swapped into the resolver every new handshake asks. Connections already open keep the session
//! they negotiated. A renewal that does not load (half-written files, key not matching the
//! certificate) keeps the pair in force, logs a warning and counts `tls_reload_failures`; it is
//! retried on the next change. Polling rather than inotify for the reason given in
//! [`crate::reload`]: mounted Secrets change by a symlink swap.
//!
//! Handshakes run off the accept loop, each in its own task with a deadline and a bound on how
//! many may be pending, so a slow or silent client cannot stall accepting; the listener hands
//! axum only finished TLS streams with the peer's socket address, which keeps
//! `ConnectInfo<SocketAddr>` (and so the per-address rate limit) as for plain TCP.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{InconsistentKeys, ServerConfig};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::app::App;

/// How long a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; beyond this the accept loop waits (the kernel backlog queues).
pub const MAX_PENDING_HANDSHAKES: usize = 512;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads, parses and checks a certificate chain and its private key. Returns the pair and a
/// digest of the bytes it came from.
pub fn load_pair(cert_path: &Path, key_path: &Path) -> anyhow::Result<(CertifiedKey, [u8; 32])> {
    let cert_pem = std::fs::read(cert_path).with_context(|| format!("read TLS certificate {}", cert_path.display()))?;
    let key_pem = std::fs::read(key_path).with_context(|| format!("read TLS key {}", key_path.display()))?;
    let digest = digest(&cert_pem, &key_pem);
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("TLS certificate {}: {e}", cert_path.display()))?;
    if chain.is_empty() {
        anyhow::bail!("TLS certificate {}: no CERTIFICATE block", cert_path.display());
    }
    let key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| anyhow::anyhow!("TLS key {}: {e}", key_path.display()))?;
    let signing_key = provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| anyhow::anyhow!("TLS key {}: {e}", key_path.display()))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => {}
        // Some key types cannot report their public half; rustls itself accepts those.
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {}
        Err(e) => {
            anyhow::bail!("TLS key {} does not belong to certificate {}: {e}", key_path.display(), cert_path.display())
        }
    }
    Ok((certified, digest))
}

fn digest(cert_pem: &[u8], key_pem: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update((cert_pem.len() as u64).to_be_bytes());
    hash.update(cert_pem);
    hash.update(key_pem);
    hash.finalize().into()
}

/// Hands every handshake the pair in force; [`Tls::poll`] swaps it.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.read().expect("certificate lock").clone()
    }

    fn replace(&self, key: CertifiedKey) {
        *self.current.write().expect("certificate lock") = Arc::new(key);
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

/// What one poll found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// The files are as last seen.
    Unchanged,
    /// A new pair is in force.
    Reloaded,
    /// The files changed but do not load; the previous pair stays.
    Failed,
}

/// The TLS configuration of the server and the files it follows.
#[derive(Debug)]
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    resolver: Arc<CertResolver>,
    config: Arc<ServerConfig>,
    /// Digest of the files last looked at (loaded or not), so a broken renewal is reported once.
    seen: [u8; 32],
}

impl Tls {
    /// Loads the pair; any problem is an error naming the file.
    pub fn load(cert_path: &Path, key_path: &Path) -> anyhow::Result<Self> {
        let (key, seen) = load_pair(cert_path, key_path)?;
        let resolver = Arc::new(CertResolver { current: RwLock::new(Arc::new(key)) });
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // axum is built with HTTP/1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            resolver,
            config: Arc::new(config),
            seen,
        })
    }

    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    /// Accepts TLS connections on `tcp` (see the module docs).
    pub fn listener(&self, tcp: TcpListener, app: Arc<App>) -> io::Result<TlsListener> {
        let local_addr = tcp.local_addr()?;
        let (sender, incoming) = mpsc::channel(64);
        tokio::spawn(accept_loop(tcp, TlsAcceptor::from(self.config.clone()), sender, app));
        Ok(TlsListener { incoming, local_addr })
    }

    /// Looks at the files once; swaps in a changed pair that loads.
    pub fn poll(&mut self, app: &App) -> Poll {
        let bytes = std::fs::read(&self.cert_path).and_then(|c| std::fs::read(&self.key_path).map(|k| (c, k)));
        if let Ok((cert, key)) = &bytes
            && digest(cert, key) == self.seen
        {
            return Poll::Unchanged;
        }
        match load_pair(&self.cert_path, &self.key_path) {
            Ok((key, digest)) => {
                self.resolver.replace(key);
                self.seen = digest;
                app.metrics.tls_reloads.inc();
                tracing::info!(target: "audit", event = "tls_reload", cert = %self.cert_path.display(), "serving the renewed TLS certificate");
                Poll::Reloaded
            }
            Err(error) => {
                // Unreadable files (mid-swap, removed) count as one state: reported once, retried.
                let now = bytes.as_ref().map(|(cert, key)| digest(cert, key)).unwrap_or([0; 32]);
                let changed = now != self.seen;
                self.seen = now;
                if changed {
                    app.metrics.tls_reload_failures.inc();
                    tracing::warn!(error = %format!("{error:#}"), "TLS certificate reload failed; keeping the certificate in force");
                }
                Poll::Failed
            }
        }
    }

    /// Polls every `interval` until the process ends.
    pub async fn watch(mut self, app: Arc<App>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            self.poll(&app);
        }
    }
}

/// An [`axum::serve::Listener`] yielding finished TLS streams and the peer's socket address.
#[derive(Debug)]
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept loop only ends once this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

/// Accepts TCP connections and hands each to a handshake task; ends (closing the socket) when
/// the [`TlsListener`] is dropped, which axum does as graceful shutdown starts.
async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    app: Arc<App>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            _ = sender.closed() => return,
            permit = pending.clone().acquire_owned() => permit.expect("semaphore never closed"),
        };
        let (stream, peer) = tokio::select! {
            _ = sender.closed() => return,
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
                    ) {
                        // Out of file descriptors and the like: give connections time to close.
                        tracing::error!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            match outcome {
                Ok(Ok(tls)) => {
                    let _ = sender.send((tls, peer)).await;
                }
                Ok(Err(error)) => {
                    app.metrics.tls_handshake_failures.inc();
                    tracing::debug!(%peer, %error, "TLS handshake failed");
                }
                Err(_) => {
                    app.metrics.tls_handshake_failures.inc();
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
}
