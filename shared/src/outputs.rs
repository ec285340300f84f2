//! The catalogue of check outputs the agent of this version can report, with their Annex A
//! controls: the collector validates ISMS rules against it ("did you mean …"). The data file is
//! generated from the agent's registry by the agent's `protocol_doc` test, which also fails when
//! the two disagree. User-defined checks and drop-in evidence (`custom.*`, `dropin.*`) are not
//! listed: they are defined per site.

use std::sync::LazyLock;

/// One built-in check output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownOutput {
    pub id: String,
    pub controls: Vec<String>,
    pub description: String,
}

const TSV: &str = include_str!("../data/check-outputs.tsv");

static OUTPUTS: LazyLock<Vec<KnownOutput>> = LazyLock::new(|| parse(TSV));

fn parse(tsv: &str) -> Vec<KnownOutput> {
    tsv.lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let id = parts.next()?.trim().to_string();
            let controls = parts
                .next()?
                .split_whitespace()
                .map(str::to_string)
                .collect();
            let description = parts.next().unwrap_or("").trim().to_string();
            Some(KnownOutput {
                id,
                controls,
                description,
            })
        })
        .collect()
}

/// Every built-in output, in registry order.
pub fn all() -> &'static [KnownOutput] {
    &OUTPUTS
}

/// Looks an output up by id.
pub fn get(id: &str) -> Option<&'static KnownOutput> {
    OUTPUTS.iter().find(|o| o.id == id)
}

/// Prefixes of outputs defined per site rather than built in.
pub const SITE_DEFINED_PREFIXES: &[&str] = &["custom.", "dropin."];

/// True when `id` belongs to a site-defined namespace (not validated against the catalogue).
pub fn is_site_defined(id: &str) -> bool {
    SITE_DEFINED_PREFIXES.iter().any(|p| id.starts_with(p))
}

/// Renders the data file (the agent's test writes it from the registry).
pub fn render(outputs: &[KnownOutput]) -> String {
    let mut out = String::from("# id\tcontrols\tdescription (generated from the agent registry)\n");
    for o in outputs {
        out.push_str(&format!(
            "{}\t{}\t{}\n",
            o.id,
            o.controls.join(" "),
            o.description
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_parses_and_maps_to_known_controls() {
        assert!(all().len() >= 18);
        for output in all() {
            assert!(
                crate::report::is_valid_check_id(&output.id),
                "{}",
                output.id
            );
            assert!(!output.controls.is_empty());
            for c in &output.controls {
                assert!(crate::controls::is_known(c), "{}: {c}", output.id);
            }
        }
        assert!(get("accounts.uid0").is_some());
        assert!(is_site_defined("custom.my_check"));
    }

    #[test]
    fn render_and_parse_round_trip() {
        let text = render(all());
        assert_eq!(parse(&text), all());
    }
}
