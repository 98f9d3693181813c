//! The Prometheus exposition of the platform's metrics.

/// The process's Prometheus recorder: `metrics` has one global recorder, installed at the first
/// start.
pub fn handle() -> Option<&'static metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("secourir_answer_seconds".into()),
                    &[1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0],
                )
                .ok()?
                .install_recorder()
                .ok()
        })
        .as_ref()
}
