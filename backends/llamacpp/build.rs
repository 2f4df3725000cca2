//! Tells `cpu_variant` where llama-cpp-sys-2 built ggml's CPU backend variants, and puts them
//! and the shared libraries they need beside the binaries of this build, so that a build
//! folder runs as it would once installed (the binaries' rpath is `$ORIGIN`, `cli/build.rs`).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    let Some(backends) = std::env::var_os("DEP_LLAMA_BACKENDS_DIR").map(PathBuf::from) else {
        println!("cargo:warning=llama-cpp-sys-2 reported no backends folder: ggml's CPU variants must be found at run time");
        return;
    };
    println!("cargo:rustc-env=WST_GGML_BACKENDS_DIR={}", backends.display());
    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let Some(profile_dir) = out.ancestors().nth(3) else { return };
    // libllama.so.0, libggml.so.0, ... (the names binaries ask for) next to the variants:
    // llama-cpp-sys-2 links only the unversioned names there, and those are symlinks.
    let libs = backends.parent().map(|p| p.join("lib")).unwrap_or_default();
    for (dir, wanted) in [(&backends, "ggml-cpu-"), (&libs, ".so")] {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().contains(wanted) {
                place(&entry.path(), &profile_dir.join(&name));
            }
        }
    }
}

/// Puts the file `from` names (following symlinks) at `to`, as a hard link or a copy,
/// replacing what an earlier build left there.
fn place(from: &Path, to: &Path) {
    let Ok(real) = std::fs::canonicalize(from) else { return };
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(&real, to).is_err()
        && let Err(e) = std::fs::copy(&real, to)
    {
        println!("cargo:warning=cannot place {} beside the binaries: {e}", from.display());
    }
}
