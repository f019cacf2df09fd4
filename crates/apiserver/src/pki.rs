//! The cluster PKI: one CA under `<data_dir>/tls/`, the API server's serving
//! certificate, the `system:admin` client certificate, and kubeconfig files.
//!
//! The CA is created once and then only ever loaded: every kubeconfig and every
//! node trusts it, so replacing it would lock all of them out. Leaf certificates
//! are cheap to replace and are re-issued at start-up whenever they no longer fit
//! (missing SANs, close to expiry, not signed by the CA, key does not match).
//!
//! Layout of `<data_dir>/tls/` (directory mode 0700, key files mode 0600):
//!
//! | file          | content                                              |
//! |---------------|------------------------------------------------------|
//! | `ca.crt`      | CA certificate (ECDSA P-256, 10 years)               |
//! | `ca.key`      | CA private key (PKCS#8)                              |
//! | `serving.crt` | API server certificate for the requested SANs (1 y)  |
//! | `serving.key` | its private key                                      |
//! | `admin.crt`   | client certificate `CN=system:admin, O=system:masters` |
//! | `admin.key`   | its private key                                      |
//!
//! Two processes must not run [`ensure`] on the same directory at once; the
//! server holds the data directory exclusively anyway.

use std::fmt;
use std::fs::{self, OpenOptions, Permissions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

/// Names every serving certificate carries, whatever the caller asks for: the
/// loopback names that local clients use, and the in-cluster names of the
/// `kubernetes` Service that pods use.
pub const DEFAULT_SANS: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "::1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// User name of the built-in administrator (kube-apiserver convention).
pub const ADMIN_USER: &str = "system:admin";
/// Group that the default authorizer lets do anything (kube-apiserver convention).
pub const ADMIN_GROUP: &str = "system:masters";

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const SERVING_CERT: &str = "serving.crt";
const SERVING_KEY: &str = "serving.key";
const ADMIN_CERT: &str = "admin.crt";
const ADMIN_KEY: &str = "admin.key";

const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Leaf certificates this close to expiry are re-issued at start-up, so a
/// server restarted now and then never serves an expired certificate.
const RENEW_BEFORE: Duration = Duration::days(30);
/// `notBefore` is set this far in the past so that a peer whose clock is a
/// little behind ours does not reject a freshly issued certificate.
const BACKDATE: Duration = Duration::minutes(5);

/// Why the PKI could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file or directory could not be read, written, renamed or chmod-ed.
    #[error("cannot {op} {path}")]
    Io {
        /// What we tried to do ("read", "write", ...).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A PEM file exists but does not hold a parsable certificate or key.
    /// It is reported rather than replaced: it may be the only copy of the CA.
    #[error("damaged PEM file {path}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// `ca.crt` exists but `ca.key` does not. A new CA is not created in this
    /// case because every existing kubeconfig trusts the old one.
    #[error("CA certificate {cert} exists but its key {key} is missing; restore the key (a new CA would invalidate every kubeconfig)")]
    CaKeyMissing {
        /// The CA certificate that was found.
        cert: PathBuf,
        /// The missing key file.
        key: PathBuf,
    },
    /// `ca.key` does not hold the private key of `ca.crt`, so nothing we sign
    /// would verify against the CA that clients trust.
    #[error("CA key {key} does not belong to CA certificate {cert}")]
    CaKeyMismatch {
        /// The CA certificate.
        cert: PathBuf,
        /// The key that does not match it.
        key: PathBuf,
    },
    /// `ca.crt` parses but cannot act as the cluster CA (not a CA, expired).
    #[error("CA certificate {path} is unusable: {reason}")]
    UnusableCa {
        /// The CA certificate.
        path: PathBuf,
        /// Why it cannot be used.
        reason: String,
    },
    /// A requested subject alternative name is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name {san:?}: {reason}")]
    InvalidSan {
        /// The name as given.
        san: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A certificate request that can never produce a useful certificate
    /// (empty common name, zero days).
    #[error("invalid certificate request: {0}")]
    InvalidRequest(String),
    /// rcgen failed to generate a key or sign a certificate.
    #[error("cannot generate {what}")]
    Generate {
        /// Which key or certificate.
        what: &'static str,
        /// rcgen's error.
        #[source]
        source: rcgen::Error,
    },
    /// rustls rejected the certificate, key or protocol settings.
    #[error("cannot build the TLS server configuration")]
    Tls(#[source] rustls::Error),
    /// rustls could not build a certificate verifier from the CA.
    #[error("cannot build a certificate verifier from the CA")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// The kubeconfig could not be serialized.
    #[error("cannot serialize the kubeconfig")]
    Kubeconfig(#[source] serde_norway::Error),
}

impl PkiError {
    fn io(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> PkiError {
        let path = path.to_path_buf();
        move |source| PkiError::Io { op, path, source }
    }

    fn corrupt<E>(path: &Path) -> impl FnOnce(E) -> PkiError
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let path = path.to_path_buf();
        move |source| PkiError::Corrupt {
            path,
            source: Box::new(source),
        }
    }

    fn generate(what: &'static str) -> impl FnOnce(rcgen::Error) -> PkiError {
        move |source| PkiError::Generate { what, source }
    }
}

/// The loaded cluster PKI. Holds the CA key in memory so that client
/// certificates can be issued at run time (e.g. for nodes and controllers).
pub struct Pki {
    /// The CA certificate (PEM), which every client must trust.
    pub ca_cert_pem: String,
    /// The API server's serving certificate (PEM).
    pub serving_cert_pem: String,
    /// The `system:admin` client certificate (PEM), for the admin kubeconfig.
    pub admin_cert_pem: String,
    /// The private key of [`Pki::admin_cert_pem`] (PEM).
    pub admin_key_pem: String,
    /// The directory the files live in, `<data_dir>/tls`.
    pub tls_dir: PathBuf,
    serving_key_pem: String,
    ca_key: KeyPair,
    ca_not_after: OffsetDateTime,
}

impl fmt::Debug for Pki {
    /// Keys are left out so that a stray `{:?}` in a log cannot leak them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pki")
            .field("tls_dir", &self.tls_dir)
            .field("ca_not_after", &self.ca_not_after)
            .finish_non_exhaustive()
    }
}

/// Loads the PKI under `<data_dir>/tls/`, creating whatever is missing.
///
/// `sans` are extra names for the serving certificate, each an IP address or
/// a DNS name; [`DEFAULT_SANS`] are always added and empty entries ignored.
/// The CA is created only when `ca.crt` does not exist; otherwise it is loaded
/// and never replaced. The serving and admin certificates are re-issued when
/// missing, not signed by the CA, not matching their key, expiring within 30
/// days, or (serving only) not covering every requested name.
pub fn ensure(data_dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
    let dir = data_dir.join("tls");
    create_private_dir(&dir)?;
    let wanted = wanted_sans(sans)?;
    let now = OffsetDateTime::now_utc();

    let (ca_cert_pem, ca_key, ca_not_after, ca_created) = load_or_create_ca(&dir, now)?;
    let mut pki = Pki {
        ca_cert_pem,
        serving_cert_pem: String::new(),
        admin_cert_pem: String::new(),
        admin_key_pem: String::new(),
        tls_dir: dir.clone(),
        serving_key_pem: String::new(),
        ca_key,
        ca_not_after,
    };
    let checker = LeafChecker::new(&pki)?;

    let serving = Leaf {
        what: "serving certificate",
        cert_name: SERVING_CERT,
        key_name: SERVING_KEY,
        cn: "wharf-apiserver",
        orgs: &[],
        sans: wanted.iter().map(San::to_rcgen).collect::<Result<_, _>>()?,
        usage: ExtendedKeyUsagePurpose::ServerAuth,
    };
    (pki.serving_cert_pem, pki.serving_key_pem) =
        pki.load_or_issue(serving, ca_created, now, |der, x509| {
            checker.check_serving(der, x509, &wanted)
        })?;

    let admin = Leaf {
        what: "admin certificate",
        cert_name: ADMIN_CERT,
        key_name: ADMIN_KEY,
        cn: ADMIN_USER,
        orgs: &[ADMIN_GROUP],
        sans: Vec::new(),
        usage: ExtendedKeyUsagePurpose::ClientAuth,
    };
    (pki.admin_cert_pem, pki.admin_key_pem) =
        pki.load_or_issue(admin, ca_created, now, |der, _| checker.check_client(der))?;
    Ok(pki)
}

/// A leaf certificate to issue, and where [`ensure`] keeps it on disk
/// (file names are unused for certificates handed out at run time).
struct Leaf<'a> {
    /// For messages: "serving certificate", ...
    what: &'static str,
    cert_name: &'static str,
    key_name: &'static str,
    cn: &'a str,
    orgs: &'a [&'a str],
    sans: Vec<SanType>,
    usage: ExtendedKeyUsagePurpose,
}

impl Pki {
    /// Issues a client certificate signed by the cluster CA: the API server
    /// reads the user name from `cn` and the groups from `orgs`.
    ///
    /// The certificate is valid for `days` days, but never beyond the CA (it
    /// would not verify after that anyway). Returns `(cert_pem, key_pem)`.
    pub fn issue_client_cert(
        &self,
        cn: &str,
        orgs: &[&str],
        days: u32,
    ) -> Result<(String, String), PkiError> {
        if cn.is_empty() {
            return Err(PkiError::InvalidRequest(
                "a client certificate needs a common name (the user name)".into(),
            ));
        }
        if days == 0 {
            return Err(PkiError::InvalidRequest(
                "a client certificate must be valid for at least one day".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let not_after = now
            .checked_add(Duration::days(i64::from(days)))
            .unwrap_or(self.ca_not_after);
        let leaf = Leaf {
            what: "client certificate",
            cert_name: "",
            key_name: "",
            cn,
            orgs,
            sans: Vec::new(),
            usage: ExtendedKeyUsagePurpose::ClientAuth,
        };
        self.issue(leaf, not_after, now)
    }

    /// Issues a serving certificate signed by the cluster CA for `sans`
    /// (IP addresses or DNS names; the defaults are added), e.g. a kubelet's.
    /// Returns `(cert_pem, key_pem)`.
    pub fn issue_serving_cert(
        &self,
        cn: &str,
        sans: &[String],
        days: u32,
    ) -> Result<(String, String), PkiError> {
        let now = OffsetDateTime::now_utc();
        let not_after = now
            .checked_add(Duration::days(i64::from(days.max(1))))
            .unwrap_or(self.ca_not_after);
        let leaf = Leaf {
            what: "serving certificate",
            cert_name: "",
            key_name: "",
            cn,
            orgs: &[],
            sans: wanted_sans(sans)?
                .iter()
                .map(San::to_rcgen)
                .collect::<Result<_, _>>()?,
            usage: ExtendedKeyUsagePurpose::ServerAuth,
        };
        self.issue(leaf, not_after, now)
    }

    /// The rustls configuration for the API server's listener.
    ///
    /// Client certificates are asked for but not verified in the handshake
    /// ([`RequestClientCert`], upstream's `tls.RequestClientCert`): clients
    /// without one (service accounts, static tokens) and clients with one
    /// from another CA get through, and the authenticator decides per
    /// request, so the latter get a 401 (or their bearer token counts), not
    /// a TLS alert. Uses the ring provider explicitly so the result does not
    /// depend on a process-wide default provider.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, PkiError> {
        let provider = ring_provider();
        let verifier = Arc::new(RequestClientCert(
            WebPkiClientVerifier::builder_with_provider(self.root_store()?, provider.clone())
                .allow_unauthenticated()
                .build()
                .map_err(PkiError::Verifier)?,
        ));
        let cert_path = self.tls_dir.join(SERVING_CERT);
        let chain = vec![
            CertificateDer::from_pem_slice(self.serving_cert_pem.as_bytes())
                .map_err(PkiError::corrupt(&cert_path))?,
        ];
        let key_path = self.tls_dir.join(SERVING_KEY);
        let key = PrivateKeyDer::from_pem_slice(self.serving_key_pem.as_bytes())
            .map_err(PkiError::corrupt(&key_path))?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(PkiError::Tls)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(PkiError::Tls)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    /// A root store holding only the cluster CA.
    fn root_store(&self) -> Result<Arc<RootCertStore>, PkiError> {
        let path = self.tls_dir.join(CA_CERT);
        let der = CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes())
            .map_err(PkiError::corrupt(&path))?;
        let mut roots = RootCertStore::empty();
        roots.add(der).map_err(PkiError::corrupt(&path))?;
        Ok(Arc::new(roots))
    }

    /// Returns the leaf's (cert, key) PEMs from disk if they are still good
    /// (see [`load_leaf`]), else issues and stores new ones. `fresh_ca`
    /// skips loading: whatever is on disk was signed by a CA that is gone.
    fn load_or_issue(
        &self,
        leaf: Leaf<'_>,
        fresh_ca: bool,
        now: OffsetDateTime,
        check: impl Fn(&CertificateDer<'_>, &X509Certificate<'_>) -> Option<String>,
    ) -> Result<(String, String), PkiError> {
        if !fresh_ca {
            if let Some(pair) = load_leaf(&self.tls_dir, leaf.cert_name, leaf.key_name, now, check)?
            {
                return Ok(pair);
            }
        }
        let (what, cert_name, key_name) = (leaf.what, leaf.cert_name, leaf.key_name);
        let pair = self.issue(leaf, now + LEAF_VALIDITY, now)?;
        store_pair(&self.tls_dir, cert_name, key_name, &pair)?;
        tracing::info!(path = %self.tls_dir.join(cert_name).display(), "issued {what}");
        Ok(pair)
    }

    /// Generates a fresh P-256 key and a leaf certificate for it, signed by
    /// the CA. `not_after` is clamped to the CA's own expiry.
    fn issue(
        &self,
        leaf: Leaf<'_>,
        not_after: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(String, String), PkiError> {
        let Leaf {
            what,
            cn,
            orgs,
            sans,
            usage,
            ..
        } = leaf;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(PkiError::generate(what))?;
        let mut params = base_params(cn, now, not_after.min(self.ca_not_after));
        for org in orgs {
            params
                .distinguished_name
                .push(DnType::OrganizationName, *org);
        }
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, &self.ca_key)
            .map_err(PkiError::generate(what))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(PkiError::generate(what))?;
        let cert_pem = if orgs.len() > 1 {
            let der = der::resubject(cert.der(), cn, orgs, &self.ca_key)
                .map_err(PkiError::generate(what))?;
            der::certificate_pem(&der)
        } else {
            cert.pem()
        };
        Ok((cert_pem, key.serialize_pem()))
    }
}

/// Just enough DER to give a certificate a subject with several `O`
/// attributes. Kubernetes reads one group per `O` attribute, but rcgen keeps
/// at most one attribute per type in a name, so for two or more groups the
/// certificate rcgen produced is taken apart, its subject replaced, and the
/// result signed again with the CA key. Everything else (serial, validity,
/// extensions, signature algorithm) is kept byte for byte.
mod der {
    use rcgen::{KeyPair, SigningKey};

    use base64::Engine as _;

    use super::BASE64;

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const UTF8_STRING: u8 = 0x0c;
    const BIT_STRING: u8 = 0x03;
    const VERSION_TAG: u8 = 0xa0;
    /// DER of the OIDs 2.5.4.3 (commonName) and 2.5.4.10 (organizationName).
    const OID_CN: [u8; 3] = [0x55, 0x04, 0x03];
    const OID_O: [u8; 3] = [0x55, 0x04, 0x0a];
    /// Position of `subject` in a v3 TBSCertificate: version, serialNumber,
    /// signature, issuer, validity, subject.
    const SUBJECT_INDEX: usize = 5;

    fn bad() -> rcgen::Error {
        rcgen::Error::CouldNotParseCertificate
    }

    /// One DER element split off the front of a byte string.
    struct Tlv<'a> {
        tag: u8,
        /// The value, without tag and length.
        content: &'a [u8],
        /// The whole element, tag and length included.
        whole: &'a [u8],
        /// What follows the element.
        rest: &'a [u8],
    }

    fn tlv(input: &[u8]) -> Result<Tlv<'_>, rcgen::Error> {
        let (&tag, after_tag) = input.split_first().ok_or_else(bad)?;
        let (&first, after_len) = after_tag.split_first().ok_or_else(bad)?;
        let (len, header) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || after_len.len() < n {
                return Err(bad());
            }
            let len = after_len[..n]
                .iter()
                .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
            (len, 2 + n)
        };
        let end = header
            .checked_add(len)
            .filter(|&e| e <= input.len())
            .ok_or_else(bad)?;
        Ok(Tlv {
            tag,
            content: &input[header..end],
            whole: &input[..end],
            rest: &input[end..],
        })
    }

    /// The elements of a SEQUENCE's content, each as a whole TLV.
    fn elements(mut content: &[u8]) -> Result<Vec<&[u8]>, rcgen::Error> {
        let mut out = Vec::new();
        while !content.is_empty() {
            let element = tlv(content)?;
            out.push(element.whole);
            content = element.rest;
        }
        Ok(out)
    }

    fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|&&b| b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }

    fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
        let mut pair = encode(OID, oid);
        pair.extend(encode(UTF8_STRING, value.as_bytes()));
        encode(SET, &encode(SEQUENCE, &pair))
    }

    /// `CN=cn, O=orgs[0], O=orgs[1], ...`, one attribute per RDN.
    fn name(cn: &str, orgs: &[&str]) -> Vec<u8> {
        let mut rdns = attribute(&OID_CN, cn);
        for org in orgs {
            rdns.extend(attribute(&OID_O, org));
        }
        encode(SEQUENCE, &rdns)
    }

    /// `cert` with its subject replaced by `CN=cn, O=...`, re-signed by `ca_key`.
    pub(super) fn resubject(
        cert: &[u8],
        cn: &str,
        orgs: &[&str],
        ca_key: &KeyPair,
    ) -> Result<Vec<u8>, rcgen::Error> {
        let outer = tlv(cert)?;
        if outer.tag != SEQUENCE || !outer.rest.is_empty() {
            return Err(bad());
        }
        let parts = elements(outer.content)?;
        let [tbs, algorithm, _signature] = parts[..] else {
            return Err(bad());
        };
        let mut fields = elements(tlv(tbs)?.content)?;
        if fields.first().map(|f| f[0]) != Some(VERSION_TAG) || fields.len() <= SUBJECT_INDEX {
            return Err(bad());
        }
        let subject = name(cn, orgs);
        fields[SUBJECT_INDEX] = &subject;
        let tbs = encode(SEQUENCE, &fields.concat());
        let mut signature = vec![0]; // no unused bits
        signature.extend(ca_key.sign(&tbs)?);
        let mut body = tbs;
        body.extend_from_slice(algorithm);
        body.extend(encode(BIT_STRING, &signature));
        Ok(encode(SEQUENCE, &body))
    }

    /// PEM with 64-column lines, as rcgen and OpenSSL write it.
    pub(super) fn certificate_pem(der: &[u8]) -> String {
        let b64 = BASE64.encode(der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }
}

/// Writes a kubeconfig with one cluster, user and context, all named
/// `default`, with the CA and client credentials embedded (base64), so the file
/// works wherever it is copied to.
///
/// The file is written to a temporary file and renamed over `path`, so a
/// reader never sees half a kubeconfig; its mode is set to exactly `mode`
/// regardless of the umask (it holds a private key, so callers normally pass
/// `0o600`). Missing parent directories are created.
pub fn write_kubeconfig(
    path: &Path,
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
    mode: u32,
) -> Result<(), PkiError> {
    let yaml = kubeconfig_yaml(server_url, ca_pem, client_cert_pem, client_key_pem)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(PkiError::io("create directory", parent))?;
    }
    write_atomic(path, yaml.as_bytes(), mode)
}

/// The kubeconfig document, field names as kubectl expects them.
#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct Kubeconfig<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    clusters: [Named<'a, Cluster<'a>>; 1],
    users: [Named<'a, User>; 1],
    contexts: [Named<'a, Context<'a>>; 1],
    current_context: &'a str,
    preferences: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize)]
struct Named<'a, T> {
    name: &'a str,
    #[serde(flatten)]
    value: T,
}

#[derive(Serialize)]
struct Cluster<'a> {
    cluster: ClusterInfo<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct ClusterInfo<'a> {
    server: &'a str,
    certificate_authority_data: String,
}

#[derive(Serialize)]
struct User {
    user: UserCredentials,
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
struct UserCredentials {
    client_certificate_data: String,
    client_key_data: String,
}

#[derive(Serialize)]
struct Context<'a> {
    context: ContextInfo<'a>,
}

#[derive(Serialize)]
struct ContextInfo<'a> {
    cluster: &'a str,
    user: &'a str,
}

fn kubeconfig_yaml(
    server_url: &str,
    ca_pem: &str,
    client_cert_pem: &str,
    client_key_pem: &str,
) -> Result<String, PkiError> {
    const NAME: &str = "default";
    let doc = Kubeconfig {
        api_version: "v1",
        kind: "Config",
        clusters: [Named {
            name: NAME,
            value: Cluster {
                cluster: ClusterInfo {
                    server: server_url,
                    certificate_authority_data: BASE64.encode(ca_pem),
                },
            },
        }],
        users: [Named {
            name: NAME,
            value: User {
                user: UserCredentials {
                    client_certificate_data: BASE64.encode(client_cert_pem),
                    client_key_data: BASE64.encode(client_key_pem),
                },
            },
        }],
        contexts: [Named {
            name: NAME,
            value: Context {
                context: ContextInfo {
                    cluster: NAME,
                    user: NAME,
                },
            },
        }],
        current_context: NAME,
        preferences: serde_json::Map::new(),
    };
    serde_norway::to_string(&doc).map_err(PkiError::Kubeconfig)
}

fn ring_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parameters shared by every certificate we issue. The serial is random so
/// that no two certificates from this CA share one (RFC 5280 4.1.2.2).
fn base_params(cn: &str, now: OffsetDateTime, not_after: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.not_before = now - BACKDATE;
    params.not_after = not_after;
    let mut serial = *uuid::Uuid::new_v4().as_bytes();
    serial[0] &= 0x7f; // a positive INTEGER
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params
}

/// Loads the CA, or creates one if `ca.crt` does not exist. Returns the
/// certificate PEM, its key, its expiry, and whether it was just created.
fn load_or_create_ca(
    dir: &Path,
    now: OffsetDateTime,
) -> Result<(String, KeyPair, OffsetDateTime, bool), PkiError> {
    let cert_path = dir.join(CA_CERT);
    let key_path = dir.join(CA_KEY);
    let Some(cert_pem) = read_optional(&cert_path)? else {
        // No certificate means no client can trust an older CA, so creating
        // one is safe even if an orphan ca.key is left from an interrupted start.
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .map_err(PkiError::generate("CA key"))?;
        let not_after = now + CA_VALIDITY;
        let mut params = base_params(
            &format!("wharf-ca@{}", now.unix_timestamp()),
            now,
            not_after,
        );
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params
            .self_signed(&key)
            .map_err(PkiError::generate("CA certificate"))?;
        // The key first: the certificate's presence is what marks the CA as
        // existing, so it must only appear once its key is durable.
        write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
        tracing::info!(path = %cert_path.display(), "created cluster CA");
        // The certificate stores whole seconds; clamp leaves to that, not to `now`'s nanos.
        let not_after = not_after.replace_nanosecond(0).unwrap_or(not_after);
        return Ok((cert.pem(), key, not_after, true));
    };
    let Some(key_pem) = read_optional(&key_path)? else {
        return Err(PkiError::CaKeyMissing {
            cert: cert_path,
            key: key_path,
        });
    };
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(PkiError::corrupt(&cert_path))?;
    let (_, x509) = X509Certificate::from_der(&der).map_err(PkiError::corrupt(&cert_path))?;
    let key = KeyPair::from_pem(&key_pem).map_err(PkiError::corrupt(&key_path))?;
    if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Err(PkiError::CaKeyMismatch {
            cert: cert_path,
            key: key_path,
        });
    }
    if !x509.is_ca() {
        return Err(PkiError::UnusableCa {
            path: cert_path,
            reason: "it is not a CA certificate (basicConstraints CA:false)".into(),
        });
    }
    let not_after = asn1_to_offset(x509.validity().not_after.timestamp());
    if not_after <= now {
        return Err(PkiError::UnusableCa {
            path: cert_path,
            reason: format!(
                "it expired at {not_after}; rotate the CA and re-issue all credentials"
            ),
        });
    }
    if not_after - now < Duration::days(365) {
        tracing::warn!(path = %cert_path.display(), %not_after, "cluster CA expires within a year");
    }
    set_mode(&key_path, 0o600)?;
    Ok((cert_pem, key, not_after, false))
}

fn asn1_to_offset(ts: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(ts).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Upstream's `tls.RequestClientCert` for rustls: a client certificate is
/// asked for (with the CA's name as hint) and the client's handshake
/// signature is checked against it (the client holds its key), but the
/// certificate's chain is left to whoever authenticates the requests. The
/// inner verifier gives the hints and checks the signatures.
#[derive(Debug)]
pub struct RequestClientCert(pub Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Verifies leaf certificates the way their peers will: with webpki against
/// the cluster CA.
struct LeafChecker {
    server: Arc<WebPkiServerVerifier>,
    client: Arc<dyn ClientCertVerifier>,
}

impl LeafChecker {
    fn new(pki: &Pki) -> Result<Self, PkiError> {
        let roots = pki.root_store()?;
        let provider = ring_provider();
        let server = WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(PkiError::Verifier)?;
        let client = WebPkiClientVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(PkiError::Verifier)?;
        Ok(Self { server, client })
    }

    /// `None` if the serving certificate is fine, else why it must be re-issued.
    fn check_serving(
        &self,
        der: &CertificateDer<'_>,
        x509: &X509Certificate<'_>,
        wanted: &[San],
    ) -> Option<String> {
        let name = ServerName::try_from("localhost").expect("static name");
        if let Err(e) = self
            .server
            .verify_server_cert(der, &[], &name, &[], UnixTime::now())
        {
            return Some(format!("does not verify against the CA: {e}"));
        }
        let have = match x509.subject_alternative_name() {
            Ok(Some(ext)) => ext.value.general_names.clone(),
            Ok(None) => Vec::new(),
            Err(e) => return Some(format!("unreadable subjectAltName: {e}")),
        };
        let missing: Vec<String> = wanted
            .iter()
            .filter(|san| !have.iter().any(|g| san.matches(g)))
            .map(ToString::to_string)
            .collect();
        if missing.is_empty() {
            None
        } else {
            Some(format!("does not cover {}", missing.join(", ")))
        }
    }

    /// `None` if the client certificate is fine, else why it must be re-issued.
    fn check_client(&self, der: &CertificateDer<'_>) -> Option<String> {
        self.client
            .verify_client_cert(der, &[], UnixTime::now())
            .err()
            .map(|e| format!("does not verify against the CA: {e}"))
    }
}

/// Loads a leaf certificate and key if both exist and are still good.
/// `Ok(None)` means "issue a new one"; a damaged file is an error.
fn load_leaf(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    now: OffsetDateTime,
    check: impl Fn(&CertificateDer<'_>, &X509Certificate<'_>) -> Option<String>,
) -> Result<Option<(String, String)>, PkiError> {
    let cert_path = dir.join(cert_name);
    let key_path = dir.join(key_name);
    let (Some(cert_pem), Some(key_pem)) = (read_optional(&cert_path)?, read_optional(&key_path)?)
    else {
        tracing::info!(path = %cert_path.display(), "certificate or key missing; issuing a new one");
        return Ok(None);
    };
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(PkiError::corrupt(&cert_path))?;
    let (_, x509) = X509Certificate::from_der(&der).map_err(PkiError::corrupt(&cert_path))?;
    let key = KeyPair::from_pem(&key_pem).map_err(PkiError::corrupt(&key_path))?;
    let not_after = asn1_to_offset(x509.validity().not_after.timestamp());
    let reason = if x509.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        Some("does not match its key".to_string())
    } else if not_after - now < RENEW_BEFORE {
        Some(format!("expires at {not_after}"))
    } else {
        check(&der, &x509)
    };
    if let Some(reason) = reason {
        tracing::info!(path = %cert_path.display(), %reason, "re-issuing certificate");
        return Ok(None);
    }
    set_mode(&key_path, 0o600)?;
    Ok(Some((cert_pem, key_pem)))
}

/// Writes a leaf's key, then its certificate. A crash in between leaves a
/// certificate that does not match its key, which the next start re-issues.
fn store_pair(
    dir: &Path,
    cert_name: &str,
    key_name: &str,
    (cert, key): &(String, String),
) -> Result<(), PkiError> {
    write_atomic(&dir.join(key_name), key.as_bytes(), 0o600)?;
    write_atomic(&dir.join(cert_name), cert.as_bytes(), 0o644)
}

/// A subject alternative name, normalized for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum San {
    Ip(IpAddr),
    /// Lower-cased: DNS names compare case-insensitively.
    Dns(String),
}

impl San {
    fn parse(raw: &str) -> Result<Self, PkiError> {
        let s = raw.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(San::Ip(ip));
        }
        let invalid = |reason| PkiError::InvalidSan {
            san: raw.to_string(),
            reason,
        };
        if s.len() > 253 {
            return Err(invalid("longer than 253 characters"));
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*'))
        {
            return Err(invalid(
                "neither an IP address nor a DNS name (letters, digits, '-', '.', '_', '*')",
            ));
        }
        if s.split('.').any(str::is_empty) {
            return Err(invalid("a DNS name has an empty label"));
        }
        Ok(San::Dns(s.to_ascii_lowercase()))
    }

    fn matches(&self, name: &GeneralName<'_>) -> bool {
        match (self, name) {
            (San::Dns(want), GeneralName::DNSName(have)) => want.eq_ignore_ascii_case(have),
            (San::Ip(want), GeneralName::IPAddress(bytes)) => match *want {
                IpAddr::V4(v4) => *bytes == v4.octets(),
                IpAddr::V6(v6) => *bytes == v6.octets(),
            },
            _ => false,
        }
    }

    fn to_rcgen(&self) -> Result<SanType, PkiError> {
        Ok(match self {
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Dns(name) => {
                SanType::DnsName(name.clone().try_into().map_err(|_| PkiError::InvalidSan {
                    san: name.clone(),
                    reason: "not an IA5 string",
                })?)
            }
        })
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Ip(ip) => ip.fmt(f),
            San::Dns(name) => f.write_str(name),
        }
    }
}

/// The defaults followed by the caller's names, without duplicates or blanks.
fn wanted_sans(extra: &[String]) -> Result<Vec<San>, PkiError> {
    let mut out: Vec<San> = Vec::new();
    let defaults = DEFAULT_SANS.iter().copied();
    for raw in defaults.chain(extra.iter().map(String::as_str)) {
        if raw.trim().is_empty() {
            continue;
        }
        let san = San::parse(raw)?;
        if !out.contains(&san) {
            out.push(san);
        }
    }
    Ok(out)
}

fn read_optional(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(PkiError::corrupt(path)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("read", path)(e)),
    }
}

fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(PkiError::io("create directory", dir))?;
    set_mode(dir, 0o700)
}

/// Tightens permissions left loose by an older version or an operator's copy.
fn set_mode(path: &Path, mode: u32) -> Result<(), PkiError> {
    let meta = fs::metadata(path).map_err(PkiError::io("stat", path))?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, Permissions::from_mode(mode))
            .map_err(PkiError::io("chmod", path))?;
    }
    Ok(())
}

/// Writes `contents` to `path` via a temporary file in the same directory and
/// a rename, so `path` holds either the old or the new content, never a torn
/// one; the mode is set explicitly so the umask cannot loosen or tighten it.
fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), PkiError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .map_err(PkiError::io("create", &tmp))?;
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(PkiError::io("chmod", &tmp))?;
        file.write_all(contents)
            .map_err(PkiError::io("write", &tmp))?;
        file.sync_all().map_err(PkiError::io("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(PkiError::io("rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Make the rename itself durable.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(PkiError::io("sync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn kubeconfig_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dir/kubeconfig.yaml");
        write_kubeconfig(
            &path,
            "https://127.0.0.1:6443",
            "CA PEM",
            "CERT PEM",
            "KEY PEM",
            0o640,
        )
        .unwrap();
        assert_eq!(mode_of(&path), 0o640);

        let text = fs::read_to_string(&path).unwrap();
        let doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        let b64 = |v: &serde_norway::Value| {
            String::from_utf8(BASE64.decode(v.as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(doc["apiVersion"].as_str(), Some("v1"));
        assert_eq!(doc["kind"].as_str(), Some("Config"));
        assert_eq!(doc["current-context"].as_str(), Some("default"));

        let cluster = &doc["clusters"][0];
        assert_eq!(cluster["name"].as_str(), Some("default"));
        assert_eq!(
            cluster["cluster"]["server"].as_str(),
            Some("https://127.0.0.1:6443")
        );
        assert_eq!(
            b64(&cluster["cluster"]["certificate-authority-data"]),
            "CA PEM"
        );

        let user = &doc["users"][0];
        assert_eq!(user["name"].as_str(), Some("default"));
        assert_eq!(b64(&user["user"]["client-certificate-data"]), "CERT PEM");
        assert_eq!(b64(&user["user"]["client-key-data"]), "KEY PEM");

        let context = &doc["contexts"][0];
        assert_eq!(context["name"].as_str(), Some("default"));
        assert_eq!(context["context"]["cluster"].as_str(), Some("default"));
        assert_eq!(context["context"]["user"].as_str(), Some("default"));

        // Rewriting replaces the file and applies the new mode exactly.
        write_kubeconfig(&path, "https://[::1]:6443", "a", "b", "c", 0o600).unwrap();
        assert_eq!(mode_of(&path), 0o600);
        let doc: serde_norway::Value =
            serde_norway::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"].as_str(),
            Some("https://[::1]:6443")
        );
        // No temporary file is left behind.
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("kubeconfig.yaml")]);
    }

    #[test]
    fn san_parsing() {
        assert_eq!(
            San::parse("10.0.0.1").unwrap(),
            San::Ip("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            San::parse("fd00::1").unwrap(),
            San::Ip("fd00::1".parse().unwrap())
        );
        assert_eq!(
            San::parse("API.Example.com").unwrap(),
            San::Dns("api.example.com".into())
        );
        assert!(San::parse("bad name").is_err());
        assert!(San::parse("a..b").is_err());
        let sans = wanted_sans(&["".into(), "LOCALHOST".into(), "example.com".into()]).unwrap();
        assert_eq!(sans.len(), DEFAULT_SANS.len() + 1);
        assert_eq!(sans.last(), Some(&San::Dns("example.com".into())));
        let err = ensure(tempfile::tempdir().unwrap().path(), &["no spaces".into()]).unwrap_err();
        assert!(matches!(err, PkiError::InvalidSan { .. }), "{err}");
    }

    #[test]
    fn damaged_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        let tls = dir.path().join("tls");

        fs::write(
            tls.join(SERVING_KEY),
            "-----BEGIN PRIVATE KEY-----\ngarbage\n",
        )
        .unwrap();
        let err = ensure(dir.path(), &[]).unwrap_err();
        assert!(matches!(&err, PkiError::Corrupt { path, .. } if path.ends_with(SERVING_KEY)));
        assert!(err.to_string().contains("serving.key"), "{err}");
        fs::remove_file(tls.join(SERVING_KEY)).unwrap(); // missing -> re-issued
        let again = ensure(dir.path(), &[]).unwrap();
        assert_eq!(again.ca_cert_pem, pki.ca_cert_pem);
        assert_ne!(again.serving_cert_pem, pki.serving_cert_pem);

        fs::write(tls.join(CA_CERT), "not a pem file").unwrap();
        let err = ensure(dir.path(), &[]).unwrap_err();
        assert!(err.to_string().contains("ca.crt"), "{err}");

        fs::write(tls.join(CA_CERT), &pki.ca_cert_pem).unwrap();
        fs::remove_file(tls.join(CA_KEY)).unwrap();
        let err = ensure(dir.path(), &[]).unwrap_err();
        assert!(matches!(err, PkiError::CaKeyMissing { .. }), "{err}");
    }

    #[test]
    fn expiring_or_foreign_leaves_are_reissued() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        let tls = dir.path().join("tls");
        let now = OffsetDateTime::now_utc();

        // A serving certificate with ten days left is renewed.
        let leaf = Leaf {
            what: "test",
            cert_name: SERVING_CERT,
            key_name: SERVING_KEY,
            cn: "short",
            orgs: &[],
            sans: wanted_sans(&[])
                .unwrap()
                .iter()
                .map(|s| s.to_rcgen().unwrap())
                .collect(),
            usage: ExtendedKeyUsagePurpose::ServerAuth,
        };
        let short = pki.issue(leaf, now + Duration::days(10), now).unwrap();
        store_pair(&tls, SERVING_CERT, SERVING_KEY, &short).unwrap();
        let renewed = ensure(dir.path(), &[]).unwrap();
        assert_ne!(renewed.serving_cert_pem, short.0);
        assert_eq!(renewed.ca_cert_pem, pki.ca_cert_pem);

        // An admin certificate from another CA is replaced by ours.
        let other = tempfile::tempdir().unwrap();
        let foreign = ensure(other.path(), &[]).unwrap();
        let pair = (
            foreign.admin_cert_pem.clone(),
            foreign.admin_key_pem.clone(),
        );
        store_pair(&tls, ADMIN_CERT, ADMIN_KEY, &pair).unwrap();
        let fixed = ensure(dir.path(), &[]).unwrap();
        assert_ne!(fixed.admin_cert_pem, foreign.admin_cert_pem);
        assert_eq!(fixed.ca_cert_pem, pki.ca_cert_pem);
    }

    #[test]
    fn client_certs_are_clamped_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &[]).unwrap();
        assert!(matches!(
            pki.issue_client_cert("", &[], 1),
            Err(PkiError::InvalidRequest(_))
        ));
        assert!(matches!(
            pki.issue_client_cert("x", &[], 0),
            Err(PkiError::InvalidRequest(_))
        ));
        let (cert, _) = pki
            .issue_client_cert("node", &["a", "b"], u32::MAX)
            .unwrap();
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        let (_, x509) = X509Certificate::from_der(&der).unwrap();
        assert!(x509.validity().not_after.timestamp() <= pki.ca_not_after.unix_timestamp());
        let orgs: Vec<_> = x509
            .subject()
            .iter_organization()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(orgs, ["a", "b"]);
    }
}
