//! The gateway's Prometheus series.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::limits::ShedReason;

/// Series the gateway updates.
#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    /// `gateway_requests_total{route,status}`.
    pub requests: IntCounterVec,
    /// `matching_shed_total{reason}`.
    pub shed: IntCounterVec,
    /// `matching_command_latency_seconds{mode}`: intake to answer.
    pub latency: HistogramVec,
    /// `gateway_ws_clients`.
    pub ws_clients: IntGauge,
    /// `gateway_ws_disconnects_total{reason}`.
    pub ws_disconnects: IntCounterVec,
    /// `gateway_limit{name}`: every configured bound, exported.
    pub limits: IntGaugeVec,
    /// `gateway_in_flight{kind}`: commands between intake and answer.
    pub in_flight: IntGaugeVec,
}

impl GatewayMetrics {
    /// Creates and registers the series.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let m = GatewayMetrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "gateway_requests_total",
                    "HTTP requests by route and status.",
                ),
                &["route", "status"],
            )?,
            shed: IntCounterVec::new(
                Opts::new(
                    "matching_shed_total",
                    "Commands turned away before the log.",
                ),
                &["reason"],
            )?,
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "matching_command_latency_seconds",
                    "Time from intake to the answer, by response mode.",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0,
                ]),
                &["mode"],
            )?,
            ws_clients: IntGauge::new("gateway_ws_clients", "Connected WebSocket clients.")?,
            ws_disconnects: IntCounterVec::new(
                Opts::new(
                    "gateway_ws_disconnects_total",
                    "WebSocket disconnects by reason.",
                ),
                &["reason"],
            )?,
            limits: IntGaugeVec::new(
                Opts::new("gateway_limit", "Configured bounds of the gateway."),
                &["name"],
            )?,
            in_flight: IntGaugeVec::new(
                Opts::new("gateway_in_flight", "Commands between intake and answer."),
                &["kind"],
            )?,
        };
        for r in ShedReason::ALL {
            m.shed.with_label_values(&[r.as_str()]);
        }
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.shed.clone()))?;
        registry.register(Box::new(m.latency.clone()))?;
        registry.register(Box::new(m.ws_clients.clone()))?;
        registry.register(Box::new(m.ws_disconnects.clone()))?;
        registry.register(Box::new(m.limits.clone()))?;
        registry.register(Box::new(m.in_flight.clone()))?;
        Ok(m)
    }
}
