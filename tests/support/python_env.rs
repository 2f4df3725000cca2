//! The python reward's test environment, which `scripts/setup.sh` makes: a virtual environment
//! (`WST_PYREWARD`, default /var/tmp/wst-pyreward) with numpy, math-verify and TRL's rewards.

use std::path::PathBuf;

/// The environment's folder; fails the test, saying how to make it, when it is missing.
pub fn venv() -> PathBuf {
    let venv = PathBuf::from(std::env::var("WST_PYREWARD").unwrap_or_else(|_| "/var/tmp/wst-pyreward".into()));
    assert!(venv.join("bin/python").is_file(), "{} is missing: run scripts/setup.sh, which makes the python reward's test environment", venv.display());
    venv
}

/// The environment's interpreter.
pub fn python() -> PathBuf {
    venv().join("bin/python")
}

/// A file of TRL's installed `trl/rewards` package (e.g. `accuracy_rewards.py`), unchanged.
pub fn trl_rewards_file(name: &str) -> PathBuf {
    let lib = venv().join("lib");
    let found = std::fs::read_dir(&lib).into_iter().flatten().flatten().map(|e| e.path().join("site-packages/trl/rewards").join(name)).find(|p| p.is_file());
    found.unwrap_or_else(|| panic!("trl/rewards/{name} is missing under {}: run scripts/setup.sh", lib.display()))
}

/// The TRL-style reward functions the tests call (`tests/fixtures/python_rewards/rewards.py`).
pub fn rewards_fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/python_rewards/rewards.py")
}
