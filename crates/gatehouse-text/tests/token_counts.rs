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
