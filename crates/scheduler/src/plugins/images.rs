//! ImageLocality: nodes that already hold the pod's images score higher,
//! scaled by how widely each image is spread.

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// The score (0..=100) of `node` for `pod`'s images.
pub fn score(pod: &PodInfo, node: &NodeInfo, cache: &Cache) -> i64 {
    if pod.images.is_empty() {
        return 0;
    }
    let total = cache.node_count().max(1) as f64;
    let mut sum = 0i64;
    for image in &pod.images {
        if let Some(size) = node.images.get(image) {
            let spread = cache.nodes_with_image(image) as f64 / total;
            sum += (*size as f64 * spread) as i64;
        }
    }
    let max = MAX_CONTAINER_THRESHOLD * pod.images.len() as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    super::fit::MAX_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}
