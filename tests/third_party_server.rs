//! The HTTP Student against a real third-party OpenAI-compatible server: `llama-cpp-python`'s
//! server (PyPI) serving SmolLM2. `bench/third_party_server.sh` installs and starts it, then
//! runs this target with `WST_THIRD_PARTY_BASE_URL` set; without it the test says so and skips.

use wst_openai::OpenAiStudent;
use wst_openai::OpenAiConfig;
use wst_sdk::{ChatMessage, SamplingParams, Student, StudentRequest};

#[tokio::test]
async fn llama_cpp_python_server_answers_through_the_http_student() {
    let Ok(url) = std::env::var("WST_THIRD_PARTY_BASE_URL") else {
        eprintln!("skipped: WST_THIRD_PARTY_BASE_URL is not set (run bench/third_party_server.sh)");
        return;
    };
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
