//! Street addresses beyond the US "number, name, suffix" form: the full street-type list
//! (USPS Publication 28, Appendix C1, public domain, with British, Irish and Australian
//! types), house-number ranges and letters ("28-30", "123-01", "28bis"), street types that
//! come first ("22 Rue des Lilas", "Avenida Paulista 1578", "Jalan Hang Lekiu"), Germanic
//! and Nordic names that end in their type ("Hauptstrasse 7", "Laugavegur 12"), military
//! mail ("PSC 1234, Box 5678, APO AE 09012"), and the postcode, city, state and country that
//! follow a street ("…, 10115 Berlin", "…, Washington, DC 20024, United States").

use regex::Regex;

use super::patterns::re;

/// libpostal's English street types and their abbreviations (`data/street_types.txt`, MIT).
const LIBPOSTAL_STREET_TYPES: &str = include_str!("../../data/street_types.txt");

/// libpostal entries that are not street types ("Route Number 9").
const NOT_STREET_TYPES: &[&str] = &["number"];

/// Every street type, lower case: [`STREET_TYPES`] (a trailing `s?` gives both forms) and
/// libpostal's list; a type of several words ("cul de sac") has single spaces.
pub(crate) fn street_types() -> std::collections::HashSet<String> {
    let mut forms = std::collections::HashSet::new();
    for f in STREET_TYPES.split('|') {
        match f.strip_suffix("s?") {
            Some(stem) => {
                forms.insert(stem.to_string());
                forms.insert(format!("{stem}s"));
            }
            None => {
                forms.insert(f.to_string());
            }
        }
    }
    for line in LIBPOSTAL_STREET_TYPES
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if line
            .split('|')
            .next()
            .is_some_and(|canonical| NOT_STREET_TYPES.contains(&canonical))
        {
            continue;
        }
        for form in line.split('|') {
            if form.chars().filter(char::is_ascii_alphabetic).count() >= 2 {
                forms.insert(form.to_string());
            }
        }
    }
    forms
}

/// Street types that follow the name: USPS Pub 28 C1 primary names and their standard
/// abbreviations, plus British, Irish and Australian types.
pub(crate) const STREET_TYPES: &str = concat!(
    "alley|allee|aly|annex|anx|arcade|arc|avenue|ave|av|bayou|beach|bch|bend|bluffs?|blf|",
    "bottom|btm|boulevard|blvd|branch|br|bridge|brg|brooks?|brk|burgs?|bypass|byp|camp|cp|",
    "canyon|cyn|cape|cpe|causeway|cswy|centers?|centres?|ctr|circles?|cir|cliffs?|clf|club|clb|",
    "commons?|cmn|corners?|cor|course|crse|courts?|ct|coves?|cv|creek|crk|crescent|cres|crest|",
    "crst|crossing|xing|crossroads?|curve|curv|dale|dl|dam|dm|divide|dv|drives?|dr|estates?|",
    "est|expressway|expy|extensions?|ext|falls?|fls|ferry|fry|fields?|fld|flats?|flt|fords?|",
    "frd|forest|frst|forge|frg|forks?|frk|fort|ft|freeway|fwy|gardens?|gdns?|gateway|gtwy|",
    "glens?|gln|greens?|grn|groves?|grv|harbors?|harbours?|hbr|haven|hvn|heights|hts|highway|",
    "hwy|hills?|hl|hollow|holw|inlet|inlt|island|is|isle|junctions?|jct|keys?|ky|knolls?|knl|",
    "lakes?|lk|landing|lndg|lane|ln|light|lgt|loaf|lf|locks?|lck|lodge|ldg|loop|mall|manors?|",
    "mnr|meadows?|mdw|mews|mill|mills|ml|mission|msn|motorway|mtwy|mount|mt|mountain|mtn|",
    "neck|nck|orchard|orch|oval|overpass|opas|parks?|parkway|pkwy|pass|passage|psge|path|pike|",
    "pines?|pnes|place|pl|plains?|pln|plaza|plz|points?|pt|ports?|prt|prairie|pr|radial|radl|",
    "ramp|ranch|rnch|rapids?|rpd|rest|rst|ridges?|rdg|river|riv|road|rd|roads|rds|route|rte|",
    "row|rue|run|shoals?|shl|shores?|shr|skyway|skwy|springs?|spg|spur|squares?|sq|station|",
    "sta|stravenue|stra|stream|strm|street|st|streets|sts|summit|smt|terrace|ter|throughway|",
    "trwy|trace|trce|track|trak|trafficway|trfy|trail|trl|tunnel|tunl|turnpike|tpke|underpass|",
    "upas|union|un|valleys?|vly|viaduct|via|views?|vw|village|vlg|ville|vl|vista|vis|walk|",
    "wall|way|wy|wells?|wl|close|cl|wynd|parade|pde|rise|gate|yard|embankment|quay|wharf|",
    "circus|drove|chase|grange|croft|fold|garth|hey|promenade|esplanade|boardwalk|concourse|",
    "broadway|real"
);

/// Street types that come before the name (French, Spanish, Portuguese, Italian, Catalan,
/// Malay and Indonesian, Turkish, and English forms used that way).
const PREFIX_TYPES: &str = concat!(
    "rue|avenue|av|ave|boulevard|bd|bld|chemin|allée|allee|impasse|quai|place|cours|route|",
    "calle|c/|avenida|avda|paseo|plaza|carrera|camino|carretera|rua|travessa|largo|praça|praca|",
    "via|viale|piazza|corso|vicolo|strada|carrer|passeig|jalan|jln|jl|lorong|cadde|caddesi|",
    "sokak|sokağı"
);

/// Endings of Germanic, Dutch, Nordic, Finnish and Central European street names, which
/// the house number follows ("Hauptstrasse 7", "Laugavegur 12", "Keizersgracht 123").
const NAME_TYPE_ENDINGS: &str = concat!(
    "straße|strasse|str\\.|gasse|weg|platz|allee|ring|damm|ufer|steig|pfad|chaussee|markt|",
    "vegur|gata|gatan|gade|gaden|vej|vejen|veien|vei|vägen|väg|straat|laan|gracht|plein|",
    "kade|singel|dreef|tie|katu|kuja|polku|utca|ulica|utcája|náměstí|ulice|trida|třída"
);

#[derive(Debug)]
pub(crate) struct Addresses {
    prefix: Regex,
    name_number: Regex,
    military: Regex,
    tail: Regex,
}

/// A house number: "12", "12B", "28bis", "28-30", "123-01".
pub(crate) const HOUSE_NUMBER: &str = r"\d{1,6}(?:[-–]\d{1,5})?(?:[A-Za-z]\b|bis\b|ter\b)?";

impl Addresses {
    pub(crate) fn new() -> Self {
        Self {
            // "22 Rue des Lilas", "49-51, Jalan Hang Lekiu", "Avenida Paulista 1578",
            // "Via Roma 12".
            prefix: re(&format!(
                r"\b(?:{n},?\s+(?i:{p})\.?\s+{w}|(?i:{p})\.?\s+{w}\s*,?\s+\d{{1,5}}[a-z]?)\b",
                n = HOUSE_NUMBER,
                p = PREFIX_TYPES,
                w = r"(?:(?:de|des|du|del|de la|la|le|les|da|do|dos|das|di|della|dei|el|los|las)\s+)?[\p{Lu}\d][\p{L}'’.\-]*(?:\s+(?:(?:de|des|du|del|la|le|da|do|di|della|el)\s+)?[\p{Lu}\d][\p{L}'’.\-]*){0,4}",
            )),
            name_number: re(&format!(
                r"(?i)\b[\p{{L}}'\-]*(?:{e})\s+\d{{1,5}}(?:\s?[a-z]\b)?",
                e = NAME_TYPE_ENDINGS
            )),
            military: re(concat!(
                r"\b(?:(?:PSC|CMR|UNIT|Unit)\s+\d{3,5},?\s+(?:Box|BOX|box)\s+\d{1,5}",
                r"(?:,?\s+(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{5})?",
                r"|(?:USNS|USS|USCGC)\s+[A-Z][A-Za-z]+(?:\s+[A-Z][A-Za-z]+)?,?\s+(?:FPO|APO)\s+(?:AA|AE|AP)\s+\d{5}",
                r"|(?:APO|FPO|DPO)\s+(?:AA|AE|AP)\s+\d{5})\b",
            )),
            // What may follow a street: a unit, then up to four comma-separated places and
            // postcodes, or a postcode alone.
            tail: re(concat!(
                r"^(?:,?[ \t]*(?:(?:apt|apartment|unit|suite|ste|flat|floor|fl|room|rm|bldg|building|no)\b|#)\.?[ \t]*#?[A-Za-z0-9\-]{1,6}\b)?",
                r"(?:,[ \t]*(?:",
                r"\d{4,6}(?:[ \t]+\p{Lu}[\p{L}'’.\-]+){0,3}",
                r"|[A-Z]{2}[ \t]+\d{5}(?:-\d{4})?",
                r"|[A-Z]\d[A-Z][ \t]?\d[A-Z]\d",
                r"|\p{Lu}[\p{L}'’.\-]+(?:[ \t]+(?:of|de|del|la|\p{Lu}[\p{L}'’.\-]+)){0,3}(?:[ \t]+\d{4,6}(?:-\d{4})?)?",
                r"|(?:AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY)",
                r")){0,4}",
                r"(?:[ \t]+\d{5}(?:-\d{4})?\b)?",
            )),
        }
    }

    /// Addresses in the forms above, as (start, end, rule).
    pub(crate) fn find(&self, text: &str, out: &mut Vec<(usize, usize, &'static str)>) {
        for m in self.prefix.find_iter(text) {
            out.push((m.start(), m.end(), "street-type-first"));
        }
        for m in self.name_number.find_iter(text) {
            // The name must be a word of its own ("Hauptstrasse"), not the ending alone
            // ("weg 5", "ring 3").
            let name = m.as_str().split_whitespace().next().unwrap_or("");
            if name.chars().count() > 5 && name.chars().next().is_some_and(char::is_uppercase) {
                out.push((m.start(), m.end(), "street-name-then-number"));
            }
        }
        for m in self.military.find_iter(text) {
            out.push((m.start(), m.end(), "military-address"));
        }
    }

    /// The end of what follows a street at `end`: unit, city, state, postcode, country.
    pub(crate) fn tail_end(&self, text: &str, end: usize) -> usize {
        match self.tail.find(&text[end..]) {
            Some(m) => end + m.as_str().trim_end_matches([',', ' ', '\t', '.']).len(),
            None => end,
        }
    }
}
