//! The keyspace-id hash: stable, documented, and the same in every myshard version.
//!
//! `keyspace_id(key)`:
//! - integer keys (signed or unsigned, any width): `splitmix64(value as u64)`, where negative
//!   values use their two's-complement 64-bit form. `5`, `'5'` given to an integer column and
//!   `5.0` are all the integer 5.
//! - string keys: `splitmix64(fnv1a64(weight(s)))`, where `weight` is the string's UTF-8 bytes
//!   with trailing spaces removed (PAD SPACE collations) and, for case-insensitive (`_ci`)
//!   collations, folded as `utf8mb4_general_ci` compares: compatibility decomposition (NFKD)
//!   with combining marks dropped (`é` → `e`), `ß` → `s`, then Unicode lower case. So
//!   `'ABC'`, `'abc'`, `'abc '` and `'ÀBC'` land together under `utf8mb4_general_ci`; under a
//!   `_bin` collation only `'abc'` and `'abc '` do.
//!
//! `splitmix64` is the finalizer of Steele, Lea and Flood's SplitMix64 generator:
//! `z = (x + 0x9E3779B97F4A7C15); z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
//! z = (z ^ z>>27) * 0x94D049BB133111EB; z ^ z>>31` (wrapping arithmetic). It is a bijection
//! with full avalanche, so sequential ids spread evenly over keyspace ranges.
//! `fnv1a64` is FNV-1a with offset basis 0xcbf29ce484222325 and prime 0x100000001b3.

/// The SplitMix64 finalizer.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The comparison form of a string under a collation (see the module docs).
pub fn weight(s: &str, collation: &str) -> String {
    use unicode_normalization::char::is_combining_mark;
    use unicode_normalization::UnicodeNormalization;
    let trimmed = s.trim_end_matches(' ');
    if collation.ends_with("_ci") {
        trimmed
            .nfkd()
            .filter(|c| !is_combining_mark(*c))
            .map(|c| if c == 'ß' { 's' } else { c })
            .flat_map(char::to_lowercase)
            .collect()
    } else {
        trimmed.to_string()
    }
}

/// Keyspace id of an integer key.
pub fn keyspace_id_int(v: i128) -> u64 {
    splitmix64(v as u64)
}

/// Keyspace id of a string key under a collation.
pub fn keyspace_id_str(s: &str, collation: &str) -> u64 {
    splitmix64(fnv1a64(weight(s, collation).as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_never_change() {
        // Changing these moves rows between shards: never update them.
        assert_eq!(splitmix64(0), 0xE220_A839_7B1D_CDAF);
        assert_eq!(keyspace_id_int(1), 0x910A_2DEC_8902_5CC1);
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn case_and_trailing_spaces_follow_the_collation() {
        let ci = "utf8mb4_general_ci";
        assert_eq!(keyspace_id_str("ABC", ci), keyspace_id_str("abc ", ci));
        assert_ne!(
            keyspace_id_str("ABC", "utf8mb4_bin"),
            keyspace_id_str("abc", "utf8mb4_bin")
        );
        assert_eq!(
            keyspace_id_str("abc", "utf8mb4_bin"),
            keyspace_id_str("abc  ", "utf8mb4_bin")
        );
    }

    #[test]
    fn accents_fold_under_ci_collations() {
        let ci = "utf8mb4_general_ci";
        assert_eq!(keyspace_id_str("Éve", ci), keyspace_id_str("eve", ci));
        assert_eq!(keyspace_id_str("straße", ci), keyspace_id_str("STRASE", ci));
        assert_ne!(
            keyspace_id_str("Éve", "utf8mb4_bin"),
            keyspace_id_str("eve", "utf8mb4_bin")
        );
    }

    #[test]
    fn negative_integers_use_twos_complement() {
        assert_eq!(keyspace_id_int(-1), splitmix64(u64::MAX));
    }
}
