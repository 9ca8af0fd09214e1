//! The run's certificate authority: made per run, its key never leaves this process.
//!
//! Proxied HTTPS (`CONNECT`) is terminated with a leaf certificate for the requested host,
//! minted on first use and kept for the run. The agent trusts the CA through a PEM bundle
//! (the system roots plus this CA) that the CA-bundle variables of §11 point at.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

pub struct RunCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl RunCa {
    pub fn new() -> Result<RunCa, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params
            .distinguished_name
            .push(DnType::CommonName, "agent-replay run CA");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(|e| e.to_string())?;
        Ok(RunCa {
            issuer,
            leaves: Mutex::default(),
        })
    }

    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the bundle the agent trusts: the system roots, then this CA.
    pub fn write_bundle(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        // Straight from the one shared copy of the roots: a 200 KiB string a run would
        // be an mmap and an munmap (a TLB flush on every core) a run.
        let mut file = std::fs::File::create(path)?;
        file.write_all(system_roots_pem().as_bytes())?;
        file.write_all(self.pem().as_bytes())
    }

    /// The TLS server configuration presenting a leaf for `host`, minted once per run.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, String> {
        let mut leaves = self.leaves.lock().expect("leaf cache lock");
        if let Some(c) = leaves.get(host) {
            return Ok(c.clone());
        }
        let mut params =
            CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
        params.distinguished_name.push(DnType::CommonName, host);
        let key = KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| e.to_string())?;
        let chain = vec![cert.der().clone(), self.issuer.der().clone()];
        let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(chain, private)
            .map_err(|e| e.to_string())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        leaves.insert(host.to_string(), config.clone());
        Ok(config)
    }
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    static P: OnceLock<Arc<rustls::crypto::CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's PEM bundle, read once: the first of the usual places that exists.
pub(crate) fn system_roots_pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| {
        let from_env = std::env::var_os("SSL_CERT_FILE").map(std::path::PathBuf::from);
        from_env
            .into_iter()
            .chain(
                [
                    "/etc/ssl/certs/ca-certificates.crt",
                    "/etc/pki/tls/certs/ca-bundle.crt",
                    "/etc/ssl/cert.pem",
                    "/etc/ssl/ca-bundle.pem",
                ]
                .map(std::path::PathBuf::from),
            )
            .find_map(|p| std::fs::read_to_string(p).ok())
            .map(|mut pem| {
                if !pem.is_empty() && !pem.ends_with('\n') {
                    pem.push('\n');
                }
                pem
            })
            .unwrap_or_default()
    })
}
