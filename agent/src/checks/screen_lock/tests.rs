//! The screen lock check through `run_check` on the fixture hosts and on trees built here.

use vigil_shared::{Status, Value};

use super::*;
use crate::checks::support::testing::*;
use crate::settings::ChecksConfig;

#[test]
fn healthy_host_enforces_a_locked_policy() {
    let r = run_fixture(&ScreenLock, "healthy");
    assert_well_formed(&r);
    assert_eq!(status(&r, ID), Status::Pass, "{:?}", r[ID]);
    assert_eq!(checked(&r, ID).len(), 4);
    let idle = &r[ID].evidence.checked[1];
    assert_eq!(idle.id, "/org/gnome/desktop/session/idle-delay");
    assert_eq!(idle.facts["value"], Value::from("uint32 600"));
    assert_eq!(
        idle.facts["set_in"],
        Value::from("/etc/dconf/db/local.d/00-screensaver:3")
    );
}

#[test]
fn misconfigured_host_never_locks_and_nothing_is_locked() {
    let r = run_fixture(&ScreenLock, "misconfigured");
    assert_well_formed(&r);
    assert_eq!(status(&r, ID), Status::Fail);
    assert_eq!(
        offenders(&r, ID),
        [
            "/etc/dconf/db/local",
            "/org/gnome/desktop/screensaver/lock-enabled",
            "/org/gnome/desktop/session/idle-delay",
            "/org/gnome/desktop/screensaver/lock-delay",
            "/org/gnome/desktop/lockdown/disable-lock-screen"
        ]
    );
    assert_eq!(
        reason(&r, ID, "/org/gnome/desktop/session/idle-delay"),
        "the session never goes idle (idle-delay=0); not locked: every user can change it"
    );
    assert_eq!(
        reason(&r, ID, "/org/gnome/desktop/screensaver/lock-delay"),
        "the lock comes 3600 s after the screen blanks, later than 5 s; not locked: every user can change it"
    );
    assert_eq!(
        reason(&r, ID, "/org/gnome/desktop/lockdown/disable-lock-screen"),
        "not locked: every user can change it"
    );
}

#[test]
fn minimal_host_has_no_desktop() {
    let r = run_fixture(&ScreenLock, "minimal");
    assert_eq!(status(&r, ID), Status::NoData);
    assert_eq!(r[ID].summary, "no desktop environment is installed");
}

#[test]
fn gnome_defaults_without_system_databases() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("usr/share/gnome-shell/x", "")]);
    let r = run(&ScreenLock, dir.path());
    assert_eq!(status(&r, ID), Status::Fail);
    assert_eq!(offenders(&r, ID).len(), 4);
    assert!(
        reason(&r, ID, "/org/gnome/desktop/session/idle-delay")
            .ends_with("(the dconf user profile names no system database)")
    );
    // Without the lock requirement, GNOME's defaults (300 s, lock at once) are compliant.
    let mut settings = ChecksConfig::default();
    settings.screen_lock.require_locks = false;
    let r = run_with(&ScreenLock, dir.path(), &settings);
    assert_eq!(status(&r, ID), Status::Pass, "{:?}", r[ID]);
}

#[test]
fn database_priority_and_file_order() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("usr/bin/gnome-shell", ""),
            (
                "etc/dconf/profile/user",
                "user-db:user\nsystem-db:site\nsystem-db:local\n",
            ),
            ("etc/dconf/db/site", ""),
            ("etc/dconf/db/local", ""),
            (
                "etc/dconf/db/site.d/10-a",
                "[org/gnome/desktop/session]\nidle-delay=uint32 1200\n",
            ),
            (
                "etc/dconf/db/site.d/20-b",
                "[org/gnome/desktop/session]\nidle-delay=uint32 800\n",
            ),
            (
                "etc/dconf/db/local.d/00",
                "[org/gnome/desktop/session]\nidle-delay=uint32 60\n",
            ),
            (
                "etc/dconf/db/local.d/locks/all",
                "/org/gnome/desktop/session/idle-delay\n/org/gnome/desktop/screensaver/lock-enabled\n\
                 /org/gnome/desktop/screensaver/lock-delay\n/org/gnome/desktop/lockdown/disable-lock-screen\n",
            ),
        ],
    );
    let r = run(&ScreenLock, dir.path());
    assert_eq!(status(&r, ID), Status::Pass, "{:?}", r[ID]);
    let idle = r[ID]
        .evidence
        .checked
        .iter()
        .find(|s| s.id.ends_with("idle-delay"))
        .unwrap();
    assert_eq!(
        idle.facts["value"],
        Value::from("uint32 800"),
        "site outranks local; 20-b overrides 10-a"
    );
}

#[test]
fn other_desktops_are_not_judged() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("usr/bin/plasmashell", "")]);
    let r = run(&ScreenLock, dir.path());
    assert_eq!(status(&r, ID), Status::NoData);
    assert_eq!(
        r[ID].summary,
        "KDE Plasma installed: only GNOME's screen lock settings are read"
    );
}
