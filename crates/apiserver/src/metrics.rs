//! Prometheus metrics: request counts and latency, open watches, objects.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};

use crate::api::Api;

/// The latency buckets (seconds).
const BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

#[derive(Debug, Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), Series>>,
    watches: AtomicI64,
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, method: &Method, _path: &str, code: u16, took: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let series = requests.entry((method.to_string(), code)).or_default();
        if series.buckets.is_empty() {
            series.buckets = vec![0; BUCKETS.len()];
        }
        let secs = took.as_secs_f64();
        series.count += 1;
        series.sum += secs;
        for (i, bound) in BUCKETS.iter().enumerate() {
            if secs <= *bound {
                series.buckets[i] += 1;
            }
        }
    }

    /// A watch started.
    pub fn watch_started(&self) {
        self.watches.fetch_add(1, Ordering::Relaxed);
    }

    /// A watch ended.
    pub fn watch_ended(&self) {
        self.watches.fetch_sub(1, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self, api: &Api, objects: &[(String, i64)]) -> Response {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out by verb and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((method, code), series) in requests.iter() {
            out.push_str(&format!(
                "apiserver_request_total{{verb=\"{method}\",code=\"{code}\"}} {}\n",
                series.count
            ));
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((method, code), series) in requests.iter() {
            for (i, bound) in BUCKETS.iter().enumerate() {
                out.push_str(&format!(
                    "apiserver_request_duration_seconds_bucket{{verb=\"{method}\",code=\"{code}\",le=\"{bound}\"}} {}\n",
                    series.buckets[i]
                ));
            }
            out.push_str(&format!("apiserver_request_duration_seconds_bucket{{verb=\"{method}\",code=\"{code}\",le=\"+Inf\"}} {}\n", series.count));
            out.push_str(&format!(
                "apiserver_request_duration_seconds_sum{{verb=\"{method}\",code=\"{code}\"}} {}\n",
                series.sum
            ));
            out.push_str(&format!("apiserver_request_duration_seconds_count{{verb=\"{method}\",code=\"{code}\"}} {}\n", series.count));
        }
        drop(requests);
        out.push_str("# HELP apiserver_registered_watchers Number of currently registered watchers.\n# TYPE apiserver_registered_watchers gauge\n");
        out.push_str(&format!(
            "apiserver_registered_watchers {}\n",
            self.watches.load(Ordering::Relaxed)
        ));
        out.push_str("# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n# TYPE apiserver_storage_objects gauge\n");
        for (resource, count) in objects {
            out.push_str(&format!(
                "apiserver_storage_objects{{resource=\"{resource}\"}} {count}\n"
            ));
        }
        out.push_str("# HELP berth_apiserver_resources Number of served resources.\n# TYPE berth_apiserver_resources gauge\n");
        out.push_str(&format!(
            "berth_apiserver_resources {}\n",
            api.registry.all().len()
        ));
        let mut response = out.into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        response
    }
}
