//! X.509 certificates from PEM or DER bytes, reduced to what the check judges: names,
//! validity, key type and size, signature algorithm, CA flag and self-signature.

use chrono::{DateTime, Utc};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

/// One certificate's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// `RSA`, `EC`, `DSA`, `Ed25519`, `Ed448` or the algorithm OID.
    pub key_type: String,
    /// Modulus bits for RSA and DSA, field size for EC.
    pub key_bits: usize,
    /// Named curve for EC keys (`P-256`) or the curve OID.
    pub curve: Option<String>,
    /// `sha256WithRSAEncryption`, `ecdsa-with-SHA256`… or the OID.
    pub signature: String,
    pub self_signed: bool,
    pub ca: bool,
}

impl CertInfo {
    /// "RSA 2048", "EC P-256".
    pub fn key_text(&self) -> String {
        match &self.curve {
            Some(c) => format!("{} {c}", self.key_type),
            None if self.key_bits > 0 => format!("{} {}", self.key_type, self.key_bits),
            None => self.key_type.clone(),
        }
    }
}

/// Why bytes gave no certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate {index}: {message}")]
    Parse { index: usize, message: String },
}

const PEM_CERT_LABELS: [&str; 3] = ["CERTIFICATE", "TRUSTED CERTIFICATE", "X509 CERTIFICATE"];

/// Every certificate in a file: PEM blocks labelled as certificates (other blocks, such as
/// private keys, are skipped), else the whole file as one DER certificate when it parses as
/// one. Returns the parsed ones and the problems of the blocks that did not parse.
pub fn parse_certificates(bytes: &[u8]) -> (Vec<CertInfo>, Vec<CertError>) {
    let mut certs = Vec::new();
    let mut problems = Vec::new();
    if memchr::memmem::find(bytes, b"-----BEGIN").is_some() {
        for (index, pem) in x509_parser::pem::Pem::iter_from_buffer(bytes).enumerate() {
            let pem = match pem {
                Ok(p) => p,
                // A broken armour ends the scan; what came before is kept.
                Err(e) => {
                    problems.push(CertError::Parse {
                        index,
                        message: format!("PEM: {e}"),
                    });
                    break;
                }
            };
            if !PEM_CERT_LABELS.contains(&pem.label.as_str()) {
                continue;
            }
            match X509Certificate::from_der(&pem.contents) {
                Ok((_, cert)) => certs.push(info(&cert)),
                Err(e) => problems.push(CertError::Parse {
                    index,
                    message: e.to_string(),
                }),
            }
        }
        return (certs, problems);
    }
    if let Ok((_, cert)) = X509Certificate::from_der(bytes) {
        certs.push(info(&cert));
    }
    (certs, problems)
}

fn to_utc(t: &x509_parser::time::ASN1Time) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or_default()
}

/// Significant bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let rest = &bytes[start..];
    match rest.first() {
        Some(first) => (rest.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

fn curve_name(oid: &str) -> String {
    match oid {
        "1.2.840.10045.3.1.7" => "P-256",
        "1.3.132.0.34" => "P-384",
        "1.3.132.0.35" => "P-521",
        "1.2.840.10045.3.1.1" => "P-192",
        "1.3.132.0.33" => "P-224",
        "1.3.132.0.10" => "secp256k1",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        other => return other.to_string(),
    }
    .to_string()
}

/// Names of signature algorithms by OID (RFC 3279, 4055, 5758, 8410).
fn signature_name(oid: &str) -> String {
    match oid {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.3" => "md4WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSASignature",
        "1.2.840.113549.1.1.10" => "rsassaPss",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.2.840.10040.4.3" => "dsa-with-sha1",
        "2.16.840.1.101.3.4.3.1" => "dsa-with-sha224",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-sha256",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        other => return other.to_string(),
    }
    .to_string()
}

/// True for signature algorithms broken for certificate signatures (MD2, MD4, MD5, SHA-1).
pub fn is_weak_signature(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("md2") || n.starts_with("md4") || n.starts_with("md5") || n.contains("sha1")
}

fn info(cert: &X509Certificate<'_>) -> CertInfo {
    let spki = cert.public_key();
    let alg = spki.algorithm.algorithm.to_id_string();
    let (key_type, mut key_bits, curve) = match alg.as_str() {
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => ("RSA".to_string(), 0, None),
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| curve_name(&o.to_id_string()));
            ("EC".to_string(), 0, curve)
        }
        "1.2.840.10040.4.1" => ("DSA".to_string(), 0, None),
        "1.3.101.112" => ("Ed25519".to_string(), 256, None),
        "1.3.101.113" => ("Ed448".to_string(), 456, None),
        other => (other.to_string(), 0, None),
    };
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => key_bits = bit_length(rsa.modulus),
        Ok(PublicKey::EC(ec)) => key_bits = ec.key_size(),
        Ok(PublicKey::DSA(y)) => key_bits = bit_length(y),
        _ => {}
    }
    CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: to_utc(&cert.validity().not_before),
        not_after: to_utc(&cert.validity().not_after),
        key_type,
        key_bits,
        curve,
        signature: signature_name(&cert.signature_algorithm.algorithm.to_id_string()),
        self_signed: cert.subject().as_raw() == cert.issuer().as_raw(),
        ca: cert.is_ca(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures/hosts")
                .join(path),
        )
        .unwrap()
    }

    #[test]
    fn a_chain_with_its_intermediate() {
        let (certs, problems) = parse_certificates(&fixture(
            "healthy/etc/letsencrypt/live/www.example.org/fullchain.pem",
        ));
        assert!(problems.is_empty());
        assert_eq!(certs.len(), 2);
        let leaf = &certs[0];
        assert_eq!(leaf.subject, "C=NL, O=Example Org, CN=www.example.org");
        assert_eq!(leaf.issuer, "C=NL, O=Example Org, CN=Example Issuing CA R2");
        assert_eq!(leaf.not_after.to_rfc3339(), "2026-07-14T00:00:00+00:00");
        assert_eq!(leaf.key_text(), "EC P-256");
        assert_eq!(leaf.key_bits, 256);
        assert_eq!(leaf.signature, "sha256WithRSAEncryption");
        assert!(!leaf.self_signed && !leaf.ca);
        assert_eq!(certs[1].key_text(), "RSA 2048");
        assert!(certs[1].ca);
    }

    #[test]
    fn keys_beside_certificates_are_skipped() {
        let (certs, problems) =
            parse_certificates(&fixture("misconfigured/etc/ssl/private/legacy.pem"));
        assert!(problems.is_empty());
        assert_eq!(certs.len(), 1);
        assert_eq!(certs[0].key_text(), "RSA 1024");
        assert_eq!(certs[0].signature, "sha1WithRSAEncryption");
        assert!(is_weak_signature(&certs[0].signature));
        assert!(certs[0].self_signed);
        let (certs, _) = parse_certificates(&fixture("misconfigured/etc/nginx/tls/shop.key"));
        assert!(certs.is_empty());
    }

    #[test]
    fn der_files_parse_and_junk_does_not() {
        let pem = fixture("healthy/etc/ssl/private/internal-api.pem");
        let (certs, _) = parse_certificates(&pem);
        assert_eq!(certs[0].key_text(), "RSA 3072");
        let der = x509_parser::pem::Pem::iter_from_buffer(&pem)
            .next()
            .unwrap()
            .unwrap()
            .contents;
        let (certs, _) = parse_certificates(&der);
        assert_eq!(certs.len(), 1);
        for junk in [
            &b""[..],
            b"\x30\x82\xff\xff",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            b"hello",
        ] {
            let (certs, _) = parse_certificates(junk);
            assert!(certs.is_empty());
        }
        let (_, problems) =
            parse_certificates(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(bit_length(&[0x7f, 0xff]), 15);
        assert_eq!(bit_length(&[]), 0);
        assert!(!is_weak_signature("sha256WithRSAEncryption"));
        assert!(is_weak_signature("md5WithRSAEncryption"));
        assert!(is_weak_signature("ecdsa-with-SHA1"));
    }
}
