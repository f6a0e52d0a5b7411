//! `sslmode` with rustls (the `ring` provider), following libpq's meaning of
//! each mode, which is what dbt-postgres users have configured against:
//!
//! | sslmode       | TLS                 | certificate checked                    |
//! |---------------|---------------------|----------------------------------------|
//! | `disable`     | never               | –                                      |
//! | `prefer`      | if the server has it| no                                     |
//! | `require`     | always              | no; chain only if `sslrootcert` is set |
//! | `verify-ca`   | always              | chain                                  |
//! | `verify-full` | always              | chain and host name                    |
//!
//! `require` without checks is what lets managed servers whose CA is not in
//! the public root store (Amazon RDS, Azure, Cloud SQL) work out of the box,
//! as they do with psql. Checked modes trust `sslrootcert` when given, else
//! the system's roots plus the Mozilla roots bundled by `webpki-roots`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

/// How to secure connections, from `sslmode` (+ `sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SslPolicy {
    Disable,
    Prefer,
    /// TLS is mandatory.
    Require {
        mode: &'static str,
        verify: Verify,
    },
}

/// What a mandatory TLS connection checks about the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verify {
    Nothing,
    Chain { roots: Option<PathBuf> },
    ChainAndHost { roots: Option<PathBuf> },
}

impl SslPolicy {
    /// Parse `sslmode` (default `prefer`, as in libpq and dbt-postgres).
    pub(crate) fn parse(sslmode: Option<&str>, sslrootcert: Option<&str>) -> Result<Self, String> {
        let roots = sslrootcert.map(PathBuf::from);
        let mode = sslmode
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .unwrap_or("prefer");
        Ok(match mode.to_ascii_lowercase().as_str() {
            "disable" | "allow" => SslPolicy::Disable,
            "prefer" => SslPolicy::Prefer,
            "require" => SslPolicy::Require {
                mode: "require",
                verify: match roots {
                    Some(roots) => Verify::Chain { roots: Some(roots) },
                    None => Verify::Nothing,
                },
            },
            "verify-ca" => SslPolicy::Require {
                mode: "verify-ca",
                verify: Verify::Chain { roots },
            },
            "verify-full" => SslPolicy::Require {
                mode: "verify-full",
                verify: Verify::ChainAndHost { roots },
            },
            other => {
                return Err(format!(
                    "invalid sslmode `{other}`: expected disable, prefer, require, verify-ca or verify-full"
                ));
            }
        })
    }

    /// The `sslmode` this policy came from.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            SslPolicy::Disable => "disable",
            SslPolicy::Prefer => "prefer",
            SslPolicy::Require { mode, .. } => mode,
        }
    }
}

/// The TLS connector for `policy` (unused, but still built, for `disable`:
/// cancel requests take one whatever the mode).
pub(crate) fn connector(policy: &SslPolicy) -> Result<MakeRustlsConnect, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match policy {
        SslPolicy::Disable | SslPolicy::Prefer => Arc::new(AnyCertificate(Arc::clone(&provider))),
        SslPolicy::Require { verify, .. } => match verify {
            Verify::Nothing => Arc::new(AnyCertificate(Arc::clone(&provider))),
            Verify::Chain { roots } => {
                Arc::new(ChainOnly(webpki_verifier(roots.as_deref(), &provider)?))
            }
            Verify::ChainAndHost { roots } => webpki_verifier(roots.as_deref(), &provider)?,
        },
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn webpki_verifier(
    roots: Option<&Path>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let store = match roots {
        Some(path) => root_store_from_file(path)?,
        None => default_root_store(),
    };
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
        .build()
        .map_err(|e| format!("TLS setup failed: {e}"))
}

/// libpq uses only `sslrootcert` when it is given.
fn root_store_from_file(path: &Path) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("reading sslrootcert {}: {e}", path.display()))?;
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "sslrootcert {} holds no usable certificate",
            path.display()
        ));
    }
    Ok(store)
}

/// The system's roots (best effort) plus the bundled Mozilla roots.
fn default_root_store() -> RootCertStore {
    let mut store = RootCertStore::empty();
    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    store.add_parsable_certificates(native.certs);
    store
}

/// Accepts any certificate (libpq's `prefer`/`require`): the connection is
/// encrypted, and the handshake signature is still checked against the
/// presented certificate.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name may differ.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmodes_follow_libpq() {
        assert_eq!(SslPolicy::parse(None, None), Ok(SslPolicy::Prefer));
        assert_eq!(
            SslPolicy::parse(Some("DISABLE"), None),
            Ok(SslPolicy::Disable)
        );
        assert_eq!(
            SslPolicy::parse(Some("require"), None),
            Ok(SslPolicy::Require {
                mode: "require",
                verify: Verify::Nothing
            })
        );
        assert_eq!(
            SslPolicy::parse(Some("require"), Some("/ca.pem")),
            Ok(SslPolicy::Require {
                mode: "require",
                verify: Verify::Chain {
                    roots: Some("/ca.pem".into())
                }
            })
        );
        let err = SslPolicy::parse(Some("sometimes"), None).unwrap_err();
        assert!(err.contains("invalid sslmode `sometimes`"), "{err}");
    }

    #[test]
    fn connectors_build_for_every_mode() {
        for mode in ["disable", "prefer", "require", "verify-ca", "verify-full"] {
            let policy = SslPolicy::parse(Some(mode), None).unwrap();
            connector(&policy).unwrap();
        }
    }
}
