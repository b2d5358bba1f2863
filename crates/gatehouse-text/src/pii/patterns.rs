//! Pattern detectors: email, phone, SSN, payment card, IP, URL, handle, date of birth,
//! record/insurance/licence numbers and street addresses. Each pattern is followed by
//! validation or a context check so that clinical numbers, doses, times, years, scores and
//! hotline numbers are left alone. The `regex` crate guarantees linear time.

use memchr::{memchr, memchr_iter, memchr2_iter};
use regex::Regex;

use super::crisis::is_crisis_number;
use super::{Confidence, PiiType, RawSpan};
use super::{address, dates};

#[derive(Debug)]
pub(crate) struct Patterns {
    email: Regex,
    email_spelled: Regex,
    phone: Regex,
    ssn: Regex,
    ssn_context: Regex,
    card: Regex,
    iban: Regex,
    card_ending: Regex,
    ipv4: Regex,
    ipv6: Regex,
    url: Regex,
    handle: Regex,
    dob: Regex,
    id_number: Regex,
    address: Regex,
    after_street: Regex,
    /// Street types, lower case ("drive", "st", "cul de sac").
    street_types: std::collections::HashSet<String>,
    more_addresses: address::Addresses,
    dates: dates::Dates,
    po_box: Regex,
    uk_postcode: Regex,
    city_zip: Regex,
    /// City, state and ZIP in any case: only to extend a street address.
    city_zip_any_case: Regex,
}

/// Compiles a built-in pattern. Word boundaries are ASCII (`(?-u:\b)`), which keeps the
/// regex engine on its fast DFA path for any input.
pub(crate) fn re(pattern: &str) -> Regex {
    let pattern = pattern.replace(r"\b", r"(?-u:\b)");
    // The patterns are constants, tested below; a bad one is a programming error.
    #[allow(clippy::expect_used)]
    Regex::new(&pattern).expect("built-in PII pattern compiles")
}

pub(crate) const MONTH: &str = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?";

const US_STATES: &str = r"(?:A[KLRZ]|C[AOT]|D[CE]|FL|GA|HI|I[ADLN]|K[SY]|LA|M[ADEINOST]|N[CDEHJMVY]|O[HKR]|PA|RI|S[CD]|T[NX]|UT|V[AT]|W[AIVY])";

const UNAMBIGUOUS_SUFFIXES: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "lane",
    "ln",
    "drive",
    "dr",
    "parkway",
    "pkwy",
    "highway",
    "hwy",
];

/// Words that cannot be part of a street name: they mark "5 miles down the road" or
/// "2 times a day" rather than an address.
const NOT_STREET_WORDS: &[&str] = &[
    "the", "a", "an", "down", "up", "on", "to", "of", "in", "at", "and", "or", "my", "your", "his",
    "her", "our", "their", "this", "that", "from", "miles", "mile", "blocks", "block", "minutes",
    "minute", "hours", "times", "days", "years", "more", "steps", "km", "feet", "houses", "doors",
    "floors", "people", "kids", "cars", "is", "was", "are", "were", "i", "we", "you", "they", "it",
    "for", "with", "across", "along", "off", "by", "old", "new",
];

/// A date after a birth cue ("born on", "DOB", "birthday is"); group 1 is the date.
fn dob_pattern() -> String {
    let date = format!(
        r"\d{{1,2}}[/.\-]\d{{1,2}}[/.\-](?:\d{{4}}|\d{{2}})|\d{{4}}-\d{{1,2}}-\d{{1,2}}|{m}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{m}(?:,?\s+\d{{4}})?|{m},?\s+\d{{4}}",
        m = MONTH
    );
    format!(
        r"(?i)\b(?:born(?:\s+on|\s+in)?(?:\s+the)?|d\.?o\.?b\.?|date\s+of\s+birth|birth\s*date|birthday(?:\s+is|\s+was|\s+on|\s+falls\s+on)?)\s*(?:\s+(?:is|was|as|on|listed|written|wrote|put|down|says|reads|it|they|he|she|i|my|the|form|record|chart|file|in)){{0,6}}\s*[:\-]?\s*({date})"
    )
}

impl Patterns {
    pub(crate) fn new() -> Self {
        Self {
            email: re(r"(?i)[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,24}\b"),
            email_spelled: re(
                r"(?i)\b[a-z0-9._\-]+\s*(?:\(at\)|\[at\]|\{at\}| at )\s*[a-z0-9\-]+\s*(?:\(dot\)|\[dot\]|\{dot\}| dot )\s*(?:com|org|net|edu|gov|co\.uk|io|me|us|uk|ca)\b",
            ),
            phone: re(concat!(
                // A trunk digit before a bracketed area code ("8 (301) 123-45-67"), a code
                // with a space or hyphen inside ("(06 1)", "(0-312)"); `\b` after the
                // alternatives, so a shorter one never stops inside a longer number.
                r"(?i)(?:(?:\+\d{1,3}[\s.\-]?)?(?:(?:\d\s?)?\(\d(?:[\s\-]?\d){0,4}\)[\s.\-]?)?\d{1,8}(?:[\s.\-]\d{1,10}){1,6}",
                r"|(?:\+?1[\s.\-]?)?\(?\d{3}\)?[\s.\-]?\d{3}[\s.\-]?\d{4}",
                r"|(?:\d\s?)?\(\d(?:[\s\-]?\d){0,4}\)[\s.\-]?\d{4,10}",
                r"|\+\d{7,15}|\d{6,15})\b",
                r"(?:,?\s*(?:ext\.?|extension|x)\s*\d{1,6}\b)?",
            )),
            ssn: re(r"\b\d{3}([\- ])\d{2}([\- ])\d{4}\b"),
            ssn_context: re(
                r"(?i)\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?|social)\b[^\d\n]{0,24}?(\d{9})\b",
            ),
            card: re(r"\b\d(?:[ \-]?\d){11,18}\b"),
            card_ending: re(
                r"(?i)\b(?:card|visa|mastercard|amex|debit|credit)\b[^.\n\d]{0,24}?\bending(?:\s+(?:in|with))?[\s:]+(\d{4})\b",
            ),
            iban: re(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
            ipv4: re(r"\b(?:\d{1,3}\.){3}\d{1,3}\b"),
            ipv6: re(r"(?i)(?:[0-9a-f]{1,4}:|::)[0-9a-f:.]{2,}"),
            url: re(
                r"(?i)\b(?:https?://|www\.)[^\s<>\x22'()\[\]]+|\b(?:facebook|fb|instagram|twitter|x|tiktok|linkedin|snapchat|youtube|github|reddit|medium|pinterest|tumblr|onlyfans|venmo|cash)\.(?:com|me|app)/[^\s<>\x22'()\[\]]+",
            ),
            handle: re(
                r"(?:^|[^\w@./])(@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?)|\b(u/[A-Za-z0-9_\-]{3,20})\b",
            ),
            dob: re(&dob_pattern()),
            id_number: re(concat!(
                r"(?i)\b(?:mrn|medical\s+record(?:\s+(?:number|no\.?|#))?|patient\s+(?:id|number|no\.?|#)|chart\s+(?:number|no\.?|#)",
                r"|insurance(?:\s+(?:id|number|no\.?|#|policy(?:\s+number)?|card(?:\s+number)?|member\s+id))|policy\s+(?:number|no\.?|#)",
                r"|member\s+(?:id|number|no\.?|#)|subscriber\s+(?:id|number|no\.?|#)|group\s+(?:number|no\.?|#)",
                r"|medicaid(?:\s+(?:id|number|no\.?|#))?|medicare(?:\s+(?:id|number|no\.?|#))?",
                r"|(?:driver'?s\s+)?licen[cs]e\s+(?:number|no\.?|#)|dl\s*#|passport\s+(?:number|no\.?|#)|npi(?:\s+(?:number|#))?|dea\s+(?:number|#)",
                r"|account(?:\s+(?:number|no\.?|#))?|id\s+(?:number|no\.?|#))",
                // "… number is X", "… number: X", or a few words between: "… number on
                // the letter is X".
                r"(?:\s+(?:[a-z']+\s+){0,4}?(?:is|was|reads|says)\b|\s*[:#=])?\s*:?\s*([A-Za-z0-9][A-Za-z0-9\-]{3,19}(?: \d{2,6}){0,4})\b",
            )),
            // A house number and the words after it; which of them is the street type is
            // decided in code, against `street_types`.
            address: re(&format!(
                r"\b{number}\s+{word}(?:\s+{word}){{0,5}}",
                number = address::HOUSE_NUMBER,
                word = r"[\p{L}0-9'\-]+\.?",
            )),
            // What may follow a street type: a directional, then a unit.
            after_street: re(concat!(
                r"^(?i)(?:\s+(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West|Northeast|Northwest|Southeast|Southwest)\b\.?)?",
                r"(?:,?\s*(?:(?:apt|apartment|unit|suite|ste|flat|floor|fl|room|rm)\b|#)\.?\s*#?[a-z0-9\-]+)?",
            )),
            street_types: address::street_types(),
            more_addresses: address::Addresses::new(),
            dates: dates::Dates::new(),
            po_box: re(r"(?i)\b(?:p\.?\s?o\.?\s*box|post\s+office\s+box)\s+\d{1,6}\b"),
            uk_postcode: re(r"\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[ABD-HJLNP-UW-Z]{2}\b"),
            city_zip: re(&format!(
                r"\b[A-Z][a-z]+(?:\s[A-Z][a-z]+){{0,2}},\s{US_STATES}\s\d{{5}}(?:-\d{{4}})?\b"
            )),
            city_zip_any_case: re(&format!(
                r"(?i)\b[a-z]+(?:\s[a-z]+){{0,2}},\s{US_STATES}\s\d{{5}}(?:-\d{{4}})?\b"
            )),
        }
    }

    /// Dates other than birth dates, and ages over 89 (`dates = "all"`).
    pub(crate) fn find_dates(&self, text: &str, out: &mut Vec<RawSpan>) {
        if !text.bytes().any(|b| b.is_ascii_digit()) {
            return;
        }
        let mut found = Vec::new();
        self.dates.dates(text, &mut found);
        for (start, end) in found.drain(..) {
            push(out, PiiType::Date, start, end, Confidence::Sure, "date");
        }
        self.dates.ages(text, &mut found);
        for (start, end) in found {
            push(
                out,
                PiiType::Age,
                start,
                end,
                Confidence::Sure,
                "age-over-89",
            );
        }
    }

    pub(crate) fn find(&self, text: &str, out: &mut Vec<RawSpan>) {
        self.find_with(text, &Facts::of(text), out);
    }

    /// [`Self::find`], running only the patterns `facts` allow.
    fn find_with(&self, text: &str, facts: &Facts, out: &mut Vec<RawSpan>) {
        self.emails(text, facts, out);
        self.urls_and_handles(text, facts, out);
        if facts.digits == 0 {
            return;
        }
        self.numbers(text, facts, out);
        self.contexts(text, facts, out);
        self.addresses(text, facts, out);
    }

    fn emails(&self, text: &str, facts: &Facts, out: &mut Vec<RawSpan>) {
        if facts.at_sign {
            for m in self.email.find_iter(text) {
                push_match(out, PiiType::Email, &m, Confidence::Sure, "email");
            }
        }
        if !(facts.spelled_at && facts.spelled_dot) {
            return;
        }
        for m in self.email_spelled.find_iter(text) {
            push_match(
                out,
                PiiType::Email,
                &m,
                Confidence::Sure,
                "email-spelled-out",
            );
        }
    }

    fn urls_and_handles(&self, text: &str, facts: &Facts, out: &mut Vec<RawSpan>) {
        if facts.slash || facts.www {
            self.urls(text, out);
        }
        if !(facts.at_sign || facts.u_slash) {
            return;
        }
        for c in self.handle.captures_iter(text) {
            if let Some(m) = c.get(1).or_else(|| c.get(2))
                && !quantity_handle(m.as_str())
            {
                push_match(out, PiiType::Handle, &m, Confidence::Sure, "handle");
            }
        }
    }

    fn urls(&self, text: &str, out: &mut Vec<RawSpan>) {
        for m in self.url.find_iter(text) {
            let end = m.start() + trim_trailing_punctuation(m.as_str());
            let url = &text[m.start()..end];
            let confidence = personal_url(url)
                .or_else(|| personal_url_context(text, m.start()).then_some(Confidence::Sure));
            if let Some(confidence) = confidence {
                push(
                    out,
                    PiiType::Url,
                    m.start(),
                    end,
                    confidence,
                    "personal-url",
                );
            }
        }
    }

    fn numbers(&self, text: &str, facts: &Facts, out: &mut Vec<RawSpan>) {
        if facts.tight_run >= 9 {
            self.ssns(text, out);
        }
        if facts.tight_run >= 12 {
            self.cards(text, out);
        }
        if facts.capital_digit {
            self.ibans(text, out);
        }
        if facts.consecutive >= 4 {
            self.card_endings(text, out);
        }
        if facts.digit_run >= 6 {
            for m in self.phone.find_iter(text) {
                if let Some((end, confidence, rule)) = phone(text, m.start(), m.end()) {
                    push(out, PiiType::Phone, m.start(), end, confidence, rule);
                }
            }
        }
        if facts.dotted >= 3 {
            self.ipv4s(text, out);
        }
        if facts.hex_colon {
            self.ipv6s(text, out);
        }
    }

    fn ssns(&self, text: &str, out: &mut Vec<RawSpan>) {
        for c in self.ssn.captures_iter(text) {
            let (Some(m), Some(a), Some(b)) = (c.get(0), c.get(1), c.get(2)) else {
                continue;
            };
            let digits = digits_of(m.as_str());
            if a.as_str() == b.as_str()
                && valid_ssn(&digits)
                && standalone(text, m.start(), m.end())
            {
                push_match(out, PiiType::Ssn, &m, Confidence::Sure, "ssn");
            }
        }
        for c in self.ssn_context.captures_iter(text) {
            if let Some(m) = c.get(1)
                && valid_ssn(m.as_str())
            {
                push_match(out, PiiType::Ssn, &m, Confidence::Sure, "ssn-in-context");
            }
        }
    }

    fn cards(&self, text: &str, out: &mut Vec<RawSpan>) {
        for m in self.card.find_iter(text) {
            let digits = digits_of(m.as_str());
            if !consistent_grouping(m.as_str()) || !standalone(text, m.start(), m.end()) {
                continue;
            }
            if (13..=19).contains(&digits.len())
                && luhn(&digits)
                && matches!(digits.as_bytes()[0], b'2'..=b'6')
            {
                push_match(out, PiiType::Card, &m, Confidence::Sure, "card-luhn");
            } else if (12..=19).contains(&digits.len()) && card_context_before(text, m.start()) {
                // "my card number is …": a mistyped or made-up number is still one.
                push_match(out, PiiType::Card, &m, Confidence::Sure, "card-in-context");
            }
        }
    }

    /// The last digits of a card ("the card ending 8842", "Visa ending in 1234").
    fn card_endings(&self, text: &str, out: &mut Vec<RawSpan>) {
        for c in self.card_ending.captures_iter(text) {
            if let Some(m) = c.get(1) {
                push_match(out, PiiType::Card, &m, Confidence::Sure, "card-last-digits");
            }
        }
    }

    /// IBANs (ISO 13616): two letters, two check digits, up to 30 letters and digits, in
    /// one run or in groups of four; the mod-97 check must hold.
    fn ibans(&self, text: &str, out: &mut Vec<RawSpan>) {
        for m in self.iban.find_iter(text) {
            let compact: String = m.as_str().chars().filter(|c| !c.is_whitespace()).collect();
            if (15..=34).contains(&compact.len()) && iban_mod97(&compact) {
                push_match(out, PiiType::Iban, &m, Confidence::Sure, "iban-mod97");
            }
        }
    }

    fn ipv4s(&self, text: &str, out: &mut Vec<RawSpan>) {
        for m in self.ipv4.find_iter(text) {
            let ok = m.as_str().split('.').all(|o| {
                o.parse::<u16>().is_ok_and(|v| v <= 255) && !(o.len() > 1 && o.starts_with('0'))
            });
            if ok && standalone(text, m.start(), m.end()) && !version_before(text, m.start()) {
                push_match(out, PiiType::Ip, &m, Confidence::Sure, "ipv4");
            }
        }
    }

    fn ipv6s(&self, text: &str, out: &mut Vec<RawSpan>) {
        for m in self.ipv6.find_iter(text) {
            let s = m.as_str().trim_end_matches(['.', ':']);
            let groups = s.split(':').filter(|g| !g.is_empty()).count();
            if groups >= 3 && s.parse::<std::net::Ipv6Addr>().is_ok() {
                push(
                    out,
                    PiiType::Ip,
                    m.start(),
                    m.start() + s.len(),
                    Confidence::Sure,
                    "ipv6",
                );
            }
        }
    }

    fn contexts(&self, text: &str, facts: &Facts, out: &mut Vec<RawSpan>) {
        for c in self.dob.captures_iter(text) {
            if let Some(m) = c.get(1) {
                let date = m.as_str();
                // A year alone is not a birth date identifier (HIPAA keeps years).
                if date.bytes().filter(u8::is_ascii_digit).count() > 0 {
                    push_match(
                        out,
                        PiiType::Dob,
                        &m,
                        Confidence::Sure,
                        "date-in-birth-context",
                    );
                }
            }
        }
        if facts.digits < 2 {
            return;
        }
        for c in self.id_number.captures_iter(text) {
            if let Some(m) = c.get(1) {
                let v = m.as_str();
                let digits = v.bytes().filter(u8::is_ascii_digit).count();
                if digits >= 4 || (digits >= 2 && v.len() >= 6) {
                    push_match(
                        out,
                        PiiType::IdNumber,
                        &m,
                        Confidence::Sure,
                        "number-in-id-context",
                    );
                }
            }
        }
    }

    fn addresses(&self, text: &str, facts: &Facts, out: &mut Vec<RawSpan>) {
        // Not `captures_iter`: a rejected match ("for 2 to 18300 Carriage Drive") must not
        // hide one that starts inside it, so the search resumes after its first word.
        let mut at = 0;
        // `find_at`, not captures (far slower): the words are what follows the number.
        while let Some(m) = self.address.find_at(text, at) {
            let number_end = text[m.start()..]
                .find(char::is_whitespace)
                .map_or(m.end(), |i| m.start() + i);
            at = number_end;
            let lower = |w: &str| w.chars().next().is_some_and(char::is_lowercase);
            let words = &text[number_end..m.end()];
            let Some((names, suffix, suffix_end)) = self.street(text, words.trim_start()) else {
                continue;
            };
            let mut match_end = suffix_end;
            if let Some(a) = self.after_street.find(&text[match_end..]) {
                match_end += a.end();
            }
            // "5 blocks down Main Street" is not an address; "140 New Montgomery Street" is:
            // these words count against it in lower case only.
            let bad = names
                .iter()
                .any(|w| lower(w) && NOT_STREET_WORDS.contains(&w.to_ascii_lowercase().as_str()));
            // "2100 Avy Avenue.The cab": a dot glued to the next sentence is not the street's.
            if text[..match_end].ends_with('.')
                && text[match_end..].starts_with(char::is_alphanumeric)
            {
                match_end -= 1;
            }
            let announced = address_context_before(text, m.start());
            if (bad && !announced) || !standalone(text, m.start(), match_end) {
                continue;
            }
            // "12 Oak Street" or "12 oak st": some street name, and a suffix that is not
            // followed by more words of a sentence ("4 dr" alone is not an address).
            if names.is_empty() {
                continue;
            }
            let upper = |w: &str| {
                w.chars()
                    .next()
                    .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
            };
            let capitalised = names.iter().all(|w| upper(w)) && upper(suffix);
            // Suffixes that are everyday words ("way", "place", "court") count only in a
            // capitalised street name.
            let everyday = !UNAMBIGUOUS_SUFFIXES.contains(&suffix.to_ascii_lowercase().as_str());
            if everyday && !capitalised && !announced {
                continue;
            }
            if !capitalised && !announced && names.len() > 2 {
                continue;
            }
            let confidence = if capitalised || announced {
                Confidence::Sure
            } else {
                Confidence::Unsure
            };
            let mut end = match_end;
            if let Some(z) = self.city_zip_any_case.find_at(text, end)
                && text[end..z.start()].trim_matches([',', ' ']).is_empty()
            {
                end = z.end();
            }
            end = self.more_addresses.tail_end(text, end);
            at = end;
            push(
                out,
                PiiType::Address,
                m.start(),
                end,
                confidence,
                "street-address",
            );
        }
        if facts.po_box {
            for m in self.po_box.find_iter(text) {
                let end = self.more_addresses.tail_end(text, m.end());
                push(
                    out,
                    PiiType::Address,
                    m.start(),
                    end,
                    Confidence::Sure,
                    "po-box",
                );
            }
        }
        let mut more = Vec::new();
        self.more_addresses.find(text, &mut more);
        for (start, end, rule) in more {
            let end = self.more_addresses.tail_end(text, end);
            push(out, PiiType::Address, start, end, Confidence::Sure, rule);
        }
        if facts.capital_digit {
            for m in self.uk_postcode.find_iter(text) {
                push_match(out, PiiType::Address, &m, Confidence::Sure, "uk-postcode");
            }
        }
        if facts.consecutive < 5 {
            return;
        }
        for m in self.city_zip.find_iter(text) {
            push_match(
                out,
                PiiType::Address,
                &m,
                Confidence::Sure,
                "city-state-zip",
            );
        }
    }
}

/// What one pass over the bytes says a text can hold. A pattern runs only when its facts
/// allow a match, so each fact must over-approximate what its patterns need: skipping a
/// pattern must never lose a detection (the pattern tests below run both ways).
#[derive(Debug, Default, PartialEq, Eq)]
struct Facts {
    /// ASCII digits in the text.
    digits: usize,
    /// The most digits in one run where digits are at most 6 bytes apart and only
    /// separators come between (whitespace, `.`, `-`, `(`, `)`, `+`, any non-ASCII byte):
    /// A phone needs 7.
    digit_run: usize,
    /// The most digits in one run with at most one space or `-` between two of them: a
    /// card needs 13, an SSN 9.
    tight_run: usize,
    /// The most digits in a row: a ZIP code needs 5.
    consecutive: usize,
    /// The most dots in a run of digits and dots: an IPv4 address needs 3.
    dotted: usize,
    /// `box` in any case (a PO box).
    po_box: bool,
    at_sign: bool,
    slash: bool,
    /// `u/` (a Reddit handle).
    u_slash: bool,
    /// `www` in any case.
    www: bool,
    /// ` at `, `(at)`, `[at]` or `{at}` in any case, and `dot` in any case.
    spelled_at: bool,
    spelled_dot: bool,
    /// A hex digit or `:` on both sides of a `:` (IPv6).
    hex_colon: bool,
    /// An upper-case ASCII letter right before a digit (a UK postcode).
    capital_digit: bool,
}

#[cfg(test)]
impl Facts {
    /// Facts that allow every pattern.
    fn open() -> Facts {
        Facts {
            digits: usize::MAX,
            digit_run: usize::MAX,
            tight_run: usize::MAX,
            consecutive: usize::MAX,
            dotted: usize::MAX,
            po_box: true,
            at_sign: true,
            slash: true,
            u_slash: true,
            www: true,
            spelled_at: true,
            spelled_dot: true,
            hex_colon: true,
            capital_digit: true,
        }
    }
}

/// Byte classes for [`Facts::of`]: may come between the digits of a phone number …
const GAP: u8 = 1;
/// … between the digit groups of a card or SSN …
const TIGHT: u8 = 2;
/// … or of an IPv4 address.
const DOT: u8 = 4;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b' ' | b'-' => GAP | TIGHT,
            b'.' => GAP | DOT,
            b'+' | b'(' | b')' => GAP,
            _ if c.is_ascii_whitespace() || c >= 0x80 => GAP,
            _ => 0,
        };
        b += 1;
    }
    t
};

impl Facts {
    fn of(text: &str) -> Facts {
        let b = text.as_bytes();
        let at = |i: usize| b.get(i).map_or(0, u8::to_ascii_lowercase);
        let before = |i: usize, s: &[u8]| i >= s.len() && b[i - s.len()..i].eq_ignore_ascii_case(s);
        let mut f = Facts {
            at_sign: memchr(b'@', b).is_some(),
            slash: memchr(b'/', b).is_some(),
            ..Facts::default()
        };
        f.u_slash = f.slash && memchr_iter(b'/', b).any(|i| before(i, b"u"));
        // Only asked when there is no slash.
        f.www = !f.slash && memchr_iter(b'.', b).any(|i| before(i, b"www"));
        let hexish = |c: u8| c.is_ascii_hexdigit() || c == b':';
        f.hex_colon = memchr_iter(b':', b).any(|i| i > 0 && hexish(b[i - 1]) && hexish(at(i + 1)));
        f.spelled_dot = memchr2_iter(b'd', b'D', b).any(|i| at(i + 1) == b'o' && at(i + 2) == b't');
        f.spelled_at = f.spelled_dot
            && memchr2_iter(b'a', b'A', b).any(|i| {
                i > 0
                    && at(i + 1) == b't'
                    && matches!(
                        (b[i - 1], at(i + 2)),
                        (b' ', b' ') | (b'(', b')') | (b'[', b']') | (b'{', b'}')
                    )
            });
        if let Some(first) = b.iter().position(u8::is_ascii_digit) {
            f.digit_facts(b, first);
        }
        f.po_box = f.digits > 0 && memchr2_iter(b'x', b'X', b).any(|i| before(i, b"bo"));
        f
    }

    /// The digit facts, from the first digit at `i` on: each cluster of digits and the
    /// separators between them is walked once; the text between clusters is skipped.
    fn digit_facts(&mut self, b: &[u8], mut i: usize) {
        while let Some(p) = b[i..].iter().position(u8::is_ascii_digit) {
            i += p;
            // Digits in the current phone-like, card-like and plain run; separators since
            // the last digit; dots in the current run of digits and dots.
            let (mut run, mut gap, mut tight, mut tight_gap) = (0usize, 0usize, 0usize, 0usize);
            let (mut consecutive, mut dots) = (0usize, 0usize);
            while let Some(&c) = b.get(i) {
                if c.is_ascii_digit() {
                    self.digits += 1;
                    run += 1;
                    tight = if tight > 0 && tight_gap <= 1 {
                        tight + 1
                    } else {
                        1
                    };
                    (gap, tight_gap) = (0, 0);
                    consecutive += 1;
                    self.digit_run = self.digit_run.max(run);
                    self.tight_run = self.tight_run.max(tight);
                    self.consecutive = self.consecutive.max(consecutive);
                    self.capital_digit |= i > 0 && b[i - 1].is_ascii_uppercase();
                } else {
                    let class = CLASSES[usize::from(c)];
                    gap += 1;
                    if class & GAP == 0 || gap > 6 {
                        break;
                    }
                    consecutive = 0;
                    if class & TIGHT != 0 {
                        tight_gap += 1;
                    } else {
                        tight = 0;
                    }
                    if class & DOT != 0 {
                        dots += 1;
                        self.dotted = self.dotted.max(dots);
                    } else {
                        dots = 0;
                    }
                }
                i += 1;
            }
        }
    }
}

impl Patterns {
    /// In the words after a house number, the street: its name words, its type and the
    /// byte end of the type (with a dot after it). The type is the first word (or two or
    /// three words) in the street types after one to three name words, extended over
    /// types that follow it in the same case ("Beacon Hill Road", "Harbor View Avenue",
    /// but "Maple Drive" in "Maple Drive last spring"). A name word ending a sentence
    /// ("Carriage. Is") ends the search.
    fn street<'t>(&self, text: &'t str, words: &'t str) -> Option<(Vec<&'t str>, &'t str, usize)> {
        let ws: Vec<&str> = words.split_whitespace().collect();
        let base = words.as_ptr() as usize - text.as_ptr() as usize;
        let start_of = |w: &str| base + (w.as_ptr() as usize - words.as_ptr() as usize);
        let capital = |w: &str| w.chars().next().is_some_and(|c| !c.is_lowercase());
        // The length in words of a street type starting at `k`, if one does. Most words
        // after a number are not: one lower-casing into a reused buffer, no allocation.
        let mut key = String::new();
        let mut type_at = |k: usize| {
            (1..=3.min(ws.len().saturating_sub(k))).find(|&span| {
                let parts = &ws[k..k + span];
                // Only the last word of a type may carry a dot ("Ave.").
                if parts[..span - 1].iter().any(|p| p.ends_with('.')) {
                    return false;
                }
                key.clear();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        key.push(' ');
                    }
                    key.extend(p.trim_end_matches('.').chars().flat_map(char::to_lowercase));
                }
                self.street_types.contains(key.as_str())
            })
        };
        let mut found = None;
        for k in 1..ws.len().min(4) {
            let last_name = ws[k - 1];
            if last_name.ends_with('.') && last_name.chars().count() > 4 {
                return None;
            }
            if let Some(span) = type_at(k) {
                found = Some((k, span));
                break;
            }
        }
        let (mut k, mut span) = found?;
        while k + span < ws.len() && !ws[k + span - 1].ends_with('.') {
            let next = k + span;
            match type_at(next) {
                Some(s) if capital(ws[next]) == capital(ws[k]) => (k, span) = (next, s),
                _ => break,
            }
        }
        let first = start_of(ws[k]);
        let last = ws[k + span - 1];
        let end = start_of(last) + last.len();
        Some((
            ws[..k].to_vec(),
            text[first..end].trim_end_matches('.'),
            end,
        ))
    }
}

/// Whether any of `words` occurs in the `chars` characters before `start`, in any case.
fn said_before(text: &str, start: usize, chars: usize, words: &[&str]) -> bool {
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(chars)
        .map_or(0, |(i, _)| i);
    let window = text[from..start].to_ascii_lowercase();
    words.iter().any(|w| window.contains(w))
}

/// Words just before `start` that announce an address ("I live at", "my address is").
fn address_context_before(text: &str, start: usize) -> bool {
    said_before(
        text,
        start,
        28,
        &[
            "live at",
            "lives at",
            "living at",
            "lived at",
            "address is",
            "address:",
            "moved to",
            "moving to",
            "send it to",
            "letter to",
            "mail it to",
            "located at",
            "staying at",
            "house at",
            "house is at",
            "apartment at",
            "live on",
            "lives on",
            "home is",
        ],
    )
}

fn push(
    out: &mut Vec<RawSpan>,
    kind: PiiType,
    start: usize,
    end: usize,
    confidence: Confidence,
    rule: &'static str,
) {
    if end > start {
        out.push(RawSpan {
            kind,
            start,
            end,
            confidence,
            rule,
        });
    }
}

fn push_match(
    out: &mut Vec<RawSpan>,
    kind: PiiType,
    m: &regex::Match<'_>,
    confidence: Confidence,
    rule: &'static str,
) {
    push(out, kind, m.start(), m.end(), confidence, rule);
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Not glued to other digits, letters, or decimal/thousands separators.
fn standalone(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let glued = |c: Option<char>, next: Option<char>| match c {
        Some(c) if c.is_alphanumeric() || c == '_' => true,
        // "1.5" or "3,000": a separator followed by a digit continues the number.
        Some('.' | ',' | '-' | '/') => next.is_some_and(|n| n.is_ascii_digit()),
        _ => false,
    };
    let before2 = text[..start].chars().rev().nth(1);
    let after2 = text[end..].chars().nth(1);
    !glued(before, before2) && !glued(after, after2)
}

fn valid_ssn(d: &str) -> bool {
    if d.len() != 9 {
        return false;
    }
    let (area, group, serial) = (&d[0..3], &d[3..5], &d[5..9]);
    area != "000" && area != "666" && !area.starts_with('9') && group != "00" && serial != "0000"
}

fn luhn(d: &str) -> bool {
    let mut sum = 0;
    for (i, b) in d.bytes().rev().enumerate() {
        let mut v = u32::from(b - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// A card number is written as one run, or in groups with one kind of separator.
fn consistent_grouping(s: &str) -> bool {
    let spaces = s.contains(' ');
    let dashes = s.contains('-');
    !(spaces && dashes)
}

/// Validates a phone candidate; returns its end, confidence and rule.
fn phone(text: &str, start: usize, end: usize) -> Option<(usize, Confidence, &'static str)> {
    let s = &text[start..end];
    let digits = digits_of(s);
    if is_crisis_number(&digits) || !standalone(text, start, end) {
        return None;
    }
    let separators = s
        .chars()
        .filter(|c| matches!(c, ' ' | '.' | '-' | '(' | ')'))
        .count();
    let has_ext = s.to_ascii_lowercase().contains('x');
    let main_digits = if has_ext {
        // Count digits before the extension marker.
        let lower = s.to_ascii_lowercase();
        let cut = lower
            .find("ext")
            .or_else(|| lower.find('x'))
            .unwrap_or(s.len());
        digits_of(&s[..cut])
    } else {
        digits.clone()
    };
    if is_crisis_number(&main_digits) {
        return None;
    }
    let n = main_digits.len();
    let international = s.starts_with('+');
    // Dates (2024-01-15, 01.02.2024) and times have 2-digit groups ending in a 4-digit year
    // or are too short; phone numbers have 10+ digits (7 with a local 3-4 split).
    let groups: Vec<&str> = s
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    // After a country code, or spaced where the text says phone ("my number is 22 12 34"),
    // it is not a date.
    let spaced_in_context = !s.contains(['.', '/', '-']) && context_before(text, start);
    if !international
        && !spaced_in_context
        && (looks_like_date(&groups)
            || (groups.len() == 4 && s.contains('.') && groups.iter().all(|g| g.len() <= 3)))
    {
        return None;
    }
    if international && (7..=15).contains(&n) {
        return Some((end, Confidence::Sure, "phone-international"));
    }
    let context = context_before(text, start) || context_after(text, end);
    if quantity_around(text, start, end) {
        return None;
    }
    // "call me on 712 345", "my number is 0800 1234": any number of phone length where
    // the text says it is one, and does not say it is a record or account number.
    if context && (6..=15).contains(&n) && !id_context_before(text, start) {
        return Some((end, Confidence::Sure, "phone-in-context"));
    }
    if (10..=11).contains(&n)
        && (separators > 0 || context)
        && (n == 10 || main_digits.starts_with(['0', '1']))
    {
        return Some((end, Confidence::Sure, "phone"));
    }
    if n == 10 && separators == 0 {
        // A bare run of ten digits: a phone number only where the text says so.
        return None;
    }
    // National formats of other regions: "412 553 901", "47-12-88-30", "02 234 5678",
    // "(71) 845-302", "0800 1234 567": three or more groups of two to four digits, or an
    // area code in brackets, or a trunk prefix 0, with 8 to 12 digits.
    let grouped = groups.len() >= 3 && groups.iter().all(|g| (2..=4).contains(&g.len()));
    // "(71) 845-302", or after a trunk digit: "8 (912) 345-67-89".
    let bracketed = groups.len() >= 2
        && (s.starts_with('(') || s[1..].trim_start().starts_with('(') && groups[0].len() == 1);
    let trunk = main_digits.starts_with('0') && groups.len() >= 2;
    if (8..=12).contains(&n)
        && separators > 0
        && (grouped || bracketed || trunk)
        && !id_context_before(text, start)
    {
        let confidence = if context {
            Confidence::Sure
        } else {
            Confidence::Unsure
        };
        return Some((end, confidence, "phone-national-format"));
    }
    if n == 7 && groups.len() == 2 && groups[0].len() == 3 && groups[1].len() == 4 {
        let confidence = if context {
            Confidence::Sure
        } else {
            Confidence::Unsure
        };
        return Some((end, confidence, "phone-local"));
    }
    None
}

/// Money or a count: a currency sign before, or a unit or currency word after ("€ 12 500
/// 000", "10 000 000 people").
fn quantity_around(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].trim_end();
    if before.ends_with(['$', '€', '£', '¥', '₹', '₩', '₽', '₺']) {
        return true;
    }
    let after: String = text[end..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    matches!(
        after.as_str(),
        "dollars"
            | "euros"
            | "euro"
            | "usd"
            | "eur"
            | "gbp"
            | "pounds"
            | "kr"
            | "sek"
            | "nok"
            | "dkk"
            | "yen"
            | "rupees"
            | "won"
            | "people"
            | "users"
            | "years"
            | "steps"
            | "words"
            | "km"
            | "miles"
            | "kg"
            | "mg"
            | "ml"
            | "units"
            | "times"
    )
}

/// "@45cc", "@10mg", "@2pm": an amount or a time written with `@` ("at"), not a handle.
fn quantity_handle(handle: &str) -> bool {
    let body = handle.trim_start_matches('@');
    let unit = body.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    unit.len() < body.len() && unit.len() <= 3 && unit.chars().all(|c| c.is_ascii_alphabetic())
}

/// Words just before `start` that announce a payment card.
fn card_context_before(text: &str, start: usize) -> bool {
    said_before(
        text,
        start,
        32,
        &[
            "card",
            "visa",
            "mastercard",
            "amex",
            "discover",
            "maestro",
            "cc#",
            "cc no",
            "cc num",
        ],
    )
}

/// ISO 13616 check: move the first four characters to the end, letters to 10..35, and
/// the number mod 97 is 1.
fn iban_mod97(iban: &str) -> bool {
    if !iban.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, rest) = iban.split_at(4);
    let mut r: u32 = 0;
    for b in rest.bytes().chain(head.bytes()) {
        let v = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            _ => u32::from(b.to_ascii_uppercase() - b'A') + 10,
        };
        r = if v >= 10 {
            (r * 100 + v) % 97
        } else {
            (r * 10 + v) % 97
        };
    }
    r == 1
}

fn looks_like_date(groups: &[&str]) -> bool {
    match groups {
        [a, b, c] => {
            (a.len() == 4 && b.len() <= 2 && c.len() <= 2)
                || (a.len() <= 2 && b.len() <= 2 && (c.len() == 4 || c.len() == 2))
        }
        _ => false,
    }
}

/// Words just before `start` that announce a phone number.
fn context_before(text: &str, start: usize) -> bool {
    said_before(
        text,
        start,
        40,
        &[
            "call", "phone", "number", "cell", "mobile", "text me", "reach me", "tel", "contact",
            "whatsapp", "fax",
        ],
    )
}

/// Words just after `end` that say the number was a phone number ("… is my cell", "… (mobile)").
fn context_after(text: &str, end: usize) -> bool {
    let window: String = text[end..]
        .chars()
        .take(24)
        .collect::<String>()
        .to_ascii_lowercase();
    let window = window.trim_start();
    const KINDS: [&str; 9] = [
        "cell", "mobile", "phone", "number", "landline", "home", "work", "whatsapp", "fax",
    ];
    let after_is_my = ["is my ", "'s my ", "is our ", "is the "]
        .iter()
        .find_map(|p| window.strip_prefix(p));
    let after_bracket = window.strip_prefix('(');
    after_is_my
        .or(after_bracket)
        .is_some_and(|rest| KINDS.iter().any(|k| rest.starts_with(k)))
}

/// Words just before `start` that make a number a record, account or document number.
fn id_context_before(text: &str, start: usize) -> bool {
    said_before(
        text,
        start,
        40,
        &[
            "mrn",
            "record",
            "patient",
            "chart",
            "insurance",
            "policy",
            "member",
            "subscriber",
            "group",
            "medicaid",
            "medicare",
            "licen",
            "passport",
            "npi",
            "dea",
            "account",
            " id",
            "id:",
            "id#",
            "ssn",
            "social",
            "routing",
            "case",
            "claim",
            "order",
            "tracking",
        ],
    )
}

fn version_before(text: &str, start: usize) -> bool {
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(12)
        .map_or(0, |(i, _)| i);
    let w = text[from..start].to_ascii_lowercase();
    w.contains("version") || w.ends_with('v') || w.contains("ver.")
}

fn trim_trailing_punctuation(url: &str) -> usize {
    url.trim_end_matches(['.', ',', ';', ':', '!', '?']).len()
}

/// Words just before a link that say it is someone's own page ("my website is …", "find me
/// at …", "her blog: …").
fn personal_url_context(text: &str, start: usize) -> bool {
    let from = text[..start]
        .char_indices()
        .rev()
        .nth(32)
        .map_or(0, |(i, _)| i);
    let window = text[from..start].to_ascii_lowercase();
    const OWNERS: &[&str] = &["my ", "her ", "his ", "their ", "our "];
    const PAGES: &[&str] = &[
        "page",
        "site",
        "website",
        "blog",
        "portfolio",
        "profile",
        "channel",
        "homepage",
        "art",
        "photos",
        "work",
        "shop",
        "store",
    ];
    let owned = OWNERS
        .iter()
        .any(|o| PAGES.iter().any(|p| window.contains(&format!("{o}{p}"))));
    owned
        || ["find me", "follow me", "reach me"]
            .iter()
            .any(|w| window.contains(w))
}

/// Profile pages on social sites, and user pages (`/~name`, `/user/…`) anywhere, identify a
/// person; links to organisations and resources do not.
fn personal_url(url: &str) -> Option<Confidence> {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_start_matches("www.");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let path = path.trim_end_matches('/');
    const SOCIAL: &[&str] = &[
        "facebook.com",
        "fb.com",
        "instagram.com",
        "twitter.com",
        "x.com",
        "tiktok.com",
        "linkedin.com",
        "snapchat.com",
        "youtube.com",
        "github.com",
        "reddit.com",
        "medium.com",
        "pinterest.com",
        "tumblr.com",
        "onlyfans.com",
        "venmo.com",
        "cash.app",
        "t.me",
        "m.facebook.com",
        "threads.net",
        "bsky.app",
        "mastodon.social",
        "twitch.tv",
    ];
    if path.is_empty() {
        return None;
    }
    if SOCIAL
        .iter()
        .any(|s| host == *s || host.ends_with(&format!(".{s}")))
    {
        // Site pages that are not a person's.
        const SITE_PAGES: &[&str] = &[
            "help", "about", "legal", "privacy", "terms", "policies", "watch", "results", "search",
            "hashtag", "explore", "groups", "events", "r/",
        ];
        if SITE_PAGES.iter().any(|p| path.starts_with(p)) {
            return None;
        }
        return Some(Confidence::Sure);
    }
    if path.starts_with('~')
        || path.starts_with("user/")
        || path.starts_with("users/")
        || path.starts_with("u/")
        || path.starts_with("profile")
    {
        return Some(Confidence::Sure);
    }
    None
}

#[cfg(test)]
mod facts_tests {
    use proptest::prelude::*;

    use super::{Facts, Patterns};

    fn both_ways(p: &Patterns, text: &str) -> (Vec<super::RawSpan>, Vec<super::RawSpan>) {
        let (mut gated, mut open) = (Vec::new(), Vec::new());
        p.find(text, &mut gated);
        p.find_with(text, &Facts::open(), &mut open);
        (gated, open)
    }

    /// Skipping a pattern on the facts never loses a detection, on the planted corpus …
    #[test]
    fn facts_never_lose_a_planted_detection() {
        let p = Patterns::new();
        let corpus = gatehouse_synth::Corpus::new(11);
        let mut found = 0;
        for i in 0..3000 {
            for (_, m) in gatehouse_synth::pii::conversation(&corpus, i).messages {
                let (gated, open) = both_ways(&p, &m.text);
                assert_eq!(gated, open, "conversation {i}");
                found += gated.len();
            }
        }
        assert!(found > 3000, "the corpus holds detections: {found}");
    }

    /// … nor on text made of pieces of identifiers and the characters the facts look at.
    #[test]
    fn facts_never_lose_a_detection() {
        const PIECES: &[&str] = &[
            "555",
            "123",
            "4567",
            "4111",
            "1111",
            "12",
            "1",
            "90210",
            "0",
            " ",
            "-",
            ".",
            "(",
            ")",
            "+44",
            "+",
            "/",
            ":",
            "::",
            "fe80",
            "ab",
            "@",
            "x.com",
            "www",
            "WWW.",
            "u/",
            "dot",
            " at ",
            "(at)",
            "com",
            "PO",
            "Box",
            "box",
            "SW1A",
            "1AA",
            "\n",
            "\u{a0}",
            "é",
            "ssn",
            "born",
            "MRN",
            "is",
            "Main",
            "St",
            "Springfield, IL",
            "ext",
            "x",
        ];
        let p = Patterns::new();
        let text = proptest::collection::vec(proptest::sample::select(PIECES), 0..24)
            .prop_map(|pieces| pieces.concat());
        let found = std::cell::Cell::new(0usize);
        proptest!(ProptestConfig::with_cases(6000), |(t in text)| {
            let (gated, open) = both_ways(&p, &t);
            found.set(found.get() + open.len());
            prop_assert_eq!(gated, open);
        });
        assert!(
            found.get() > 500,
            "the pieces make identifiers: {}",
            found.get()
        );
    }

    #[test]
    fn facts_of_a_text() {
        let f = Facts::of("Call 555-123-4567 or write to Bo at x.y dot com, PO Box 12; SW1A 1AA");
        assert!(f.digit_run >= 10 && f.tight_run >= 10 && f.consecutive == 4);
        assert!(f.spelled_at && f.spelled_dot && f.po_box && f.capital_digit);
        assert!(!f.at_sign && !f.slash && !f.hex_colon);
        assert_eq!(Facts::of("1.2.3.4").dotted, 3);
        assert!(Facts::of("fe80::1").hex_colon && !Facts::of("Therapist: hi").hex_colon);
        assert!(Facts::of("see WWW.example.org").www);
    }
}
