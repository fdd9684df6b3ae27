//! Prometheus metrics (OpenMetrics text at `/metrics`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    pub source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabel {
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabel {
    pub action: String,
    pub decision: String,
}

pub struct Metrics {
    registry: Registry,
    /// Policy decisions by action and answer.
    pub decisions: Family<DecisionLabel, Counter>,
    pub received: Family<SourceLabel, Counter>,
    pub accepted: Family<SourceLabel, Counter>,
    pub rejected: Family<SourceLabel, Counter>,
    pub findings_open: Family<SeverityLabel, Gauge>,
    /// From a POST's arrival to its events stored and detection run (findings written).
    pub ingest_seconds: Histogram,
    pub requests: Family<RouteLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("keyward");
        let received = Family::<SourceLabel, Counter>::default();
        let accepted = Family::<SourceLabel, Counter>::default();
        let rejected = Family::<SourceLabel, Counter>::default();
        let findings_open = Family::<SeverityLabel, Gauge>::default();
        let requests = Family::<RouteLabel, Counter>::default();
        let decisions = Family::<DecisionLabel, Counter>::default();
        let ingest_seconds = Histogram::new(exponential_buckets(0.000_5, 2.0, 16));
        registry.register(
            "records_received",
            "Records posted to the ingest endpoints, per source",
            received.clone(),
        );
        registry.register(
            "records_accepted",
            "Records stored, per source",
            accepted.clone(),
        );
        registry.register(
            "records_rejected",
            "Records rejected (kept as dead letters), per source",
            rejected.clone(),
        );
        registry.register(
            "findings_open",
            "Open or acknowledged findings, per severity",
            findings_open.clone(),
        );
        registry.register(
            "ingest_duration_seconds",
            "From a POST's arrival to its events stored and checked by detection",
            ingest_seconds.clone(),
        );
        registry.register(
            "http_requests",
            "API requests by route and status",
            requests.clone(),
        );
        registry.register(
            "policy_decisions",
            "Cedar policy decisions by action and decision (allow, deny)",
            decisions.clone(),
        );
        Metrics {
            registry,
            decisions,
            received,
            accepted,
            rejected,
            findings_open,
            ingest_seconds,
            requests,
        }
    }
}

impl Metrics {
    pub fn policy_decision(&self, action: &str, decision: &str) {
        self.decisions
            .get_or_create(&DecisionLabel {
                action: action.to_owned(),
                decision: decision.to_owned(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
