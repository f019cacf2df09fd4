//! Authentication: who is making a request.
//!
//! Two authenticators, combined as a union the way kube-apiserver does it:
//! the request is authenticated if either succeeds.
//!
//! - **Bearer tokens** from a static token file in kube-apiserver's
//!   `--token-auth-file` format, plus tokens added at run time.
//! - **X.509 client certificates** signed by the cluster CA: the subject's
//!   common name is the user name and its organizations are the groups.
//!
//! Bootstrap tokens (`crate::bootstrap_token`) are asked last, by the
//! server, because they are looked up in the watch cache.
//!
//! Every authenticated user is also put in `system:authenticated`, which is
//! what RBAC bindings for "any logged-in user" refer to.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

/// The group every authenticated user belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
const ANONYMOUS_USER: &str = "system:anonymous";
const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";

/// The identity of an authenticated caller, as in Kubernetes' `user.Info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name (token file column 2, or the certificate's CN).
    pub username: String,
    /// A unique, stable id; empty for certificate users, which have none.
    pub uid: String,
    /// Group names (token file column 4, or the certificate's O values).
    pub groups: Vec<String>,
    /// Additional attributes that authorizers may use.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and groups, no uid and no extras.
    pub fn new(username: impl Into<String>, groups: Vec<String>) -> Self {
        Self {
            username: username.into(),
            uid: String::new(),
            groups,
            extra: BTreeMap::new(),
        }
    }
}

/// Why a request is not authenticated. Every variant means HTTP 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    /// The request carried neither a client certificate nor a bearer token.
    #[error("no credentials provided")]
    Anonymous,
    /// A bearer token was sent but is not known, and no valid client
    /// certificate authenticated the request either.
    #[error("invalid bearer token")]
    InvalidToken,
    /// A client certificate was presented but does not identify a user.
    #[error("invalid client certificate: {0}")]
    InvalidCertificate(String),
}

/// Why an [`Authenticator`] could not be built. These are start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum AuthnConfigError {
    /// The CA PEM holds no parsable certificate.
    #[error("invalid CA certificate PEM")]
    CaPem(#[source] rustls::pki_types::pem::Error),
    /// rustls rejected the CA as a trust anchor.
    #[error("CA certificate is not a usable trust anchor")]
    CaCert(#[source] rustls::Error),
    /// rustls could not build the client certificate verifier.
    #[error("cannot build the client certificate verifier")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
    /// The token file could not be read.
    #[error("cannot read token file {path}")]
    TokenFileIo {
        /// The token file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The token file is not valid CSV in the expected shape.
    #[error("token file {path}, line {line}: {reason}")]
    TokenFileSyntax {
        /// The token file.
        path: PathBuf,
        /// 1-based line where the bad record starts.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Authenticates requests by bearer token or client certificate.
pub struct Authenticator {
    /// Re-checks peer certificates at request time (see [`Authenticator::authenticate`]).
    verifier: Arc<dyn ClientCertVerifier>,
    /// Token and user, unique by token. A list, not a map: lookups compare
    /// against every entry in constant time, so response timing does not
    /// reveal how much of a guessed token was right.
    tokens: Vec<(Vec<u8>, UserInfo)>,
}

impl fmt::Debug for Authenticator {
    /// Tokens are secrets: show only how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    /// Builds an authenticator trusting client certificates signed by
    /// `ca_cert_pem` (one or more PEM certificates) and, if given, the tokens
    /// of a kube-apiserver style token file:
    ///
    /// ```text
    /// # token,user,uid,"group1,group2"
    /// 31ada4fd-adec-460c-809a-9e56ceb75269,alice,1001,"dev,ops"
    /// ```
    ///
    /// At least three columns are required; the fourth (groups) is optional.
    /// Records with an empty token are skipped; for a duplicated token the
    /// last record wins, as in kube-apiserver.
    pub fn new(ca_cert_pem: &str, token_file: Option<&Path>) -> Result<Self, AuthnConfigError> {
        let mut roots = RootCertStore::empty();
        for der in CertificateDer::pem_slice_iter(ca_cert_pem.as_bytes()) {
            roots
                .add(der.map_err(AuthnConfigError::CaPem)?)
                .map_err(AuthnConfigError::CaCert)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        // `build` fails on an empty root store, which covers "no certificate in the PEM".
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(AuthnConfigError::Verifier)?;
        let mut this = Self {
            verifier,
            tokens: Vec::new(),
        };
        if let Some(path) = token_file {
            let text =
                std::fs::read_to_string(path).map_err(|source| AuthnConfigError::TokenFileIo {
                    path: path.to_path_buf(),
                    source,
                })?;
            let entries = parse_token_file(&text).map_err(|(line, reason)| {
                AuthnConfigError::TokenFileSyntax {
                    path: path.to_path_buf(),
                    line,
                    reason,
                }
            })?;
            for (line, token, user) in entries {
                if this.find(token.as_bytes()).is_some() {
                    tracing::warn!(path = %path.display(), line, "duplicate token in token file; the last one wins");
                }
                this.add_token(token, user);
            }
        }
        Ok(this)
    }

    /// Adds (or replaces) a bearer token, e.g. one generated at start-up for
    /// in-process clients. An empty token is ignored: it could never be sent.
    pub fn add_token(&mut self, token: String, user: UserInfo) {
        if token.is_empty() {
            return;
        }
        let token = token.into_bytes();
        match self.tokens.iter_mut().find(|(t, _)| *t == token) {
            Some(entry) => entry.1 = user,
            None => self.tokens.push((token, user)),
        }
    }

    /// Authenticates one request.
    ///
    /// `peer_certs` is the TLS peer's certificate chain (leaf first), as
    /// rustls reports it; `authorization` is the `Authorization` header.
    /// A known bearer token wins; otherwise a client certificate signed by
    /// the CA authenticates as `CN`, groups `O`. An unknown token with no
    /// usable certificate is [`AuthnError::InvalidToken`]; no credentials at
    /// all is [`AuthnError::Anonymous`].
    ///
    /// The certificate is verified again here even though the handshake did
    /// it: this function must not depend on every caller having used the
    /// right listener, and a connection can outlive its certificate's expiry.
    pub fn authenticate(
        &self,
        peer_certs: Option<&[CertificateDer<'_>]>,
        authorization: Option<&str>,
    ) -> Result<UserInfo, AuthnError> {
        let token = authorization.and_then(bearer_token);
        if let Some(token) = token {
            if let Some(user) = self.find(token.as_bytes()) {
                return Ok(with_authenticated_group(user.clone()));
            }
            if let Some(user) = crate::satoken::authenticate(token) {
                return Ok(with_authenticated_group(user));
            }
        }
        let cert_result = match peer_certs {
            Some([leaf, intermediates @ ..]) => Some(self.authenticate_cert(leaf, intermediates)),
            _ => None,
        };
        match (cert_result, token) {
            (Some(Ok(user)), _) => Ok(with_authenticated_group(user)),
            (_, Some(_)) => Err(AuthnError::InvalidToken),
            (Some(Err(e)), None) => Err(e),
            (None, None) => Err(AuthnError::Anonymous),
        }
    }

    /// Compares `token` with every known token in constant time and returns
    /// the match, if any. Only the length of the tokens may leak.
    fn find(&self, token: &[u8]) -> Option<&UserInfo> {
        let mut found = None;
        for (known, user) in &self.tokens {
            if constant_time_eq(known, token) {
                found = Some(user);
            }
        }
        found
    }

    fn authenticate_cert(
        &self,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<UserInfo, AuthnError> {
        let invalid = |reason: String| AuthnError::InvalidCertificate(reason);
        self.verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .map_err(|e| invalid(e.to_string()))?;
        let (_, x509) = X509Certificate::from_der(leaf).map_err(|e| invalid(e.to_string()))?;
        let subject = x509.subject();
        let username = subject
            .iter_common_name()
            .next()
            .map(|cn| cn.as_str())
            .transpose()
            .map_err(|e| invalid(format!("unreadable common name: {e}")))?
            .filter(|cn| !cn.is_empty())
            .ok_or_else(|| invalid("the subject has no common name (user name)".into()))?;
        let groups = subject
            .iter_organization()
            .map(|o| o.as_str().map(str::to_string))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("unreadable organization: {e}")))?;
        Ok(UserInfo::new(username, groups))
    }
}

/// Adds `system:authenticated` unless the user already has it or is the
/// anonymous user (kube-apiserver's rule).
fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    let anonymous =
        user.username == ANONYMOUS_USER || user.groups.iter().any(|g| g == UNAUTHENTICATED_GROUP);
    if !anonymous && !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        user.groups.push(AUTHENTICATED_GROUP.to_string());
    }
    user
}

/// The token of an `Authorization: Bearer <token>` header. The scheme is
/// case-insensitive; other schemes and empty tokens mean "no token", so
/// that they fall through to the other authenticators.
pub(crate) fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Equality whose running time depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the optimizer from turning the fold into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

/// One parsed token file record: (line, token, user).
type TokenRecord = (usize, String, UserInfo);
/// One CSV record: (line it starts on, fields).
type CsvRecord = (usize, Vec<String>);
/// A syntax error: (line, reason).
type SyntaxError = (usize, String);

/// Parses a token file.
fn parse_token_file(text: &str) -> Result<Vec<TokenRecord>, SyntaxError> {
    let mut out = Vec::new();
    for (line, fields) in parse_csv(text)? {
        if fields.len() < 3 {
            return Err((
                line,
                format!(
                    "need at least 3 columns (token, user name, user uid), found {}",
                    fields.len()
                ),
            ));
        }
        let mut fields = fields.into_iter();
        let token = fields.next().unwrap_or_default();
        let username = fields.next().unwrap_or_default();
        let uid = fields.next().unwrap_or_default();
        let groups = fields
            .next()
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if token.is_empty() {
            tracing::warn!(line, "empty token in token file; record skipped");
            continue;
        }
        let user = UserInfo {
            username,
            uid,
            groups,
            extra: BTreeMap::new(),
        };
        out.push((line, token, user));
    }
    Ok(out)
}

/// A small RFC 4180 reader with the settings kube-apiserver uses for the
/// token file (Go's `encoding/csv` with `#` comments, leading spaces of
/// fields trimmed, a variable number of fields). Returns each record with
/// the line it starts on. Blank (or whitespace-only) lines are skipped.
fn parse_csv(text: &str) -> Result<Vec<CsvRecord>, SyntaxError> {
    let text = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut records = Vec::new();
    while let Some(&c) = chars.peek() {
        if c == '#' {
            for c in chars.by_ref() {
                if c == '\n' {
                    break;
                }
            }
            line += 1;
            continue;
        }
        let start = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut at_field_start = true;
        loop {
            match chars.next() {
                None => {
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some('\n') => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                Some(' ' | '\t') if at_field_start => {}
                Some(',') => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                Some('"') if at_field_start => {
                    // Quoted field: `""` is a literal quote; newlines are kept.
                    loop {
                        match chars.next() {
                            None => return Err((start, "unterminated quoted field".into())),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some(',' | '\n') => at_field_start = false,
                        Some(_) => {
                            return Err((line, "unexpected character after a closing quote".into()))
                        }
                    }
                }
                Some('"') => {
                    return Err((
                        line,
                        "bare \" in an unquoted field (quote the whole field)".into(),
                    ))
                }
                Some(c) => {
                    at_field_start = false;
                    field.push(c);
                }
            }
        }
        if fields.iter().all(|f| f.is_empty()) && fields.len() == 1 {
            continue;
        }
        records.push((start, fields));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn token_file_format() {
        let text = "\u{feff}# token,user,uid,\"group1,group2\"\r\n\
                    \n\
                    t1,alice,1001,\"dev,ops\"\n\
                    t2, bob ,1002\n\
                    \"t,3\",\"carol \"\"c\"\"\",1003,admins,ignored\n\
                    ,nobody,0\n\
                    t5,dave,1005,\"multi\nline\"\n\
                    t6,eve,1006,\"\"";
        let records = parse_token_file(text).unwrap();
        let summary: Vec<_> = records
            .iter()
            .map(|(line, t, u)| {
                (
                    *line,
                    t.as_str(),
                    u.username.as_str(),
                    u.uid.as_str(),
                    u.groups.clone(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                (3, "t1", "alice", "1001", groups(&["dev", "ops"])),
                // Leading spaces are trimmed, trailing ones kept (Go's TrimLeadingSpace).
                (4, "t2", "bob ", "1002", groups(&[])),
                (5, "t,3", "carol \"c\"", "1003", groups(&["admins"])),
                (7, "t5", "dave", "1005", groups(&["multi\nline"])),
                (9, "t6", "eve", "1006", groups(&[])),
            ]
        );
    }

    #[test]
    fn token_file_errors() {
        assert_eq!(parse_token_file("# c\nt1,alice\n").unwrap_err().0, 2);
        assert_eq!(parse_token_file("t1,alice,1,\"dev\n").unwrap_err().0, 1);
        assert_eq!(parse_token_file("t1,al\"ice,1\n").unwrap_err().0, 1);
        assert_eq!(parse_token_file("t1,\"alice\"x,1\n").unwrap_err().0, 1);
        assert!(parse_token_file("").unwrap().is_empty());
    }

    #[test]
    fn token_file_loading() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::pki::ensure(dir.path(), &[]).unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "a,alice,1,\"x,y\"\nb,bob,2\na,alice2,3\n").unwrap();
        let mut authn = Authenticator::new(&pki.ca_cert_pem, Some(&path)).unwrap();
        let user = authn.authenticate(None, Some("Bearer a")).unwrap();
        assert_eq!(user.username, "alice2", "the last duplicate wins");
        assert_eq!(user.uid, "3");
        assert_eq!(user.groups, groups(&[AUTHENTICATED_GROUP]));
        assert_eq!(
            authn
                .authenticate(None, Some("bearer  b "))
                .unwrap()
                .username,
            "bob"
        );
        authn.add_token("b".into(), UserInfo::new("bob2", groups(&["g"])));
        let user = authn.authenticate(None, Some("Bearer b")).unwrap();
        assert_eq!(user.username, "bob2");
        assert_eq!(user.groups, groups(&["g", AUTHENTICATED_GROUP]));
        assert!(format!("{authn:?}").contains("tokens: 2"));

        std::fs::write(&path, "a,alice\n").unwrap();
        let err = Authenticator::new(&pki.ca_cert_pem, Some(&path)).unwrap_err();
        assert!(err.to_string().contains("tokens.csv, line 1"), "{err}");
        let err = Authenticator::new(&pki.ca_cert_pem, Some(&dir.path().join("nope"))).unwrap_err();
        assert!(matches!(err, AuthnConfigError::TokenFileIo { .. }));
        assert!(Authenticator::new("not a pem", None).is_err());
    }

    #[test]
    fn union_of_token_and_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::pki::ensure(dir.path(), &[]).unwrap();
        let mut authn = Authenticator::new(&pki.ca_cert_pem, None).unwrap();
        authn.add_token("secret".into(), UserInfo::new("tok", vec![]));
        let admin = CertificateDer::from_pem_slice(pki.admin_cert_pem.as_bytes()).unwrap();
        let certs = [admin];

        // A valid token wins over the certificate.
        let user = authn
            .authenticate(Some(&certs), Some("Bearer secret"))
            .unwrap();
        assert_eq!(user.username, "tok");
        // A bad token does not spoil a valid certificate.
        let user = authn
            .authenticate(Some(&certs), Some("Bearer wrong"))
            .unwrap();
        assert_eq!(user.username, "system:admin");
        assert_eq!(
            user.groups,
            groups(&["system:masters", AUTHENTICATED_GROUP])
        );
        assert_eq!(user.uid, "");
        // Other schemes and empty tokens are "no token".
        let user = authn
            .authenticate(Some(&certs), Some("Basic Zm9vOmJhcg=="))
            .unwrap();
        assert_eq!(user.username, "system:admin");
        assert_eq!(
            authn.authenticate(None, Some("Bearer ")),
            Err(AuthnError::Anonymous)
        );
        assert_eq!(authn.authenticate(None, None), Err(AuthnError::Anonymous));
        assert_eq!(
            authn.authenticate(Some(&[]), None),
            Err(AuthnError::Anonymous)
        );
        assert_eq!(
            authn.authenticate(None, Some("Bearer wrong")),
            Err(AuthnError::InvalidToken)
        );

        // A certificate from another CA is rejected even if a caller passes it in.
        let other = tempfile::tempdir().unwrap();
        let foreign = crate::pki::ensure(other.path(), &[]).unwrap();
        let der = CertificateDer::from_pem_slice(foreign.admin_cert_pem.as_bytes()).unwrap();
        let err = authn
            .authenticate(Some(std::slice::from_ref(&der)), None)
            .unwrap_err();
        assert!(matches!(err, AuthnError::InvalidCertificate(_)), "{err}");
        assert_eq!(
            authn.authenticate(Some(&[der]), Some("Bearer nope")),
            Err(AuthnError::InvalidToken)
        );

        // A serving certificate is not a client certificate (no clientAuth usage).
        let serving = CertificateDer::from_pem_slice(pki.serving_cert_pem.as_bytes()).unwrap();
        assert!(matches!(
            authn.authenticate(Some(&[serving]), None),
            Err(AuthnError::InvalidCertificate(_))
        ));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn authenticated_group_rules() {
        let user = with_authenticated_group(UserInfo::new("u", groups(&[AUTHENTICATED_GROUP])));
        assert_eq!(user.groups, groups(&[AUTHENTICATED_GROUP]));
        let anon = with_authenticated_group(UserInfo::new(ANONYMOUS_USER, vec![]));
        assert!(anon.groups.is_empty());
    }
}
