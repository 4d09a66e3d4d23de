//! Prometheus metrics: request counts and latency, open watches, objects,
//! then the series of the components running in the same process (the
//! scheduler's and the controllers', [`Metrics::add_source`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use berth_types::prom::{self, Histogram, Kind, Source, Text};

use crate::api::Api;

/// The latency buckets (seconds).
const BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), Histogram>>,
    watches: AtomicI64,
    sources: RwLock<Vec<Arc<dyn Source>>>,
}

impl Metrics {
    /// Counts a finished request.
    pub fn request(&self, method: &Method, _path: &str, code: u16, took: Duration) {
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        requests
            .entry((method.to_string(), code))
            .or_insert_with(|| Histogram::new(BUCKETS))
            .observe(took.as_secs_f64());
    }

    /// A watch started.
    pub fn watch_started(&self) {
        self.watches.fetch_add(1, Ordering::Relaxed);
    }

    /// A watch ended.
    pub fn watch_ended(&self) {
        self.watches.fetch_sub(1, Ordering::Relaxed);
    }

    /// Adds the series of a component running in this process (rendered
    /// after the API server's own, in the order added).
    pub fn add_source(&self, source: Arc<dyn Source>) {
        self.sources
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    /// The text exposition.
    pub fn render(&self, api: &Api, objects: &[(String, i64)]) -> Response {
        let mut t = Text::new();
        self.render_own(&mut t, api.registry.all().len(), objects);
        let sources = self.sources.read().unwrap_or_else(|p| p.into_inner());
        for source in sources.iter() {
            t.source(source.as_ref());
        }
        drop(sources);
        let mut response = t.finish().into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(prom::CONTENT_TYPE),
        );
        response
    }

    fn render_own(&self, t: &mut Text, resources: usize, objects: &[(String, i64)]) {
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        t.family(
            "apiserver_request_total",
            Kind::Counter,
            "Counter of apiserver requests broken out by verb and HTTP response code.",
        );
        for ((verb, code), h) in requests.iter() {
            let code = code.to_string();
            let labels = [("code", code.as_str()), ("verb", verb.as_str())];
            t.sample("apiserver_request_total", &labels, h.count() as f64);
        }
        t.family(
            "apiserver_request_duration_seconds",
            Kind::Histogram,
            "Response latency distribution in seconds.",
        );
        for ((verb, code), h) in requests.iter() {
            let code = code.to_string();
            let labels = [("code", code.as_str()), ("verb", verb.as_str())];
            t.histogram("apiserver_request_duration_seconds", &labels, h);
        }
        drop(requests);
        t.family(
            "apiserver_registered_watchers",
            Kind::Gauge,
            "Number of currently registered watchers.",
        );
        let watches = self.watches.load(Ordering::Relaxed);
        t.sample("apiserver_registered_watchers", &[], watches as f64);
        t.family(
            "apiserver_storage_objects",
            Kind::Gauge,
            "Number of stored objects at the time of last check split by kind.",
        );
        for (resource, count) in objects {
            let labels = [("resource", resource.as_str())];
            t.sample("apiserver_storage_objects", &labels, *count as f64);
        }
        t.family(
            "berth_apiserver_resources",
            Kind::Gauge,
            "Number of served resources.",
        );
        t.sample("berth_apiserver_resources", &[], resources as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fixed;

    impl Source for Fixed {
        fn render(&self, t: &mut Text) {
            t.family("workqueue_depth", Kind::Gauge, "Current depth of workqueue");
            t.sample("workqueue_depth", &[("name", "deployment")], 2.0);
        }
    }

    #[test]
    fn own_series_then_the_sources() {
        let m = Metrics::default();
        m.request(&Method::GET, "/api", 200, Duration::from_millis(30));
        m.request(&Method::GET, "/api", 200, Duration::from_millis(3));
        m.watch_started();
        m.add_source(Arc::new(Fixed));
        let mut t = Text::new();
        m.render_own(&mut t, 7, &[("pods".into(), 3)]);
        for s in m.sources.read().unwrap().iter() {
            t.source(s.as_ref());
        }
        let samples = prom::parse(&t.finish()).unwrap();
        let find = |name: &str, key: &str, value: &str| {
            samples
                .iter()
                .find(|s| s.name == name && s.label(key) == Some(value))
                .map(|s| s.value)
        };
        assert_eq!(find("apiserver_request_total", "verb", "GET"), Some(2.0));
        assert_eq!(
            find("apiserver_request_duration_seconds_bucket", "le", "0.025"),
            Some(1.0)
        );
        assert_eq!(
            find("apiserver_storage_objects", "resource", "pods"),
            Some(3.0)
        );
        assert_eq!(find("workqueue_depth", "name", "deployment"), Some(2.0));
    }
}
