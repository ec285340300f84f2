//! Turning a request body into a validated report: content negotiation, the size caps before
//! and after decompression, JSON parsing and schema validation, each failure with the status
//! and message the client needs. Pure functions of headers and bytes, tested without a server.

use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use sha2::{Digest, Sha256};
use vigil_shared::Report;
use vigil_shared::codec::{self, CodecError};

use crate::http::Limits;
use crate::http::error::{ApiError, Detail};
use crate::store::storage_limits;

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Identity,
}

/// Reads `Content-Encoding` (absent means identity). One encoding only: a stacked
/// `gzip, gzip` would multiply the decompression work for nothing.
pub fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let mut values = headers.get_all(CONTENT_ENCODING).iter();
    let Some(value) = values.next() else {
        return Ok(Encoding::Identity);
    };
    let refuse = |shown: &str| {
        ApiError::unsupported_media(format!(
            "unsupported Content-Encoding {shown:?}; send the report as gzip (preferred) or \
             identity"
        ))
    };
    if values.next().is_some() {
        return Err(refuse("(several headers)"));
    }
    let text = value.to_str().map_err(|_| refuse("(not text)"))?.trim();
    match text.to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "identity" | "" => Ok(Encoding::Identity),
        _ => Err(refuse(text)),
    }
}

/// Refuses an explicit `Content-Type` other than JSON; no header is accepted (the body is
/// parsed as JSON regardless).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("(not text)");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" {
        Ok(())
    } else {
        Err(ApiError::new(
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported Content-Type {text:?}; reports are JSON (`application/json`), \
                 optionally with `Content-Encoding: gzip`"
            ),
        ))
    }
}

/// The 413 for a body over the wire cap.
pub fn body_too_large(limit: usize) -> ApiError {
    ApiError::too_large(format!(
        "request body is larger than {limit} bytes (server.max_body_bytes); send fewer results \
         per report or ask the operator to raise the limit"
    ))
}

/// Refuses early, from `Content-Length`, a body that cannot fit.
pub fn check_declared_length(headers: &HeaderMap, limits: &Limits) -> Result<(), ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(n) if n > limits.max_body_bytes as u64 => Err(body_too_large(limits.max_body_bytes)),
        _ => Ok(()),
    }
}

/// A decoded, validated report and the SHA-256 of its JSON text.
#[derive(Debug)]
pub struct Decoded {
    pub report: Report,
    pub body_sha256: [u8; 32],
    /// Size of the JSON text.
    pub json_bytes: usize,
    /// The JSON text itself: the bytes the agent signed.
    pub json: Vec<u8>,
}

/// Decompresses (under the cap), parses and validates a body. CPU-bound on large bodies: call
/// it from `spawn_blocking`.
pub fn decode(encoding: Encoding, body: &[u8], limits: &Limits) -> Result<Decoded, ApiError> {
    let inflated;
    let json: &[u8] = match encoding {
        Encoding::Identity => body,
        Encoding::Gzip => {
            inflated =
                codec::gunzip_limited(body, limits.max_decompressed_bytes).map_err(
                    |e| match e {
                        CodecError::TooLarge { limit } => ApiError::too_large(format!(
                            "report is larger than {limit} bytes once decompressed \
                         (server.max_decompressed_bytes); send fewer results per report"
                        )),
                        other => ApiError::bad_request(format!(
                            "{other}; the body must be one gzip member holding the JSON report"
                        )),
                    },
                )?;
            &inflated
        }
    };
    let report = codec::decode_json(json).map_err(|e| match e {
        CodecError::Json(e) => {
            let message = e.to_string();
            ApiError::bad_request(format!(
                "report is not valid JSON for schema vigil.report.v1: {message}"
            ))
            .with_details(vec![Detail {
                path: None,
                message,
                line: Some(e.line()),
                column: Some(e.column()),
            }])
        }
        other => ApiError::bad_request(other.to_string()),
    })?;
    let mut problems: Vec<Detail> = match report.validate() {
        Ok(()) => Vec::new(),
        Err(errors) => errors.into_iter().map(Detail::from).collect(),
    };
    problems.extend(storage_limits(&report).into_iter().map(Detail::from));
    if !problems.is_empty() {
        let n = problems.len();
        return Err(ApiError::unprocessable(
            format!(
                "report failed validation ({n} problem{}); fix the fields listed in details",
                if n == 1 { "" } else { "s" }
            ),
            problems,
        ));
    }
    Ok(Decoded {
        report,
        body_sha256: Sha256::digest(json).into(),
        json_bytes: json.len(),
        json: json.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use axum::http::{HeaderValue, StatusCode};

    const LIMITS: Limits = Limits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
    };

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn encodings_are_negotiated_strictly() {
        assert_eq!(content_encoding(&headers(&[])).unwrap(), Encoding::Identity);
        for (value, expected) in [
            ("gzip", Encoding::Gzip),
            ("GZip ", Encoding::Gzip),
            ("x-gzip", Encoding::Gzip),
            ("identity", Encoding::Identity),
        ] {
            let map = headers(&[("content-encoding", value)]);
            assert_eq!(content_encoding(&map).unwrap(), expected, "{value}");
        }
        for value in ["br", "deflate", "zstd", "gzip, gzip"] {
            let err = content_encoding(&headers(&[("content-encoding", value)])).unwrap_err();
            assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{value}");
            assert!(err.message.contains("gzip"), "{}", err.message);
        }
        let twice = headers(&[("content-encoding", "gzip"), ("content-encoding", "gzip")]);
        assert!(content_encoding(&twice).is_err());
    }

    #[test]
    fn content_types_other_than_json_are_refused() {
        assert!(check_content_type(&headers(&[])).is_ok());
        assert!(check_content_type(&headers(&[("content-type", "application/json")])).is_ok());
        assert!(
            check_content_type(&headers(&[(
                "content-type",
                "Application/JSON; charset=utf-8"
            )]))
            .is_ok()
        );
        let err = check_content_type(&headers(&[("content-type", "text/plain")])).unwrap_err();
        assert_eq!(err.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }

    #[test]
    fn declared_lengths_over_the_cap_are_refused_before_reading() {
        let ok = headers(&[("content-length", "1048576")]);
        assert!(check_declared_length(&ok, &LIMITS).is_ok());
        let big = headers(&[("content-length", "1048577")]);
        let err = check_declared_length(&big, &LIMITS).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            err.message.contains("server.max_body_bytes"),
            "{}",
            err.message
        );
    }

    #[test]
    fn gzip_and_identity_bodies_decode_to_the_same_report() {
        let report = testutil::report("web-01", "m1", 1);
        let json = serde_json::to_vec(&report).unwrap();
        let packed = codec::gzip(&json).unwrap();
        let a = decode(Encoding::Identity, &json, &LIMITS).unwrap();
        let b = decode(Encoding::Gzip, &packed, &LIMITS).unwrap();
        assert_eq!(a.report, report);
        assert_eq!(b.report, report);
        assert_eq!(a.body_sha256, b.body_sha256);
        assert_eq!(a.json_bytes, json.len());
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_cap() {
        // 64 MiB of spaces (valid JSON whitespace) packs into about 64 KiB.
        let bomb = codec::gzip(&vec![b' '; 64 << 20]).unwrap();
        assert!(bomb.len() < LIMITS.max_body_bytes);
        let err = decode(Encoding::Gzip, &bomb, &LIMITS).unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(
            err.message.contains("server.max_decompressed_bytes"),
            "{}",
            err.message
        );
    }

    #[test]
    fn broken_gzip_is_a_bad_request() {
        let err = decode(Encoding::Gzip, b"{\"schema\":1}", &LIMITS).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("not valid gzip"), "{}", err.message);
        // Truncated gzip.
        let packed =
            codec::gzip(&serde_json::to_vec(&testutil::report("a", "m", 1)).unwrap()).unwrap();
        let err = decode(Encoding::Gzip, &packed[..packed.len() / 2], &LIMITS).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn json_errors_carry_serde_positions() {
        let err = decode(
            Encoding::Identity,
            b"{\n  \"schema\": \"vigil.report.v1\",\n  oops",
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert_eq!(err.details[0].line, Some(3));
        assert_eq!(err.details[0].column, Some(3));
        assert!(err.message.contains("line 3 column 3"), "{}", err.message);

        let mut value = serde_json::to_value(testutil::report("a", "m", 1)).unwrap();
        value.as_object_mut().unwrap().remove("seq");
        let err = decode(
            Encoding::Identity,
            &serde_json::to_vec(&value).unwrap(),
            &LIMITS,
        )
        .unwrap_err();
        assert!(
            err.message.contains("missing field `seq`"),
            "{}",
            err.message
        );

        for junk in [&b""[..], b"\xff\xfe\x00binary", b"[]", b"null"] {
            let err = decode(Encoding::Identity, junk, &LIMITS).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
        }
    }

    #[test]
    fn validation_problems_are_all_listed_with_paths() {
        let mut report = testutil::report("a", "m", 1);
        report.seq = 0;
        report.batch_id = "not-a-uuid".into();
        report.results[1].controls.push("A.99".into());
        report.results[2].observed_at =
            chrono::DateTime::parse_from_rfc3339("2300-01-01T00:00:00Z")
                .unwrap()
                .with_timezone(&chrono::Utc);
        let err = decode(
            Encoding::Identity,
            &serde_json::to_vec(&report).unwrap(),
            &LIMITS,
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        let paths: Vec<&str> = err
            .details
            .iter()
            .filter_map(|d| d.path.as_deref())
            .collect();
        assert_eq!(
            paths,
            [
                "batch_id",
                "seq",
                "results[1].controls[2]",
                "results[2].observed_at"
            ]
        );
        assert!(err.message.contains("4 problems"), "{}", err.message);
    }
}
