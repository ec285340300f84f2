//! Debian version ordering exactly as apt orders versions (`debVersioningSystem::DoCmpVersion`),
//! so that "newer" means what it means to `apt list --upgradable`. apt's algorithm is dpkg's
//! (`verrevcmp`) with explicit string ends; the tests carry both projects' test tables.

use std::cmp::Ordering;

/// apt's character weight: digits 0, letters themselves, `~` below everything (even the end of
/// the string), any other character above every letter.
fn order(c: u8) -> i32 {
    if c.is_ascii_digit() {
        0
    } else if c.is_ascii_alphabetic() {
        i32::from(c)
    } else if c == b'~' {
        -1
    } else if c >= 0x80 {
        // apt works on a signed `char`: bytes above 0x7f weigh less than ASCII punctuation
        i32::from(c as i8) + 256
    } else if c != 0 {
        i32::from(c) + 256
    } else {
        0
    }
}

/// The byte at `i`, or NUL past the end: apt's loops peek one byte past a fragment's end and
/// rely on it not being a digit.
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// Compares one fragment (epoch, upstream or revision). `a_end`/`b_end` bound the fragment;
/// `a`/`b` are the whole strings so that peeking past a fragment sees what apt sees.
fn cmp_fragment(a: &[u8], mut l: usize, a_end: usize, b: &[u8], mut r: usize, b_end: usize) -> i32 {
    while l != a_end && r != b_end {
        let mut first_diff = 0i32;
        while l != a_end && r != b_end && (!at(a, l).is_ascii_digit() || !at(b, r).is_ascii_digit())
        {
            let vc = order(at(a, l));
            let rc = order(at(b, r));
            if vc != rc {
                return vc - rc;
            }
            l += 1;
            r += 1;
        }
        while at(a, l) == b'0' && l < a_end {
            l += 1;
        }
        while at(b, r) == b'0' && r < b_end {
            r += 1;
        }
        while l < a_end && r < b_end && at(a, l).is_ascii_digit() && at(b, r).is_ascii_digit() {
            if first_diff == 0 {
                first_diff = i32::from(at(a, l)) - i32::from(at(b, r));
            }
            l += 1;
            r += 1;
        }
        if l < a_end && at(a, l).is_ascii_digit() {
            return 1;
        }
        if r < b_end && at(b, r).is_ascii_digit() {
            return -1;
        }
        if first_diff != 0 {
            return first_diff;
        }
    }
    if l == a_end && r == b_end {
        return 0;
    }
    if l == a_end {
        return if at(b, r) == b'~' { 1 } else { -1 };
    }
    if r == b_end {
        return if at(a, l) == b'~' { -1 } else { 1 };
    }
    1
}

/// Splits off the epoch the way apt does: the first `:` ends it; an all-zero epoch is no epoch.
/// Returns (epoch start, epoch end, rest start).
fn epoch_bounds(s: &[u8]) -> (usize, usize, usize) {
    match memchr::memchr(b':', s) {
        None => (0, 0, 0),
        Some(colon) => {
            let mut start = 0;
            while start < colon && s[start] == b'0' {
                start += 1;
            }
            if start == colon {
                // "0:" or "000:" is no epoch at all
                (colon + 1, colon + 1, colon + 1)
            } else {
                (start, colon, colon + 1)
            }
        }
    }
}

/// Compares two Debian version strings the way apt does.
pub fn compare(a: &str, b: &str) -> Ordering {
    let res = compare_raw(a.as_bytes(), b.as_bytes());
    res.cmp(&0)
}

fn compare_raw(a: &[u8], b: &[u8]) -> i32 {
    let (ae_start, ae_end, a_rest) = epoch_bounds(a);
    let (be_start, be_end, b_rest) = epoch_bounds(b);
    let res = cmp_fragment(a, ae_start, ae_end, b, be_start, be_end);
    if res != 0 {
        return res;
    }
    let a_dash = memchr::memrchr(b'-', &a[a_rest..]).map(|i| i + a_rest);
    let b_dash = memchr::memrchr(b'-', &b[b_rest..]).map(|i| i + b_rest);
    let a_up_end = a_dash.unwrap_or(a.len());
    let b_up_end = b_dash.unwrap_or(b.len());
    let res = cmp_fragment(a, a_rest, a_up_end, b, b_rest, b_up_end);
    if res != 0 {
        return res;
    }
    // A missing revision compares like "0".
    const ZERO: &[u8] = b"0";
    match (a_dash, b_dash) {
        (Some(ad), Some(bd)) => cmp_fragment(a, ad + 1, a.len(), b, bd + 1, b.len()),
        (Some(ad), None) => cmp_fragment(a, ad + 1, a.len(), ZERO, 0, 1),
        (None, Some(bd)) => cmp_fragment(ZERO, 0, 1, b, bd + 1, b.len()),
        (None, None) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: &str, expected: i32, b: &str) {
        let want = expected.cmp(&0);
        assert_eq!(compare(a, b), want, "{a} vs {b}");
        assert_eq!(compare(b, a), want.reverse(), "{b} vs {a}");
    }

    #[test]
    fn apt_test_suite_basic_and_epochs() {
        // apt's test/libapt/compareversion_test.cc
        check("7.6p2-4", 1, "7.6-0");
        check("1.0.3-3", 1, "1.0-1");
        check("1.3", 1, "1.2.2-2");
        check("1.3", 1, "1.2.2");
        check("0-pre", 0, "0-pre");
        check("0-pre", -1, "0-pree");
        check("1.1.6r2-2", 1, "1.1.6r-1");
        check("2.6b2-1", 1, "2.6b-2");
        check("98.1p5-1", -1, "98.1-pre2-b6-2");
        check("0.4a6-2", 1, "0.4-1");
        check("1:3.0.5-2", -1, "1:3.0.5.1");
        check("1:0.4", 1, "10.3");
        check("1:1.25-4", -1, "1:1.25-8");
        check("0:1.18.36", 0, "1.18.36");
        check("1.18.36", 1, "1.18.35");
        check("0:1.18.36", 1, "1.18.35");
        check("9:1.18.36:5.4-20", -1, "10:0.5.1-22");
        check("9:1.18.36:5.4-20", -1, "9:1.18.36:5.5-1");
        check("9:1.18.36:5.4-20", -1, " 9:1.18.37:4.3-22");
        check("1.18.36-0.17.35-18", 1, "1.18.36-19");
        check("1:1.2.13-3", -1, "1:1.2.13-3.1");
        check("2.0.7pre1-4", -1, "2.0.7r-1");
        check("0:0-0-0", 1, "0-0");
        check("0", 0, "0");
        check("0", 0, "00");
        check("3.0~rc1-1", -1, "3.0-1");
        check("1.0", 0, "1.0-0");
        check("0.2", -1, "1.0-0");
        check("1.0", -1, "1.0-0+b1");
        check("1.0", 1, "1.0-0~");
    }

    #[test]
    fn apt_test_suite_cupt_cases() {
        check("1.2.3", 0, "1.2.3");
        check("4.4.3-2", 0, "4.4.3-2");
        check("1:2ab:5", 0, "1:2ab:5");
        check("7:1-a:b-5", 0, "7:1-a:b-5");
        check("57:1.2.3abYZ+~-4-5", 0, "57:1.2.3abYZ+~-4-5");
        check("1.2.3", 0, "0:1.2.3");
        check("1.2.3", 0, "1.2.3-0");
        check("009", 0, "9");
        check("009ab5", 0, "9ab5");
        check("1.2.3", -1, "1.2.3-1");
        check("1.2.3", -1, "1.2.4");
        check("1.2.4", 1, "1.2.3");
        check("1.2.24", 1, "1.2.3");
        check("0.10.0", 1, "0.8.7");
        check("3.2", 1, "2.3");
        check("1.3.2a", 1, "1.3.2");
        check("0.5.0~git", -1, "0.5.0~git2");
        check("2a", -1, "21");
        check("1.3.2a", -1, "1.3.2b");
        check("1:1.2.3", 1, "1.2.4");
        check("1:1.2.3", -1, "1:1.2.4");
        check("1.2a+~bCd3", -1, "1.2a++");
        check("1.2a+~bCd3", 1, "1.2a+~");
        check("5:2", 1, "304-2");
        check("5:2", -1, "304:2");
        check("25:2", 1, "3:2");
        check("1:2:123", -1, "1:12:3");
        check("1.2-5", -1, "1.2-3-5");
        check("5.10.0", 1, "5.005");
        check("3a9.8", -1, "3.10.2");
        check("3a9.8", 1, "3~10");
        check("1.4+OOo3.0.0~", -1, "1.4+OOo3.0.0-4");
        check("2.4.7-1", -1, "2.4.7-z");
        check("1.002-1+b2", 1, "1.00");
    }

    #[test]
    fn dpkg_test_suite_cases() {
        // dpkg's scripts/t/Dpkg_Version.t data and lib/dpkg/t/t-version.c
        let table = [
            ("1.0-1", "2.0-2", -1),
            ("2.2~rc-4", "2.2-1", -1),
            ("2.2-1", "2.2~rc-4", 1),
            ("1.0000-1", "1.0-1", 0),
            ("1", "0:1", 0),
            ("0", "0:0-0", 0),
            ("2:2.5", "1:7.5", 1),
            ("1:0foo", "0foo", 1),
            ("0:0foo", "0foo", 0),
            ("0foo", "0foo", 0),
            ("0foo-0", "0foo", 0),
            ("0foo", "0foo-0", 0),
            ("0foo", "0fo", 1),
            ("0foo-0", "0foo+", -1),
            ("0foo~1", "0foo", -1),
            ("0foo~foo+Bar", "0foo~foo+bar", -1),
            ("0foo~~", "0foo~", -1),
            ("1~", "1", -1),
            (
                "12345+that-really-is-some-ver-0",
                "12345+that-really-is-some-ver-10",
                -1,
            ),
            ("0foo-0", "0foo-01", -1),
            ("0foo.bar", "0foobar", 1),
            ("0foo.bar", "0foo1bar", 1),
            ("0foo.bar", "0foo0bar", 1),
            ("0foo1bar-1", "0foobar-1", -1),
            ("0foo2.0", "0foo2", 1),
            ("0foo2.0.0", "0foo2.10.0", -1),
            ("0foo2.0", "0foo2.0.0", -1),
            ("0foo2.0", "0foo2.10", -1),
            ("0foo2.1", "0foo2.10", -1),
            ("1.09", "1.9", 0),
            ("1.0.8+nmu1", "1.0.8", 1),
            ("3.11", "3.10+nmu1", 1),
            ("0.9j-20080306-4", "0.9i-20070324-2", 1),
            ("1.2.0~b7-1", "1.2.0~b6-1", 1),
            ("1.011-1", "1.06-2", 1),
            ("0.0.9+dfsg1-1", "0.0.8+dfsg1-3", 1),
            ("4.6.99+svn6582-1", "4.6.99+svn6496-1", 1),
            ("53", "52", 1),
            ("0.9.9~pre122-1", "0.9.9~pre111-1", 1),
            ("2:2.3.2-2+lenny2", "2:2.3.2-2", 1),
            ("1:3.8.1-1", "3.8.GA-1", 1),
            ("1.0.1+gpl-1", "1.0.1-2", 1),
            ("1a", "1000a", -1),
            ("0-00", "00-0", 0),
            ("1:2-3", "1:2-3", 0),
            ("0-a", "0-b", -1),
            ("a-0", "b-0", -1),
        ];
        for (a, b, want) in table {
            check(a, want, b);
        }
    }

    #[test]
    fn real_archive_versions() {
        check("3.0.15-1~deb12u1", 1, "3.0.11-1~deb12u2");
        check("3.0.15-1~deb12u1", -1, "3.0.15-1");
        check("1:9.2p1-2+deb12u3", 1, "1:9.2p1-2+deb12u2");
        check("6.1.119-1", 1, "6.1.76-1");
        check("2.36-9+deb12u10", -1, "2.36-9+deb12u14");
        check("252.38-1~deb12u1", 1, "252.36-1~deb12u1");
        check("1.21.23", 1, "1.21.22");
        check("20.20.2-1nodesource1+repack1", 1, "18.20.4+dfsg-1~deb12u2");
        check("5.2.15-2+b13", 1, "5.2.15-2+b8");
    }

    #[test]
    fn zeros_after_a_separator_at_the_end() {
        // Leading zeros are skipped even when the other side has ended: "1." equals "1.0".
        assert_eq!(compare("1.", "1.0"), Ordering::Equal);
        assert_eq!(compare("1.", "1.1"), Ordering::Less);
    }

    #[test]
    fn junk_never_panics() {
        for v in [
            "",
            ":",
            "-",
            "::",
            "--",
            "~",
            "0:",
            ":1",
            "1:",
            "a:b:c-d-e",
            "\u{0}",
            "é1",
        ] {
            for w in ["", "1", "0:0", "~~", "-1"] {
                let _ = compare(v, w);
                let _ = compare(w, v);
            }
        }
    }
}
