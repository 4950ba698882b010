//! The embedded DNS server's parser on arbitrary datagrams (any container on a user
//! network can send them): `parse_question`, then the answer built from it, whose
//! question section must parse back to the same question.
#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;
use skiff_daemon::network::dns::{answer, parse_question};

fuzz_target!(|data: &[u8]| {
    let Some(q) = parse_question(data) else {
        return;
    };
    assert!(q.end <= data.len(), "question ends past the message");
    let addrs = [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)];
    let reply = answer(data, &q, &addrs);
    let again = parse_question(&reply).expect("an answer's question parses");
    assert_eq!(again.qtype, q.qtype);
    assert_eq!(again.qclass, q.qclass);
    // Label bytes are lower-cased lossily; the name is stable once parsed.
    assert_eq!(again.name, q.name);
});
