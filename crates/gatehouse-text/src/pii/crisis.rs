//! Crisis and emergency resources: numbers a person in crisis must be able to read. They
//! are content, never PII, in any formatting.

/// Digits of published crisis lines and emergency numbers commonly quoted in support
/// conversations. North American numbers are listed without the leading 1.
const NUMBERS: &[&str] = &[
    "988",        // US Suicide & Crisis Lifeline
    "911",        // US/CA emergency
    "112",        // EU emergency
    "999",        // UK emergency
    "000",        // AU emergency
    "111",        // NHS 111
    "741741",     // Crisis Text Line (US)
    "85258",      // Shout (UK)
    "686868",     // Kids Help Phone, text (CA)
    "116123",     // Samaritans (UK/IE)
    "116111",     // child helplines (EU)
    "131114",     // Lifeline Australia
    "1300224636", // Beyond Blue (AU)
    "8002738255", // National Suicide Prevention Lifeline
    "8007997233", // National Domestic Violence Hotline
    "8006564673", // RAINN
    "8664887386", // The Trevor Project
    "8006624357", // SAMHSA National Helpline
    "8009855990", // Disaster Distress Helpline
    "8004224453", // Childhelp
    "8775658860", // Trans Lifeline
    "8334564566", // Talk Suicide Canada
];

/// Names of crisis services, lower case: content, never a person.
const NAMES: &[&str] = &[
    "samaritans",
    "lifeline",
    "crisis text line",
    "crisis line",
    "trevor project",
    "the trevor project",
    "trevorlifeline",
    "shout",
    "kids help phone",
    "beyond blue",
    "beyondblue",
    "samhsa",
    "rainn",
    "childhelp",
    "trans lifeline",
    "988 lifeline",
    "befrienders",
    "befrienders worldwide",
    "papyrus",
    "hopeline",
    "hopelineuk",
    "mind",
    "nami",
    "veterans crisis line",
    "talk suicide",
    "talk suicide canada",
    "lifeline australia",
    "headspace",
    "childline",
    "switchboard",
    "calm",
    "thecalmzone",
    "iasp",
];

/// Whether `lower` (lower case, spaces collapsed) names a crisis service.
pub(crate) fn is_crisis_name(lower: &str) -> bool {
    NAMES.contains(&lower)
}

/// Whether `digits` (the number's digits only) is a crisis or emergency number.
pub(crate) fn is_crisis_number(digits: &str) -> bool {
    let national = match digits.strip_prefix('1') {
        Some(rest) if digits.len() == 11 => rest,
        _ => digits,
    };
    NUMBERS.contains(&digits) || NUMBERS.contains(&national)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hotlines_with_and_without_country_code() {
        for d in ["988", "741741", "18002738255", "8002738255", "911"] {
            assert!(is_crisis_number(d), "{d}");
        }
        assert!(!is_crisis_number("5551234567"));
        assert!(!is_crisis_number("15551234567"));
    }
}
