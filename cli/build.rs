//! `wst` links llama.cpp's shared libraries (libllama, libggml, and ggml's CPU variants loaded
//! at run time): it looks for them beside itself, then in `../lib/wst` (an installed layout,
//! `scripts/install.sh`), as llama.cpp's and Ollama's releases ship theirs.

fn main() {
    match std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default().as_str() {
        "linux" | "android" => println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN:$ORIGIN/../lib/wst"),
        "macos" => {
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,@executable_path");
            println!("cargo:rustc-link-arg-bins=-Wl,-rpath,@executable_path/../lib/wst");
        }
        _ => {}
    }
}
