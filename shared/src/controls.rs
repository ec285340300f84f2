//! The ISO/IEC 27001:2022 Annex A catalogue: 93 controls with their theme and title.
//!
//! Ids are written with the `A.` prefix (`A.8.8`) everywhere in Vigil so that Annex A controls
//! never clash with clause numbers (clause 8.1 is not control A.8.1).

use std::sync::LazyLock;

/// The four themes of Annex A 2022.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Theme {
    Organizational,
    People,
    Physical,
    Technological,
}

impl Theme {
    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Organizational => "Organizational",
            Theme::People => "People",
            Theme::Physical => "Physical",
            Theme::Technological => "Technological",
        }
    }
}

/// One Annex A control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// `A.5.1` … `A.8.34`.
    pub id: String,
    pub theme: Theme,
    /// The control's name, used as an identifier (the standard's text is not reproduced).
    pub title: String,
}

const CSV: &str = include_str!("../data/iso27001-2022-annex-a.csv");

static CATALOGUE: LazyLock<Vec<Control>> = LazyLock::new(|| parse_catalogue(CSV));

/// Parses the embedded `id,theme,title` CSV. Lines that do not parse are skipped; the unit
/// tests prove the embedded file yields all 93 controls.
fn parse_catalogue(csv: &str) -> Vec<Control> {
    csv.lines()
        .skip(1)
        .filter_map(|line| {
            let mut parts = line.splitn(3, ',');
            let id = parts.next()?.trim();
            let theme = match parts.next()?.trim() {
                "Organizational" => Theme::Organizational,
                "People" => Theme::People,
                "Physical" => Theme::Physical,
                "Technological" => Theme::Technological,
                _ => return None,
            };
            let title = parts.next()?.trim().trim_matches('"');
            Some(Control {
                id: format!("A.{id}"),
                theme,
                title: title.to_string(),
            })
        })
        .collect()
}

/// All 93 Annex A 2022 controls in catalogue order.
pub fn all() -> &'static [Control] {
    &CATALOGUE
}

/// Looks a control up by its `A.`-prefixed id.
pub fn get(id: &str) -> Option<&'static Control> {
    CATALOGUE.iter().find(|c| c.id == id)
}

/// True when `id` names an Annex A 2022 control (`A.5.1` … `A.8.34`).
pub fn is_known(id: &str) -> bool {
    get(id).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_has_93_controls_in_four_themes() {
        let all = all();
        assert_eq!(all.len(), 93);
        let count = |t| all.iter().filter(|c| c.theme == t).count();
        assert_eq!(count(Theme::Organizational), 37);
        assert_eq!(count(Theme::People), 8);
        assert_eq!(count(Theme::Physical), 14);
        assert_eq!(count(Theme::Technological), 34);
    }

    #[test]
    fn lookups_use_the_annex_prefix() {
        assert_eq!(
            get("A.8.8").map(|c| c.title.as_str()),
            Some("Management of technical vulnerabilities")
        );
        assert!(is_known("A.5.1"));
        assert!(is_known("A.8.34"));
        assert!(!is_known("8.8"));
        assert!(!is_known("A.8.35"));
        assert!(!is_known("A.9.1"));
    }
}
