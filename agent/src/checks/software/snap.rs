//! Installed snaps from snapd's state (`/var/lib/snapd/state.json`): name, type, current
//! revision and tracked channel. Versions are in each revision's `meta/snap.yaml`, readable
//! only where the snap is mounted (`/snap/<name>/<revision>/`).

use serde_json::Value as Json;

/// One installed snap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub name: String,
    pub kind: String,
    pub revision: String,
    pub channel: String,
    pub active: bool,
}

/// Why the state file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapError {
    #[error("not JSON: {0}")]
    Json(String),
    #[error("no data.snaps object")]
    Shape,
}

/// Parses `state.json`.
pub fn parse_state(text: &str) -> Result<Vec<Snap>, SnapError> {
    let json: Json = serde_json::from_str(text).map_err(|e| SnapError::Json(e.to_string()))?;
    let snaps = json
        .get("data")
        .and_then(|d| d.get("snaps"))
        .and_then(Json::as_object)
        .ok_or(SnapError::Shape)?;
    let text_of = |v: Option<&Json>| -> String {
        match v {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    };
    let mut out: Vec<Snap> = snaps
        .iter()
        .map(|(name, s)| {
            let channel = text_of(s.get("tracking-channel"));
            Snap {
                name: name.clone(),
                kind: text_of(s.get("type")),
                revision: text_of(s.get("current")),
                channel: if channel.is_empty() {
                    text_of(s.get("channel"))
                } else {
                    channel
                },
                active: s.get("active").and_then(Json::as_bool).unwrap_or(false),
            }
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// `version:` of a `snap.yaml`.
pub fn parse_snap_yaml_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("version:"))
        .map(|v| v.trim().trim_matches(['\'', '"']).to_string())
        .filter(|v| !v.is_empty())
}

/// Name and revision from a file name in `/var/lib/snapd/snaps` (`core22_1380.snap`).
pub fn parse_snap_file_name(name: &str) -> Option<(String, String)> {
    let stem = name.strip_suffix(".snap")?;
    let (n, rev) = stem.rsplit_once('_')?;
    (!n.is_empty() && !rev.is_empty()).then(|| (n.to_string(), rev.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_json() {
        let text = r#"{"data":{"snaps":{
            "core22":{"type":"base","sequence":[{"name":"core22","snap-id":"x","revision":"1380"}],
                      "active":true,"current":"1380","tracking-channel":"latest/stable"},
            "lxd":{"type":"app","sequence":[],"active":false,"current":"29351","channel":"5.21/stable"}
        }},"changes":{}}"#;
        let snaps = parse_state(text).unwrap();
        assert_eq!(
            snaps,
            [
                Snap {
                    name: "core22".into(),
                    kind: "base".into(),
                    revision: "1380".into(),
                    channel: "latest/stable".into(),
                    active: true
                },
                Snap {
                    name: "lxd".into(),
                    kind: "app".into(),
                    revision: "29351".into(),
                    channel: "5.21/stable".into(),
                    active: false
                }
            ]
        );
        assert_eq!(parse_state("{}"), Err(SnapError::Shape));
        assert!(matches!(parse_state("{"), Err(SnapError::Json(_))));
        assert_eq!(parse_state(r#"{"data":{"snaps":{}}}"#), Ok(vec![]));
    }

    #[test]
    fn yaml_and_file_names() {
        assert_eq!(
            parse_snap_yaml_version("name: lxd\nversion: '5.21.1-2d13beb'\nsummary: x\n"),
            Some("5.21.1-2d13beb".into())
        );
        assert_eq!(parse_snap_yaml_version("name: x\n"), None);
        assert_eq!(
            parse_snap_file_name("core22_1380.snap"),
            Some(("core22".into(), "1380".into()))
        );
        assert_eq!(
            parse_snap_file_name("gnome-42-2204_176.snap"),
            Some(("gnome-42-2204".into(), "176".into()))
        );
        assert_eq!(parse_snap_file_name("partial"), None);
        assert_eq!(parse_snap_file_name("_1.snap"), None);
    }
}
