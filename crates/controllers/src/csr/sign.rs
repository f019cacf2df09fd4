//! Signing approved requests with the cluster CA (upstream's csrsigning
//! controller for the `kube-apiserver-client*` signers).

use std::fmt;
use std::time::Duration;

use rcgen::{
    CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use time::OffsetDateTime;
use x509_parser::prelude::FromDer;

/// Issued certificates start this far in the past, so a peer whose clock
/// is a little behind accepts them at once (upstream backdates 5 minutes).
/// Short certificates are backdated by a tenth of their life at most:
/// renewal is due at 70-90 % of `notAfter - notBefore`, which a full
/// backdate would put in the past for a certificate of a few minutes.
const BACKDATE: time::Duration = time::Duration::minutes(5);

/// The CA that signs, and the longest certificate it issues
/// (`--cluster-signing-duration`).
pub struct Signer {
    ca_cert_pem: String,
    ca_key: KeyPair,
    ca_not_after: OffsetDateTime,
    /// The longest validity handed out; a request's `expirationSeconds`
    /// may only shorten it.
    pub max_duration: Duration,
}

impl fmt::Debug for Signer {
    /// The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("max_duration", &self.max_duration)
            .finish_non_exhaustive()
    }
}

impl Clone for Signer {
    fn clone(&self) -> Self {
        Signer {
            ca_cert_pem: self.ca_cert_pem.clone(),
            ca_key: KeyPair::from_pem(&self.ca_key.serialize_pem())
                .expect("a key pair re-reads its own PEM"),
            ca_not_after: self.ca_not_after,
            max_duration: self.max_duration,
        }
    }
}

impl Signer {
    /// A signer from the CA's certificate and key (PEM).
    pub fn new(
        ca_cert_pem: &str,
        ca_key_pem: &str,
        max_duration: Duration,
    ) -> anyhow::Result<Signer> {
        let ca_key = KeyPair::from_pem(ca_key_pem)
            .map_err(|e| anyhow::anyhow!("the signing key is not a usable PEM key: {e}"))?;
        let (_, block) = x509_parser::pem::parse_x509_pem(ca_cert_pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("the signing certificate is not PEM: {e}"))?;
        let cert = block
            .parse_x509()
            .map_err(|e| anyhow::anyhow!("the signing certificate does not parse: {e}"))?;
        if cert.public_key().subject_public_key.data.as_ref() != ca_key.public_key_raw() {
            anyhow::bail!("the signing key does not belong to the signing certificate");
        }
        let ca_not_after =
            OffsetDateTime::from_unix_timestamp(cert.validity().not_after.timestamp())?;
        Ok(Signer {
            ca_cert_pem: ca_cert_pem.to_string(),
            ca_key,
            ca_not_after,
            max_duration,
        })
    }

    /// Signs a request (DER) as a client certificate: the request's
    /// subject, no alternative names, key usage digital signature (plus key
    /// encipherment when asked), extended usage client auth. Valid for
    /// `expiration_seconds` (when given) or the maximum, whichever is
    /// shorter, and never past the CA. Returns the certificate as PEM.
    pub fn sign_client(
        &self,
        request_der: &[u8],
        usages: &[&str],
        expiration_seconds: Option<i64>,
        now: OffsetDateTime,
    ) -> anyhow::Result<String> {
        let mut csr = CertificateSigningRequestParams::from_der(&request_der.into())
            .map_err(|e| anyhow::anyhow!("cannot read the request: {e}"))?;
        let mut ttl = time::Duration::try_from(self.max_duration)?;
        if let Some(secs) = expiration_seconds.filter(|s| *s > 0) {
            ttl = ttl.min(time::Duration::seconds(secs));
        }
        let p = &mut csr.params;
        p.not_before = now - BACKDATE.min(ttl / 10);
        p.not_after = (now + ttl).min(self.ca_not_after);
        p.serial_number = Some(SerialNumber::from_slice(
            &rand::random::<[u8; 16]>().map(|b| b & 0x7f),
        ));
        p.is_ca = IsCa::ExplicitNoCa;
        p.subject_alt_names.clear();
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if usages.contains(&"key encipherment") {
            p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_ca_cert_pem(&self.ca_cert_pem, &self.ca_key)
            .map_err(|e| anyhow::anyhow!("cannot use the CA: {e}"))?;
        let cert = csr
            .signed_by(&issuer)
            .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
        // Sanity: what we hand out parses.
        x509_parser::certificate::X509Certificate::from_der(cert.der())
            .map_err(|e| anyhow::anyhow!("signed an unreadable certificate: {e}"))?;
        Ok(cert.pem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "test-ca");
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = p.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn request(cn: &str) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["evil.example.com".into()]).unwrap();
        p.distinguished_name.push(rcgen::DnType::CommonName, cn);
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:nodes");
        p.serialize_request(&key).unwrap().der().to_vec()
    }

    #[test]
    fn signs_client_certificates_the_ca_verifies() {
        let (ca_pem, ca_key) = ca();
        let signer = Signer::new(&ca_pem, &ca_key, Duration::from_secs(3600)).unwrap();
        let now = OffsetDateTime::now_utc();
        let pem = signer
            .sign_client(
                &request("system:node:a"),
                &["digital signature", "client auth"],
                Some(1200),
                now,
            )
            .unwrap();
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let cert = block.parse_x509().unwrap();
        let cn = cert
            .subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(cn, "system:node:a");
        let o = cert
            .subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap();
        assert_eq!(o, "system:nodes");
        // expirationSeconds (20 min) is shorter than the maximum (1 h).
        let life = cert.validity().not_after.timestamp() - now.unix_timestamp();
        assert!((1195..=1200).contains(&life), "{life}");
        // The SAN the request asked for is not granted.
        assert!(cert.subject_alternative_name().unwrap().is_none());
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        // It verifies against the CA.
        let (_, ca_block) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).unwrap();
        let ca_cert = ca_block.parse_x509().unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        // The maximum wins over a longer request; serials differ.
        let pem2 = signer
            .sign_client(
                &request("system:node:a"),
                &["digital signature", "client auth"],
                Some(86400),
                now,
            )
            .unwrap();
        let (_, b2) = x509_parser::pem::parse_x509_pem(pem2.as_bytes()).unwrap();
        let c2 = b2.parse_x509().unwrap();
        assert_eq!(
            c2.validity().not_after.timestamp() - now.unix_timestamp(),
            3600
        );
        assert_ne!(c2.raw_serial(), cert.raw_serial());
    }

    #[test]
    fn refuses_a_key_of_another_ca() {
        let (ca_pem, _) = ca();
        let (_, other_key) = ca();
        assert!(Signer::new(&ca_pem, &other_key, Duration::from_secs(60)).is_err());
    }
}
