//! Which build of ggml's CPU backend decodes for the llama.cpp Student, chosen at run time.
//!
//! ggml is built once per x86 feature level (plain x86-64, SSE4.2, AVX, AVX2, AVX-512 with
//! VBMI, VNNI and BF16, ...), each a module `libggml-cpu-<name>.so` that scores how well it
//! fits this CPU (`ggml_backend_score`, 0 when it cannot run here). The best one is loaded, as
//! llama.cpp's own releases do, so one binary runs AVX-512 kernels where the CPU has them and
//! AVX2 elsewhere. Variants with AMX are left out unless asked for by name: the machines this
//! was built on report AMX but fault on its first tile instruction.

use std::ffi::{CString, c_int};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use wst_sdk::{Error, Result};

/// Names a variant to load instead of the best-scoring one (`haswell`, `zen4`, ...): to compare
/// variants side by side, or to allow an AMX variant on a machine where AMX works.
pub const FORCE_ENV: &str = "WST_GGML_CPU";
/// A folder to load the variants from instead of the default places.
pub const DIR_ENV: &str = "WST_GGML_BACKENDS";
/// Variants that run AMX tile instructions (ggml's `sapphirerapids`), loaded only when named.
const AMX_VARIANTS: &[&str] = &["sapphirerapids"];

/// The CPU backend module llama.cpp runs on in this process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuVariant {
    /// ggml's name for it (`haswell` is AVX2 with FMA, `zen4` AVX-512 with VBMI, VNNI, BF16).
    pub name: String,
    /// The module file.
    pub path: PathBuf,
    /// Its `ggml_backend_score` on this CPU (more features used, higher).
    pub score: i32,
    /// Every variant found beside it, with its score, best first.
    pub candidates: Vec<(String, i32)>,
}

/// Loads the CPU variant once per process (llama.cpp has no CPU backend before this) and says
/// which it is.
pub fn cpu_variant() -> Result<&'static CpuVariant> {
    loaded().map_err(|message| Error::Student { student: "llamacpp".into(), message: message.clone() })
}

pub(crate) fn loaded() -> std::result::Result<&'static CpuVariant, &'static String> {
    static LOADED: OnceLock<std::result::Result<CpuVariant, String>> = OnceLock::new();
    LOADED.get_or_init(load).as_ref()
}

fn load() -> std::result::Result<CpuVariant, String> {
    let (dir, found) = find_modules()?;
    let mut scored = Vec::new();
    for (name, path) in found {
        // A file that is not a loadable ggml module is passed over, as ggml's own loader does.
        match score(&path) {
            Ok(s) => scored.push((name, path, s)),
            Err(e) => tracing::warn!("skipping ggml CPU variant {name}: {e}"),
        }
    }
    scored.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let candidates: Vec<(String, i32)> = scored.iter().map(|(n, _, s)| (n.clone(), *s)).collect();
    let forced = std::env::var(FORCE_ENV).ok().filter(|v| !v.is_empty());
    let chosen = choose(&candidates, forced.as_deref()).map_err(|e| format!("{e} (variants in {})", dir.display()))?;
    let (name, path, score) = scored.swap_remove(chosen);
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| format!("{}: a path with a NUL byte", path.display()))?;
    // SAFETY: a NUL-terminated path; ggml opens the module, checks its API version and
    // registers its backend, returning null (and logging why) when it cannot.
    let reg = unsafe { llama_cpp_sys_2::ggml_backend_load(c_path.as_ptr()) };
    if reg.is_null() {
        return Err(format!("ggml could not load its CPU backend {} (its log says why)", path.display()));
    }
    tracing::info!(variant = %name, score, path = %path.display(), "llama.cpp CPU backend: {name}");
    Ok(CpuVariant { name, path, score, candidates })
}

/// Picks the variant to load from `(name, score)` pairs sorted best first: the named one, or
/// the best that can run here and uses no AMX.
pub(crate) fn choose(candidates: &[(String, i32)], forced: Option<&str>) -> std::result::Result<usize, String> {
    let names = || candidates.iter().map(|(n, s)| format!("{n} ({s})")).collect::<Vec<_>>().join(", ");
    if let Some(want) = forced {
        let i = candidates.iter().position(|(n, _)| n == want).ok_or_else(|| format!("{FORCE_ENV}={want}: no such ggml CPU variant; found {}", names()))?;
        if candidates[i].1 <= 0 {
            return Err(format!("{FORCE_ENV}={want}: this CPU cannot run that variant (score 0); found {}", names()));
        }
        return Ok(i);
    }
    candidates.iter().position(|(n, s)| *s > 0 && !AMX_VARIANTS.contains(&n.as_str())).ok_or_else(|| format!("no ggml CPU variant can run on this CPU; found {}", names()))
}

/// The folder of variant modules: `WST_GGML_BACKENDS` when set, else the first of the
/// executable's folder, `../lib/wst` beside it, and the folder they were built into.
fn find_modules() -> std::result::Result<(PathBuf, Vec<(String, PathBuf)>), String> {
    let dirs: Vec<PathBuf> = match std::env::var_os(DIR_ENV).filter(|v| !v.is_empty()) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => {
            let exe_dir = std::env::current_exe().ok().and_then(|p| p.parent().map(Path::to_path_buf));
            let mut dirs: Vec<PathBuf> = exe_dir.iter().flat_map(|d| [d.clone(), d.join("../lib/wst")]).collect();
            dirs.extend(option_env!("WST_GGML_BACKENDS_DIR").map(PathBuf::from));
            dirs
        }
    };
    for dir in &dirs {
        // `bin/../lib/wst` is logged as `lib/wst`.
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        let found = variants_in(&dir);
        if !found.is_empty() {
            return Ok((dir, found));
        }
    }
    let looked = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    Err(format!(
        "no ggml CPU backend ({}ggml-cpu-*{}) in {looked}: install them beside the `wst` binary (scripts/install.sh) or set {DIR_ENV}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// `(variant, path)` of every `libggml-cpu-<variant>.so` in `dir`, by name.
fn variants_in(dir: &Path) -> Vec<(String, PathBuf)> {
    let prefix = format!("{}ggml-cpu-", std::env::consts::DLL_PREFIX);
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().into_string().ok()?;
            let name = file.strip_prefix(&prefix)?.strip_suffix(std::env::consts::DLL_SUFFIX)?.to_string();
            Some((name, e.path()))
        })
        .collect();
    found.sort();
    found
}

/// The module's own verdict on this CPU, from its exported `ggml_backend_score`.
fn score(path: &Path) -> std::result::Result<i32, String> {
    // SAFETY: opening a ggml backend module runs only its static initialisers, which ggml keeps
    // free of variant-specific instructions (its own loader opens every variant the same way).
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // SAFETY: ggml declares `int ggml_backend_score(void)`.
    let f = unsafe { lib.get::<unsafe extern "C" fn() -> c_int>(b"ggml_backend_score\0") }.map_err(|e| format!("{} is not a ggml backend module: {e}", path.display()))?;
    // SAFETY: it reads CPUID and returns.
    Ok(unsafe { f() })
}

#[cfg(test)]
mod tests {
    use super::choose;

    fn list(items: &[(&str, i32)]) -> Vec<(String, i32)> {
        items.iter().map(|(n, s)| (n.to_string(), *s)).collect()
    }

    #[test]
    fn the_best_variant_that_runs_here_without_amx_is_chosen() {
        // Sorted best first, as `load` sorts them; AMX's variant scores highest where CPUID
        // reports AMX, and is passed over.
        let c = list(&[("sapphirerapids", 4091), ("zen4", 2043), ("icelake", 1019), ("haswell", 63), ("x64", 1)]);
        assert_eq!(choose(&c, None), Ok(1));
        let avx2_only = list(&[("haswell", 63), ("sse42", 3), ("x64", 1), ("skylakex", 0), ("zen4", 0)]);
        assert_eq!(choose(&avx2_only, None), Ok(0));
    }

    #[test]
    fn a_named_variant_is_loaded_if_it_runs_here_and_refused_otherwise() {
        let c = list(&[("sapphirerapids", 4091), ("zen4", 2043), ("haswell", 63), ("riscv", 0)]);
        assert_eq!(choose(&c, Some("haswell")), Ok(2));
        assert_eq!(choose(&c, Some("sapphirerapids")), Ok(0));
        let e = choose(&c, Some("riscv")).unwrap_err();
        assert!(e.contains("cannot run that variant"), "{e}");
        let e = choose(&c, Some("avx10")).unwrap_err();
        assert!(e.contains("no such ggml CPU variant") && e.contains("zen4 (2043)"), "{e}");
    }

    #[test]
    fn no_runnable_variant_is_an_error_naming_what_was_found() {
        let e = choose(&list(&[("sapphirerapids", 4091), ("zen4", 0)]), None).unwrap_err();
        assert!(e.contains("sapphirerapids (4091), zen4 (0)"), "{e}");
        assert!(choose(&[], None).is_err());
    }
}
