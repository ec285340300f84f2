//! Kernels: which kernel releases are installed (Debian `linux-image-<release>` packages,
//! RHEL `kernel`/`kernel-core`, or `/boot/vmlinuz-*`), the newest of them, and reboot
//! markers (`/var/run/reboot-required`, `.pkgs`).

/// The kernel release a Debian/Ubuntu image package installs, or `None` for meta packages
/// (`linux-image-amd64`, `linux-image-generic`) and debug symbols.
pub fn debian_kernel_release(package: &str) -> Option<&str> {
    let rest = package.strip_prefix("linux-image-")?;
    // Ubuntu ships unsigned images as linux-image-unsigned-<release>.
    let rest = rest.strip_prefix("unsigned-").unwrap_or(rest);
    // Debian's unsigned images are linux-image-<release>-unsigned.
    let rest = rest.strip_suffix("-unsigned").unwrap_or(rest);
    if rest.ends_with("-dbg") || rest.ends_with("-dbgsym") {
        return None;
    }
    // Releases start with the upstream version ("6.1.0-28-amd64"); meta packages do not.
    if !rest.as_bytes().first().is_some_and(u8::is_ascii_digit) || !rest.contains('.') {
        return None;
    }
    Some(rest)
}

/// The release of a `/boot/vmlinuz-<release>` file name.
pub fn vmlinuz_release(file_name: &str) -> Option<&str> {
    let rest = file_name.strip_prefix("vmlinuz-")?;
    if rest.is_empty() || rest.ends_with(".old") || rest.contains("rescue") {
        return None;
    }
    Some(rest)
}

/// Package names listed in `reboot-required.pkgs`, unique, in order.
pub fn parse_reboot_pkgs(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let name = line.trim();
        if !name.is_empty() && !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    out
}

/// The package version Debian stamps into `/proc/sys/kernel/version`
/// (`#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)` → `6.1.119-1`).
pub fn debian_build_version(proc_version: &str) -> Option<&str> {
    let mut words = proc_version.split_ascii_whitespace();
    while let Some(w) = words.next() {
        if w == "Debian" {
            let v = words.next()?;
            if v.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                return Some(v);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_package_names() {
        assert_eq!(
            debian_kernel_release("linux-image-6.1.0-28-amd64"),
            Some("6.1.0-28-amd64")
        );
        assert_eq!(
            debian_kernel_release("linux-image-6.1.0-28-cloud-amd64"),
            Some("6.1.0-28-cloud-amd64")
        );
        assert_eq!(
            debian_kernel_release("linux-image-6.1.0-28-amd64-unsigned"),
            Some("6.1.0-28-amd64")
        );
        assert_eq!(
            debian_kernel_release("linux-image-unsigned-5.15.0-91-generic"),
            Some("5.15.0-91-generic")
        );
        assert_eq!(
            debian_kernel_release("linux-image-5.15.0-91-generic"),
            Some("5.15.0-91-generic")
        );
        for meta in [
            "linux-image-amd64",
            "linux-image-cloud-amd64",
            "linux-image-generic",
            "linux-image-virtual",
            "linux-image-6.1.0-28-amd64-dbg",
            "linux-image-",
            "linux-headers-6.1.0-28-amd64",
        ] {
            assert_eq!(debian_kernel_release(meta), None, "{meta}");
        }
    }

    #[test]
    fn boot_files() {
        assert_eq!(
            vmlinuz_release("vmlinuz-6.1.0-28-amd64"),
            Some("6.1.0-28-amd64")
        );
        assert_eq!(vmlinuz_release("vmlinuz-6.1.0-28-amd64.old"), None);
        assert_eq!(vmlinuz_release("vmlinuz-0-rescue-abc"), None);
        assert_eq!(vmlinuz_release("vmlinuz"), None);
        assert_eq!(vmlinuz_release("initrd.img-6.1.0-28-amd64"), None);
    }

    #[test]
    fn reboot_markers_and_build_versions() {
        assert_eq!(
            parse_reboot_pkgs("libc6\nlinux-image-6.1.0-28-amd64\nlibc6\n\n"),
            ["libc6", "linux-image-6.1.0-28-amd64"]
        );
        assert_eq!(
            debian_build_version("#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"),
            Some("6.1.119-1")
        );
        assert_eq!(debian_build_version("#1 SMP PREEMPT_DYNAMIC @0"), None);
        assert_eq!(debian_build_version("Debian"), None);
    }
}
