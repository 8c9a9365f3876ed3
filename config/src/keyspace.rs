//! Keyspace-id ranges for `hash` rules, written as Vitess writes them: hex prefixes of the
//! 64-bit keyspace id, left-aligned (`"40"` is 0x4000_0000_0000_0000), with an empty start or
//! end meaning the edge of the space: `"-40"`, `"40-80"`, `"80-"`.

use crate::model::RuleConfig;

/// One past the largest keyspace id.
pub const KEYSPACE_END: u128 = 1 << 64;

/// A half-open range of keyspace ids `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange {
    /// First id in the range.
    pub start: u128,
    /// One past the last id.
    pub end: u128,
}

fn parse_bound(hex: &str, empty: u128) -> Result<u128, String> {
    if hex.is_empty() {
        return Ok(empty);
    }
    if hex.len() > 16 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "'{hex}' is not a hex keyspace bound of at most 16 digits"
        ));
    }
    let v = u64::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
    Ok((v as u128) << (4 * (16 - hex.len())))
}

/// Parses `"start-end"`.
pub fn parse_range(text: &str) -> Result<KeyRange, String> {
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("'{text}' is not a keyspace range like \"40-80\""))?;
    let r = KeyRange {
        start: parse_bound(a, 0)?,
        end: parse_bound(b, KEYSPACE_END)?,
    };
    if r.start >= r.end {
        return Err(format!("'{text}' is empty or reversed"));
    }
    Ok(r)
}

impl RuleConfig {
    /// The keyspace range each shard owns (parallel to `shards`), for `hash` rules.
    /// Without explicit `ranges`, the space is split into equal parts in shard order.
    pub fn keyspace_ranges(&self) -> Result<Vec<KeyRange>, String> {
        if self.ranges.is_empty() {
            let n = self.shards.len().max(1) as u128;
            return Ok((0..n)
                .map(|i| KeyRange {
                    start: KEYSPACE_END * i / n,
                    end: KEYSPACE_END * (i + 1) / n,
                })
                .collect());
        }
        self.ranges.iter().map(|r| parse_range(r)).collect()
    }
}

/// Checks that ranges cover the whole keyspace exactly once; returns each problem.
pub fn check_coverage(ranges: &[KeyRange]) -> Vec<String> {
    let mut sorted: Vec<(usize, KeyRange)> = ranges.iter().copied().enumerate().collect();
    sorted.sort_by_key(|(_, r)| r.start);
    let mut problems = Vec::new();
    let mut next = 0u128;
    for (i, r) in sorted {
        if r.start > next {
            problems.push(format!(
                "keyspace ids {next:#x}..{:#x} are owned by no shard (missing range)",
                r.start
            ));
        } else if r.start < next {
            problems.push(format!(
                "range #{i} overlaps the range before it at {:#x}",
                r.start
            ));
        }
        next = next.max(r.end);
    }
    if next < KEYSPACE_END {
        problems.push(format!(
            "keyspace ids from {next:#x} to the end are owned by no shard (missing range)"
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vitess_style_bounds() {
        assert_eq!(
            parse_range("-40"),
            Ok(KeyRange {
                start: 0,
                end: 0x40 << 56
            })
        );
        assert_eq!(
            parse_range("80-"),
            Ok(KeyRange {
                start: 0x80 << 56,
                end: KEYSPACE_END
            })
        );
        assert!(parse_range("80-40").is_err());
        assert!(parse_range("zz-").is_err());
    }

    #[test]
    fn coverage_reports_gaps_and_overlaps() {
        let r = |s: &str| parse_range(s).expect("valid");
        assert!(check_coverage(&[r("-80"), r("80-")]).is_empty());
        assert!(check_coverage(&[r("-40"), r("80-")])[0].contains("missing"));
        assert!(check_coverage(&[r("-90"), r("80-")])[0].contains("overlaps"));
    }
}
