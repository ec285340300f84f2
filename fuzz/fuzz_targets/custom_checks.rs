//! User-defined checks (checks.d/*.toml): parsed and validated, and every accepted check
//! judged against the healthy fixture host (commands are not allowed, so none runs).
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vigil_agent::checks::custom::{Settings, def, eval};
use vigil_agent::hostroot::HostRoot;

fn root() -> &'static HostRoot {
    static ROOT: OnceLock<HostRoot> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../agent/fixtures/hosts/healthy");
        HostRoot::new(dir).expect("fixture root")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let settings = Settings::default();
    let (defs, _problems) =
        def::parse_file(Path::new("/etc/vigil/checks.d/fuzz.toml"), text, &settings);
    for d in &defs {
        let mut env = eval::Env::new(root(), &settings);
        let _ = eval::judge(d, &mut env);
    }
});
