//! Writers for every source format gatehouse reads (overview §4). Each streams to any
//! `io::Write`, one conversation at a time.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::{Conversation, Speaker};

/// Line ending used by line-oriented writers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eol {
    Lf,
    CrLf,
}

impl Eol {
    fn as_str(self) -> &'static str {
        match self {
            Eol::Lf => "\n",
            Eol::CrLf => "\r\n",
        }
    }
}

fn line(w: &mut dyn Write, value: &Value, eol: Eol) -> io::Result<()> {
    serde_json::to_writer(&mut *w, value)?;
    w.write_all(eol.as_str().as_bytes())
}

/// The first client turn and the first therapist turn after it, for pair formats.
fn first_exchange(c: &Conversation) -> (String, String) {
    let user = c
        .turns
        .iter()
        .find(|(s, _)| *s == Speaker::Client)
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    let assistant = c
        .turns
        .iter()
        .find(|(s, _)| *s == Speaker::Therapist)
        .map(|(_, t)| t.clone())
        .unwrap_or_default();
    (user, assistant)
}

/// JSONL, `{"id", "session_id", "messages": [{"role", "content"}]}`.
pub fn chatml_jsonl(w: &mut dyn Write, c: &Conversation, eol: Eol) -> io::Result<()> {
    let messages: Vec<Value> = c
        .turns
        .iter()
        .map(|(s, t)| json!({"role": s.role(), "content": t}))
        .collect();
    line(
        w,
        &json!({"id": c.id, "session_id": c.group, "messages": messages}),
        eol,
    )
}

/// One ShareGPT record, `{"id", "conversations": [{"from": human|gpt|system, "value"}]}`.
pub fn sharegpt_value(c: &Conversation) -> Value {
    let conversations: Vec<Value> = c
        .turns
        .iter()
        .map(|(s, t)| {
            let from = match s {
                Speaker::System => "system",
                Speaker::Client => "human",
                Speaker::Therapist => "gpt",
            };
            json!({"from": from, "value": t})
        })
        .collect();
    json!({"id": c.id, "conversations": conversations})
}

/// Alpaca, `{"instruction", "input", "output"}`.
pub fn alpaca_value(c: &Conversation) -> Value {
    let (user, assistant) = first_exchange(c);
    json!({
        "instruction": "Respond to the client as a supportive counsellor.",
        "input": user,
        "output": assistant,
    })
}

/// JSONL, `{"prompt", "response"}`.
pub fn prompt_response_jsonl(w: &mut dyn Write, c: &Conversation, eol: Eol) -> io::Result<()> {
    let (user, assistant) = first_exchange(c);
    line(w, &json!({"prompt": user, "response": assistant}), eol)
}

/// JSONL, `{"input", "output"}`.
pub fn input_output_jsonl(w: &mut dyn Write, c: &Conversation, eol: Eol) -> io::Result<()> {
    let (user, assistant) = first_exchange(c);
    line(
        w,
        &json!({"id": c.id, "input": user, "output": assistant}),
        eol,
    )
}

/// One `{"question", "answer"}` record.
pub fn question_answer_value(c: &Conversation) -> Value {
    let (user, assistant) = first_exchange(c);
    json!({"question": user, "answer": assistant})
}

/// Writes values as a pretty JSON array (streamed element by element), optionally wrapped
/// in an object under `wrapper` (e.g. `{"data": [...]}`).
pub fn json_array(
    w: &mut dyn Write,
    values: impl IntoIterator<Item = Value>,
    wrapper: Option<&str>,
) -> io::Result<()> {
    let indent = if wrapper.is_some() { "    " } else { "  " };
    if let Some(key) = wrapper {
        write!(w, "{{\n  {}: [", serde_json::to_string(key)?)?;
    } else {
        w.write_all(b"[")?;
    }
    for (i, v) in values.into_iter().enumerate() {
        w.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        w.write_all(indent.as_bytes())?;
        serde_json::to_writer(&mut *w, &v)?;
    }
    if wrapper.is_some() {
        w.write_all(b"\n  ]\n}\n")
    } else {
        w.write_all(b"\n]\n")
    }
}

/// RFC 4180 quoting: quote when the field holds a comma, quote or line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Header of the counselling Q&A CSV.
pub const QA_CSV_HEADER: &str = "questionID,questionTitle,questionText,topic,answerText,upvotes";

/// One Q&A row: the question spans two lines, the answer is HTML with entities, as in the
/// older public counselling scrapes.
pub fn qa_csv_row(w: &mut dyn Write, index: u64, c: &Conversation) -> io::Result<()> {
    let (user, assistant) = first_exchange(c);
    let title = user
        .split(['.', '?'])
        .next()
        .unwrap_or_default()
        .to_string();
    let question = format!("{user}\nWhat should I do?");
    let answer = format!(
        "<p>{}</p>\n<p>Take care &amp; be gentle with yourself &#8212; change takes time.</p>",
        assistant.replace('&', "&amp;")
    );
    writeln!(
        w,
        "q{index:05},{},{},{},{},{}",
        csv_field(&title),
        csv_field(&question),
        ["anxiety", "depression", "relationships", "stress"][(index % 4) as usize],
        csv_field(&answer),
        index % 7,
    )
}

/// Header of the utterance-per-row CSV.
pub const UTTERANCE_CSV_HEADER: &str =
    "transcript_id,utterance_id,interlocutor,timestamp,utterance_text";

/// Rows of one transcript, one utterance per row; system turns are not spoken and skipped.
pub fn utterance_csv_rows(w: &mut dyn Write, transcript: u64, c: &Conversation) -> io::Result<()> {
    let spoken = c.turns.iter().filter(|(s, _)| *s != Speaker::System);
    for (i, (speaker, text)) in spoken.enumerate() {
        let who = if *speaker == Speaker::Therapist {
            "therapist"
        } else {
            "client"
        };
        writeln!(
            w,
            "{transcript},{i},{who},00:{:02}:{:02},{}",
            (i * 17 / 60) % 60,
            (i * 17) % 60,
            csv_field(text)
        )?;
    }
    Ok(())
}

/// A plain-text transcript: a title line, then `Speaker: text` paragraphs.
pub fn transcript_txt(w: &mut dyn Write, title: &str, c: &Conversation) -> io::Result<()> {
    writeln!(w, "# {title}\n")?;
    for (speaker, text) in &c.turns {
        let who = match speaker {
            Speaker::System => continue,
            Speaker::Client => "Listener",
            Speaker::Therapist => "Host",
        };
        writeln!(w, "{who}: {text}\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting_doubles_quotes_and_keeps_line_breaks() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\"\nthen"), "\"say \"\"hi\"\"\nthen\"");
    }

    #[test]
    fn wrapped_json_array_is_valid_json() {
        let mut out = Vec::new();
        json_array(&mut out, [json!({"a": 1}), json!({"a": 2})], Some("data")).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        let mut out = Vec::new();
        json_array(&mut out, Vec::<Value>::new(), None).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), json!([]));
    }
}

/// Labels a turn list uses for its speakers, in the shapes of public datasets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    /// ESConv as distributed: `usr` / `sys`.
    UsrSys,
    /// ESConv's original release: `seeker` / `supporter`.
    SeekerSupporter,
    /// `user` / `bot`.
    UserBot,
}

impl Labels {
    fn of(self, s: Speaker) -> &'static str {
        match (self, s) {
            (_, Speaker::System) => "system",
            (Labels::UsrSys, Speaker::Client) => "usr",
            (Labels::UsrSys, Speaker::Therapist) => "sys",
            (Labels::SeekerSupporter, Speaker::Client) => "seeker",
            (Labels::SeekerSupporter, Speaker::Therapist) => "supporter",
            (Labels::UserBot, Speaker::Client) => "user",
            (Labels::UserBot, Speaker::Therapist) => "bot",
        }
    }
}

const EMOTIONS: [&str; 4] = ["anxiety", "sadness", "anger", "depression"];
const PROBLEMS: [&str; 3] = ["job crisis", "ongoing depression", "breakup with partner"];

/// A record shaped like ESConv (`{"experience_type", "emotion_type", "problem_type",
/// "situation", "dialog": [{"speaker", "text" | "content", "annotation"}], "survey_score"}`),
/// with `usr`/`sys` labels and `text` (the distributed file) or `seeker`/`supporter` and
/// `content` (the original release). The conversation's system turns are left out, as ESConv
/// has none.
pub fn esconv_value(c: &Conversation, index: u64, labels: Labels) -> Value {
    let text_key = if labels == Labels::SeekerSupporter {
        "content"
    } else {
        "text"
    };
    let dialog: Vec<Value> = c
        .turns
        .iter()
        .filter(|(s, _)| *s != Speaker::System)
        .map(|(s, t)| {
            let mut turn = json!({"speaker": labels.of(*s), "annotation": {}});
            turn[text_key] = json!(t);
            if *s == Speaker::Therapist {
                turn["annotation"] = json!({"strategy": "Question"});
            }
            turn
        })
        .collect();
    json!({
        "experience_type": "Current Experience",
        "emotion_type": EMOTIONS[(index % 4) as usize],
        "problem_type": PROBLEMS[(index % 3) as usize],
        "situation": "The seeker describes a difficult week at work.",
        "survey_score": {"seeker": {"initial_emotion_intensity": "4"}},
        "seeker_id": format!("seeker-{index}"),
        "dialog": dialog,
    })
}

/// A `{"Context", "Response"}` record (counselling Q&A sets on public hubs).
pub fn context_response_value(c: &Conversation) -> Value {
    let (user, assistant) = first_exchange(c);
    json!({"Context": user, "Response": assistant})
}

/// A ChatML-like record under other keys: `{"meta": {"topic"}, "conversation": {"turns":
/// [{"author": user|bot|system, "text"}]}}`.
pub fn nested_turns_value(c: &Conversation, index: u64) -> Value {
    let turns: Vec<Value> = c
        .turns
        .iter()
        .map(|(s, t)| json!({"author": Labels::UserBot.of(*s), "text": t}))
        .collect();
    json!({
        "id": c.id,
        "meta": {"topic": EMOTIONS[(index % 4) as usize]},
        "conversation": {"turns": turns},
    })
}

/// Writes one value per line.
pub fn jsonl(w: &mut dyn Write, values: impl IntoIterator<Item = Value>) -> io::Result<()> {
    for v in values {
        line(w, &v, Eol::Lf)?;
    }
    Ok(())
}
