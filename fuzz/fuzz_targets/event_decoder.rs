//! Any bytes through the queue/store decoder of normalised events: a message that cannot be
//! read must be an error (for the dead-letter topic), never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = protocol::event::decode(data) {
        let again = protocol::event::decode(&protocol::event::encode(&e).expect("encode"));
        assert_eq!(again.as_ref(), Ok(&e));
    }
});
