//! Sets of completion indexes written as kube writes them in
//! `status.completedIndexes`/`failedIndexes`: `"0-2,4,6-7"`.

use std::collections::BTreeSet;

/// Parses an interval list, ignoring malformed parts and indexes at or
/// above `limit`.
pub fn parse(text: &str, limit: i32) -> BTreeSet<i32> {
    let mut out = BTreeSet::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<i32>(), b.parse::<i32>()),
            None => (part.parse::<i32>(), part.parse::<i32>()),
        };
        if let (Ok(lo), Ok(hi)) = (lo, hi) {
            out.extend((lo.max(0)..=hi).filter(|i| *i < limit));
        }
    }
    out
}

/// Writes a set as an interval list.
pub fn format(set: &BTreeSet<i32>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut iter = set.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end += 1;
            iter.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_trip() {
        let cases = [
            ("", vec![]),
            ("0", vec![0]),
            ("0-2", vec![0, 1, 2]),
            ("0,2", vec![0, 2]),
            ("0-1,3,5-7", vec![0, 1, 3, 5, 6, 7]),
        ];
        for (text, want) in cases {
            let set = parse(text, 100);
            assert_eq!(set.iter().copied().collect::<Vec<_>>(), want, "{text}");
            assert_eq!(format(&set), text);
        }
        assert_eq!(format(&parse("0-9", 3)), "0-2");
    }
}
