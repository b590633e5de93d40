//! The end-to-end tests: the real `stratus` binary, started as a server and
//! driven over HTTP and through its CLI, against real brokers.
//!
//! One test binary with a module per area, rather than one binary per file:
//! each binary is compiled with the harness and linked again, and cargo
//! runs test binaries one after another, so a test that waits on a timeout held up
//! every other file. Here all of them share the test threads, and a long
//! wait overlaps the rest. (`cargo test -p stratus --test end_to_end
//! containment_` runs one area.)

#![allow(clippy::unwrap_used)]

mod common;

// libtest starts tests in the order of their names, so the slowest areas
// are named to start first: the API contract (a fuzzer's run of about half a minute),
// and authoring, which builds functions with three guest toolchains and
// compiles the large Python and JavaScript components.
mod api_contract;
mod authoring;

mod bad_input;
mod capabilities;
mod cluster;
mod console;
mod containment_brokers;
mod containment_connections;
mod containment_deploy;
mod containment_disk;
mod containment_guests;
mod containment_keyvalue;
mod containment_memory;
mod containment_messages;
mod containment_outbound;
mod containment_queues;
mod containment_quotas;
mod crash;
mod events;
mod examples_events;
mod examples_shop;
mod first_hour;
mod hints;
mod lifecycle;
mod metering;
mod metrics_format;
mod metrics_functions;
mod node_log;
mod portability;

mod services;
mod serving;
mod svc_calls;
mod tenancy;
mod tls;
mod traces;
mod triggers;
