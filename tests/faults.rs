//! Faults injected for real, and what each may cost (the goal: nothing). A full disk (a small
//! tmpfs mounted for the test) while writing the response cache, a log and a checkpoint; two
//! processes sharing one cache, one of them SIGKILLed while appending. Tests that need a
//! mount the machine refuses are reported as ignored, with the reason, never passed.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};
use wst_sdk::student::{FinishReason, ResponseCache, StudentSample, TokenUsage};
use wst_sdk::train::TrainerState;
use wst_sdk::train::checkpoint;
use wst_sdk::train::log::{JsonlLog, Keep};

fn check(ok: bool, message: impl Into<String>) -> Result<(), Failed> {
    if ok { Ok(()) } else { Err(message.into().into()) }
}

/// A tmpfs of `kib` KiB mounted on a fresh folder, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: usize) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"]).arg(dir.path()).output().map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("cannot mount a tmpfs (needs root and mount rights): {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with a file of `bytes` (its remove frees them again).
    fn filler(&self, bytes: usize) -> PathBuf {
        let p = self.path().join("filler");
        let _ = std::fs::write(&p, vec![b'f'; bytes]);
        p
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn sample(text: String) -> StudentSample {
    StudentSample { text, finish_reason: FinishReason::Stop, usage: TokenUsage { prompt_tokens: 1, completion_tokens: 2 } }
}

/// The cache on a full disk: the append that fails leaves no fragment, and once space is
/// free again the next answer lands on a line of its own; everything reads back.
fn cache_on_a_full_disk() -> Result<(), Failed> {
    let disk = SmallDisk::mount(256)?;
    let slack = disk.filler(64 << 10);
    let cache = ResponseCache::open(disk.path().join("cache"))?;
    let mut stored = 0;
    let mut failure = None;
    for i in 0..100 {
        // Non-ASCII text, so a cut line would also be cut inside a character.
        match cache.put(format!("k{i}"), "s", sample(format!("{i}: {}", "é€".repeat(3000)))) {
            Ok(()) => stored += 1,
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    let failure = failure.ok_or("the disk never filled up")?;
    check(failure.contains("responses.jsonl") && (failure.contains("No space left") || failure.contains("os error 28")), format!("the error says where and why: {failure}"))?;
    // The same process goes on (the failed query is left out), and the disk gets room again:
    // its next append must not be glued to a fragment of the failed one.
    std::fs::remove_file(&slack).map_err(|e| e.to_string())?;
    cache.put("after".into(), "s", sample("written once the disk had room again".into()))?;
    let reopened = ResponseCache::open(disk.path().join("cache"))?;
    check(reopened.len() == stored + 1 && reopened.skipped_lines() == 0, format!("{} of {} answers, {} lines skipped", reopened.len(), stored + 1, reopened.skipped_lines()))?;
    check(reopened.get("after")?.map(|s| s.text).as_deref() == Some("written once the disk had room again"), "the later answer reads back")?;
    Ok(())
}

/// A metrics log on a full disk: the failed write is an error, and a resume keeps every line
/// written before it.
fn log_on_a_full_disk() -> Result<(), Failed> {
    let disk = SmallDisk::mount(128)?;
    let path = disk.path().join("metrics.jsonl");
    let mut log = JsonlLog::open(&path, Keep::Nothing)?;
    let mut written = 0;
    let failed = loop {
        let record = serde_json::json!({"step": written + 1, "note": "ß".repeat(2000)});
        match log.write(&record).and_then(|_| log.sync()) {
            Ok(()) => written += 1,
            Err(e) => break e.to_string(),
        }
        if written > 1000 {
            return Err("the disk never filled up".into());
        }
    };
    check(failed.contains("metrics.jsonl"), format!("the error names the file: {failed}"))?;
    drop(log);
    let kept = JsonlLog::open(&path, Keep::Lines(written))?;
    check(kept.lines() == written, format!("{} of {written} lines kept", kept.lines()))?;
    Ok(())
}

/// A Teacher whose checkpoint is `bytes` of weights.
struct Heavy(usize);

impl wst_sdk::Teacher for Heavy {
    fn sample(&mut self, _: &[wst_sdk::Query], _: &wst_sdk::TeacherSampling) -> wst_sdk::Result<Vec<Vec<wst_sdk::TeacherSample>>> {
        Ok(Vec::new())
    }
    fn step(&mut self, _: &[wst_sdk::teacher::TrainItem<'_>], _: &wst_sdk::teacher::StepSettings<'_>) -> wst_sdk::Result<Vec<wst_sdk::teacher::StepMetrics>> {
        Ok(Vec::new())
    }
    fn save_checkpoint(&self, dir: &Path) -> wst_sdk::Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| wst_sdk::Error::io(dir, e))?;
        let p = dir.join("weights.bin");
        std::fs::write(&p, vec![7u8; self.0]).map_err(|e| wst_sdk::Error::io(&p, e))
    }
    fn load_checkpoint(&mut self, dir: &Path) -> wst_sdk::Result<()> {
        let p = dir.join("weights.bin");
        let n = std::fs::metadata(&p).map_err(|e| wst_sdk::Error::io(&p, e))?.len();
        if n as usize != self.0 {
            return Err(wst_sdk::Error::Teacher(format!("weights.bin has {n} bytes, expected {}", self.0)));
        }
        Ok(())
    }
}

/// A checkpoint that does not fit: an error, and the one before it still loads whole.
fn checkpoint_on_a_full_disk() -> Result<(), Failed> {
    let disk = SmallDisk::mount(512)?;
    let root = disk.path().join("checkpoints");
    let state = |step| TrainerState { step, total_steps: 10, seed: 1, queries_per_step: 1, ..Default::default() };
    checkpoint::save(&root, &Heavy(200 << 10), &state(1), Some(2))?;
    let err = checkpoint::save(&root, &Heavy(400 << 10), &state(2), Some(2)).err().ok_or("a checkpoint larger than the free space was written")?;
    check(err.to_string().contains("weights.bin"), format!("the error names the file: {err}"))?;
    let listed = checkpoint::list(&root)?;
    check(listed.iter().map(|(s, _)| *s).collect::<Vec<_>>() == [1], format!("{listed:?}"))?;
    let loaded = checkpoint::load(&listed[0].1, &mut Heavy(200 << 10))?;
    check(loaded.step == 1, format!("{loaded:?}"))?;
    Ok(())
}

const CHILD_ENV: &str = "WST_FAULTS_APPEND_TO";

/// In a child process: appends long non-ASCII answers to the cache in `dir` until killed.
fn child_appends(dir: &str) -> ! {
    let cache = ResponseCache::open(dir).expect("open the shared cache");
    let me = std::process::id();
    for i in 0.. {
        cache.put(format!("{me}/{i}"), "s", sample(format!("{me} {i} {}", "ü".repeat(50_000)))).expect("append");
    }
    unreachable!()
}

/// Two processes append to one cache; one is SIGKILLed mid-run. The other's answers, and every
/// whole answer of the killed one, read back; appends made afterwards read back too.
fn shared_cache_with_a_killed_writer() -> Result<(), Failed> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let spawn = || Command::new(&me).env(CHILD_ENV, dir.path()).arg("--exact").arg("no-such-test").spawn();
    let mut victim = spawn().map_err(|e| e.to_string())?;
    let mut survivor = spawn().map_err(|e| e.to_string())?;
    std::thread::sleep(std::time::Duration::from_millis(700));
    victim.kill().map_err(|e| e.to_string())?;
    victim.wait().map_err(|e| e.to_string())?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    survivor.kill().map_err(|e| e.to_string())?;
    survivor.wait().map_err(|e| e.to_string())?;
    let cache = ResponseCache::open(dir.path())?;
    check(cache.len() > 2, format!("only {} answers were written", cache.len()))?;
    check(cache.skipped_lines() <= 2, format!("{} lines skipped: at most each killed writer's last", cache.skipped_lines()))?;
    cache.put("after".into(), "s", sample("written after the kills".into()))?;
    let again = ResponseCache::open(dir.path())?;
    check(again.len() == cache.len() && again.get("after")?.is_some(), "an append after the kills reads back")?;
    Ok(())
}

fn main() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child_appends(&dir);
    }
    let args = Arguments::from_args();
    let needs_mount = |name: &'static str, f: fn() -> Result<(), Failed>| {
        let probe = SmallDisk::mount(64);
        let trial = Trial::test(name, f);
        match probe {
            Ok(_) => trial,
            Err(why) => {
                eprintln!("IGNORED {name}: {why}");
                trial.with_ignored_flag(true)
            }
        }
    };
    let tests = vec![
        needs_mount("cache_on_a_full_disk", cache_on_a_full_disk),
        needs_mount("log_on_a_full_disk", log_on_a_full_disk),
        needs_mount("checkpoint_on_a_full_disk", checkpoint_on_a_full_disk),
        Trial::test("shared_cache_with_a_killed_writer", shared_cache_with_a_killed_writer),
    ];
    libtest_mimic::run(&args, tests).exit();
}
