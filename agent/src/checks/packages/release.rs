//! Release metadata of a repository (`InRelease`, clear-signed, or `Release`): the fields apt
//! stores for pinning and defaults (Suite, Codename, Version, Origin, Label, NotAutomatic,
//! ButAutomaticUpgrades). The signature is not verified: apt verified it when it fetched the
//! file, and we only read what apt itself reads from the lists directory.

use super::sources::string_to_bool;
use super::tagfile;

/// What apt keeps of a Release file. Empty strings are absent fields (apt's `NULL`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReleaseInfo {
    /// `Suite` (apt calls it the archive: `bookworm-security`, `stable`).
    pub suite: String,
    pub codename: String,
    pub version: String,
    pub origin: String,
    pub label: String,
    /// `Date` (RFC 2822), when the archive published this Release file.
    pub date: String,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
}

fn present(s: &str) -> Option<&str> {
    if s.is_empty() { None } else { Some(s) }
}

impl ReleaseInfo {
    pub fn suite(&self) -> Option<&str> {
        present(&self.suite)
    }
    pub fn codename(&self) -> Option<&str> {
        present(&self.codename)
    }
    pub fn version(&self) -> Option<&str> {
        present(&self.version)
    }
    pub fn origin(&self) -> Option<&str> {
        present(&self.origin)
    }
    pub fn label(&self) -> Option<&str> {
        present(&self.label)
    }

    /// The `Date` field as UTC, when it parses (`Tue, 19 May 2026 21:14:53 UTC`).
    pub fn published(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let d = self.date.trim();
        let d = d
            .strip_suffix(" UTC")
            .map(|s| format!("{s} +0000"))
            .unwrap_or_else(|| d.to_string());
        chrono::DateTime::parse_from_rfc2822(&d)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}

/// The signed text of a clear-signed message, or the input when it is not clear-signed
/// (apt's `OpenMaybeClearSignedFile`). Dash-escaped lines (`- -----`) are unescaped.
pub fn strip_clearsign(text: &str) -> String {
    let mut lines = text.split('\n');
    let first = text.split('\n').next().unwrap_or("").trim_end_matches('\r');
    if first != "-----BEGIN PGP SIGNED MESSAGE-----" {
        return text.to_string();
    }
    lines.next();
    // Armor headers (Hash: …) run until the first empty line.
    for line in lines.by_ref() {
        if line.trim_end_matches('\r').is_empty() {
            break;
        }
    }
    let mut out = String::with_capacity(text.len());
    for line in lines {
        let l = line.trim_end_matches('\r');
        if l == "-----BEGIN PGP SIGNATURE-----" {
            break;
        }
        out.push_str(l.strip_prefix("- ").unwrap_or(l));
        out.push('\n');
    }
    out
}

/// Parses a Release or InRelease file. `None` when it holds no stanza.
pub fn parse_release(text: &str) -> Option<ReleaseInfo> {
    let body = strip_clearsign(text);
    let parsed = tagfile::parse(&body);
    let st = parsed.stanzas.first()?;
    let field = |name: &str| st.get(name).unwrap_or("").to_string();
    let flag = |name: &str| st.get(name).and_then(string_to_bool).unwrap_or(false);
    Some(ReleaseInfo {
        suite: field("Suite"),
        codename: field("Codename"),
        version: field("Version"),
        origin: field("Origin"),
        label: field("Label"),
        date: field("Date"),
        not_automatic: flag("NotAutomatic"),
        but_automatic_upgrades: flag("ButAutomaticUpgrades"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INRELEASE: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian-Security\nSuite: oldstable-security\nVersion: 12\nCodename: bookworm-security\nDate: Tue, 19 May 2026 21:14:53 UTC\nAcquire-By-Hash: yes\nArchitectures: amd64 arm64 i386\nComponents: updates/main\nDescription: Debian 12 - Security Updates\nMD5Sum:\n 0c4d7b9d 1234 main/binary-amd64/Packages\n- -----not a signature\n-----BEGIN PGP SIGNATURE-----\n\niQIzBAEBCAAd\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn clearsigned_inrelease() {
        let r = parse_release(INRELEASE).unwrap();
        assert_eq!(r.origin(), Some("Debian"));
        assert_eq!(r.label(), Some("Debian-Security"));
        assert_eq!(r.suite(), Some("oldstable-security"));
        assert_eq!(r.codename(), Some("bookworm-security"));
        assert_eq!(r.version(), Some("12"));
        assert!(!r.not_automatic);
        assert!(strip_clearsign(INRELEASE).contains("-----not a signature"));
        assert_eq!(
            r.published().map(|d| d.to_rfc3339()).as_deref(),
            Some("2026-05-19T21:14:53+00:00")
        );
    }

    #[test]
    fn backports_flags_and_plain_release() {
        let r = parse_release("Origin: Debian Backports\nLabel: Debian Backports\nSuite: bookworm-backports\nCodename: bookworm-backports\nNotAutomatic: yes\nButAutomaticUpgrades: yes\n").unwrap();
        assert!(r.not_automatic && r.but_automatic_upgrades);
        let r = parse_release("Origin: X\r\nNotAutomatic: no\r\n").unwrap();
        assert!(!r.not_automatic);
        assert_eq!(r.suite(), None);
    }

    #[test]
    fn junk_is_not_a_release() {
        assert_eq!(parse_release(""), None);
        assert_eq!(parse_release("-----BEGIN PGP SIGNED MESSAGE-----\n"), None);
        let _ = parse_release("\u{0}\u{1}:::\n\n\n");
    }
}
