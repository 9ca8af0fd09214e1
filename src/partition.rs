//! `--partition hash:K/N | count:K/N` (§15, rule 48): one CI machine's share of a suite.
//!
//! `hash` puts a fixture in partition `h mod N + 1`, where `h` is the first 8 bytes of the
//! sha256 of its id as a big-endian integer: stable across machines and as fixtures come
//! and go. `count` takes the Kth of every N fixtures in id order. Partitions are 1-based.

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partition {
    Hash { k: u64, n: u64 },
    Count { k: u64, n: u64 },
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(s: &str) -> Result<Partition, String> {
        let bad = || {
            format!(
                "--partition {s:?}: expected hash:K/N or count:K/N with 1 ≤ K ≤ N (e.g. hash:2/3)"
            )
        };
        let (kind, share) = s.split_once(':').ok_or_else(bad)?;
        let (k, n) = share.split_once('/').ok_or_else(bad)?;
        let (k, n): (u64, u64) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if k == 0 || n == 0 || k > n {
            return Err(bad());
        }
        match kind {
            "hash" => Ok(Partition::Hash { k, n }),
            "count" => Ok(Partition::Count { k, n }),
            _ => Err(bad()),
        }
    }
}

impl Partition {
    /// Whether the fixture at `position` (in id order) with `id` is in this partition.
    pub fn holds(self, position: usize, id: &str) -> bool {
        match self {
            Partition::Hash { k, n } => hash_of(id) % n == k - 1,
            Partition::Count { k, n } => position as u64 % n == k - 1,
        }
    }
}

/// The first 8 bytes of the id's sha256, big-endian.
pub fn hash_of(id: &str) -> u64 {
    let digest = Sha256::digest(id.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cover_the_suite_once() {
        let ids: Vec<String> = (0..50).map(|i| format!("suite/f{i:02}")).collect();
        for spec in ["hash", "count"] {
            let mut seen = vec![0; ids.len()];
            for k in 1..=3 {
                let p: Partition = format!("{spec}:{k}/3").parse().unwrap();
                for (i, id) in ids.iter().enumerate() {
                    if p.holds(i, id) {
                        seen[i] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&c| c == 1), "{spec}: {seen:?}");
        }
        let c: Partition = "count:2/3".parse().unwrap();
        assert!(c.holds(1, "x") && c.holds(4, "y") && !c.holds(0, "z"));
        // sha256("a") = ca978112ca1bbdca…
        assert_eq!(hash_of("a"), 0xca97_8112_ca1b_bdca);
        for bad in ["hash:0/3", "hash:4/3", "mod:1/2", "hash:1", "hash:a/b"] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
    }
}
