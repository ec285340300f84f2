//! The collector's report decoder (POST /api/v1/reports): gzip under the size caps, JSON, and
//! `Report::validate`. The first byte chooses the encoding; the rest is the body. A report it
//! accepts must survive being encoded again and decoded (what the store keeps is what came).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_collector::http::Limits;
use vigil_collector::ingest::decode::{Encoding, decode};

const LIMITS: Limits = Limits {
    max_body_bytes: 1 << 20,
    max_decompressed_bytes: 4 << 20,
};

fuzz_target!(|data: &[u8]| {
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let encoding = if first & 1 == 1 {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    if let Ok(decoded) = decode(encoding, body, &LIMITS) {
        let again = vigil_shared::codec::encode_gzip(&decoded.report).expect("encodes");
        let back =
            decode(Encoding::Gzip, &again, &LIMITS).expect("an accepted report decodes again");
        assert_eq!(
            back.report, decoded.report,
            "report changed through a round trip"
        );
    }
});
