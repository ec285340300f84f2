//! Delivery signatures: `Vigil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
//! "<t>.<body>")>`, as documented in `collector/WEBHOOKS.md`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::config::Secret;

pub const SIGNATURE_HEADER: &str = "Vigil-Signature";
pub const IDEMPOTENCY_HEADER: &str = "Vigil-Idempotency-Key";
pub const EVENT_KIND_HEADER: &str = "Vigil-Event-Kind";

/// The hex HMAC-SHA256 of `"<timestamp>.<body>"`.
pub fn hmac_hex(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length: this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The `Vigil-Signature` header value.
pub fn signature_header(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", hmac_hex(secret, timestamp, body))
}

/// Checks a `Vigil-Signature` header against the body (what a receiver does; used by the
/// tests): constant-time comparison, timestamp within `tolerance_secs` of `now`.
pub fn verify(secret: &Secret, header: &str, body: &[u8], now: i64, tolerance_secs: i64) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v),
            _ => {}
        }
    }
    let Some(t) = timestamp else {
        return false;
    };
    if (now - t).abs() > tolerance_secs {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose()) else {
        return false;
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    signatures
        .iter()
        .any(|s| hex::decode(s).is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_openssl() {
        // printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_0123456789abcdef'
        let secret = Secret::new("whsec_0123456789abcdef");
        let header = signature_header(&secret, 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1700000000,v1=9f5e37cdc7ea587c7c02062d93283cad000d66a831b2a1676418696db47ed6c2"
        );
        assert!(verify(&secret, &header, br#"{"a":1}"#, 1_700_000_010, 300));
    }

    #[test]
    fn tampering_a_byte_the_time_or_the_key_fails() {
        let secret = Secret::new("whsec_0123456789abcdef");
        let body = br#"{"id":"nc/1/0"}"#;
        let header = signature_header(&secret, 1_700_000_000, body);
        assert!(verify(&secret, &header, body, 1_700_000_000, 300));
        assert!(!verify(
            &secret,
            &header,
            br#"{"id":"nc/1/1"}"#,
            1_700_000_000,
            300
        ));
        assert!(
            !verify(&secret, &header, body, 1_700_000_301, 300),
            "too old"
        );
        assert!(!verify(
            &Secret::new("another-key-0123456"),
            &header,
            body,
            1_700_000_000,
            300
        ));
        let shifted = header.replace("t=1700000000", "t=1700000001");
        assert!(!verify(&secret, &shifted, body, 1_700_000_000, 300));
        assert!(!verify(&secret, "v1=00", body, 1_700_000_000, 300));
    }
}
