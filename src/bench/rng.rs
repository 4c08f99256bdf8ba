//! Random lock names for the benchmark's clients.

/// xorshift64*: enough randomness for lock names, without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(run_id: &str, client: usize) -> Rng {
        // FNV-1a of the run id, so runs and clients pick different names.
        let mut seed = 0xcbf2_9ce4_8422_2325u64;
        for b in run_id.bytes().chain(client.to_le_bytes()) {
            seed = (seed ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0); the modulo bias is negligible for small `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_of_one_run_draw_different_names() {
        let mut a = Rng::new("run1", 0);
        let mut b = Rng::new("run1", 1);
        let mut c = Rng::new("run2", 0);
        let (x, y, z) = (a.next(), b.next(), c.next());
        assert!(x != y && x != z && y != z);
        assert!((0..1000).all(|_| a.below(8) < 8));
    }
}
