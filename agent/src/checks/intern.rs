//! Process-wide interning of the few strings user-defined checks need as `&'static str`.
//!
//! [`super::Check`] and [`super::Output`] hand out `'static` names so that the built-in checks
//! declare their outputs as constants. A user-defined check's id, title and controls come from
//! a file, so they are interned here: each distinct string is leaked once and reused, which
//! bounds the memory by the distinct definitions ever loaded (reloading the same files, as
//! `validate` and the service do, adds nothing).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{LazyLock, Mutex, PoisonError};

use super::Output;

static STRINGS: LazyLock<Mutex<BTreeSet<&'static str>>> =
    LazyLock::new(|| Mutex::new(BTreeSet::new()));

static LISTS: LazyLock<Mutex<BTreeSet<&'static [&'static str]>>> =
    LazyLock::new(|| Mutex::new(BTreeSet::new()));

/// The interned copy of `s`.
pub fn intern(s: &str) -> &'static str {
    let mut set = STRINGS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = set.get(s) {
        return found;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// The interned copy of a list of strings (each interned as well).
pub fn intern_list(items: &[&str]) -> &'static [&'static str] {
    let items: Vec<&'static str> = items.iter().map(|s| intern(s)).collect();
    let mut set = LISTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = set.get(items.as_slice()) {
        return found;
    }
    let leaked: &'static [&'static str] = Box::leak(items.into_boxed_slice());
    set.insert(leaked);
    leaked
}

static OUTPUTS: LazyLock<Mutex<BTreeMap<String, &'static [Output]>>> =
    LazyLock::new(|| Mutex::new(BTreeMap::new()));

/// An interned one-element output list: the declaration of a single-output check.
pub fn intern_output(id: &str, controls: &[&str], description: &str) -> &'static [Output] {
    let key = format!("{id}\0{description}\0{}", controls.join("\0"));
    let mut map = OUTPUTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = map.get(&key) {
        return found;
    }
    let output = Output {
        id: intern(id),
        controls: intern_list(controls),
        description: intern(description),
    };
    let leaked: &'static [Output] = Box::leak(vec![output].into_boxed_slice());
    map.insert(key, leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_strings_share_one_allocation() {
        let a = intern(&String::from("custom.motd_banner"));
        let b = intern("custom.motd_banner");
        assert!(std::ptr::eq(a, b));
        let l1 = intern_list(&["A.5.10", "A.8.5"]);
        let l2 = intern_list(&[&String::from("A.5.10"), "A.8.5"]);
        assert!(std::ptr::eq(l1, l2));
        assert_eq!(l1, ["A.5.10", "A.8.5"]);
        let o1 = intern_output("custom.a", &["A.8.9"], "x");
        let o2 = intern_output("custom.a", &["A.8.9"], "x");
        assert!(std::ptr::eq(o1, o2));
        assert_eq!(o1[0].id, "custom.a");
    }
}
