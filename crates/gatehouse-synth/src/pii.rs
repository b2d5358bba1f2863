//! Planted PII with ground truth, and decoys that look like PII and are not.
//!
//! [`conversation`] takes a generated conversation and writes identifiers of every kind into
//! some of its messages (many formats, positions, casings and scripts), recording each one's
//! byte span: the ground truth. Other messages get decoys: crisis resources, clinical numbers,
//! doses, times, years, scores, non-birth dates and capitalised common words, also with spans.
//! [`score`] compares any detector's output with the truth: precision, recall and F2 per kind.
//!
//! The names here are written for this generator and are deliberately not taken from the
//! name lists the detector uses, so a score measures generalisation, not memory.

use std::collections::BTreeMap;

use crate::{Corpus, Family, Rng, Speaker};

/// A kind of identifier; `label()` is the placeholder word gatehouse uses for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Email,
    Phone,
    Ssn,
    Card,
    Ip,
    Address,
    Dob,
    IdNumber,
    Url,
    Handle,
    Name,
}

impl Kind {
    pub const ALL: [Kind; 11] = [
        Kind::Email,
        Kind::Phone,
        Kind::Ssn,
        Kind::Card,
        Kind::Ip,
        Kind::Address,
        Kind::Dob,
        Kind::IdNumber,
        Kind::Url,
        Kind::Handle,
        Kind::Name,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Kind::Email => "EMAIL",
            Kind::Phone => "PHONE",
            Kind::Ssn => "SSN",
            Kind::Card => "CARD",
            Kind::Ip => "IP",
            Kind::Address => "ADDRESS",
            Kind::Dob => "DOB",
            Kind::IdNumber => "ID_NUMBER",
            Kind::Url => "URL",
            Kind::Handle => "HANDLE",
            Kind::Name => "NAME",
        }
    }
}

/// What a decoy imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DecoyKind {
    /// A hotline or emergency number or name: must never be redacted.
    Crisis,
    /// Scores, doses, vitals, codes.
    Clinical,
    /// Dates, times and years outside a birth context.
    DateTime,
    /// Other numbers: money, counts, rooms, versions.
    Number,
    /// Capitalised common words, places, organisations, public figures.
    Word,
}

/// A span of a message: `text[start..end]` in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truth<K> {
    pub kind: K,
    pub start: usize,
    pub end: usize,
}

/// One message with its planted identifiers and decoys.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub text: String,
    pub planted: Vec<Truth<Kind>>,
    pub decoys: Vec<Truth<DecoyKind>>,
}

/// A generated conversation with ground truth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PiiConversation {
    pub id: String,
    pub messages: Vec<(Speaker, Message)>,
}

/// Conversation `index` of the planted corpus: a generated conversation with one to three
/// planted sentences and one or two decoy sentences placed at the start, middle or end of
/// its messages.
pub fn conversation(corpus: &Corpus, index: u64) -> PiiConversation {
    let family = Family::ALL[(index % 5) as usize];
    let base = corpus.conversation(family, index / 5);
    let mut rng = Rng::derive(corpus.seed, 0x5049_4921, index);
    let mut messages: Vec<(Speaker, Message)> = base
        .turns
        .into_iter()
        .map(|(s, t)| {
            (
                s,
                Message {
                    text: t,
                    ..Message::default()
                },
            )
        })
        .collect();
    let n = messages.len() as u64;
    let mut sentences: Vec<Message> = (0..rng.range(1, 3))
        .map(|_| planted_sentence(&mut rng))
        .collect();
    sentences.extend((0..rng.range(1, 2)).map(|_| decoy_sentence(&mut rng)));
    // Sign-offs last, so they stay the last line of their message.
    sentences.sort_by_key(|s| s.text.starts_with('\n'));
    for sentence in sentences {
        let at = rng.below(n) as usize;
        insert(&mut messages[at].1, sentence, &mut rng);
    }
    PiiConversation {
        id: base.id,
        messages,
    }
}

/// Puts `s` at the start, between two sentences, or at the end of `m`, shifting spans. A
/// sign-off (a sentence starting on a new line) always goes at the end, where letters have
/// them.
fn insert(m: &mut Message, s: Message, rng: &mut Rng) {
    let boundaries: Vec<usize> = m
        .text
        .match_indices(". ")
        .map(|(i, _)| i + 2)
        .filter(|i| !inside_any(m, *i))
        // Not after a title's dot ("Dr. Okafor").
        .filter(|i| {
            ![
                "Dr.", "Mr.", "Mrs.", "Ms.", "St.", "DR.", "MR.", "MRS.", "MS.", "dr.", "mr.",
                "mrs.", "ms.",
            ]
            .iter()
            .any(|t| m.text[..i - 1].ends_with(t))
        })
        .collect();
    let at = match rng.below(3) {
        _ if s.text.starts_with('\n') => m.text.len(),
        0 => 0,
        1 if !boundaries.is_empty() => boundaries[rng.below(boundaries.len() as u64) as usize],
        _ => m.text.len(),
    };
    let (before, after) = m.text.split_at(at);
    let sep_before = if before.is_empty() || before.ends_with(' ') || s.text.starts_with('\n') {
        ""
    } else {
        " "
    };
    let sep_after = if after.is_empty() || after.starts_with(' ') {
        ""
    } else {
        " "
    };
    let offset = at + sep_before.len();
    let added = sep_before.len() + s.text.len() + sep_after.len();
    let text = format!("{before}{sep_before}{}{sep_after}{after}", s.text);
    for t in &mut m.planted {
        if t.start >= at {
            t.start += added;
            t.end += added;
        }
    }
    for d in &mut m.decoys {
        if d.start >= at {
            d.start += added;
            d.end += added;
        }
    }
    m.planted.extend(s.planted.iter().map(|t| Truth {
        kind: t.kind,
        start: t.start + offset,
        end: t.end + offset,
    }));
    m.decoys.extend(s.decoys.iter().map(|t| Truth {
        kind: t.kind,
        start: t.start + offset,
        end: t.end + offset,
    }));
    m.text = text;
}

fn inside_any(m: &Message, i: usize) -> bool {
    m.planted.iter().any(|t| t.start < i && i < t.end)
        || m.decoys.iter().any(|t| t.start < i && i < t.end)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    As,
    Lower,
    Upper,
}

/// Writes a sentence part by part, recording spans.
struct Writer {
    m: Message,
    case: Case,
}

impl Writer {
    fn new(case: Case) -> Self {
        Self {
            m: Message::default(),
            case,
        }
    }

    fn cased(&self, s: &str) -> String {
        match self.case {
            Case::As => s.to_string(),
            Case::Lower => s.to_lowercase(),
            Case::Upper => s.to_uppercase(),
        }
    }

    fn text(&mut self, s: &str) -> &mut Self {
        let s = self.cased(s);
        self.m.text.push_str(&s);
        self
    }

    fn pii(&mut self, kind: Kind, s: &str) -> &mut Self {
        let s = self.cased(s);
        let start = self.m.text.len();
        self.m.text.push_str(&s);
        self.m.planted.push(Truth {
            kind,
            start,
            end: self.m.text.len(),
        });
        self
    }

    fn decoy(&mut self, kind: DecoyKind, s: &str) -> &mut Self {
        let s = self.cased(s);
        let start = self.m.text.len();
        self.m.text.push_str(&s);
        self.m.decoys.push(Truth {
            kind,
            start,
            end: self.m.text.len(),
        });
        self
    }

    fn done(self) -> Message {
        self.m
    }
}

// ---------------------------------------------------------------------------------------
// Identifiers

const FIRST: &[&str] = &[
    "Amara",
    "Thabo",
    "Ingrid",
    "Mateus",
    "Priyanka",
    "Kwame",
    "Soraya",
    "Bartek",
    "Ayesha",
    "Lucian",
    "Marisol",
    "Tadeusz",
    "Nkechi",
    "Rafferty",
    "Yusuf",
    "Elodie",
    "Kenji",
    "Fatou",
    "Anselm",
    "Rosalind",
    "Dmitri",
    "Leilani",
    "Oisin",
    "Zanele",
    "Gustavo",
    "Henrietta",
    "Arjun",
    "Mireille",
    "Tobias",
    "Chiamaka",
    "Saoirse",
    "Rashid",
    "Birgit",
    "Ezekiel",
    "Valentina",
    "Hamza",
    "Solveig",
    "Desmond",
    "Anjali",
    "Florian",
    "Nadia",
    "Caspian",
    "Imogen",
    "Obinna",
    "Ludmila",
    "Teodoro",
    "Ximena",
    "Benedikt",
    "Wanjiru",
    "Cormac",
    "Esperanza",
    "Hiroshi",
    "Annika",
    "Jerome",
    "Lakshmi",
    "Radek",
    "Thandiwe",
    "Ignatius",
    "Noor",
    "Evander",
    "Marguerite",
    "Kofi",
    "Svetlana",
    "Percival",
    "Yaretzi",
    "Lorcan",
    "Simone",
    "Ravi",
    "Gwendolyn",
    "Emeka",
    "Astrid",
    "Casimir",
    "Delphine",
    "Tariq",
    "Beatriz",
    "Magnus",
    "Ngozi",
    "Leopold",
    "Keziah",
    "Anwar",
    "Philippa",
    "Dariusz",
    "Sunita",
    "Alastair",
    "Isidora",
    "Chukwuemeka",
    "Margot",
    "Vikram",
    "Clementine",
    "Baptiste",
    "Mónica",
    "Zoë",
    "Renée",
    "Joaquín",
    "Björn",
    "Øystein",
    "Siobhán",
    "Søren",
    "Anne-Marie",
    "Jean-Luc",
    "Mei-Ling",
    "Ana-Sofía",
];

const LAST: &[&str] = &[
    "Okonkwo",
    "Lindqvist",
    "Castellanos",
    "Mbeki",
    "Raghunathan",
    "Wojcik",
    "Achterberg",
    "Haddad",
    "Fitzgerald",
    "Nakamura",
    "Adeyemi",
    "Brannigan",
    "Szabo",
    "Delacroix",
    "Ramaswamy",
    "Oyelaran",
    "Kowalczyk",
    "Vasquez",
    "Thorsen",
    "Abernathy",
    "Mwangi",
    "Petrakis",
    "Iheanacho",
    "Halvorsen",
    "Quintero",
    "Bhattacharya",
    "Ferreira",
    "Nwosu",
    "Lachance",
    "Drummond",
    "Kaczmarek",
    "Ortega",
    "Mahlangu",
    "Bergstrom",
    "Chaudhry",
    "Dubois",
    "Ekwueme",
    "Gallagher",
    "Hoffmann",
    "Jankowski",
    "Khumalo",
    "Lindgren",
    "Marchetti",
    "Novak",
    "Obi",
    "Pellegrino",
    "Rasmussen",
    "Sandoval",
    "Takahashi",
    "Umeh",
    "Valdivia",
    "Whitfield",
    "Yilmaz",
    "Zielinski",
    "Acheampong",
    "Beaumont",
    "Ciobanu",
    "Demir",
    "Esposito",
    "Fonseca",
    "Grabowski",
    "Hakimi",
    "Iwasaki",
    "Jovanovic",
    "Kariuki",
    "Lombardi",
    "Moreau",
    "Ndlovu",
    "Olawale",
    "Papadopoulos",
    "Quigley",
    "Rosenthal",
    "Sørensen",
    "Nguyễn",
    "Müller",
    "Gonçalves",
    "Ó Briain",
    "Łukasiewicz",
    "García-Márquez",
    "Okafor-Smith",
    "Van der Berg",
    "McAllister",
    "O'Donoghue",
];

const DOMAINS: &[&str] = &[
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "protonmail.ch",
    "hotmail.fr",
    "icloud.com",
    "web.de",
    "uni-heidelberg.de",
    "mail.utoronto.ca",
    "example.org",
];

const STREETS: &[&str] = &[
    "Maple",
    "Juniper",
    "Harbor View",
    "Old Mill",
    "Kingfisher",
    "Chestnut",
    "Willow Creek",
    "Larkspur",
    "Station",
    "Beacon Hill",
    "Orchard",
    "Pinecrest",
    "Riverside",
    "Ashford",
];

const SUFFIXES: &[&str] = &[
    "Street",
    "St.",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Lane",
    "Drive",
    "Dr.",
    "Court",
    "Boulevard",
    "Blvd",
    "Way",
    "Place",
    "Terrace",
];

const CITIES: &[(&str, &str, &str)] = &[
    ("Springfield", "IL", "62704"),
    ("Tacoma", "WA", "98402"),
    ("Asheville", "NC", "28801"),
    ("Boise", "ID", "83702"),
    ("Dayton", "OH", "45402"),
    ("Fresno", "CA", "93721"),
];

const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn digits(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

fn first(rng: &mut Rng) -> &'static str {
    FIRST[rng.below(FIRST.len() as u64) as usize]
}

fn last(rng: &mut Rng) -> &'static str {
    LAST[rng.below(LAST.len() as u64) as usize]
}

/// ASCII-folded lower case, for emails, handles and URLs.
fn slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let c = match c {
                'á' | 'à' | 'ä' | 'â' => 'a',
                'é' | 'è' | 'ë' | 'ê' | 'ễ' => 'e',
                'í' | 'ï' => 'i',
                'ó' | 'ö' | 'ô' | 'ø' | 'Ø' | 'Ó' => 'o',
                'ú' | 'ü' => 'u',
                'ç' => 'c',
                'ñ' => 'n',
                'ł' | 'Ł' => 'l',
                c => c,
            };
            c.is_ascii_alphanumeric().then(|| c.to_ascii_lowercase())
        })
        .collect()
}

fn email(rng: &mut Rng) -> String {
    let (f, l) = (slug(first(rng)), slug(last(rng)));
    let domain = rng.pick(DOMAINS);
    let local = match rng.below(5) {
        0 => format!("{f}.{l}"),
        1 => format!("{f}{l}{}", digits(rng, 2)),
        2 => format!("{}{l}", &f[..1]),
        3 => format!("{f}_{l}+therapy"),
        _ => format!("{l}.{f}{}", rng.range(70, 99)),
    };
    let e = format!("{local}@{domain}");
    if rng.chance(10) { e.to_uppercase() } else { e }
}

fn phone(rng: &mut Rng) -> String {
    let area = rng.range(201, 989);
    let ex = rng.range(201, 989);
    let line = digits(rng, 4);
    let base = match rng.below(10) {
        0 => format!("({area}) {ex}-{line}"),
        1 => format!("{area}-{ex}-{line}"),
        2 => format!("{area}.{ex}.{line}"),
        3 => format!("+1 {area} {ex} {line}"),
        4 => format!("1-{area}-{ex}-{line}"),
        5 => format!("+44 20 {} {}", digits(rng, 4), digits(rng, 4)),
        6 => format!("+44 7{} {}", digits(rng, 3), digits(rng, 6)),
        7 => format!(
            "+33 6 {} {} {} {}",
            digits(rng, 2),
            digits(rng, 2),
            digits(rng, 2),
            digits(rng, 2)
        ),
        8 => format!("+49 30 {}", digits(rng, 8)),
        _ => format!("+91 9{} {}", digits(rng, 4), digits(rng, 5)),
    };
    match rng.below(8) {
        0 => format!("{base} ext. {}", rng.range(10, 999)),
        1 => format!("{base} x{}", rng.range(10, 999)),
        _ => base,
    }
}

fn ssn(rng: &mut Rng) -> String {
    let area = loop {
        let a = rng.range(1, 899);
        if a != 666 {
            break a;
        }
    };
    let group = rng.range(1, 99);
    let serial = rng.range(1, 9999);
    match rng.below(3) {
        0 => format!("{area:03}-{group:02}-{serial:04}"),
        1 => format!("{area:03} {group:02} {serial:04}"),
        _ => format!("{area:03}{group:02}{serial:04}"),
    }
}

/// A Luhn-valid card number of `len` digits starting with `prefix`.
fn luhn(rng: &mut Rng, prefix: &str, len: usize) -> String {
    let mut d: Vec<u32> = prefix.bytes().map(|b| u32::from(b - b'0')).collect();
    while d.len() < len - 1 {
        d.push(rng.below(10) as u32);
    }
    let sum: u32 = d
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 0 {
                let y = x * 2;
                if y > 9 { y - 9 } else { y }
            } else {
                x
            }
        })
        .sum();
    d.push((10 - sum % 10) % 10);
    d.iter().map(|x| char::from(b'0' + *x as u8)).collect()
}

fn card(rng: &mut Rng) -> String {
    let (prefix, len) = match rng.below(4) {
        0 => ("4", 16),
        1 => ("5", 16),
        2 => ("37", 15),
        _ => ("6011", 16),
    };
    let prefix = if prefix == "5" {
        ["51", "52", "53", "54", "55"][rng.below(5) as usize]
    } else {
        prefix
    };
    let n = luhn(rng, prefix, len);
    let sep = ["", " ", "-"][rng.below(3) as usize];
    if sep.is_empty() {
        n
    } else if len == 15 {
        format!("{}{sep}{}{sep}{}", &n[..4], &n[4..10], &n[10..])
    } else {
        format!(
            "{}{sep}{}{sep}{}{sep}{}",
            &n[..4],
            &n[4..8],
            &n[8..12],
            &n[12..]
        )
    }
}

fn ip(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => format!(
            "2001:db8:{:x}:{:x}::{:x}",
            rng.below(65536),
            rng.below(65536),
            rng.range(1, 65535)
        ),
        1 => (0..8)
            .map(|_| format!("{:x}", rng.below(65536)))
            .collect::<Vec<_>>()
            .join(":"),
        _ => format!(
            "{}.{}.{}.{}",
            rng.range(11, 223),
            rng.below(256),
            rng.below(256),
            rng.range(1, 254)
        ),
    }
}

fn street(rng: &mut Rng) -> String {
    format!(
        "{} {} {}",
        rng.range(2, 9899),
        rng.pick(STREETS),
        rng.pick(SUFFIXES)
    )
}

fn address(rng: &mut Rng) -> String {
    let mut a = street(rng);
    if rng.chance(30) {
        a.push_str(&format!(", Apt {}", rng.range(1, 40)));
    }
    if rng.chance(50) {
        let (city, st, zip) = CITIES[rng.below(CITIES.len() as u64) as usize];
        a.push_str(&format!(", {city}, {st} {zip}"));
    }
    a
}

fn date(rng: &mut Rng, year_lo: u64, year_hi: u64) -> String {
    let y = rng.range(year_lo, year_hi);
    let m = rng.range(1, 12);
    let d = rng.range(1, 28);
    let month = MONTHS[(m - 1) as usize];
    match rng.below(6) {
        0 => format!("{month} {d}, {y}"),
        1 => format!("{m:02}/{d:02}/{y}"),
        2 => format!("{y}-{m:02}-{d:02}"),
        3 => format!("{d} {month} {y}"),
        4 => format!("{d:02}.{m:02}.{y}"),
        _ => format!("{m}/{d}/{:02}", y % 100),
    }
}

fn id_number(rng: &mut Rng) -> (String, String) {
    match rng.below(7) {
        0 => ("my MRN is ".into(), digits(rng, 8)),
        1 => (
            "the medical record number on the letter is ".into(),
            format!("A{}", digits(rng, 7)),
        ),
        2 => (
            "my insurance member ID is ".into(),
            format!("XZB{}", digits(rng, 9)),
        ),
        3 => (
            "the policy number is ".into(),
            format!("{}-{}-{}", digits(rng, 4), digits(rng, 3), digits(rng, 2)),
        ),
        4 => (
            "my driver's license number is ".into(),
            format!("D{}", digits(rng, 7)),
        ),
        5 => ("patient ID: ".into(), format!("PT-{}", digits(rng, 6))),
        _ => (
            "my Medicaid ID is ".into(),
            format!(
                "{}{}",
                digits(rng, 8),
                ["AB", "CD", "XY"][rng.below(3) as usize]
            ),
        ),
    }
}

fn handle(rng: &mut Rng) -> String {
    let (f, l) = (slug(first(rng)), slug(last(rng)));
    match rng.below(4) {
        0 => format!("{f}_{l}"),
        1 => format!("{f}{}", digits(rng, 2)),
        2 => format!("{}.{l}", &f[..1]),
        _ => format!("the_real_{f}"),
    }
}

fn url(rng: &mut Rng) -> String {
    let h = handle(rng);
    let (f, l) = (slug(first(rng)), slug(last(rng)));
    match rng.below(6) {
        0 => format!("https://www.facebook.com/{}", h.replace('_', ".")),
        1 => format!("instagram.com/{h}"),
        2 => format!("https://linkedin.com/in/{f}-{l}-{}", digits(rng, 3)),
        3 => format!("https://{f}{l}.com"),
        4 => format!("https://twitter.com/{h}"),
        _ => format!("www.tiktok.com/@{h}"),
    }
}

/// A person's name and the form it is written in.
fn person(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => first(rng).to_string(),
        _ => format!("{} {}", first(rng), last(rng)),
    }
}

fn planted_sentence(rng: &mut Rng) -> Message {
    let case = match rng.below(20) {
        0 => Case::Upper,
        1 | 2 => Case::Lower,
        _ => Case::As,
    };
    let mut w = Writer::new(case);
    let kind = Kind::ALL[rng.below(Kind::ALL.len() as u64) as usize];
    match kind {
        Kind::Email => {
            let e = email(rng);
            let lead = rng.pick(&[
                "You can email me at ",
                "My email is ",
                "Send the worksheet to ",
                "my school address is ",
                "Contact: ",
            ]);
            w.text(lead).pii(Kind::Email, &e).text(".");
        }
        Kind::Phone => {
            let p = phone(rng);
            let lead = rng.pick(&[
                "Call me at ",
                "My cell is ",
                "You can text me on ",
                "my mum's number is ",
                "Phone: ",
                "the best number to reach me is ",
            ]);
            w.text(lead).pii(Kind::Phone, &p).text(".");
        }
        Kind::Ssn => {
            let s = ssn(rng);
            let lead = rng.pick(&[
                "My SSN is ",
                "my social security number is ",
                "SSN: ",
                "They asked for my Social Security number, ",
            ]);
            w.text(lead).pii(Kind::Ssn, &s).text(", is that safe?");
        }
        Kind::Card => {
            let c = card(rng);
            let lead = rng.pick(&[
                "I paid the copay with my card ",
                "my credit card number is ",
                "Card: ",
                "They charged ",
            ]);
            w.text(lead).pii(Kind::Card, &c).text(" twice this month.");
        }
        Kind::Ip => {
            let i = ip(rng);
            let lead = rng.pick(&[
                "The login alert said my IP address was ",
                "someone logged in from ",
                "IP: ",
            ]);
            w.text(lead).pii(Kind::Ip, &i).text(" and that scared me.");
        }
        Kind::Address => {
            let a = address(rng);
            let lead = rng.pick(&[
                "I live at ",
                "My address is ",
                "Please send the letter to ",
                "we moved to ",
                "He still lives at ",
            ]);
            w.text(lead).pii(Kind::Address, &a).text(".");
        }
        Kind::Dob => {
            let d = date(rng, 1950, 2008);
            let lead = rng.pick(&[
                "I was born on ",
                "DOB: ",
                "My date of birth is ",
                "my birthday is ",
                "born ",
                "Date of birth: ",
            ]);
            w.text(lead).pii(Kind::Dob, &d).text(".");
        }
        Kind::IdNumber => {
            let (lead, id) = id_number(rng);
            w.text(&lead).pii(Kind::IdNumber, &id).text(".");
        }
        Kind::Url => {
            let u = url(rng);
            let lead = rng.pick(&[
                "My page is ",
                "you can find me at ",
                "I post my art on ",
                "Her profile is ",
            ]);
            w.text(lead).pii(Kind::Url, &u).text(" if you want to see.");
        }
        Kind::Handle => {
            let h = format!("@{}", handle(rng));
            let lead = rng.pick(&[
                "My insta is ",
                "follow me ",
                "DM me at ",
                "on twitter I'm ",
                "her handle is ",
            ]);
            w.text(lead).pii(Kind::Handle, &h).text(".");
        }
        Kind::Name => name_sentence(rng, &mut w),
    }
    w.done()
}

fn name_sentence(rng: &mut Rng, w: &mut Writer) {
    let p = person(rng);
    let f = first(rng);
    let l = last(rng);
    match rng.below(16) {
        0 => {
            w.text("My name is ").pii(Kind::Name, &p).text(".");
        }
        1 => {
            w.text("Hi, I'm ")
                .pii(Kind::Name, &p)
                .text(" and this is my first session.");
        }
        2 => {
            let rel = rng.pick(&[
                "sister",
                "brother",
                "husband",
                "wife",
                "boyfriend",
                "girlfriend",
                "son",
                "daughter",
                "therapist",
                "coworker",
                "roommate",
                "best friend",
                "ex",
            ]);
            w.text(&format!("My {rel} "))
                .pii(Kind::Name, &p)
                .text(" doesn't understand why I'm struggling.");
        }
        3 => {
            let title = rng.pick(&["Dr. ", "Mrs. ", "Mr. ", "Ms. ", "Dr ", "Professor "]);
            w.text("I saw ")
                .text(title)
                .pii(Kind::Name, l)
                .text(" last week about my medication.");
        }
        4 => {
            w.text("Hi ")
                .pii(Kind::Name, f)
                .text(", thanks for coming in today.");
        }
        5 => {
            w.text("\nI hope that helps.\n\nWarmly,\n")
                .pii(Kind::Name, &p);
        }
        6 => {
            w.pii(Kind::Name, &p).text(" told me I was overreacting.");
        }
        7 => {
            w.text("I had lunch with ")
                .pii(Kind::Name, &format!("{f} {l}"))
                .text(" yesterday and felt a bit better.");
        }
        8 => {
            w.pii(Kind::Name, f)
                .text("'s parents are getting divorced too.");
        }
        9 => {
            w.text("I keep thinking about what ")
                .pii(Kind::Name, f)
                .text(" said at the funeral.");
        }
        10 => {
            w.text("This is ")
                .pii(Kind::Name, &p)
                .text(", we spoke on Tuesday.");
        }
        11 => {
            w.text("My counselor, ")
                .pii(Kind::Name, &format!("{f} {l}"))
                .text(", suggested journaling.");
        }
        12 => {
            w.text("Call me ")
                .pii(Kind::Name, f)
                .text(", everyone does.");
        }
        13 => {
            w.text("I asked ")
                .pii(Kind::Name, f)
                .text(" to drive me to the appointment.");
        }
        14 => {
            w.text("\n- ").pii(Kind::Name, &format!("{f} {l}"));
        }
        _ => {
            w.pii(Kind::Name, &format!("{f} {l}"))
                .text(" and I have been friends since school.");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Decoys

fn decoy_sentence(rng: &mut Rng) -> Message {
    let mut w = Writer::new(Case::As);
    match rng.below(20) {
        0 => {
            w.text("If you are in danger, call ")
                .decoy(DecoyKind::Crisis, "988")
                .text(" or ")
                .decoy(DecoyKind::Crisis, "911")
                .text(" right away.");
        }
        1 => {
            w.text("The old Lifeline number, ")
                .decoy(DecoyKind::Crisis, "1-800-273-8255")
                .text(", still works.");
        }
        2 => {
            w.text("You can text HOME to ")
                .decoy(DecoyKind::Crisis, "741741")
                .text(" to reach the ")
                .decoy(DecoyKind::Crisis, "Crisis Text Line")
                .text(".");
        }
        3 => {
            w.text("In the UK, ")
                .decoy(DecoyKind::Crisis, "Samaritans")
                .text(" are on ")
                .decoy(DecoyKind::Crisis, "116 123")
                .text(", and ")
                .decoy(DecoyKind::Crisis, "999")
                .text(" for emergencies.");
        }
        4 => {
            w.text("The domestic violence hotline is ")
                .decoy(DecoyKind::Crisis, "1-800-799-7233")
                .text(".");
        }
        5 => {
            let score = rng.range(5, 27);
            w.text("Your ")
                .decoy(DecoyKind::Clinical, &format!("PHQ-9 score was {score}"))
                .text(" and the ")
                .decoy(
                    DecoyKind::Clinical,
                    &format!("GAD-7 was {}", rng.range(3, 21)),
                )
                .text(".");
        }
        6 => {
            let mg = [25, 50, 75, 100, 150, 200][rng.below(6) as usize];
            w.text("I take ")
                .decoy(DecoyKind::Clinical, &format!("sertraline {mg} mg"))
                .text(" every morning and ")
                .decoy(DecoyKind::Clinical, "0.5mg")
                .text(" of lorazepam when needed.");
        }
        7 => {
            w.text("My blood pressure was ")
                .decoy(
                    DecoyKind::Clinical,
                    &format!("{}/{}", rng.range(100, 150), rng.range(60, 95)),
                )
                .text(" and my heart rate ")
                .decoy(DecoyKind::Clinical, &rng.range(55, 110).to_string())
                .text(".");
        }
        8 => {
            w.text("Our next session is on ")
                .decoy(DecoyKind::DateTime, &date(rng, 2024, 2027))
                .text(" at ")
                .decoy(
                    DecoyKind::DateTime,
                    &format!("{}:{:02}", rng.range(8, 18), rng.below(4) * 15),
                )
                .text(".");
        }
        9 => {
            w.text("Back in ")
                .decoy(DecoyKind::DateTime, &rng.range(1995, 2025).to_string())
                .text(" I was hospitalised for ")
                .decoy(DecoyKind::Number, &format!("{} days", rng.range(2, 30)))
                .text(".");
        }
        10 => {
            w.text("On a scale of 1 to 10 it's a ")
                .decoy(DecoyKind::Number, &rng.range(1, 10).to_string())
                .text(" today, and I slept ")
                .decoy(
                    DecoyKind::Number,
                    &format!("{}-{}", rng.range(2, 4), rng.range(5, 7)),
                )
                .text(" hours.");
        }
        11 => {
            w.text("Rent went up to ")
                .decoy(
                    DecoyKind::Number,
                    &format!("${},{:03}", rng.range(1, 3), rng.below(1000)),
                )
                .text(" and I work ")
                .decoy(DecoyKind::Number, &rng.range(20, 60).to_string())
                .text(" hours a week.");
        }
        12 => {
            w.decoy(DecoyKind::Word, "Hope")
                .text(" is hard to find some days, and ")
                .decoy(DecoyKind::Word, "Faith")
                .text(" used to help me.");
        }
        13 => {
            w.decoy(DecoyKind::Word, "Will")
                .text(" it ever get better? ")
                .decoy(DecoyKind::Word, "May")
                .text("be by ")
                .decoy(DecoyKind::Word, "June")
                .text(" I'll know.");
        }
        14 => {
            w.text("We tried ")
                .decoy(DecoyKind::Word, "CBT")
                .text(" and ")
                .decoy(DecoyKind::Word, "EMDR")
                .text(" at the ")
                .decoy(DecoyKind::Word, "Kaiser")
                .text(" clinic in ")
                .decoy(DecoyKind::Word, "Chicago")
                .text(".");
        }
        15 => {
            w.text("My diagnosis code is ")
                .decoy(DecoyKind::Clinical, "F41.1")
                .text(" under ")
                .decoy(DecoyKind::Clinical, "DSM-5")
                .text(".");
        }
        16 => {
            w.text("Every ")
                .decoy(DecoyKind::Word, "Sunday")
                .text(" and at ")
                .decoy(DecoyKind::Word, "Christmas")
                .text(" I pray to ")
                .decoy(DecoyKind::Word, "God")
                .text(".");
        }
        17 => {
            w.text("I read about ")
                .decoy(DecoyKind::Word, "Carl Rogers")
                .text(" and attachment theory from ")
                .decoy(DecoyKind::Word, "John Bowlby")
                .text(".");
        }
        18 => {
            w.text("The group meets in room ")
                .decoy(DecoyKind::Number, &rng.range(100, 450).to_string())
                .text(", session ")
                .decoy(
                    DecoyKind::Number,
                    &format!("{} of {}", rng.range(1, 12), 12),
                )
                .text(".");
        }
        _ => {
            w.text("I've lost ")
                .decoy(DecoyKind::Number, &format!("{}%", rng.range(5, 40)))
                .text(" of my savings since ")
                .decoy(
                    DecoyKind::DateTime,
                    &format!("{} {}", rng.pick(MONTHS), rng.range(2015, 2025)),
                )
                .text(".");
        }
    }
    w.done()
}

// ---------------------------------------------------------------------------------------
// Scoring

/// One detection of a detector under evaluation: a placeholder label and byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub label: String,
    pub start: usize,
    pub end: usize,
}

/// Counts for one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Planted identifiers.
    pub planted: u64,
    /// Planted identifiers whose every letter and digit lies inside a detection of this kind.
    pub found: u64,
    /// Planted identifiers fully covered by detections of any kind (redacted, maybe mislabelled).
    pub found_any_kind: u64,
    /// Detections of this kind.
    pub detections: u64,
    /// Detections of this kind that overlap a planted identifier of this kind.
    pub correct: u64,
}

impl Counts {
    pub fn recall(&self) -> f64 {
        ratio(self.found, self.planted)
    }

    pub fn recall_any_kind(&self) -> f64 {
        ratio(self.found_any_kind, self.planted)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.detections)
    }

    /// F2: recall weighted twice as much as precision.
    pub fn f2(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            5.0 * p * r / (4.0 * p + r)
        }
    }

    fn add(&mut self, o: &Counts) {
        self.planted += o.planted;
        self.found += o.found;
        self.found_any_kind += o.found_any_kind;
        self.detections += o.detections;
        self.correct += o.correct;
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// The score of a detector on planted messages.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Score {
    /// By label (`EMAIL`, …, `NAME`); detections with labels the generator never plants are
    /// counted under their own label (all of them wrong).
    pub by_label: BTreeMap<String, Counts>,
    /// Decoys touched by any detection, by decoy kind.
    pub decoys_hit: BTreeMap<DecoyKind, u64>,
    pub decoys: BTreeMap<DecoyKind, u64>,
    pub messages: u64,
    pub bytes: u64,
}

impl Score {
    pub fn overall(&self) -> Counts {
        let mut c = Counts::default();
        for v in self.by_label.values() {
            c.add(v);
        }
        c
    }

    /// Scores one message against what a detector found in it.
    pub fn add(&mut self, m: &Message, found: &[Detected]) {
        self.messages += 1;
        self.bytes += m.text.len() as u64;
        let text = m.text.as_bytes();
        for t in &m.planted {
            let label = t.kind.label();
            let c = self.by_label.entry(label.to_string()).or_default();
            c.planted += 1;
            let covered = |same_kind: bool| {
                (t.start..t.end).all(|i| {
                    !text[i].is_ascii_alphanumeric() && text[i] < 0x80
                        || found
                            .iter()
                            .any(|d| d.start <= i && i < d.end && (!same_kind || d.label == label))
                })
            };
            if covered(true) {
                c.found += 1;
            }
            if covered(false) {
                c.found_any_kind += 1;
            }
        }
        for d in found {
            let c = self.by_label.entry(d.label.clone()).or_default();
            c.detections += 1;
            if m.planted
                .iter()
                .any(|t| t.kind.label() == d.label && d.start < t.end && t.start < d.end)
            {
                c.correct += 1;
            }
        }
        for t in &m.decoys {
            *self.decoys.entry(t.kind).or_default() += 1;
            if found.iter().any(|d| d.start < t.end && t.start < d.end) {
                *self.decoys_hit.entry(t.kind).or_default() += 1;
            }
        }
    }

    /// A plain-text table: per label precision, recall, F2; then decoys.
    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<10} {:>8} {:>8} {:>10} {:>9} {:>7} {:>7} {:>7}\n",
            "type", "planted", "found", "detected", "precision", "recall", "F2", "any-kind"
        ));
        let row = |out: &mut String, name: &str, c: &Counts| {
            out.push_str(&format!(
                "{:<10} {:>8} {:>8} {:>10} {:>9.4} {:>7.4} {:>7.4} {:>7.4}\n",
                name,
                c.planted,
                c.found,
                c.detections,
                c.precision(),
                c.recall(),
                c.f2(),
                c.recall_any_kind()
            ));
        };
        for (label, c) in &self.by_label {
            row(&mut out, label, c);
        }
        row(&mut out, "overall", &self.overall());
        out.push_str("\ndecoys touched by a detection (must be 0 for crisis):\n");
        for (k, n) in &self.decoys {
            out.push_str(&format!(
                "  {:<10} {:>6} of {:>6}\n",
                format!("{k:?}"),
                self.decoys_hit.get(k).copied().unwrap_or(0),
                n
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_point_at_what_was_planted() {
        let corpus = Corpus::new(3);
        let mut kinds = std::collections::BTreeSet::new();
        for i in 0..2000 {
            let c = conversation(&corpus, i);
            for (_, m) in &c.messages {
                for t in &m.planted {
                    let s = &m.text[t.start..t.end];
                    assert!(!s.is_empty() && s.trim() == s, "{i}: {s:?}");
                    kinds.insert(t.kind);
                }
                for d in &m.decoys {
                    assert!(!m.text[d.start..d.end].trim().is_empty());
                }
            }
        }
        assert_eq!(kinds.len(), Kind::ALL.len(), "every kind is planted");
        assert_eq!(conversation(&corpus, 5), conversation(&corpus, 5));
    }

    #[test]
    fn cards_are_luhn_valid() {
        let mut rng = Rng::new(9);
        for _ in 0..100 {
            let n = luhn(&mut rng, "4", 16);
            let sum: u32 = n
                .bytes()
                .rev()
                .enumerate()
                .map(|(i, b)| {
                    let x = u32::from(b - b'0');
                    if i % 2 == 1 {
                        let y = x * 2;
                        if y > 9 { y - 9 } else { y }
                    } else {
                        x
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0, "{n}");
        }
    }

    #[test]
    fn scoring_counts_partial_names_as_missed() {
        let m = Message {
            text: "My name is Amara Okonkwo.".into(),
            planted: vec![Truth {
                kind: Kind::Name,
                start: 11,
                end: 24,
            }],
            decoys: vec![],
        };
        let mut s = Score::default();
        s.add(
            &m,
            &[Detected {
                label: "NAME".into(),
                start: 11,
                end: 16,
            }],
        );
        let c = s.by_label["NAME"];
        assert_eq!((c.planted, c.found, c.detections, c.correct), (1, 0, 1, 1));
    }
}
