//! Who the audited host is: machine id, hostname, OS release and running kernel, read through
//! the root prefix so that an image or container is identified by its own files.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use vigil_shared::{HostIdentity, OsRelease};

use crate::hostroot::HostRoot;

/// Builds the host identity. `fallback_machine_id` is used when the root holds no machine id
/// (minimal images); without one, an id is derived from the hostname.
pub fn identify(
    root: &HostRoot,
    labels: &BTreeMap<String, String>,
    fallback_machine_id: Option<&str>,
) -> HostIdentity {
    let hostname = first_line(root, "/proc/sys/kernel/hostname")
        .or_else(|| first_line(root, "/etc/hostname"))
        .unwrap_or_else(|| "localhost".to_string());
    let machine_id = ["/etc/machine-id", "/var/lib/dbus/machine-id"]
        .iter()
        .filter_map(|path| first_line(root, path))
        .find(|id| is_machine_id(id))
        .or_else(|| fallback_machine_id.map(str::to_string))
        .unwrap_or_else(|| derived_machine_id(&hostname));
    let os = ["/etc/os-release", "/usr/lib/os-release"]
        .iter()
        .find_map(|path| root.read_to_string(path).ok())
        .map(|text| parse_os_release(&text))
        .unwrap_or_default();
    HostIdentity {
        machine_id,
        hostname,
        os,
        kernel: first_line(root, "/proc/sys/kernel/osrelease"),
        labels: labels.clone(),
    }
}

fn first_line(root: &HostRoot, path: &str) -> Option<String> {
    let text = root.read_to_string(path).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_string())
}

/// `machine-id(5)`: 32 lowercase hexadecimal characters.
fn is_machine_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A stable id for hosts without a machine id: the same hostname always maps to the same id.
pub fn derived_machine_id(hostname: &str) -> String {
    let digest = Sha256::digest(hostname.as_bytes());
    format!("derived-{}", &hex::encode(digest)[..32])
}

/// Parses `os-release(5)`: `KEY=value` lines, values optionally quoted with `"` or `'`.
pub fn parse_os_release(text: &str) -> OsRelease {
    let mut fields = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        fields.insert(key.trim().to_string(), unquote(value.trim()));
    }
    let get = |k: &str| fields.get(k).cloned().unwrap_or_default();
    OsRelease {
        id: get("ID"),
        id_like: get("ID_LIKE").split_whitespace().map(str::to_string).collect(),
        version_id: get("VERSION_ID"),
        pretty_name: get("PRETTY_NAME"),
    }
}

fn unquote(value: &str) -> String {
    let bytes = value.as_bytes();
    if bytes.len() >= 2
        && (bytes[0] == b'"' || bytes[0] == b'\'')
        && bytes[bytes.len() - 1] == bytes[0]
    {
        let inner = &value[1..value.len() - 1];
        // Shell-style escapes inside double quotes, as os-release(5) allows.
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' && bytes[0] == b'"' {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            } else {
                out.push(c);
            }
        }
        out
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_fields_are_unquoted() {
        let os = parse_os_release(
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
             VERSION_ID=\"12\"\nID=debian\n# comment\nID_LIKE='rhel fedora'\nBROKEN\n",
        );
        assert_eq!(os.id, "debian");
        assert_eq!(os.version_id, "12");
        assert_eq!(os.pretty_name, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(os.id_like, ["rhel", "fedora"]);
    }

    #[test]
    fn escaped_quotes_survive() {
        let os = parse_os_release("PRETTY_NAME=\"say \\\"hi\\\"\"\n");
        assert_eq!(os.pretty_name, "say \"hi\"");
    }

    #[test]
    fn derived_ids_are_stable_and_valid() {
        let a = derived_machine_id("web-01");
        assert_eq!(a, derived_machine_id("web-01"));
        assert_ne!(a, derived_machine_id("web-02"));
        assert_eq!(a.len(), "derived-".len() + 32);
    }

    #[test]
    fn machine_ids_must_look_like_machine_ids() {
        assert!(is_machine_id("3d1219c7c4c5404aaa1f6d2a48adfda4"));
        assert!(!is_machine_id("uninitialized"));
        assert!(!is_machine_id(""));
    }
}
