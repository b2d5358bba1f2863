//! Token counts agree with Python `tiktoken` on a fixed corpus (see
//! `fixtures/make_token_counts.py` for how the expected counts were produced).

use gatehouse_text::{TokenCounter, TokenizerName};

#[test]
fn counts_match_python_tiktoken() {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/token_counts.json")).expect("fixture parses");
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() > 400);
    for name in TokenizerName::ALL {
        let counter = TokenCounter::new(name);
        let mut mismatches = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            let text = case["text"].as_str().expect("text");
            let expected = case[name.as_str()].as_u64().expect("count");
            let got = counter.count(text);
            if got != expected {
                mismatches.push((i, expected, got));
            }
        }
        assert!(
            mismatches.is_empty(),
            "{name}: (case, python, rust): {mismatches:?}"
        );
    }
}

/// A model's own tokenizer.json: a word-level tokenizer that lower-cases and splits on
/// words and punctuation, so the counts are known by hand.
#[test]
fn a_tokenizer_file_counts_its_own_tokens() {
    use gatehouse_text::TokenizerSpec;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/word_level_tokenizer.json");
    let spec = TokenizerSpec::from(path.display().to_string());
    assert!(matches!(spec, TokenizerSpec::File(_)));
    let counter = spec.counter().expect("the fixture loads");
    assert_eq!(counter.count("I feel fine."), 4);
    assert_eq!(counter.count("I feel, unknown words fine"), 6);
    assert_eq!(counter.count(""), 0);
    assert_eq!(counter.encode("i FEEL fine"), vec![1, 2, 3]);
    assert!(
        counter
            .label()
            .starts_with("word_level_tokenizer.json (sha256:")
    );

    // Built-in names stay built-in; a missing or broken file is an error naming the path.
    assert_eq!(
        TokenizerSpec::from("cl100k_base".to_string()),
        TokenizerSpec::Builtin(TokenizerName::Cl100kBase)
    );
    let err = TokenizerSpec::from("/nonexistent/tokenizer.json".to_string())
        .counter()
        .unwrap_err();
    assert!(err.contains("/nonexistent/tokenizer.json"), "{err}");
    let dir = std::env::temp_dir().join(format!("gatehouse-tok-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("tokenizer.json");
    std::fs::write(&bad, "{\"not\": \"a tokenizer\"}").unwrap();
    let err = TokenCounter::from_file(&bad).unwrap_err();
    assert!(
        err.contains("is not a Hugging Face tokenizer.json"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
