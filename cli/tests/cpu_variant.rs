//! ggml's CPU backend, chosen at run time: `wst generate -v` names the variant it loaded, a
//! variant can be forced by name, a missing one is a clear error, and the installed layout
//! (`bin/wst` beside `lib/wst/`, `scripts/install.sh`) runs with no library path set. The
//! variant names are x86's and the layout Linux's.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn wst() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wst"))
}

/// A tiny llama GGUF Student in `dir`.
fn student(dir: &Path) -> PathBuf {
    let folder = dir.join("student");
    std::fs::create_dir_all(&folder).unwrap();
    wst_tests::tiny::write_model(&folder, wst_tests::tiny::Arch::Llama, 4);
    wst_tests::tiny::write_gguf(&folder)
}

fn generate(cmd: &mut Command, gguf: &Path) -> Output {
    cmd.args(["-v", "generate", "-n", "4", "--seed", "1", "-p", "hi", "-m"]).arg(format!("llamacpp:{}", gguf.display())).output().unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The `-v` log line that names the variant loaded.
fn backend_line(out: &Output) -> String {
    let t = text(out);
    t.lines().find(|l| l.contains("llama.cpp CPU backend:")).unwrap_or_else(|| panic!("no variant logged:\n{t}")).to_string()
}

/// The variant named in the `-v` log line.
fn variant(out: &Output) -> String {
    backend_line(out).split("llama.cpp CPU backend:").nth(1).unwrap().split_whitespace().next().unwrap().to_string()
}

#[test]
fn the_best_variant_for_this_cpu_is_loaded_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = student(dir.path());
    let out = generate(wst().env_remove("WST_GGML_CPU"), &gguf);
    assert!(out.status.success(), "{}", text(&out));
    let chosen = variant(&out);
    // What this CPU has decides the best one; never the AMX variant unless named.
    assert_ne!(chosen, "sapphirerapids");
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    if flags.contains(" avx512f ") {
        assert!(["skylakex", "cannonlake", "cascadelake", "icelake", "cooperlake", "zen4"].contains(&chosen.as_str()), "{chosen} on an AVX-512 CPU");
    } else if flags.contains(" avx2 ") {
        assert!(["haswell", "alderlake"].contains(&chosen.as_str()), "{chosen} on an AVX2 CPU");
    }
}

#[test]
fn a_variant_named_in_the_environment_is_loaded_and_a_wrong_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = student(dir.path());
    let out = generate(wst().env("WST_GGML_CPU", "x64"), &gguf);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(variant(&out), "x64");

    let out = generate(wst().env("WST_GGML_CPU", "no-such-cpu"), &gguf);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("WST_GGML_CPU=no-such-cpu: no such ggml CPU variant") && t.contains("haswell ("), "{t}");
}

#[test]
fn a_folder_without_variants_is_an_error_naming_it_and_a_bad_module_is_passed_over() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = student(dir.path());
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = generate(wst().env("WST_GGML_BACKENDS", &empty), &gguf);
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("no ggml CPU backend") && t.contains(&empty.display().to_string()), "{t}");

    // A file that is no ggml module is passed over with a warning; the real one beside it runs.
    std::fs::write(empty.join("libggml-cpu-bogus.so"), "not a library").unwrap();
    let built = Path::new(env!("CARGO_BIN_EXE_wst")).parent().unwrap();
    std::fs::copy(built.join("libggml-cpu-x64.so"), empty.join("libggml-cpu-x64.so")).unwrap();
    let out = generate(wst().env("WST_GGML_BACKENDS", &empty).env_remove("WST_GGML_CPU"), &gguf);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("skipping ggml CPU variant bogus"), "{}", text(&out));
    assert_eq!(variant(&out), "x64");
}

#[test]
fn the_installed_layout_runs_without_a_library_path() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = student(dir.path());
    // scripts/install.sh's layout, from this build's folder.
    let built = Path::new(env!("CARGO_BIN_EXE_wst")).parent().unwrap();
    let (bin, lib) = (dir.path().join("prefix/bin"), dir.path().join("prefix/lib/wst"));
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_wst"), bin.join("wst")).unwrap();
    let mut copied = 0;
    for e in std::fs::read_dir(built).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if (name.starts_with("libllama") || name.starts_with("libggml")) && name.contains(".so") {
            std::fs::copy(e.path(), lib.join(&name)).unwrap();
            copied += 1;
        }
    }
    assert!(copied >= 4, "libllama, libggml, libggml-base and the CPU variants beside the binary: {copied} found in {}", built.display());
    // Cargo's library path would find the build folder's copies: the rpath alone must do.
    let mut cmd = Command::new(bin.join("wst"));
    cmd.env_remove("LD_LIBRARY_PATH").env_remove("WST_GGML_BACKENDS").env_remove("WST_GGML_CPU");
    let out = generate(&mut cmd, &gguf);
    assert!(out.status.success(), "{}", text(&out));
    let logged = backend_line(&out);
    let lib = std::fs::canonicalize(&lib).unwrap();
    assert!(logged.contains(&lib.display().to_string()), "the variant should come from {}: {logged}", lib.display());

    // Reward plugins installed beside the libraries are found by name.
    wst_tests::build_plugins();
    let math = format!("{}wst_reward_math{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    std::fs::copy(wst_tests::artifact_dir().join(&math), lib.join(&math)).unwrap();
    std::fs::write(dir.path().join("answers.jsonl"), "{\"answer\": \"The answer is 4.\", \"gold\": \"4\"}\n").unwrap();
    let out = Command::new(bin.join("wst"))
        .env_remove("LD_LIBRARY_PATH")
        .env_remove("WST_PLUGIN_PATH")
        .args(["score", "--reward", "math", "--input"])
        .arg(dir.path().join("answers.jsonl"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let scored = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(scored.contains("accuracy\":1.0"), "{}", text(&out));
}
