//! Per-destination metrics, registered (at zero) when the destination starts.

use std::sync::Arc;

use metrics::{counter, describe_counter, describe_gauge, gauge, Counter, Gauge, Unit};

pub const SENT: &str = "auditrelay_forward_sent_messages_total";
pub const ACKNOWLEDGED: &str = "auditrelay_forward_acknowledged_messages_total";
pub const RETRIED: &str = "auditrelay_forward_retried_messages_total";
pub const DEAD_LETTERED: &str = "auditrelay_forward_dead_lettered_messages_total";
pub const FILTERED: &str = "auditrelay_forward_filtered_messages_total";
pub const FAILURES: &str = "auditrelay_forward_failures_total";
pub const CONFIGURATION_ERRORS: &str = "auditrelay_forward_configuration_errors_total";
pub const LAG: &str = "auditrelay_forward_lag_records";
pub const OLDEST_AGE: &str = "auditrelay_forward_oldest_unforwarded_age_seconds";
pub const CONNECTED: &str = "auditrelay_forward_connected";
pub const CURSOR: &str = "auditrelay_forward_cursor";

pub fn describe() {
    describe_counter!(
        SENT,
        "Records written to the destination, resends included."
    );
    describe_counter!(
        ACKNOWLEDGED,
        "Records the destination acknowledged (RELP rsp, HTTP 2xx, kernel ACK plus settle time)."
    );
    describe_counter!(RETRIED, "Records sent again after a failure.");
    describe_counter!(
        DEAD_LETTERED,
        "Records the destination refused for good, kept in its dead-letter set."
    );
    describe_counter!(FILTERED, "Records the destination's filter left out.");
    describe_counter!(
        FAILURES,
        "Failed connections, requests and writes (each is retried)."
    );
    describe_counter!(
        CONFIGURATION_ERRORS,
        "Answers that show the receiver is set up unlike the destination's configuration (HEC without ackId under ack = true); the records go again."
    );
    describe_gauge!(
        LAG,
        "Committed records the destination has not acknowledged: next seq - 1 - cursor."
    );
    describe_gauge!(
        OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest record sent and not yet acknowledged."
    );
    describe_gauge!(CONNECTED, "1 while the destination is connected.");
    describe_gauge!(
        CURSOR,
        "The destination's committed cursor (highest seq acknowledged)."
    );
}

/// The handles of one destination.
pub struct DestinationMetrics {
    pub sent: Counter,
    pub acknowledged: Counter,
    pub retried: Counter,
    pub dead_lettered: Counter,
    pub filtered: Counter,
    pub failures: Counter,
    pub configuration_errors: Counter,
    pub lag: Gauge,
    pub oldest_age: Gauge,
    pub connected: Gauge,
    pub cursor: Gauge,
}

impl DestinationMetrics {
    pub fn new(name: &str) -> Arc<DestinationMetrics> {
        let l = [("destination", name.to_string())];
        let m = DestinationMetrics {
            sent: counter!(SENT, &l),
            acknowledged: counter!(ACKNOWLEDGED, &l),
            retried: counter!(RETRIED, &l),
            dead_lettered: counter!(DEAD_LETTERED, &l),
            filtered: counter!(FILTERED, &l),
            failures: counter!(FAILURES, &l),
            configuration_errors: counter!(CONFIGURATION_ERRORS, &l),
            lag: gauge!(LAG, &l),
            oldest_age: gauge!(OLDEST_AGE, &l),
            connected: gauge!(CONNECTED, &l),
            cursor: gauge!(CURSOR, &l),
        };
        for c in [
            &m.sent,
            &m.acknowledged,
            &m.retried,
            &m.dead_lettered,
            &m.filtered,
            &m.failures,
            &m.configuration_errors,
        ] {
            c.increment(0);
        }
        for g in [&m.lag, &m.oldest_age, &m.connected, &m.cursor] {
            g.set(0.0);
        }
        Arc::new(m)
    }
}
