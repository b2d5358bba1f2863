//! Dates and ages under `dates = "all"` (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)):
//! every element of a date except the year — day and month, month and year, full dates in
//! numeric, ISO and written forms — and every age over 89. A year alone stays; so do
//! times, scores ("pain 7/10"), doses and fractions.

use regex::Regex;

use super::patterns::{MONTH, re};

#[derive(Debug)]
pub(crate) struct Dates {
    date: Regex,
    age: Regex,
}

impl Dates {
    pub(crate) fn new() -> Self {
        let date = format!(
            concat!(
                r"(?i)\b(?:",
                // 03/14/1962, 14.03.62, 3-14-2024
                r"\d{{1,2}}[/.\-]\d{{1,2}}[/.\-](?:\d{{4}}|\d{{2}})",
                // 1962-03-14, 2024/3/14
                r"|\d{{4}}[/.\-]\d{{1,2}}[/.\-]\d{{1,2}}",
                // March 14th, 2024; Mar. 14; March of 2019; March 2019
                r"|{m}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?",
                r"|{m},?\s+(?:of\s+)?\d{{4}}",
                // 14 March 2024; the 14th of March
                r"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{m}(?:,?\s+\d{{4}})?",
                // 3/14, 10/15 (month and day)
                r"|\d{{1,2}}/\d{{1,2}}",
                // the 11th, the 13th of this month (a day of the month)
                r"|(?:the\s+)?\d{{1,2}}(?:st|nd|rd|th)(?:\s+of\s+(?:this|next|last|the)\s+month)?",
                r")\b",
            ),
            m = MONTH
        );
        Self {
            date: re(&date),
            age: re(concat!(
                r"(?i)\b(?:(?:aged?|age\s+of)\s+(9\d|1[0-4]\d)\b",
                r"|(9\d|1[0-4]\d)(?:\s*|-)(?:years?|yrs?)(?:\s*|-)old\b",
                r"|(9\d|1[0-4]\d)\s*(?:yo|y/o|y\.o\.|-year-old|year-old)(?:\b|\s|$))",
            )),
        }
    }

    /// Dates with a day or month element, as (start, end).
    pub(crate) fn dates(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        for m in self.date.find_iter(text) {
            let s = m.as_str();
            if let Some((a, b)) = s.split_once('/')
                && !b.contains('/')
                && !month_day(a, b, text, m.start())
            {
                continue;
            }
            if ordinal_only(s) && !day_of_month(text, m.end()) {
                continue;
            }
            out.push((m.start(), m.end()));
        }
    }

    /// Ages over 89, as (start, end) of the number and its unit.
    pub(crate) fn ages(&self, text: &str, out: &mut Vec<(usize, usize)>) {
        for m in self.age.find_iter(text) {
            out.push((m.start(), m.end()));
        }
    }
}

/// "the 11th" and nothing else: a day only when a noun does not follow ("the 3rd time").
fn ordinal_only(s: &str) -> bool {
    let s = s.trim_start_matches("the").trim_start_matches("The").trim();
    s.len() <= 4 && s.ends_with(|c: char| c.is_ascii_alphabetic())
}

/// What follows an ordinal leaves it a day of the month: punctuation, the end, or a
/// function word ("on the 11th at 3 pm", "the 8th?").
fn day_of_month(text: &str, end: usize) -> bool {
    let next: String = text[end..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    next.is_empty()
        || matches!(
            next.as_str(),
            "of" | "at"
                | "and"
                | "or"
                | "in"
                | "for"
                | "please"
                | "instead"
                | "then"
                | "is"
                | "works"
                | "would"
                | "will"
                | "from"
                | "to"
                | "until"
                | "through"
        )
}

/// "3/14" is a month and day; "7/10" after "pain" is a score, "1/2" a fraction.
fn month_day(a: &str, b: &str, text: &str, start: usize) -> bool {
    let (Ok(month), Ok(day)) = (a.parse::<u32>(), b.parse::<u32>()) else {
        return false;
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    // Glued to more of a number ("1/2/3", "120/80") or a fraction of a small whole.
    let before = text[..start].chars().next_back();
    if before.is_some_and(|c| c.is_ascii_digit() || c == '/' || c == '.') {
        return false;
    }
    if day <= 10 && month < day {
        let from = text[..start]
            .char_indices()
            .rev()
            .nth(24)
            .map_or(0, |(i, _)| i);
        let window = text[from..start].to_ascii_lowercase();
        if [
            "pain", "scale", "rate", "rated", "score", "mood", "anxiety", "level", "out of",
        ]
        .iter()
        .any(|w| window.contains(w))
        {
            return false;
        }
    }
    // Denominators of scores and fractions.
    !matches!(day, 10 | 100) || month > 10
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dates(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        Dates::new().dates(text, &mut out);
        Dates::new().ages(text, &mut out);
        out.into_iter().map(|(a, b)| &text[a..b]).collect()
    }

    #[test]
    fn every_date_element_but_the_year() {
        assert_eq!(
            dates("seen 10/15, again on 2024-03-14"),
            ["10/15", "2024-03-14"]
        );
        assert_eq!(
            dates("on March 8th, 2021 and 14 March"),
            ["March 8th, 2021", "14 March"]
        );
        assert_eq!(dates("since March 2019"), ["March 2019"]);
        assert_eq!(dates("on the 11th at 3 pm, the 3rd time"), ["the 11th"]);
        assert_eq!(
            dates("a 93-year-old man, aged 91"),
            ["93-year-old", "aged 91"]
        );
        assert!(dates("in 2019, pain 7/10, BP 120/80, age 45, 45 years old").is_empty());
    }
}
