//! Ubuntu phased updates: whether `apt upgrade` keeps a phased update back on this machine
//! (apt 2.6 `PhasedUpgrader`). The draw is apt's: a `std::seed_seq` over
//! `source-sourceversion-machineid`, a `std::minstd_rand`, and libstdc++'s
//! `uniform_int_distribution<unsigned>(0, 100)`; the update is deferred when the draw exceeds
//! the Phased-Update-Percentage. `apt list --upgradable` lists phased updates either way.

/// `std::seed_seq::generate` (C++11 [rand.util.seedseq]) for `n` outputs. Input bytes are
/// `char`s, so bytes above 0x7f enter sign-extended, as with libstdc++ on x86.
fn seed_seq_generate(input: &[u8], n: usize) -> Vec<u32> {
    let v: Vec<u32> = input.iter().map(|&b| i32::from(b as i8) as u32).collect();
    let mut out = vec![0x8b8b_8b8bu32; n];
    if n == 0 {
        return out;
    }
    let s = v.len();
    let t = if n >= 623 {
        11
    } else if n >= 68 {
        7
    } else if n >= 39 {
        5
    } else if n >= 7 {
        3
    } else {
        (n - 1) / 2
    };
    let p = (n - t) / 2;
    let q = p + t;
    let m = (s + 1).max(n);
    let mix = |x: u32| x ^ (x >> 27);
    for k in 0..m {
        let r1 =
            1_664_525u32.wrapping_mul(mix(out[k % n] ^ out[(k + p) % n] ^ out[(k + n - 1) % n]));
        let r2 = r1.wrapping_add(if k == 0 {
            s as u32
        } else if k <= s {
            ((k % n) as u32).wrapping_add(v[k - 1])
        } else {
            (k % n) as u32
        });
        out[(k + p) % n] = out[(k + p) % n].wrapping_add(r1);
        out[(k + q) % n] = out[(k + q) % n].wrapping_add(r2);
        out[k % n] = r2;
    }
    for k in m..m + n {
        let r3 = 1_566_083_941u32.wrapping_mul(mix(out[k % n]
            .wrapping_add(out[(k + p) % n])
            .wrapping_add(out[(k + n - 1) % n])));
        let r4 = r3.wrapping_sub((k % n) as u32);
        out[(k + p) % n] ^= r3;
        out[(k + q) % n] ^= r4;
        out[k % n] = r4;
    }
    out
}

/// `std::minstd_rand` seeded from a seed sequence.
struct MinStd(u64);

impl MinStd {
    const M: u64 = 2_147_483_647;

    fn from_seed(input: &[u8]) -> MinStd {
        // k = 1 word for a 31-bit modulus; the engine draws k + 3 values and uses the last.
        let a = seed_seq_generate(input, 4);
        let s = u64::from(a[3]) % Self::M;
        MinStd(if s == 0 { 1 } else { s })
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0 * 48_271 % Self::M;
        self.0
    }
}

/// libstdc++'s `uniform_int_distribution<unsigned>(0, 100)` over `minstd_rand` (the
/// two-division downscaling path: the engine's range is not a full power of two).
fn uniform_0_100(rng: &mut MinStd) -> u64 {
    const URNG_MIN: u64 = 1;
    const URNG_RANGE: u64 = MinStd::M - 1 - URNG_MIN;
    const UERANGE: u64 = 101;
    const SCALING: u64 = URNG_RANGE / UERANGE;
    const PAST: u64 = UERANGE * SCALING;
    loop {
        let r = rng.next() - URNG_MIN;
        if r < PAST {
            return r / SCALING;
        }
    }
}

/// apt's draw for `source-sourceversion-machineid`: 0..=100.
pub fn draw(source: &str, source_version: &str, machine_id: &str) -> u64 {
    let seed = format!("{source}-{source_version}-{machine_id}");
    uniform_0_100(&mut MinStd::from_seed(seed.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values printed by a C++ program built with g++ 12 (libstdc++) on Debian 12:
    /// first and second `dist(rand)`, and the first raw `minstd_rand` output.
    const VECTORS: &[(&[u8], u64, u64, u64)] = &[
        (b"hello-1.0-abc", 56, 96, 1211319146),
        (b"cloud-init-24.1.3-0ubuntu3-0123456789abcdef0123456789abcdef", 81, 87, 1723906972),
        (b"update-manager-1:24.04.6-0123456789abcdef0123456789abcdef", 43, 55, 923997118),
        (b"", 63, 4, 1353952032),
        (b"x", 67, 55, 1425155154),
        (b"\xe9t\xe9-1-m", 6, 91, 141512564),
        (b"openssl-3.0.13-0ubuntu3.4-3d1219c7c4c5404aaa1f6d2a48adfda4", 48, 79, 1035984443),
        (
            b"a-very-long-source-package-name-with-many-chars-1.2.3.4.5.6.7.8.9-ffffffffffffffffffffffffffffffff",
            39,
            79,
            846598503,
        ),
    ];

    #[test]
    fn matches_libstdcxx() {
        for &(seed, first, second, raw) in VECTORS {
            let mut rng = MinStd::from_seed(seed);
            assert_eq!(
                uniform_0_100(&mut rng),
                first,
                "{}",
                String::from_utf8_lossy(seed)
            );
            assert_eq!(
                uniform_0_100(&mut rng),
                second,
                "{}",
                String::from_utf8_lossy(seed)
            );
            assert_eq!(MinStd::from_seed(seed).next(), raw);
        }
        assert_eq!(
            draw(
                "openssl",
                "3.0.13-0ubuntu3.4",
                "3d1219c7c4c5404aaa1f6d2a48adfda4"
            ),
            48
        );
    }
}
