//! Any bytes through the decoders of normalised events (the JSON document of queues and
//! stores, the compact form of standalone's journal): what cannot be read must be an error
//! (for the dead letters), never a panic; what can is written back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = protocol::event::decode(data) {
        let again = protocol::event::decode(&protocol::event::encode(&e).expect("encode"));
        assert_eq!(again.as_ref(), Ok(&e));
    }
    let mut rest = data;
    if let Ok(e) = protocol::compact::decode(&mut rest) {
        let mut out = Vec::new();
        protocol::compact::encode_into(&mut out, &e);
        assert_eq!(protocol::compact::decode(&mut &out[..]).as_ref(), Ok(&e));
    }
});
