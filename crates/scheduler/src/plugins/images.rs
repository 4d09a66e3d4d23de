//! ImageLocality: nodes that already hold the pod's images score higher,
//! scaled by how widely each image is spread.

use crate::cache::Cache;
use crate::node_info::NodeInfo;
use crate::pod_info::PodInfo;

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

/// Each of the pod's images with the share of the nodes holding it,
/// computed once per pod.
/// Images no node holds get no id (and count for nothing).
pub fn spreads(pod: &PodInfo, cache: &Cache) -> Vec<(Option<u32>, f64)> {
    let total = cache.node_count().max(1) as f64;
    pod.images
        .iter()
        .map(|image| {
            (
                cache.image_id(image),
                cache.nodes_with_image(image) as f64 / total,
            )
        })
        .collect()
}

/// The score (0..=100) of `node` for the pod's images (`spreads` from
/// [`spreads`]).
pub fn score(spreads: &[(Option<u32>, f64)], node: &NodeInfo) -> i64 {
    if spreads.is_empty() {
        return 0;
    }
    let mut sum = 0i64;
    for (id, spread) in spreads {
        if *spread > 0.0
            && let Some(id) = id
            && let Some((_, size)) = node.images.iter().find(|(i, _)| i == id)
        {
            sum += (*size as f64 * spread) as i64;
        }
    }
    let max = MAX_CONTAINER_THRESHOLD * spreads.len() as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max);
    super::fit::MAX_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
}
