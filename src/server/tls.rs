//! TLS for clients (the `--tls-port` listener), for the relays a follower opens to the
//! leader's client port (`--tls-replication`), and for the Raft port (`--tls-cluster`),
//! with rustls. The certificate, key and CA
//! files are read at start, and again on SIGHUP or when a new connection finds that one
//! of them changed (their modification times are looked at once a second at most): a
//! set that fails to load is logged and the one in use stays.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::tls_limits::RELOAD_CHECK_INTERVAL_MS;
use crate::config::{TlsAuthClients, TlsSettings};

/// The node's TLS configurations, reloadable.
pub(crate) struct TlsContext {
    settings: TlsSettings,
    current: RwLock<Loaded>,
    /// When the files' modification times were last looked at, and what they were.
    checked: Mutex<(Instant, Vec<Option<SystemTime>>)>,
}

#[derive(Clone)]
struct Loaded {
    acceptor: Option<TlsAcceptor>,
    connector: Option<TlsConnector>,
    /// The Raft port's (`--tls-cluster`): client certificates required.
    cluster_acceptor: Option<TlsAcceptor>,
    cluster_connector: Option<TlsConnector>,
}

impl crate::raft::RaftTls for TlsContext {
    fn acceptor(&self) -> Option<TlsAcceptor> {
        self.reload_if_changed();
        self.loaded().cluster_acceptor
    }

    fn connector(&self) -> Option<TlsConnector> {
        self.reload_if_changed();
        self.loaded().cluster_connector
    }
}

impl TlsContext {
    /// Loads the configured files; None when TLS is not configured at all.
    pub fn start(settings: &TlsSettings) -> anyhow::Result<Option<Arc<TlsContext>>> {
        if !settings.has_cert() && !settings.replication && !settings.cluster {
            return Ok(None);
        }
        let mtimes = modification_times(settings);
        let loaded = load(settings)?;
        Ok(Some(Arc::new(TlsContext {
            settings: settings.clone(),
            current: RwLock::new(loaded),
            checked: Mutex::new((Instant::now(), mtimes)),
        })))
    }

    /// The acceptor for a new client connection, after reloading the files if they
    /// changed (looked at once per `RELOAD_CHECK_INTERVAL_MS` at most).
    pub fn acceptor(&self) -> Option<TlsAcceptor> {
        self.reload_if_changed();
        self.loaded().acceptor
    }

    /// The connector for a relay to the leader, when relays use TLS.
    pub fn connector(&self) -> Option<TlsConnector> {
        self.reload_if_changed();
        self.loaded().connector
    }

    fn loaded(&self) -> Loaded {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn reload_if_changed(&self) {
        let changed = {
            let mut checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            if checked.0.elapsed() < Duration::from_millis(RELOAD_CHECK_INTERVAL_MS) {
                return;
            }
            let now = modification_times(&self.settings);
            checked.0 = Instant::now();
            // A set that fails to load is tried again only once a file changes again.
            let changed = now != checked.1;
            checked.1 = now;
            changed
        };
        if changed {
            self.reload("the certificate files changed");
        }
    }

    /// Loads the files again; on failure the configuration in use stays.
    pub fn reload(&self, why: &str) {
        match load(&self.settings) {
            Ok(loaded) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
                tracing::info!("TLS configuration reloaded ({why})");
            }
            Err(e) => tracing::error!(
                "Failed to reload TLS configuration ({why}): {e:#}; keeping the current one"
            ),
        }
    }
}

/// Reloads `tls` on every SIGHUP, for the life of the process.
pub(crate) fn reload_on_sighup(tls: Arc<TlsContext>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangups = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tls.reload("SIGHUP");
        }
    });
    Ok(())
}

fn files(settings: &TlsSettings) -> [Option<&PathBuf>; 3] {
    [
        settings.cert_file.as_ref(),
        settings.key_file.as_ref(),
        settings.ca_cert_file.as_ref(),
    ]
}

fn modification_times(settings: &TlsSettings) -> Vec<Option<SystemTime>> {
    files(settings)
        .iter()
        .flatten()
        .map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())
        .collect()
}

/// rustls's `ring` provider (aws-lc-rs, its default, builds a C library). rustls 0.23.48
/// marks it deprecated for its lack of post-quantum key exchange; it is otherwise whole.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate in {}", path.display());
    }
    Ok(certs)
}

fn private_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading a private key from {}", path.display()))
}

fn roots(path: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path)? {
        roots
            .add(cert)
            .with_context(|| format!("a CA certificate in {}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// A client's connector, as redis-cli's `--tls --cacert F [--cert F --key F]` makes one
/// (the `raftlock` client subcommands).
pub(crate) fn client_connector(
    ca_cert_file: &Path,
    cert_and_key: Option<(&Path, &Path)>,
) -> anyhow::Result<TlsConnector> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_cert_file)?);
    let config = match cert_and_key {
        Some((cert, key)) => builder
            .with_client_auth_cert(certificates(cert)?, private_key(key)?)
            .context("the certificate does not match the private key")?,
        None => builder.with_no_client_auth(),
    };
    Ok(TlsConnector::from(Arc::new(config)))
}

/// Builds the acceptor (with a certificate) and the relay connector (with
/// `replication`) from the files.
fn load(settings: &TlsSettings) -> anyhow::Result<Loaded> {
    let cert = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => Some((certificates(cert)?, private_key(key)?)),
        _ => None,
    };
    let roots = settings.ca_cert_file.as_deref().map(roots).transpose()?;
    let acceptor = match &cert {
        Some((chain, key)) => {
            let builder = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?;
            let builder = match (&roots, settings.auth_clients) {
                (Some(roots), TlsAuthClients::Yes | TlsAuthClients::Optional) => {
                    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                        roots.clone(),
                        provider(),
                    );
                    let verifier = if settings.auth_clients == TlsAuthClients::Optional {
                        verifier.allow_unauthenticated()
                    } else {
                        verifier
                    };
                    builder.with_client_cert_verifier(verifier.build()?)
                }
                _ => builder.with_no_client_auth(),
            };
            let config = builder
                .with_single_cert(chain.clone(), key.clone_key())
                .context("the certificate does not match the private key")?;
            Some(TlsAcceptor::from(Arc::new(config)))
        }
        None => None,
    };
    let client_config = |roots: &Arc<RootCertStore>| -> anyhow::Result<ClientConfig> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots.clone());
        // The node's own certificate, for a leader that asks relays for one (Redis's
        // replicas present `tls-cert-file` too), and for the Raft port.
        Ok(match &cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .context("the certificate does not match the private key")?,
            None => builder.with_no_client_auth(),
        })
    };
    let connector = match (&roots, settings.replication) {
        (Some(roots), true) => Some(TlsConnector::from(Arc::new(client_config(roots)?))),
        _ => None,
    };
    let (cluster_acceptor, cluster_connector) = match (&roots, &cert, settings.cluster) {
        (Some(roots), Some((chain, key)), true) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                roots.clone(),
                provider(),
            )
            .build()?;
            let config = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain.clone(), key.clone_key())
                .context("the certificate does not match the private key")?;
            (
                Some(TlsAcceptor::from(Arc::new(config))),
                Some(TlsConnector::from(Arc::new(client_config(roots)?))),
            )
        }
        _ => (None, None),
    };
    Ok(Loaded {
        acceptor,
        connector,
        cluster_acceptor,
        cluster_connector,
    })
}
