//! The certificate the server will serve: it must fit its private key and stay valid for
//! at least [`MIN_DAYS_LEFT`] days.

use super::{Check, date};
use crate::config::Config;
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};

const NAME: &str = "tls";
/// A certificate valid for less than this fails: time to renew it before browsers, the
/// split portal and the authenticator apps refuse the server.
pub(super) const MIN_DAYS_LEFT: i64 = 30;
const DAY: i64 = 24 * 3600;

/// Which certificate the server will use, as [`crate::tls::prepare`] chooses it.
enum Source {
    Configured,
    /// The self-signed one in `data_dir/tls/`, kept since an earlier start.
    Generated,
}

pub(super) fn check(config: &Config, now: i64) -> Check {
    if !config.tls.enabled {
        return Check::skip(
            NAME,
            "tls.enabled = false: Twofold serves plain HTTP, so a reverse proxy in front of it must \
             terminate TLS (check that proxy's certificate)",
        );
    }
    let (cert, key, source) = match (&config.tls.cert_file, &config.tls.key_file) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), Source::Configured),
        _ => {
            let dir = config.data_dir.join("tls");
            let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
            if !(cert.is_file() && key.is_file()) {
                return Check::pass(
                    NAME,
                    format!(
                        "no certificate configured (tls.cert_file, tls.key_file) and none generated yet: \
                         the first start generates a self-signed one in {} and prints its fingerprint \
                         (browsers warn about it; give your own for production)",
                        dir.display()
                    ),
                );
            }
            (cert, key, Source::Generated)
        }
    };
    match examine(&cert, &key, &source, now) {
        Ok(detail) => Check::pass(NAME, detail),
        Err(check) => check,
    }
}

fn examine(cert: &Path, key: &Path, source: &Source, now: i64) -> Result<String, Check> {
    let unusable = |message: String| {
        Check::failed_with(
            NAME,
            &message,
            "give a PEM certificate chain and its unencrypted PEM private key",
        )
    };
    let chain = crate::tls::read_certificates(cert).map_err(|e| unusable(e.0))?;
    let private_key = crate::tls::read_private_key(key).map_err(|e| unusable(e.0))?;
    let provider = crate::tls::crypto_provider();
    if let Err(e) =
        rustls::sign::CertifiedKey::from_der(chain.clone(), private_key, provider.as_ref())
    {
        let mismatch = matches!(
            e,
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)
        );
        return Err(if mismatch {
            Check::fail(
                NAME,
                format!(
                    "the private key {} does not belong to the certificate {}",
                    key.display(),
                    cert.display()
                ),
                "give the key the certificate was made for (`openssl x509 -noout -pubkey -in CERT` and \
                 `openssl pkey -pubout -in KEY` print the same public key when they belong together)",
            )
        } else {
            Check::fail(
                NAME,
                format!(
                    "the private key {} cannot be used with the certificate {} ({e})",
                    key.display(),
                    cert.display()
                ),
                "give an RSA, ECDSA (P-256, P-384) or Ed25519 key in PEM form, unencrypted",
            )
        });
    }
    let mut earliest: Option<(i64, usize)> = None;
    for (index, der) in chain.iter().enumerate() {
        let (not_before, not_after) = validity(der).map_err(|why| {
            Check::fail(
                NAME,
                format!("{}: {} {why}", cert.display(), which(index)),
                "give the certificate chain in PEM form, the server's certificate first",
            )
        })?;
        if not_before > now {
            return Err(Check::fail(
                NAME,
                format!(
                    "{}: {} is not valid before {}",
                    cert.display(),
                    which(index),
                    date(not_before)
                ),
                "check this machine's clock (timedatectl), or use a certificate valid today",
            ));
        }
        if earliest.is_none_or(|(t, _)| not_after < t) {
            earliest = Some((not_after, index));
        }
    }
    let Some((not_after, index)) = earliest else {
        return Err(unusable(format!("{} holds no certificate", cert.display())));
    };
    // Whole days, a part of a day counting as one: "in 10 days" until the last second of
    // the tenth day.
    let days_left = (not_after - now + DAY - 1).div_euclid(DAY);
    let renew = match source {
        Source::Configured => format!(
            "renew the certificate (your CA, or `certbot renew`), put the new files at {} and {}, \
             and restart Twofold (it reads them at start)",
            cert.display(),
            key.display()
        ),
        Source::Generated => format!(
            "remove {} and {} and restart Twofold: it generates a new self-signed certificate \
             (a split portal's sdk.ca_file or sdk.pin_sha256 must then name the new one); or set \
             tls.cert_file and tls.key_file to a certificate of your own",
            cert.display(),
            key.display()
        ),
    };
    if not_after <= now {
        return Err(Check::fail(
            NAME,
            format!(
                "{}: {} expired on {}",
                cert.display(),
                which(index),
                date(not_after)
            ),
            renew,
        ));
    }
    if not_after - now < MIN_DAYS_LEFT * DAY {
        return Err(Check::fail(
            NAME,
            format!(
                "{}: {} expires on {}, in {days_left} day{} (less than {MIN_DAYS_LEFT})",
                cert.display(),
                which(index),
                date(not_after),
                if days_left == 1 { "" } else { "s" }
            ),
            renew,
        ));
    }
    let kind = match source {
        Source::Configured => "",
        Source::Generated => " (self-signed, generated at an earlier start)",
    };
    let fingerprint = chain
        .first()
        .map(|c| crate::tls::fingerprint(c.as_ref()))
        .unwrap_or_default();
    Ok(format!(
        "{}{kind} fits its key {}, valid until {} ({days_left} days); SHA-256 {fingerprint}",
        cert.display(),
        display_name(key),
        date(not_after)
    ))
}

/// The key's file name, or its path when it is in another directory than usual.
fn display_name(key: &Path) -> String {
    key.file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| key.to_owned())
        .display()
        .to_string()
}

/// "the certificate" for the first of the chain, "certificate 2 of the chain" after it.
fn which(index: usize) -> String {
    if index == 0 {
        "the certificate".to_owned()
    } else {
        format!("certificate {} of the chain", index + 1)
    }
}

/// `notBefore` and `notAfter` in Unix seconds.
fn validity(der: &CertificateDer<'_>) -> Result<(i64, i64), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("is not an X.509 certificate ({e})"))?;
    let validity = parsed.validity();
    Ok((
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    /// A self-signed certificate valid from `from` to `to` (Unix seconds), and its key.
    fn certificate(dir: &Path, from: i64, to: i64) -> (PathBuf, PathBuf) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.not_before = time::OffsetDateTime::from_unix_timestamp(from).unwrap();
        params.not_after = time::OffsetDateTime::from_unix_timestamp(to).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let n = std::fs::read_dir(dir).unwrap().count();
        let (c, k) = (dir.join(format!("c{n}.pem")), dir.join(format!("k{n}.pem")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn config(cert: &Path, key: &Path) -> Config {
        let mut config = Config::default();
        config.tls.cert_file = Some(cert.to_owned());
        config.tls.key_file = Some(key.to_owned());
        config
    }

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_certificate_is_judged_by_its_key_and_the_days_it_has_left() {
        let dir = tempfile::tempdir().unwrap();
        let (good, good_key) = certificate(dir.path(), NOW - DAY, NOW + 90 * DAY);
        let passed = check(&config(&good, &good_key), NOW);
        assert_eq!(passed.status, Status::Pass, "{passed:?}");
        assert!(passed.detail.contains("(90 days)"), "{passed:?}");

        let (soon, soon_key) = certificate(dir.path(), NOW - DAY, NOW + 10 * DAY - 60);
        let failed = check(&config(&soon, &soon_key), NOW);
        assert_eq!(failed.status, Status::Fail);
        assert!(failed.detail.contains("in 10 days"), "{failed:?}");
        assert!(failed.fix.unwrap().contains("renew"));

        let (old, old_key) = certificate(dir.path(), NOW - 90 * DAY, NOW - DAY);
        let failed = check(&config(&old, &old_key), NOW);
        assert!(failed.detail.contains("expired on"), "{failed:?}");

        let (early, early_key) = certificate(dir.path(), NOW + DAY, NOW + 90 * DAY);
        let failed = check(&config(&early, &early_key), NOW);
        assert!(failed.detail.contains("not valid before"), "{failed:?}");

        let failed = check(&config(&good, &soon_key), NOW);
        assert!(failed.detail.contains("does not belong"), "{failed:?}");

        std::fs::write(dir.path().join("junk.pem"), "not pem").unwrap();
        let failed = check(&config(&dir.path().join("junk.pem"), &good_key), NOW);
        assert_eq!(failed.status, Status::Fail);
        assert!(failed.detail.contains("no PEM certificate"), "{failed:?}");
        assert!(failed.fix.is_some());
    }

    #[test]
    fn without_a_certificate_the_one_to_be_generated_passes_and_plain_http_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let c = check(&config, NOW);
        assert_eq!(c.status, Status::Pass);
        assert!(c.detail.contains("first start generates"), "{c:?}");
        config.tls.enabled = false;
        let c = check(&config, NOW);
        assert_eq!(c.status, Status::Skip);
        assert!(c.detail.contains("reverse proxy"), "{c:?}");
    }
}
