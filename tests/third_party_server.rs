//! The HTTP Student against a real third-party OpenAI-compatible server: `llama-cpp-python`'s
//! server (PyPI) serving SmolLM2. `bench/third_party_server.sh` installs and starts it, then
//! runs this target with `WST_THIRD_PARTY_BASE_URL` set; without it the test is reported as
//! ignored, with the reason, never as passed.

use libtest_mimic::{Arguments, Failed, Trial};
use wst_openai::OpenAiConfig;
use wst_openai::OpenAiStudent;
use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};

const URL_VAR: &str = "WST_THIRD_PARTY_BASE_URL";

async fn llama_cpp_python_server_answers_through_the_http_student(url: String) {
    let cfg = OpenAiConfig { base_urls: vec![url], api_key_env: None, timeout_secs: 120.0, ..Default::default() };
    let s = OpenAiStudent::new("SmolLM2-135M-Instruct", &cfg).unwrap();
    let request = |n, temperature| StudentRequest {
        messages: vec![ChatMessage::user("What is the capital of France?")],
        n,
        params: SamplingParams { temperature, max_tokens: 24, seed: Some(1), ..Default::default() },
    };
    let greedy = s.generate(&request(1, 0.0)).await.unwrap();
    eprintln!("llama-cpp-python server (greedy): {:?}", greedy[0].text);
    assert!(greedy[0].text.contains("Paris"), "{:?}", greedy[0].text);
    // The server ignores n: the Student notices and fans out, answer i with seed + i.
    let answers = s.generate(&request(3, 0.8)).await.unwrap();
    assert_eq!(answers.len(), 3);
    assert!(!s.capabilities().native_n, "llama-cpp-python returns one choice for n > 1");
    let again = s.generate(&request(3, 0.8)).await.unwrap();
    let t = |a: &[wst_sdk::StudentSample]| a.iter().map(|x| x.text.clone()).collect::<Vec<_>>();
    assert_eq!(t(&answers), t(&again), "seeded answers reproduce on the real server");
    assert!(s.usage().completion_tokens > 0);
}

fn main() {
    let args = Arguments::from_args();
    let url = std::env::var(URL_VAR).ok().filter(|u| !u.trim().is_empty());
    let trial = match url.clone() {
        Some(url) => Trial::test("llama_cpp_python_server_answers_through_the_http_student", move || {
            let rt = tokio::runtime::Runtime::new().map_err(|e| Failed::from(e.to_string()))?;
            rt.block_on(llama_cpp_python_server_answers_through_the_http_student(url));
            Ok(())
        }),
        None => {
            eprintln!("IGNORED llama_cpp_python_server_answers_through_the_http_student: {URL_VAR} is not set (bench/third_party_server.sh starts the server and sets it)");
            Trial::test("llama_cpp_python_server_answers_through_the_http_student", || Ok(())).with_ignored_flag(true)
        }
    };
    libtest_mimic::run(&args, vec![trial]).exit();
}
