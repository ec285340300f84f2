//! Flatpak applications and runtimes of the system installation (`/var/lib/flatpak`): each
//! `<kind>/<id>/<arch>/<branch>/active` link names the deployed commit; the version, when
//! the application ships AppStream metadata, is its newest `<release version=…>`.

use std::sync::LazyLock;

use regex::Regex;

static RELEASE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r#"<release\b[^>]*\bversion\s*=\s*["']([^"']+)["']"#).ok());

/// The first (newest, by AppStream convention) release version of a metainfo file.
pub fn parse_metainfo_version(text: &str) -> Option<String> {
    RELEASE.as_ref()?.captures(text).map(|c| c[1].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metainfo_versions() {
        let xml = "<component type=\"desktop-application\">\n<releases>\n  \
                   <release date=\"2024-05-01\" version=\"125.0.3\"/>\n  <release version='124.0'/>\n</releases>";
        assert_eq!(parse_metainfo_version(xml), Some("125.0.3".into()));
        assert_eq!(parse_metainfo_version("<releases/>"), None);
    }
}
