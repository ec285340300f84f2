//! Reports on the wire: JSON, gzip-compressed, with a cap on the decompressed size so that a
//! small compressed body cannot expand into an arbitrarily large one (a "zip bomb").

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::report::Report;

/// Default cap on a compressed report body.
pub const DEFAULT_MAX_COMPRESSED_BYTES: usize = 8 * 1024 * 1024;
/// Default cap on a report once decompressed.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("report body is larger than {limit} bytes once decompressed")]
    TooLarge { limit: usize },
    #[error("report body is not valid gzip: {0}")]
    Gzip(std::io::Error),
    #[error("report is not valid JSON for schema vigil.report.v1: {0}")]
    Json(#[from] serde_json::Error),
    #[error("could not encode report: {0}")]
    Encode(std::io::Error),
}

/// Serialises and gzips a report for the wire.
pub fn encode_gzip(report: &Report) -> Result<Vec<u8>, CodecError> {
    let json = serde_json::to_vec(report)?;
    gzip(&json).map_err(CodecError::Encode)
}

/// Gzips bytes at the default level.
pub fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(bytes.len() / 4), Compression::default());
    encoder.write_all(bytes)?;
    encoder.finish()
}

/// Gunzips `body`, refusing to produce more than `limit` bytes.
pub fn gunzip_limited(body: &[u8], limit: usize) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let mut decoder = GzDecoder::new(body).take(limit as u64 + 1);
    decoder.read_to_end(&mut out).map_err(CodecError::Gzip)?;
    if out.len() > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(out)
}

/// Parses a JSON report body (already decompressed). Schema checks beyond serde are
/// [`Report::validate`]'s job.
pub fn decode_json(json: &[u8]) -> Result<Report, CodecError> {
    Ok(serde_json::from_slice(json)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gunzip_refuses_to_expand_past_the_limit() {
        let zeros = vec![0u8; 1_000_000];
        let packed = gzip(&zeros).unwrap();
        assert!(packed.len() < 5_000);
        assert_eq!(gunzip_limited(&packed, 1_000_000).unwrap().len(), 1_000_000);
        assert!(matches!(
            gunzip_limited(&packed, 999_999),
            Err(CodecError::TooLarge { limit: 999_999 })
        ));
    }

    #[test]
    fn garbage_is_a_gzip_error() {
        assert!(matches!(
            gunzip_limited(b"not gzip at all", 100),
            Err(CodecError::Gzip(_))
        ));
    }
}
