//! The `X-Vigil-Signature` header an agent sends with every report, and the public key it
//! registers (`PUT /api/v1/agent/key`): both are parsed before anything is trusted. A header
//! that parses must print back to a value that parses to the same header, and checking it
//! against any body must answer (never panic).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_shared::signing::{SignatureHeader, parse_public_key, verify};

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let (head, body) = data.split_at(split);
    let Ok(text) = std::str::from_utf8(head) else {
        return;
    };
    if let Ok(key) = parse_public_key(text) {
        let again = parse_public_key(&vigil_shared::signing::public_key_hex(&key))
            .expect("a printed key parses");
        assert_eq!(again, key);
    }
    if let Ok(header) = SignatureHeader::parse(text) {
        let again = SignatureHeader::parse(&header.to_value()).expect("a printed header parses");
        assert_eq!(again.key, header.key);
        assert_eq!(again.signature, header.signature);
        let _ = verify(&header.key, body, &header.signature);
    }
});
