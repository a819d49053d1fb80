//! TLS: the operator's certificate, or a self-signed one generated once and kept.

use crate::config::Config;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

/// Where the certificate in use came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertificateOrigin {
    Configured(PathBuf),
    Generated(PathBuf),
    Reused(PathBuf),
}

pub struct TlsMaterial {
    pub server_config: Arc<ServerConfig>,
    /// SHA-256 of the leaf certificate, as `AB:CD:…`.
    pub fingerprint: String,
    pub origin: CertificateOrigin,
}

/// The crypto provider used everywhere in Twofold (server and clients).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn prepare(config: &Config) -> Result<TlsMaterial, TlsError> {
    let (cert_path, key_path, origin) = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(c), Some(k)) => (
            c.clone(),
            k.clone(),
            CertificateOrigin::Configured(c.clone()),
        ),
        _ => {
            let dir = config.data_dir.join("tls");
            let cert = dir.join("cert.pem");
            let key = dir.join("key.pem");
            if cert.is_file() && key.is_file() {
                (cert.clone(), key, CertificateOrigin::Reused(cert))
            } else {
                generate_self_signed(&dir, &cert, &key, config)?;
                (cert.clone(), key, CertificateOrigin::Generated(cert))
            }
        }
    };
    let certs = read_certificates(&cert_path)?;
    let key = read_private_key(&key_path)?;
    let fingerprint = certs
        .first()
        .map(|c| fingerprint(c.as_ref()))
        .unwrap_or_default();
    let mut server_config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            TlsError(format!(
                "tls.key_file = {}: the key does not fit the certificate {} ({e}). \
                 Fix: give the private key that belongs to this certificate.",
                key_path.display(),
                cert_path.display()
            ))
        })?;
    server_config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        server_config: Arc::new(server_config),
        fingerprint,
        origin,
    })
}

/// `AB:CD:…` of the SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(crate) fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| {
        TlsError(format!(
            "tls.cert_file = {}: cannot be read ({e}). Fix: point it at a readable PEM certificate chain.",
            path.display()
        ))
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut bytes.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| {
            TlsError(format!(
                "tls.cert_file = {}: not valid PEM ({e}).",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TlsError(format!(
            "tls.cert_file = {}: holds no PEM certificate (no \"BEGIN CERTIFICATE\" block). \
             Fix: give the certificate chain in PEM form, the server's certificate first.",
            path.display()
        )));
    }
    Ok(certs)
}

pub(crate) fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = std::fs::read(path).map_err(|e| {
        TlsError(format!(
            "tls.key_file = {}: cannot be read ({e}). Fix: point it at a readable PEM private key.",
            path.display()
        ))
    })?;
    rustls_pemfile::private_key(&mut bytes.as_slice())
        .map_err(|e| TlsError(format!("tls.key_file = {}: not valid PEM ({e}).", path.display())))?
        .ok_or_else(|| {
            TlsError(format!(
                "tls.key_file = {}: holds no private key. Fix: give an unencrypted PKCS#8, PKCS#1 or SEC1 key in PEM form.",
                path.display()
            ))
        })
}

fn generate_self_signed(
    dir: &Path,
    cert: &Path,
    key: &Path,
    config: &Config,
) -> Result<(), TlsError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        TlsError(format!(
            "cannot {what} the self-signed certificate in {} ({e}). Fix: make data_dir writable, or set tls.cert_file and tls.key_file.",
            dir.display()
        ))
    };
    std::fs::create_dir_all(dir).map_err(|e| fail("store", &e))?;
    let mut names = vec!["localhost".to_owned()];
    let mut ips = vec![
        std::net::IpAddr::from([127, 0, 0, 1]),
        std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    let listen_ip = config.listen.ip();
    if !listen_ip.is_unspecified() && !ips.contains(&listen_ip) {
        ips.push(listen_ip);
    }
    if let Ok(host) = std::fs::read_to_string("/etc/hostname") {
        let host = host.trim();
        if !host.is_empty() && host != "localhost" {
            names.push(host.to_owned());
        }
    }
    let mut params = CertificateParams::new(names).map_err(|e| fail("make", &e))?;
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "Twofold self-signed certificate");
    params.distinguished_name = dn;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(825);
    let key_pair = KeyPair::generate().map_err(|e| fail("make", &e))?;
    let certificate = params
        .self_signed(&key_pair)
        .map_err(|e| fail("make", &e))?;
    write_private(key, key_pair.serialize_pem().as_bytes()).map_err(|e| fail("store", &e))?;
    std::fs::write(cert, certificate.pem()).map_err(|e| fail("store", &e))?;
    Ok(())
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}
