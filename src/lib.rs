//! auditrelay: a syslog relay for centralized audit logging.
//!
//! This library holds the pieces the `auditrelay` binary is made of, so that integration tests
//! and benchmarks can drive them directly. Parsing lives in the `auditrelay-parsers` crate.
// Unsafe code is denied everywhere but in `forward::tcp_ack`, one documented ioctl.
#![deny(unsafe_code)]

pub mod accept;
pub mod config;
pub mod descriptors;
pub mod disk_watermark;
pub mod dlq;
pub mod file_modes;
pub mod forward;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod ops_client;
pub mod relay;
pub mod replay;
pub mod replication;
pub mod shutdown;
pub mod source_match;
pub mod store;
pub mod write_path;
