//! What the load clients trust over `https://` and `wss://`: the platform's certificate verifier
//! (the system's roots), plus the CA certificates of a PEM file for a private front (a self-signed
//! proxy, a corporate CA). One rustls configuration serves the HTTP client and every WebSocket,
//! so both trust the same certificates. Built without the `tls` feature, the clients reach
//! `http://` and `ws://` only.

use std::fmt;
use std::path::{Path, PathBuf};
#[cfg(feature = "tls")]
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// An open WebSocket, over TLS or not.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The certificates a run trusts: the system's roots, and those of `--ca-cert` if given.
#[derive(Clone)]
pub struct Trust {
    ca_file: Option<PathBuf>,
    #[cfg(feature = "tls")]
    config: Arc<rustls::ClientConfig>,
}

impl Trust {
    /// The system's roots only.
    pub fn system() -> anyhow::Result<Self> {
        Self::with_ca_file(None)
    }

    /// The system's roots and every certificate in the PEM file `ca_file`, if given.
    #[cfg(feature = "tls")]
    pub fn with_ca_file(ca_file: Option<&Path>) -> anyhow::Result<Self> {
        use anyhow::Context;
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let extra: Vec<CertificateDer<'static>> = match ca_file {
            Some(path) => CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect)
                .with_context(|| format!("reading the CA certificates of {}", path.display()))?,
            None => Vec::new(),
        };
        if let Some(path) = ca_file
            && extra.is_empty()
        {
            anyhow::bail!("{} holds no PEM certificate", path.display());
        }
        // aws-lc-rs: the provider the AWS SDK's own rustls already builds in this workspace.
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, Arc::clone(&provider))
                .context("building the certificate verifier")?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("the TLS protocol versions")?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // HTTP/1.1 only: the HTTP client is built without HTTP/2, and a WebSocket upgrade is an
        // HTTP/1.1 request.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Trust {
            ca_file: ca_file.map(Path::to_path_buf),
            config: Arc::new(config),
        })
    }

    /// Without the `tls` feature there is nothing to trust: a CA file is an error.
    #[cfg(not(feature = "tls"))]
    pub fn with_ca_file(ca_file: Option<&Path>) -> anyhow::Result<Self> {
        if let Some(path) = ca_file {
            anyhow::bail!(
                "{}: this load-test is built without the `tls` feature (http:// and ws:// only)",
                path.display()
            );
        }
        Ok(Trust { ca_file: None })
    }

    /// Refuses an `https://` or `wss://` address when built without the `tls` feature, so that
    /// the run stops before any scenario instead of failing every request.
    pub fn check_scheme(url: &str) -> anyhow::Result<()> {
        let secure = url.starts_with("https://") || url.starts_with("wss://");
        if secure && !cfg!(feature = "tls") {
            anyhow::bail!(
                "{url}: this load-test is built without the `tls` feature (http:// and ws:// only)"
            );
        }
        Ok(())
    }

    /// An HTTP client builder that trusts these certificates.
    pub fn http_client(&self) -> reqwest::ClientBuilder {
        let builder = reqwest::Client::builder();
        #[cfg(feature = "tls")]
        let builder = builder.tls_backend_preconfigured((*self.config).clone());
        builder
    }

    /// Opens the WebSocket at `url` (`ws://` or `wss://`), trusting these certificates.
    pub async fn connect_websocket(
        &self,
        url: &str,
    ) -> Result<Socket, tokio_tungstenite::tungstenite::Error> {
        #[cfg(feature = "tls")]
        let connected = tokio_tungstenite::connect_async_tls_with_config(
            url,
            None,
            false,
            Some(tokio_tungstenite::Connector::Rustls(Arc::clone(
                &self.config,
            ))),
        )
        .await;
        #[cfg(not(feature = "tls"))]
        let connected = tokio_tungstenite::connect_async(url).await;
        connected.map(|(socket, _)| socket)
    }
}

impl fmt::Display for Trust {
    /// What is trusted, for error messages: `the system's roots and ca.pem`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ca_file {
            Some(path) => write!(f, "the system's roots and {}", path.display()),
            None if cfg!(feature = "tls") => {
                write!(f, "the system's roots (no --ca-cert or LOAD_TEST_CA_CERT)")
            }
            None => write!(f, "nothing: built without the `tls` feature"),
        }
    }
}

#[cfg(all(test, feature = "tls"))]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_naming_the_file() {
        let path = std::env::temp_dir().join(format!("no-cert-{}.pem", std::process::id()));
        std::fs::write(&path, "not a certificate\n").unwrap();

        let error = Trust::with_ca_file(Some(&path))
            .err()
            .map(|e| format!("{e:#}"));

        std::fs::remove_file(&path).unwrap();
        let error = error.expect("a file without a certificate is refused");
        assert!(error.contains("holds no PEM certificate"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
    }
}
