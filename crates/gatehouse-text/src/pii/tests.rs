//! Detector behaviour on hand-written cases: what is PII, and what only looks like it.

use super::*;

fn found(text: &str) -> Vec<(PiiType, &str)> {
    let d = detector();
    d.detect(text, &Allowlist::default())
        .into_iter()
        .map(|s| (s.kind, &text[s.start..s.end]))
        .collect()
}

fn detector() -> &'static Detector {
    static D: std::sync::LazyLock<Detector> = std::sync::LazyLock::new(Detector::new);
    &D
}

#[track_caller]
fn check(text: &str, expected: &[(PiiType, &str)]) {
    assert_eq!(found(text), expected, "in case {text:?}");
}

use PiiType::*;

#[test]
fn identifiers_with_structure() {
    check(
        "mail me at jane.doe+x@example.co.uk today",
        &[(Email, "jane.doe+x@example.co.uk")],
    );
    check(
        "it's jdoe at gmail dot com",
        &[(Email, "jdoe at gmail dot com")],
    );
    check(
        "call (415) 555-0132 ext. 12 please",
        &[(Phone, "(415) 555-0132 ext. 12")],
    );
    check("my cell is 415.555.0132", &[(Phone, "415.555.0132")]);
    check("text +44 20 7946 0958", &[(Phone, "+44 20 7946 0958")]);
    check("number 4155550132", &[(Phone, "4155550132")]);
    check("ssn 123-45-6789", &[(Ssn, "123-45-6789")]);
    check("my social is 123456789", &[(Ssn, "123456789")]);
    check(
        "card 4111 1111 1111 1111 exp",
        &[(Card, "4111 1111 1111 1111")],
    );
    check(
        "from 192.168.10.20 and 2001:db8::8a2e:370:7334",
        &[(Ip, "192.168.10.20"), (Ip, "2001:db8::8a2e:370:7334")],
    );
    check(
        "see instagram.com/jane_doe_99, or @janedoe",
        &[(Url, "instagram.com/jane_doe_99"), (Handle, "@janedoe")],
    );
    check(
        "I live at 42 Oak Street, Apt 3B near the park",
        &[(Address, "42 Oak Street, Apt 3B")],
    );
    check("DOB: 03/14/1987", &[(Dob, "03/14/1987")]);
    check(
        "I was born on March 14, 1987 in Ohio",
        &[(Dob, "March 14, 1987")],
    );
    check("my member ID is XJ4482913", &[(IdNumber, "XJ4482913")]);
    check("MRN 00482913", &[(IdNumber, "00482913")]);
}

#[test]
fn crisis_resources_and_clinical_numbers_are_not_pii() {
    for text in [
        "Call or text 988 any time, or 1-800-273-8255.",
        "Text HOME to 741741 to reach a counselor.",
        "If you are in danger call 911.",
        "The Trevor Project: 1-866-488-7386",
        "Take 50 mg twice a day, at 8:30 and 20:30.",
        "Your PHQ-9 score was 17 and GAD-7 was 12 on 2024-03-01.",
        "Since 2019 I have had 3 sessions a week for 12 weeks.",
        "I walked 5 miles down the road.",
        "It costs $1,234.56 per month, about 1.5 times more.",
        "Version 1.2.3.4 of the app crashed",
        "I was born in 1990.",
        "Read https://988lifeline.org/get-help for more.",
    ] {
        assert_eq!(found(text), vec![], "in {text:?}");
    }
}

#[test]
fn names_by_context_and_lists() {
    check(
        "My name is Oluwaseun and I feel stuck.",
        &[(Name, "Oluwaseun")],
    );
    check("Hi, I'm Priya.", &[(Name, "Priya")]);
    check("I told my therapist Dana about it", &[(Name, "Dana")]);
    check("my sister jessica keeps calling", &[(Name, "jessica")]);
    check("Dr. Okafor said I should rest", &[(Name, "Okafor")]);
    check("Sarah Jones and I argued", &[(Name, "Sarah Jones")]);
    check("Then Will said no.", &[(Name, "Will")]);
    check("Sarah's mother called", &[(Name, "Sarah")]);
    check("JOHN SMITH is my father", &[(Name, "JOHN SMITH")]);
    check("Mary-Jane Watson came by", &[(Name, "Mary-Jane Watson")]);
    check("Thanks,\nDana", &[(Name, "Dana")]);
}

#[test]
fn capitalised_words_are_not_names_by_themselves() {
    for text in [
        "Will you help me? I Hope So.",
        "Grace under pressure is hard. Faith helps.",
        "Mark the date. Frank talk matters.",
        "I Feel Like Nothing Ever Changes And I Am Tired",
        "Cognitive Behavioral Therapy and Dialectical Behavior Therapy",
        "Freud and Carl Rogers wrote about this.",
        "Hi there, thanks for reaching out.",
        "May is a hard month for me.",
    ] {
        assert_eq!(found(text), vec![], "in {text:?}");
    }
}

#[test]
fn offsets_are_right_in_bytes_and_chars() {
    let text = "Ça va? Écris à zoë@exemple.fr — merci";
    let spans = detector().detect(text, &Allowlist::default());
    assert_eq!(spans.len(), 1);
    let s = &spans[0];
    assert_eq!(&text[s.start..s.end], "zoë@exemple.fr");
    assert_eq!((s.char_start, s.char_end), (15, 29));
    let chars: Vec<char> = text.chars().collect();
    let by_chars: String = chars[s.char_start..s.char_end].iter().collect();
    assert_eq!(by_chars, &text[s.start..s.end]);
}

#[test]
fn allowlist_keeps_a_persona_name() {
    let allow = Allowlist::new(["Dr. Maya Lin", "Maya Lin"]);
    let spans = detector().detect("I am Maya Lin, your host.", &allow);
    assert!(spans.iter().all(|s| s.kind != Name), "{spans:?}");
}

#[test]
fn redaction_keeps_identities_within_a_conversation() {
    let mut msgs = vec![
        "My name is Sarah Jones, email sarah@example.com".to_string(),
        "Thanks Sarah. Does Tom know?".to_string(),
        "Sarah here again; Tom said sarah@example.com is fine".to_string(),
    ];
    let r = redact_conversation(
        detector(),
        &Allowlist::default(),
        UnsurePolicy::Redact,
        msgs.iter_mut(),
    );
    assert_eq!(msgs[0], "My name is [NAME_1], email [EMAIL_1]");
    assert_eq!(msgs[1], "Thanks [NAME_1]. Does [NAME_2] know?");
    assert_eq!(
        msgs[2],
        "[NAME_1] here again; [NAME_2] said [EMAIL_1] is fine"
    );
    assert_eq!(r.counts[&Name], 5);
    assert_eq!(r.counts[&Email], 2);
    // A redacted conversation scans clean.
    for m in &msgs {
        assert_eq!(found(m), vec![], "{m}");
    }
}

#[test]
fn unsure_spans_follow_the_policy() {
    let mut msgs = ["then I saw Tom at the store".to_string()];
    let r = redact_conversation(
        detector(),
        &Allowlist::default(),
        UnsurePolicy::Review,
        msgs.iter_mut(),
    );
    assert!(r.unsure >= 1 && r.requires_review, "{r:?}");
}

#[test]
fn addresses_in_many_forms() {
    // A rejected match does not hide the address inside it; a street ends at its type,
    // not at a later word that is also one ("spring"); a dot glued to the next sentence
    // is not the street's; "New", "Old", "The" count against a street in lower case only.
    for (text, want) in [
        (
            "a shared cab for 2 to 18300 Carriage Drive please",
            "18300 Carriage Drive",
        ),
        (
            "We moved to 4127 Maple Drive last spring.",
            "4127 Maple Drive",
        ),
        ("go to 2100 Avy Avenue.The cab is here", "2100 Avy Avenue"),
        (
            "I want to go to 140 New Montgomery Street #1 now",
            "140 New Montgomery Street #1",
        ),
    ] {
        check(text, &[(Address, want)]);
    }
    for text in [
        "I walked 5 blocks down Main Street",
        "it is 2 miles up Oak Road",
    ] {
        check(text, &[]);
    }
    for (text, want) in [
        (
            "I live at 5591 Kingfisher Stravenue now",
            "5591 Kingfisher Stravenue",
        ),
        (
            "send it to 12 Willow Knolls, Apt. 4",
            "12 Willow Knolls, Apt. 4",
        ),
        (
            "it's 880 Ocean Expressway Suite 210",
            "880 Ocean Expressway Suite 210",
        ),
        ("we met at 4 Pine Summit", "4 Pine Summit"),
        ("mail: PO Box 5678", "PO Box 5678"),
        (
            "PSC 1234, Box 5678, APO AA 12345",
            "PSC 1234, Box 5678, APO AA 12345",
        ),
        (
            "I moved to Hauptstrasse 7, 10115 Berlin last year",
            "Hauptstrasse 7, 10115 Berlin",
        ),
        (
            "the flat is Laugavegur 12, Reykjavík",
            "Laugavegur 12, Reykjavík",
        ),
        ("at 22 Rue des Lilas, Lyon", "22 Rue des Lilas, Lyon"),
        ("at 28-30 Bute Gardens", "28-30 Bute Gardens"),
        ("at 123-01 Roosevelt Avenue", "123-01 Roosevelt Avenue"),
        (
            "at 740 Water Street Southwest, Washington, DC 20024",
            "740 Water Street Southwest, Washington, DC 20024",
        ),
    ] {
        let f = found(text);
        assert!(
            f.iter().any(|(k, s)| *k == Address && s.contains(want)),
            "{text:?}: {f:?}"
        );
    }
    // Everyday numbers before everyday words stay.
    for text in [
        "I walked 5 miles down the road",
        "take 2 times a day",
        "I have 3 green apples",
    ] {
        assert!(!found(text).iter().any(|(k, _)| *k == Address), "{text}");
    }
}

#[test]
fn phones_cards_ibans_and_handles_in_their_many_forms() {
    for (text, kind, want) in [
        ("call me on 412 553 901 tonight", Phone, "412 553 901"),
        ("office (71) 845-302", Phone, "(71) 845-302"),
        ("landline 47-12-88-30", Phone, "47-12-88-30"),
        ("ring +45 32 12 34 56", Phone, "+45 32 12 34 56"),
        ("my number is 0800 1234", Phone, "0800 1234"),
        // the cue after the number; trunk prefix and spaced area codes; no date after
        // a country code or where the text says phone
        ("020 7946 0958 is my cell", Phone, "020 7946 0958"),
        ("try 8 (912) 345-67-89 today", Phone, "8 (912) 345-67-89"),
        ("my number is (06 1) 234 5678", Phone, "(06 1) 234 5678"),
        ("my number is (021) 23456789", Phone, "(021) 23456789"),
        ("ring +687 20.12.34", Phone, "+687 20.12.34"),
        ("my number is 22 12 34", Phone, "22 12 34"),
        ("text +6837012 later", Phone, "+6837012"),
        (
            "card number 4111 1111 1111 1112",
            Card,
            "4111 1111 1111 1112",
        ),
        (
            "IBAN GB82 WEST 1234 5698 7654 32 please",
            Iban,
            "GB82 WEST 1234 5698 7654 32",
        ),
        (
            "pay DE89370400440532013000 now",
            Iban,
            "DE89370400440532013000",
        ),
    ] {
        assert!(
            found(text).contains(&(kind, want)),
            "{text:?}: {:?}",
            found(text)
        );
    }
    for text in [
        "infused @45cc per hour",
        "a bad IBAN GB82 WEST 1234 5698 7654 33",
        "the flat cost € 12 500 000",
        "it reached 10 000 000 people",
        "order 4111 1111 1111 1112",
        "we met on 12.03.21 at noon",
        "3 (4) 5 of them",
        "120 000 is my budget",
    ] {
        let f = found(text);
        assert!(f.is_empty(), "{text:?}: {f:?}");
    }
}

#[test]
fn birth_dates_after_a_few_words_and_every_date_when_asked() {
    check(
        "they wrote my birthday as 03/14/1962 on the form",
        &[(Dob, "03/14/1962")],
    );
    check("DOB 1962-03-14", &[(Dob, "1962-03-14")]);
    // Under the default policy other dates stay; under dates = "all" they go, years stay.
    let text = "admitted 10/15, discharged March 8th; born 1950; a 93-year-old";
    assert_eq!(found(text), vec![]);
    let all = Detector::with_policy(Policy {
        dates: DatePolicy::All,
        ..Policy::default()
    });
    let got: Vec<(PiiType, &str)> = all
        .detect(text, &Allowlist::default())
        .into_iter()
        .map(|s| (s.kind, &text[s.start..s.end]))
        .collect();
    assert_eq!(
        got,
        vec![(Date, "10/15"), (Date, "March 8th"), (Age, "93-year-old")]
    );
}

#[test]
fn clinical_shorthand_is_not_a_name_and_word_surnames_are() {
    for text in [
        "Swan Ganz placed, Abd soft. Pt on Neo, MAE, PERLA. WILL START Levophed.",
        "ABD SOFT NT ND. NEO GTT WEANED. ASA GIVEN.",
        "Started Zoloft and Lexapro, then Seroquel at night.",
    ] {
        assert_eq!(found(text), vec![], "in {text:?}");
    }
    check("I met Karen Black yesterday.", &[(Name, "Karen Black")]);
    check("Then Tom Hill called.", &[(Name, "Tom Hill")]);
    check(
        "with Anna J. Moss and Peter K Lund",
        &[(Name, "Anna J. Moss"), (Name, "Peter K Lund")],
    );
    check("I saw Dr. Foley today", &[(Name, "Foley")]);
    check(
        "my uncle Erik Lindqvist III",
        &[(Name, "Erik Lindqvist III")],
    );
}

#[test]
fn a_name_found_once_is_redacted_at_every_mention() {
    let mut msgs = [
        "my name is Oluwaseun Adeyemi".to_string(),
        "Thank you for sharing that, Oluwaseun. Oluwaseun's story matters.".to_string(),
    ];
    redact_conversation(
        detector(),
        &Allowlist::default(),
        UnsurePolicy::Redact,
        msgs.iter_mut(),
    );
    assert_eq!(msgs[0], "my name is [NAME_1]");
    assert_eq!(
        msgs[1],
        "Thank you for sharing that, [NAME_1]. [NAME_1]'s story matters."
    );
}
