//! The software inventory check through `run_check` on the fixture hosts and on this machine.

use vigil_shared::{Status, Value};

use super::*;
use crate::checks::support::testing::*;

#[test]
fn healthy_host_has_flatpaks_and_packaged_python() {
    let r = run_fixture(&Software, "healthy");
    assert_well_formed(&r);
    assert_eq!(status(&r, SNAP), Status::NoData);
    assert_eq!(status(&r, FLATPAK), Status::Pass);
    assert_eq!(
        r[FLATPAK].summary,
        "2 Flatpak item(s): 1 application(s), 1 runtime(s)"
    );
    let firefox = &r[FLATPAK].evidence.checked[0];
    assert_eq!(firefox.id, "org.mozilla.firefox");
    assert_eq!(firefox.facts["version"], Value::from("126.0.1"));
    assert_eq!(firefox.facts["branch"], Value::from("stable"));
    assert_eq!(status(&r, PYTHON), Status::Pass);
    assert_eq!(checked(&r, PYTHON), ["requests", "six"]);
    assert_eq!(r[PYTHON].values["pip_installed"], Value::Int(0));
    assert_eq!(
        r[PYTHON].evidence.checked[0].facts["version"],
        Value::from("2.28.1")
    );
}

#[test]
fn misconfigured_host_has_snaps_and_pip_packages() {
    let r = run_fixture(&Software, "misconfigured");
    assert_well_formed(&r);
    assert_eq!(status(&r, SNAP), Status::Pass);
    assert_eq!(checked(&r, SNAP), ["core22", "lxd", "snapd"]);
    assert_eq!(
        r[SNAP].evidence.checked[1].facts["channel"],
        Value::from("5.0/stable")
    );
    assert_eq!(status(&r, FLATPAK), Status::NoData);
    assert_eq!(checked(&r, PYTHON), ["paramiko", "requests"]);
    assert_eq!(r[PYTHON].values["pip_installed"], Value::Int(2));
    assert_eq!(
        r[PYTHON].summary,
        "2 Python distribution(s), 2 of them installed outside the package manager"
    );
}

#[test]
fn minimal_host_has_nothing() {
    let r = run_fixture(&Software, "minimal");
    assert_well_formed(&r);
    for id in [SNAP, FLATPAK, PYTHON] {
        assert_eq!(status(&r, id), Status::NoData, "{id}");
    }
}

#[test]
fn snaps_without_state_and_broken_state() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("var/lib/snapd/snaps/core22_1380.snap", ""),
            ("var/lib/snapd/snaps/core22_1122.snap", ""),
            ("var/lib/snapd/snaps/partial", ""),
        ],
    );
    let r = run(&Software, dir.path());
    assert_eq!(status(&r, SNAP), Status::Pass);
    assert_eq!(
        r[SNAP].evidence.checked[0].facts["revision"],
        Value::from("1380")
    );
    write_tree(dir.path(), &[("var/lib/snapd/state.json", "{\"data\":")]);
    let r = run(&Software, dir.path());
    assert_eq!(status(&r, SNAP), Status::Error);
}

#[test]
fn this_machine_lists_every_distribution_of_debians_shared_site_directory() {
    let dir = "/usr/lib/python3/dist-packages";
    let expected = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    n.ends_with(".dist-info") || n.ends_with(".egg-info")
                })
                .count()
        })
        .unwrap_or(0);
    let r = run(&Software, std::path::Path::new("/"));
    assert_well_formed(&r);
    let listed = r[PYTHON]
        .evidence
        .checked
        .iter()
        .filter(|s| s.facts["location"] == Value::from(dir))
        .count();
    assert_eq!(listed, expected);
}
