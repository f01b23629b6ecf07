//! The one HyperLogLog of Footfall: distinct visitors (and sessions) in stored rollups, in
//! live-metrics deltas and in the live engine alike, so "visitors today" is the same number in
//! the live view and in history.
//!
//! ## Why a HyperLogLog
//! Unique visitors over an arbitrary range must be mergeable across buckets: sums of per-bucket
//! visitor counts would count a visitor once per minute. Exact per-bucket visitor sets grow
//! with traffic (a day bucket of a busy site would hold every visitor id). A HyperLogLog with
//! 2^12 registers has a standard error of 1.04/√4096 ≈ 1.6 % (within the 2 % budget), is at
//! most 4096 small numbers however large the site, and — the deciding property — merges by
//! taking each register's maximum, in any order. The SQLite store keeps the non-zero registers
//! row by row (`max()` upserts); the MongoDB store keeps each sketch as one small binary value
//! ([`Hll::to_bytes`]) that only its compactor rewrites (see `store/mongo`), because a
//! document with thousands of register fields is slow to update on every server. Live deltas
//! between processors carry the same registers, so a gateway's merge of every processor's
//! deltas is the same sketch the store holds.
//!
//! The hash is BLAKE3 (its first 64 bits), the estimator Ertl's improved raw estimator (2017),
//! which is unbiased over the whole range without empirical bias tables, so small counts (the
//! common case of a minute bucket) come out exact or within one. Precision and hash are part
//! of the stored format: changing either makes every stored register meaningless.
//!
//! ## Memory
//! A sketch is sparse — the sorted non-zero registers — until it holds more than
//! [`SPARSE_MAX`] of them, then a dense array of 4096 bytes. The live engine keeps a sketch per
//! site and minute, most of them with a handful of visitors.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// log2 of the register count: 4096 registers, standard error ≈ 1.6 %.
pub const HLL_P: u32 = 12;
pub const HLL_REGISTERS: usize = 1 << HLL_P;
/// Largest rank after the index bits: a 64-bit hash leaves 52 bits to count zeros in.
const HLL_Q: u32 = 64 - HLL_P;
/// Largest valid register value.
pub const HLL_MAX_RANK: u8 = (HLL_Q + 1) as u8;
/// Non-zero registers a sparse sketch holds before it turns dense (4 bytes each in sparse
/// form, so the switch happens at about a quarter of the dense size).
pub const SPARSE_MAX: usize = 256;
/// First byte of [`Hll::to_bytes`]: which form follows.
const BYTES_SPARSE: u8 = 1;
const BYTES_DENSE: u8 = 2;

#[derive(Debug, Clone)]
enum Registers {
    /// Non-zero registers, sorted by index.
    Sparse(Vec<(u16, u8)>),
    /// All [`HLL_REGISTERS`] registers.
    Dense(Box<[u8]>),
}

/// A HyperLogLog sketch (see the module docs). Empty and allocation-free until the first
/// insert, so rollups of buckets without visitors cost nothing.
#[derive(Debug, Clone)]
pub struct Hll {
    registers: Registers,
}

impl Default for Hll {
    fn default() -> Self {
        Hll {
            registers: Registers::Sparse(Vec::new()),
        }
    }
}

/// Two sketches are equal when their registers are, whatever their representation.
impl PartialEq for Hll {
    fn eq(&self, other: &Self) -> bool {
        self.nonzero().eq(other.nonzero())
    }
}

impl Eq for Hll {}

impl Hll {
    /// The register and rank an item sets.
    pub fn position(item: &str) -> (u16, u8) {
        let hash = blake3::hash(item.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        let h = u64::from_le_bytes(first);
        let index = (h >> HLL_Q) as u16;
        let rest = h << HLL_P;
        let rank = if rest == 0 {
            HLL_Q + 1
        } else {
            rest.leading_zeros().min(HLL_Q) + 1
        };
        (index, rank as u8)
    }

    pub fn insert(&mut self, item: &str) {
        let (index, rank) = Hll::position(item);
        self.set(index, rank);
    }

    /// Raises register `index` to `rank` (merging is a maximum). Out-of-range input from a
    /// damaged store row is ignored rather than trusted.
    pub fn set(&mut self, index: u16, rank: u8) {
        if usize::from(index) >= HLL_REGISTERS || rank > HLL_MAX_RANK || rank == 0 {
            return;
        }
        match &mut self.registers {
            Registers::Dense(regs) => {
                let r = &mut regs[usize::from(index)];
                *r = (*r).max(rank);
            }
            Registers::Sparse(pairs) => {
                match pairs.binary_search_by_key(&index, |(i, _)| *i) {
                    Ok(at) => pairs[at].1 = pairs[at].1.max(rank),
                    Err(at) => pairs.insert(at, (index, rank)),
                }
                if pairs.len() > SPARSE_MAX {
                    let mut dense = vec![0u8; HLL_REGISTERS].into_boxed_slice();
                    for (i, r) in pairs.iter() {
                        dense[usize::from(*i)] = *r;
                    }
                    self.registers = Registers::Dense(dense);
                }
            }
        }
    }

    pub fn merge(&mut self, other: &Hll) {
        for (i, rank) in other.nonzero() {
            self.set(i, rank);
        }
    }

    /// Memory its registers take, for the live view's byte budget.
    pub fn heap_bytes(&self) -> usize {
        match &self.registers {
            Registers::Sparse(pairs) => pairs.capacity() * std::mem::size_of::<(u16, u8)>(),
            Registers::Dense(regs) => regs.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.nonzero().next().is_none()
    }

    /// The registers worth storing, by increasing index.
    pub fn nonzero(&self) -> Box<dyn Iterator<Item = (u16, u8)> + '_> {
        match &self.registers {
            Registers::Sparse(pairs) => Box::new(pairs.iter().copied()),
            Registers::Dense(regs) => Box::new(
                regs.iter()
                    .enumerate()
                    .filter(|(_, r)| **r > 0)
                    .map(|(i, r)| (i as u16, *r)),
            ),
        }
    }

    /// The sketch as stored bytes: a tag, then either the non-zero registers as
    /// `(index u16 LE, rank u8)` triples (sparse, at most [`SPARSE_MAX`] of them) or all
    /// [`HLL_REGISTERS`] ranks (dense). Empty sketches are one byte.
    pub fn to_bytes(&self) -> Vec<u8> {
        match &self.registers {
            Registers::Sparse(pairs) => {
                let mut out = Vec::with_capacity(1 + 3 * pairs.len());
                out.push(BYTES_SPARSE);
                for (i, r) in pairs {
                    out.extend_from_slice(&i.to_le_bytes());
                    out.push(*r);
                }
                out
            }
            Registers::Dense(regs) => {
                let mut out = Vec::with_capacity(1 + HLL_REGISTERS);
                out.push(BYTES_DENSE);
                out.extend_from_slice(regs);
                out
            }
        }
    }

    /// Reads [`to_bytes`](Self::to_bytes) back; `None` for bytes it did not write (a damaged
    /// value is skipped by the caller rather than merged into the numbers).
    pub fn from_bytes(bytes: &[u8]) -> Option<Hll> {
        let (tag, body) = bytes.split_first()?;
        let mut hll = Hll::default();
        let valid = |r: u8| r <= HLL_MAX_RANK;
        match *tag {
            BYTES_SPARSE if body.len() % 3 == 0 => {
                for t in body.chunks_exact(3) {
                    let index = u16::from_le_bytes([t[0], t[1]]);
                    if usize::from(index) >= HLL_REGISTERS || t[2] == 0 || !valid(t[2]) {
                        return None;
                    }
                    hll.set(index, t[2]);
                }
            }
            BYTES_DENSE if body.len() == HLL_REGISTERS && body.iter().all(|r| valid(*r)) => {
                hll.registers = Registers::Dense(body.to_vec().into_boxed_slice());
            }
            _ => return None,
        }
        Some(hll)
    }

    /// Estimated number of distinct items (Ertl 2017, improved raw estimator).
    pub fn estimate(&self) -> u64 {
        let m = HLL_REGISTERS as f64;
        let mut c = [0u32; (HLL_Q + 2) as usize];
        let mut nonzero = 0u32;
        for (_, r) in self.nonzero() {
            c[usize::from(r)] += 1;
            nonzero += 1;
        }
        if nonzero == 0 {
            return 0;
        }
        c[0] = HLL_REGISTERS as u32 - nonzero;
        let q = HLL_Q as usize;
        let mut z = m * tau(1.0 - f64::from(c[q + 1]) / m);
        for k in (1..=q).rev() {
            z = 0.5 * (z + f64::from(c[k]));
        }
        z += m * sigma(f64::from(c[0]) / m);
        let alpha_inf = 1.0 / (2.0 * std::f64::consts::LN_2);
        (alpha_inf * m * m / z).round() as u64
    }
}

/// On the wire (live deltas): the non-zero registers as `[[index, rank], ...]`, by index.
impl Serialize for Hll {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.nonzero())
    }
}

/// Refuses registers outside the sketch (a message from a build with another precision must
/// not be merged into this one's numbers).
impl<'de> Deserialize<'de> for Hll {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = Vec::<(u16, u8)>::deserialize(deserializer)?;
        let mut hll = Hll::default();
        for (index, rank) in pairs {
            if usize::from(index) >= HLL_REGISTERS || rank == 0 || rank > HLL_MAX_RANK {
                return Err(D::Error::custom(format!(
                    "HyperLogLog register {index} = {rank} is outside the sketch"
                )));
            }
            hll.set(index, rank);
        }
        Ok(hll)
    }
}

fn sigma(mut x: f64) -> f64 {
    if x >= 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x).powi(2) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hll_error_is_within_two_percent() {
        // Exact for tiny sets; within 2 % on average across sizes, and never far off.
        let mut small = Hll::default();
        for i in 0..50 {
            small.insert(&format!("visitor-{i}"));
        }
        assert!(small.estimate().abs_diff(50) <= 1);
        let mut total_err = 0.0;
        let sizes = [1_000u64, 5_000, 20_000, 100_000, 300_000];
        for (round, n) in sizes.iter().enumerate() {
            let mut h = Hll::default();
            for i in 0..*n {
                h.insert(&format!("r{round}-visitor-{i}"));
            }
            let err = (h.estimate() as f64 - *n as f64).abs() / *n as f64;
            assert!(err < 0.05, "n={n} estimate={} err={err}", h.estimate());
            total_err += err;
        }
        assert!(total_err / (sizes.len() as f64) < 0.02);
    }

    #[test]
    fn hll_merge_equals_union() {
        let (mut a, mut b, mut both) = (Hll::default(), Hll::default(), Hll::default());
        for i in 0..3000 {
            let id = format!("v{i}");
            if i % 2 == 0 {
                a.insert(&id)
            } else {
                b.insert(&id)
            }
            both.insert(&id);
        }
        a.merge(&b);
        assert_eq!(a, both);
        // Damaged input is ignored.
        a.set(9999, 3);
        a.set(1, 200);
        assert_eq!(a, both);
    }

    #[test]
    fn sparse_and_dense_agree() {
        // The same items through a sketch that stays sparse and one forced dense early.
        let mut sparse = Hll::default();
        let mut dense = Hll::default();
        for i in 0..(SPARSE_MAX * 4) {
            dense.insert(&format!("filler-{i}"));
        }
        let mut filler = dense.clone();
        for i in 0..100 {
            sparse.insert(&format!("v{i}"));
            dense.insert(&format!("v{i}"));
        }
        assert!(matches!(sparse.registers, Registers::Sparse(_)));
        assert!(matches!(dense.registers, Registers::Dense(_)));
        filler.merge(&sparse);
        assert_eq!(filler, dense, "merge across representations is the union");
        assert!(sparse.estimate().abs_diff(100) <= 1);
        let mut copy = Hll::default();
        copy.merge(&sparse);
        assert_eq!(copy, sparse);
        assert_eq!(Hll::default().estimate(), 0);
        assert!(Hll::default().is_empty());
    }

    #[test]
    fn bytes_roundtrip_in_both_forms_and_refuse_damage() {
        let mut h = Hll::default();
        assert_eq!(Hll::from_bytes(&h.to_bytes()), Some(Hll::default()));
        for i in 0..10 {
            h.insert(&format!("v{i}"));
        }
        assert_eq!(h.to_bytes().len(), 1 + 3 * h.nonzero().count());
        assert_eq!(Hll::from_bytes(&h.to_bytes()).as_ref(), Some(&h));
        for i in 0..5000 {
            h.insert(&format!("w{i}"));
        }
        assert_eq!(h.to_bytes().len(), 1 + HLL_REGISTERS);
        assert_eq!(Hll::from_bytes(&h.to_bytes()).as_ref(), Some(&h));
        assert_eq!(Hll::from_bytes(&[]), None);
        assert_eq!(Hll::from_bytes(&[BYTES_SPARSE, 0, 16, 1]), None); // index 4096
        assert_eq!(Hll::from_bytes(&[BYTES_SPARSE, 1, 0]), None); // truncated
        assert_eq!(Hll::from_bytes(&[BYTES_DENSE, 1, 2]), None);
        assert_eq!(Hll::from_bytes(&[9]), None);
    }

    #[test]
    fn serde_roundtrip_and_refuses_foreign_registers() {
        let mut h = Hll::default();
        for i in 0..5000 {
            h.insert(&i.to_string());
        }
        let json = serde_json::to_string(&h).expect("json");
        let back: Hll = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, h);
        assert_eq!(back.estimate(), h.estimate());
        assert_eq!(
            serde_json::from_str::<Hll>("[]").expect("empty"),
            Hll::default()
        );
        assert!(serde_json::from_str::<Hll>("[[4096, 1]]").is_err());
        assert!(serde_json::from_str::<Hll>("[[1, 0]]").is_err());
        assert!(serde_json::from_str::<Hll>("[[1, 54]]").is_err());
        assert!(serde_json::from_str::<Hll>("[2, [1]]").is_err());
    }
}
