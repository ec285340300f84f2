//! Python distributions installed in the system's site directories: `*.dist-info/METADATA`
//! and `*.egg-info` (`PKG-INFO`) headers, and the `INSTALLER` record that says whether the
//! package manager (`debian`, `rpm`) or pip put them there.

/// Name and version from the headers of a METADATA or PKG-INFO file (RFC 822 style, up to
/// the first blank line).
pub fn parse_metadata(text: &str) -> Option<(String, String)> {
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name.get_or_insert_with(|| v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version.get_or_insert_with(|| v.trim().to_string());
        }
    }
    let name = name.filter(|n| !n.is_empty())?;
    Some((name, version.unwrap_or_default()))
}

/// Name and version from a directory name (`requests-2.31.0.dist-info`), for entries whose
/// metadata cannot be read.
pub fn parse_dir_name(dir: &str) -> Option<(String, String)> {
    let stem = dir
        .strip_suffix(".dist-info")
        .or_else(|| dir.strip_suffix(".egg-info"))?;
    // Egg names may carry `-py3.11` after the version.
    let stem = stem.split("-py").next().unwrap_or(stem);
    let (n, v) = stem.split_once('-')?;
    Some((n.to_string(), v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_headers() {
        assert_eq!(
            parse_metadata(
                "Metadata-Version: 2.1\r\nName: requests\r\nVersion: 2.31.0\r\nSummary: x\r\n\r\nName: not-this\n"
            ),
            Some(("requests".into(), "2.31.0".into()))
        );
        assert_eq!(parse_metadata("Version: 1\n"), None);
        assert_eq!(
            parse_metadata("Name: x\n"),
            Some(("x".into(), String::new()))
        );
        assert_eq!(parse_metadata("\u{0}\u{ff}"), None);
    }

    #[test]
    fn directory_names() {
        assert_eq!(
            parse_dir_name("requests-2.31.0.dist-info"),
            Some(("requests".into(), "2.31.0".into()))
        );
        assert_eq!(
            parse_dir_name("six-1.16.0.egg-info"),
            Some(("six".into(), "1.16.0".into()))
        );
        assert_eq!(
            parse_dir_name("PyYAML-6.0-py3.11.egg-info"),
            Some(("PyYAML".into(), "6.0".into()))
        );
        assert_eq!(parse_dir_name("pkg.dist-info"), None);
        assert_eq!(parse_dir_name("x.txt"), None);
    }
}
