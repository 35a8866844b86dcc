//! The bench's own loopback share services: they answer as fast as the protocol allows so that the
//! figures are the clients', not a server's (the real server costs 4-15× more per request:
//! `cargo bench --bench service_rtt`, docs/benchmarks.md). The tests use the real server.

pub mod legacy;
pub mod next;
