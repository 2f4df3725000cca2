//! The on-disk response cache: every Student answer is appended to a JSONL file the moment it
//! arrives, keyed by (Student, messages, sampling settings, seed, answer index). So the
//! baseline s of a query is computed once across runs, and a killed run loses no paid call.
//!
//! Answers are cached one by one: asking for K = 10 after K = 5 only requests the 5 new ones,
//! with the seeds a single request for 10 would have used (answer i has seed `seed + i`).
//! Without a seed, a repeated request returns the same cached answers, which is what a
//! baseline wants; give a seed per step to get fresh samples.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{SamplingParams, Student, StudentCapabilities, StudentRequest, StudentSample, StudentUsage};
use crate::error::{Error, Result};

/// The cache file's name inside the cache folder.
pub const CACHE_FILE: &str = "responses.jsonl";

#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    student: String,
    sample: StudentSample,
}

/// An append-only JSONL store of Student answers, shared by every Student of a run and safe to
/// share between processes: appends and the start-up repair of a cut line happen under an
/// exclusive file lock. Only an index (key → offset and length) is kept in memory; answers are
/// read back from the file when asked for.
#[derive(Debug)]
pub struct ResponseCache {
    path: PathBuf,
    index: Mutex<HashMap<String, (u64, usize)>>,
    file: Mutex<File>,
    skipped: usize,
}

impl ResponseCache {
    /// Opens (or creates) the cache in `dir`. A last line cut short by a kill is dropped with a
    /// warning; any other unreadable line (a fragment another process left when it was killed
    /// mid-append, before later appends) is skipped and counted, with a warning naming the file
    /// and the first such line: its answer is asked for again, nothing else is lost.
    pub fn open(dir: impl AsRef<Path>) -> Result<Arc<Self>> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(CACHE_FILE);
        let io = |e: std::io::Error| Error::io(&path, e);
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&path).map_err(io)?;
        // Another process may be appending: read and repair under its lock.
        file.lock().map_err(io)?;
        let scanned = Self::scan(&path, &file);
        let repaired = scanned.and_then(|scan| {
            if scan.keep < scan.len {
                file.set_len(scan.keep).map_err(io)?;
            } else if scan.len > 0 && !scan.ends_in_newline {
                file.write_all(b"\n").map_err(io)?;
            }
            Ok(scan)
        });
        file.unlock().map_err(io)?;
        let scan = repaired?;
        if let Some(line) = scan.first_skipped {
            tracing::warn!(path = %path.display(), first_line = line, skipped = scan.skipped, "skipping unreadable cache lines (fragments of interrupted writes); their answers will be asked for again");
        }
        Ok(Arc::new(ResponseCache { index: Mutex::new(scan.index), file: Mutex::new(file), path, skipped: scan.skipped }))
    }

    /// Unreadable lines skipped when the cache was opened.
    pub fn skipped_lines(&self) -> usize {
        self.skipped
    }

    /// Indexes the file line by line.
    fn scan(path: &Path, file: &File) -> Result<Scan> {
        let io = |e: std::io::Error| Error::io(path, e);
        let mut reader = BufReader::new(file.try_clone().map_err(io)?);
        reader.seek(SeekFrom::Start(0)).map_err(io)?;
        let (mut index, mut offset, mut line_no, mut keep) = (HashMap::new(), 0u64, 0usize, None);
        let (mut skipped, mut first_skipped) = (0usize, None);
        let mut line = Vec::new();
        let mut last_newline = true;
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(io)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            last_newline = line.last() == Some(&b'\n');
            let body = if last_newline { &line[..n - 1] } else { &line[..] };
            if !body.iter().all(u8::is_ascii_whitespace) {
                match serde_json::from_slice::<Entry>(body) {
                    Ok(e) => {
                        index.insert(e.key, (offset, body.len()));
                    }
                    Err(err) if !last_newline => {
                        tracing::warn!(path = %path.display(), line = line_no, "dropping a cache line cut short by an interrupted write: {err}");
                        keep = Some(offset);
                    }
                    Err(err) => {
                        tracing::debug!(path = %path.display(), line = line_no, "unreadable cache line: {err}");
                        skipped += 1;
                        first_skipped.get_or_insert(line_no);
                    }
                }
            }
            offset += n as u64;
        }
        Ok(Scan { index, keep: keep.unwrap_or(offset), len: offset, ends_in_newline: last_newline, skipped, first_skipped })
    }

    /// The cache file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of cached answers.
    pub fn len(&self) -> usize {
        self.index.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether the cache holds no answer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached answer under `key`, read from the file.
    pub fn get(&self, key: &str) -> Result<Option<StudentSample>> {
        let Some(&(offset, len)) = self.index.lock().unwrap_or_else(|e| e.into_inner()).get(key) else { return Ok(None) };
        let io = |e: std::io::Error| Error::io(&self.path, e);
        let mut buf = vec![0; len];
        {
            let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
            f.seek(SeekFrom::Start(offset)).map_err(io)?;
            f.read_exact(&mut buf).map_err(io)?;
        }
        let entry: Entry = serde_json::from_slice(&buf).map_err(|e| Error::Dataset {
            path: self.path.clone(),
            line: 0,
            field: "<row>".into(),
            message: format!("the cache entry at byte {offset} no longer reads back ({e}): was the file changed by hand?"),
        })?;
        Ok(Some(entry.sample))
    }

    /// Stores an answer and appends it to the file at once (one `write` of a whole line, under
    /// the file's lock so another process's lines never interleave with it).
    pub fn put(&self, key: String, student: &str, sample: StudentSample) -> Result<()> {
        let entry = Entry { key, student: student.to_string(), sample };
        let mut line = serde_json::to_vec(&entry).map_err(|e| Error::Student { student: student.into(), message: format!("cannot serialise an answer for the cache: {e}") })?;
        line.push(b'\n');
        let io = |e: std::io::Error| Error::io(&self.path, e);
        let offset = {
            let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
            f.lock().map_err(io)?;
            let written = append_line(&mut f, &line);
            f.unlock().map_err(io)?;
            written.map_err(io)?
        };
        self.index.lock().unwrap_or_else(|e| e.into_inner()).insert(entry.key, (offset, line.len() - 1));
        Ok(())
    }

    /// Forces written answers to disk (called at checkpoints).
    pub fn flush(&self) -> Result<()> {
        self.file.lock().unwrap_or_else(|e| e.into_inner()).sync_data().map_err(|e| Error::io(&self.path, e))
    }

    /// The key of answer `index` of `request` to the Student whose [`Student::identity`] is
    /// `identity` (the model's content and every setting that changes its answers).
    pub fn key(identity: &str, request: &StudentRequest, index: usize) -> String {
        #[derive(Serialize)]
        struct KeyData<'a> {
            v: u32,
            student: &'a str,
            messages: &'a [super::ChatMessage],
            params: &'a SamplingParams,
            index: usize,
        }
        let data = KeyData { v: 2, student: identity, messages: &request.messages, params: &request.params, index };
        let json = serde_json::to_vec(&data).expect("plain data serialises");
        let digest = Sha256::digest(&json);
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What [`ResponseCache::scan`] found.
struct Scan {
    /// Key → (offset, length) of each readable line.
    index: HashMap<String, (u64, usize)>,
    /// Bytes to keep (less than `len` when the last line was cut short).
    keep: u64,
    /// The file's length.
    len: u64,
    /// Whether the file ends in a newline.
    ends_in_newline: bool,
    /// Unreadable lines skipped, and the first one's number.
    skipped: usize,
    first_skipped: Option<usize>,
}

/// Appends `line` to the JSONL file `f` (opened to read and append, with no other writer
/// appending meanwhile: the cache holds its lock) on a line of its own: after a fragment that a
/// killed writer left without a newline, a newline comes first. A failed write (a full disk) is
/// rolled back, so it leaves no fragment either. Returns where `line` starts.
pub fn append_line(f: &mut File, line: &[u8]) -> std::io::Result<u64> {
    let end = f.seek(SeekFrom::End(0))?;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    if end > 0 {
        let mut last = [0u8];
        f.seek(SeekFrom::Start(end - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            bytes.push(b'\n');
        }
    }
    let start = end + bytes.len() as u64;
    bytes.extend_from_slice(line);
    if let Err(e) = f.write_all(&bytes) {
        // Best effort: the write error is what the caller needs to hear about.
        let _ = f.set_len(end);
        return Err(e);
    }
    Ok(start)
}

/// `indices` (ascending) split into runs of consecutive values.
fn contiguous_runs(indices: &[usize]) -> Vec<&[usize]> {
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=indices.len() {
        if i == indices.len() || indices[i] != indices[i - 1] + 1 {
            runs.push(&indices[start..i]);
            start = i;
        }
    }
    runs
}

/// The file beside a response cache that records, for each Student identity, the content
/// hash of the weights its answers came from.
pub const IDENTITIES_FILE: &str = "identities.json";

/// A Student whose answers go through a [`ResponseCache`].
pub struct CachedStudent {
    inner: Arc<dyn Student>,
    cache: Arc<ResponseCache>,
    hits: AtomicU64,
    identity: std::sync::OnceLock<String>,
}

impl std::fmt::Debug for CachedStudent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStudent").field("inner", &self.inner.name()).field("cache", &self.cache.path).finish()
    }
}

impl CachedStudent {
    /// Wraps `inner` with `cache`; `inner` may keep its own state in the cache's folder
    /// ([`Student::use_state_dir`]).
    pub fn new(inner: Arc<dyn Student>, cache: Arc<ResponseCache>) -> Self {
        if let Some(dir) = cache.path().parent() {
            inner.use_state_dir(dir);
        }
        CachedStudent { inner, cache, hits: AtomicU64::new(0), identity: std::sync::OnceLock::new() }
    }

    /// The Student's identity, checked against the content of its weights: the first time a
    /// cache sees an identity it records the weights' hash ([`IDENTITIES_FILE`]); when the
    /// weights later differ under the same identity (a fine-tune that changed only middle
    /// tensors keeps the size, head and tail), the identity gains the new hash, so the old
    /// answers are not reused, and a warning says so.
    fn checked_identity(&self) -> String {
        self.identity
            .get_or_init(|| {
                let base = self.inner.identity();
                let files = self.inner.weight_files();
                if files.is_empty() {
                    return base;
                }
                let hash = match files.iter().map(|f| super::content_hash(f)).collect::<Result<Vec<_>>>() {
                    Ok(h) => h.join("+"),
                    Err(e) => {
                        tracing::warn!(student = self.inner.name(), error = %e, "cannot hash the Student's weights; the cache trusts its identity alone");
                        return base;
                    }
                };
                let Some(dir) = self.cache.path().parent() else { return base };
                let path = dir.join(IDENTITIES_FILE);
                let mut known: std::collections::BTreeMap<String, String> = super::read_json_map(&path);
                match known.get(&base) {
                    Some(recorded) if *recorded == hash => base,
                    Some(recorded) => {
                        tracing::warn!(student = self.inner.name(), cache = %dir.display(), recorded = %recorded, now = %hash,
                        "the Student's weights changed under the same identity: its earlier answers in this cache are not reused");
                        format!("{base}|weights={hash}")
                    }
                    None => {
                        known.insert(base.clone(), hash);
                        if let Err(e) = super::write_json_map(&path, &known) {
                            tracing::warn!(error = %e, "cannot record the Student's weights hash beside its cache");
                        }
                        base
                    }
                }
            })
            .clone()
    }

    /// The cache.
    pub fn cache(&self) -> &Arc<ResponseCache> {
        &self.cache
    }

    async fn fetch(&self, request: &StudentRequest, first: usize, n: usize) -> Result<Vec<StudentSample>> {
        let mut sub = request.clone();
        sub.n = n;
        sub.params.seed = request.params.seed.map(|s| s.wrapping_add(first as u64));
        let answers = self.inner.generate(&sub).await?;
        if answers.len() != n {
            return Err(Error::Student { student: self.inner.name().into(), message: format!("asked for {n} answers, got {}", answers.len()) });
        }
        Ok(answers)
    }
}

#[async_trait]
impl Student for CachedStudent {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn capabilities(&self) -> StudentCapabilities {
        self.inner.capabilities()
    }

    fn identity(&self) -> String {
        self.checked_identity()
    }

    fn weight_files(&self) -> Vec<std::path::PathBuf> {
        self.inner.weight_files()
    }

    fn usage(&self) -> StudentUsage {
        StudentUsage { cache_hits: self.hits.load(Ordering::Relaxed), ..self.inner.usage() }
    }

    async fn generate(&self, request: &StudentRequest) -> Result<Vec<StudentSample>> {
        let name = self.inner.name().to_string();
        let identity = self.checked_identity();
        let keys: Vec<String> = (0..request.n).map(|i| ResponseCache::key(&identity, request, i)).collect();
        let mut out: Vec<Option<StudentSample>> = keys.iter().map(|k| self.cache.get(k)).collect::<Result<_>>()?;
        let missing: Vec<usize> = (0..request.n).filter(|&i| out[i].is_none()).collect();
        self.hits.fetch_add((request.n - missing.len()) as u64, Ordering::Relaxed);
        if missing.is_empty() {
            return Ok(out.into_iter().flatten().collect());
        }
        if self.inner.capabilities().native_n {
            // One request per contiguous run of missing answers, so answer i keeps seed + i
            // (one request for gaps 1 and 3 would give answer 3 the seed of answer 2).
            for run in contiguous_runs(&missing) {
                let answers = self.fetch(request, run[0], run.len()).await?;
                for (&i, a) in run.iter().zip(answers) {
                    self.cache.put(keys[i].clone(), &name, a.clone())?;
                    out[i] = Some(a);
                }
            }
        } else {
            // One request per answer, each cached as soon as it arrives, so a failure of one
            // loses none of the others.
            let (keys, name) = (&keys, &name);
            let fetched = futures::future::join_all(missing.iter().map(|&i| async move {
                let a = self.fetch(request, i, 1).await?.pop().expect("one answer");
                self.cache.put(keys[i].clone(), name, a.clone())?;
                Ok::<_, Error>((i, a))
            }))
            .await;
            for r in fetched {
                let (i, a) = r?;
                out[i] = Some(a);
            }
        }
        Ok(out.into_iter().map(|a| a.expect("every index filled")).collect())
    }

    fn prefers_bulk(&self) -> bool {
        self.inner.prefers_bulk()
    }

    fn use_state_dir(&self, dir: &Path) {
        self.inner.use_state_dir(dir)
    }

    fn flush(&self) -> Result<()> {
        self.cache.flush()?;
        self.inner.flush()
    }

    /// Requests with every answer cached are served from the cache; the others go to the
    /// wrapped Student in one bulk call, and their answers are cached as that call returns.
    async fn generate_many(&self, requests: &[StudentRequest]) -> Vec<Result<Vec<StudentSample>>> {
        let name = self.inner.name().to_string();
        let identity = self.checked_identity();
        let mut out: Vec<Option<Result<Vec<StudentSample>>>> = Vec::with_capacity(requests.len());
        let mut todo: Vec<usize> = Vec::new();
        for (ri, request) in requests.iter().enumerate() {
            let cached: Result<Vec<Option<StudentSample>>> = (0..request.n).map(|i| self.cache.get(&ResponseCache::key(&identity, request, i))).collect();
            match cached {
                Ok(c) if c.iter().all(Option::is_some) => {
                    self.hits.fetch_add(request.n as u64, Ordering::Relaxed);
                    out.push(Some(Ok(c.into_iter().flatten().collect())));
                }
                Ok(_) => {
                    out.push(None);
                    todo.push(ri);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        if !todo.is_empty() {
            let batch: Vec<StudentRequest> = todo.iter().map(|&i| requests[i].clone()).collect();
            let answers = self.inner.generate_many(&batch).await;
            for (&ri, result) in todo.iter().zip(answers) {
                let stored = result.and_then(|answers| {
                    for (i, a) in answers.iter().enumerate() {
                        self.cache.put(ResponseCache::key(&identity, &requests[ri], i), &name, a.clone())?;
                    }
                    Ok(answers)
                });
                out[ri] = Some(stored);
            }
        }
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::Student { student: name.clone(), message: "no answer came back".into() }))).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::student::{ChatMessage, FinishReason, TokenUsage};

    /// Answers "seed=S" for each answer; fails answers whose seed is in `fail`.
    struct SeedEcho {
        native_n: bool,
        calls: AtomicUsize,
        fail: Vec<u64>,
    }

    #[async_trait]
    impl Student for SeedEcho {
        fn name(&self) -> &str {
            "echo"
        }
        fn capabilities(&self) -> StudentCapabilities {
            StudentCapabilities { native_n: self.native_n, ..Default::default() }
        }
        async fn generate(&self, r: &StudentRequest) -> Result<Vec<StudentSample>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let seed = r.params.seed.unwrap();
            (0..r.n as u64)
                .map(|i| {
                    if self.fail.contains(&(seed + i)) {
                        return Err(Error::Student { student: "echo".into(), message: "boom".into() });
                    }
                    Ok(StudentSample { text: format!("seed={}", seed + i), finish_reason: FinishReason::Stop, usage: TokenUsage::default() })
                })
                .collect()
        }
    }

    fn request(n: usize) -> StudentRequest {
        StudentRequest { messages: vec![ChatMessage::user("hi")], n, params: SamplingParams { seed: Some(100), ..Default::default() } }
    }

    fn texts(a: &[StudentSample]) -> Vec<&str> {
        a.iter().map(|s| s.text.as_str()).collect()
    }

    #[tokio::test]
    async fn growing_k_requests_only_the_new_answers_with_the_seeds_of_a_full_request() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(SeedEcho { native_n: true, calls: AtomicUsize::new(0), fail: vec![] });
        let s = CachedStudent::new(inner.clone(), ResponseCache::open(dir.path()).unwrap());
        assert_eq!(texts(&s.generate(&request(3)).await.unwrap()), ["seed=100", "seed=101", "seed=102"]);
        assert_eq!(texts(&s.generate(&request(5)).await.unwrap()), ["seed=100", "seed=101", "seed=102", "seed=103", "seed=104"]);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
        assert_eq!(s.usage().cache_hits, 3);
        // A new process sees the same answers without calling the model.
        let s2 = CachedStudent::new(inner.clone(), ResponseCache::open(dir.path()).unwrap());
        assert_eq!(s2.generate(&request(5)).await.unwrap().len(), 5);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn without_native_n_each_answer_is_kept_even_when_another_fails() {
        let dir = tempfile::tempdir().unwrap();
        let failing = Arc::new(SeedEcho { native_n: false, calls: AtomicUsize::new(0), fail: vec![102] });
        let s = CachedStudent::new(failing.clone(), ResponseCache::open(dir.path()).unwrap());
        assert!(s.generate(&request(4)).await.is_err());
        assert_eq!(failing.calls.load(Ordering::SeqCst), 4);
        assert_eq!(s.cache().len(), 3, "the three answers that succeeded are cached");
        let healthy = Arc::new(SeedEcho { native_n: false, calls: AtomicUsize::new(0), fail: vec![] });
        let s = CachedStudent::new(healthy.clone(), ResponseCache::open(dir.path()).unwrap());
        assert_eq!(texts(&s.generate(&request(4)).await.unwrap()), ["seed=100", "seed=101", "seed=102", "seed=103"]);
        assert_eq!(healthy.calls.load(Ordering::SeqCst), 1, "only the failed answer is asked again");
    }

    #[tokio::test]
    async fn a_line_cut_by_a_kill_is_dropped_and_a_corrupt_line_is_skipped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(SeedEcho { native_n: true, calls: AtomicUsize::new(0), fail: vec![] });
        let s = CachedStudent::new(inner, ResponseCache::open(dir.path()).unwrap());
        s.generate(&request(2)).await.unwrap();
        let path = dir.path().join(CACHE_FILE);
        let good = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{good}{{\"key\":\"abc\",\"stu")).unwrap();
        let c = ResponseCache::open(dir.path()).unwrap();
        assert_eq!(c.len(), 2);
        c.put("k".into(), "echo", StudentSample { text: "x".into(), finish_reason: FinishReason::Stop, usage: TokenUsage::default() }).unwrap();
        assert_eq!(ResponseCache::open(dir.path()).unwrap().len(), 3, "appends after the cut land on their own line");
        // A fragment in the middle (a writer killed mid-append, then later appends from
        // another process) is skipped and counted; every whole line still reads.
        std::fs::write(&path, format!("not json\n{good}{{\"key\":\"torn\"\n")).unwrap();
        let c = ResponseCache::open(dir.path()).unwrap();
        assert_eq!((c.len(), c.skipped_lines()), (2, 2));
    }

    #[test]
    fn an_append_after_a_torn_fragment_starts_on_its_own_line_and_every_later_open_reads_it() {
        // A process killed mid-append leaves a fragment with no newline while another process
        // still holds the file open; that process's next appends must not be glued to it.
        let dir = tempfile::tempdir().unwrap();
        let c = ResponseCache::open(dir.path()).unwrap();
        let sample = |t: &str| StudentSample { text: t.into(), finish_reason: FinishReason::Stop, usage: TokenUsage::default() };
        c.put("a".into(), "echo", sample("first")).unwrap();
        let mut f = OpenOptions::new().append(true).open(dir.path().join(CACHE_FILE)).unwrap();
        f.write_all(b"{\"key\":\"killed\",\"stud").unwrap();
        c.put("b".into(), "echo", sample("after the fragment")).unwrap();
        c.put("c".into(), "echo", sample("later still")).unwrap();
        assert_eq!(c.get("b").unwrap().unwrap().text, "after the fragment");
        let reopened = ResponseCache::open(dir.path()).unwrap();
        assert_eq!((reopened.len(), reopened.skipped_lines()), (3, 1));
        assert_eq!(reopened.get("c").unwrap().unwrap().text, "later still");
    }

    #[tokio::test]
    async fn gaps_that_are_not_contiguous_keep_each_answers_own_seed() {
        // Answers 0 and 2 are cached; 1 and 3 are missing. One request for both gaps would give
        // answer 3 the seed of answer 2, a duplicate within K.
        let dir = tempfile::tempdir().unwrap();
        let inner = Arc::new(SeedEcho { native_n: true, calls: AtomicUsize::new(0), fail: vec![] });
        let cache = ResponseCache::open(dir.path()).unwrap();
        for i in [0usize, 2] {
            let text = format!("seed={}", 100 + i);
            cache.put(ResponseCache::key("echo", &request(4), i), "echo", StudentSample { text, finish_reason: FinishReason::Stop, usage: TokenUsage::default() }).unwrap();
        }
        let s = CachedStudent::new(inner, cache);
        assert_eq!(texts(&s.generate(&request(4)).await.unwrap()), ["seed=100", "seed=101", "seed=102", "seed=103"]);
    }

    /// Same name, another model (say two different `model-Q4_K_M.gguf` files): no shared answers.
    struct Named {
        identity: &'static str,
    }

    #[async_trait]
    impl Student for Named {
        fn name(&self) -> &str {
            "llamacpp:model-Q4_K_M"
        }
        fn identity(&self) -> String {
            self.identity.into()
        }
        fn capabilities(&self) -> StudentCapabilities {
            StudentCapabilities { native_n: true, ..Default::default() }
        }
        async fn generate(&self, r: &StudentRequest) -> Result<Vec<StudentSample>> {
            Ok((0..r.n).map(|_| StudentSample { text: self.identity.into(), finish_reason: FinishReason::Stop, usage: TokenUsage::default() }).collect())
        }
    }

    #[tokio::test]
    async fn students_with_one_name_and_two_identities_do_not_share_answers() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ResponseCache::open(dir.path()).unwrap();
        let a = CachedStudent::new(Arc::new(Named { identity: "size:1:sha256:aa" }), cache.clone());
        let b = CachedStudent::new(Arc::new(Named { identity: "size:1:sha256:bb" }), cache.clone());
        assert_eq!(texts(&a.generate(&request(1)).await.unwrap()), ["size:1:sha256:aa"]);
        assert_eq!(texts(&b.generate(&request(1)).await.unwrap()), ["size:1:sha256:bb"]);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn two_writers_on_one_file_never_cut_each_others_lines() {
        // Two handles (as two processes would have) append long lines at once; every line must
        // read back whole and both handles' answers must be there.
        let dir = tempfile::tempdir().unwrap();
        let handles: Vec<_> = (0..2)
            .map(|w| {
                let c = ResponseCache::open(dir.path()).unwrap();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let text = format!("{w}-{i}-{}", "x".repeat(20_000));
                        c.put(format!("{w}/{i}"), "echo", StudentSample { text, finish_reason: FinishReason::Stop, usage: TokenUsage::default() }).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let c = ResponseCache::open(dir.path()).unwrap();
        assert_eq!(c.len(), 400);
        assert!(c.get("1/199").unwrap().unwrap().text.starts_with("1-199-"));
        assert!(c.get("0/7").unwrap().unwrap().text.starts_with("0-7-"));
        assert!(c.get("0/200").unwrap().is_none());
    }
}
