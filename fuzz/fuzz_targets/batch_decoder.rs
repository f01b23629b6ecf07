//! Any bytes through the tracker's batch decoder and the whole normalisation path: nothing
//! may panic, and whatever is accepted must survive the versioned encoding unchanged.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use protocol::visitor::Salt;
use protocol::wire::{decode_batch, decode_track};
use protocol::{event, normalize, RequestContext};

const NOW: i64 = 1_800_000_000_000;

fuzz_target!(|data: &[u8]| {
    let _ = decode_track(data);
    let Ok(batch) = decode_batch(data) else {
        return;
    };
    let salt = Salt::from_bytes([9; 32]);
    let site = batch.site.clone().unwrap_or_else(|| "default".into());
    let ctx = RequestContext {
        site: &site,
        received_at: NOW,
        sent_at: batch.sent_at,
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"),
        salt: &salt,
    };
    for wire in batch.events.into_iter().flatten() {
        if let Ok(Some(e)) = normalize(wire, &ctx) {
            assert_eq!(event::decode(&event::encode(&e).expect("encode")).as_ref(), Ok(&e));
        }
    }
});
