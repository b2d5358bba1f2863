//! Phrase banks and the grammar that assembles them into conversations. The combinations are
//! many (openers × situations × durations × feelings × responses), so a million generated
//! conversations are overwhelmingly distinct; exact and near duplicates are planted on
//! purpose elsewhere, never by accident of a small bank.

use crate::{Family, Rng, Speaker};

const FEELINGS: &[&str] = &[
    "anxious",
    "overwhelmed",
    "exhausted",
    "numb",
    "on edge",
    "hopeless",
    "irritable",
    "lonely",
    "stuck",
    "restless",
    "ashamed",
    "tense",
    "flat",
    "scattered",
    "discouraged",
    "uneasy",
];

const SITUATIONS: &[&str] = &[
    "since I started the new job",
    "after the move to a new city",
    "since my partner and I separated",
    "since my father got sick",
    "around exams at university",
    "whenever I have to speak in meetings",
    "since the baby was born",
    "after losing my job",
    "when I try to fall asleep",
    "when my family visits",
    "since the accident last year",
    "every Sunday evening before the week starts",
    "when I scroll through social media",
    "after arguments with my sister",
    "since I stopped going to the gym",
    "when I think about money",
];

const DURATIONS: &[&str] = &[
    "a few days",
    "two weeks",
    "about a month",
    "several months",
    "most of this year",
    "as long as I can remember",
    "since the spring",
    "on and off for years",
];

const OPENERS: &[&str] = &[
    "I've been feeling {feeling} {situation}, and it has been going on for {duration}.",
    "Lately I feel {feeling} {situation}. It's been {duration} now.",
    "I don't really know where to start. I keep feeling {feeling} {situation}.",
    "For {duration} I've felt {feeling}, mostly {situation}.",
    "My friend suggested I talk to someone because I've been {feeling} {situation}.",
    "Can I ask something? I get {feeling} {situation} and I can't shake it.",
];

const CLIENT_FOLLOWUPS: &[&str] = &[
    "I guess I just don't want to bother anyone with it.",
    "It gets worse at night, when everything is quiet.",
    "I've tried to push through, but it keeps coming back.",
    "Sometimes I cancel plans because I can't face people.",
    "I notice my chest gets tight and my thoughts race.",
    "I used to enjoy cooking, and now I barely eat.",
    "Part of me thinks I should be able to handle this alone.",
    "When it starts, I replay every conversation from the day.",
    "I sleep maybe {hours} hours a night at the moment.",
    "It's hard to concentrate at work for more than {minutes} minutes.",
    "I haven't told anyone else about this.",
    "I worry that something is wrong with me.",
];

const REFLECTIONS: &[&str] = &[
    "It sounds like you've been carrying a lot, and feeling {feeling} has become part of your days.",
    "I hear how tiring it is to feel {feeling} for {duration}.",
    "That makes sense. When things change this much, feeling {feeling} is a very human response.",
    "Thank you for telling me. It takes courage to name what you've been going through.",
    "It seems like part of you wants to cope alone, and part of you is ready for support.",
    "You're noticing patterns, which is an important first step.",
];

const QUESTIONS: &[&str] = &[
    "What do you notice in your body when that feeling shows up?",
    "When did you last feel a little more like yourself?",
    "What has helped, even a little, in the past?",
    "Who in your life knows how you've been feeling?",
    "What would you like to be different a month from now?",
    "How are you sleeping and eating at the moment?",
    "What goes through your mind right before it gets worse?",
    "On a scale from 0 to 10, how intense is it today?",
];

const TECHNIQUES: &[&str] = &[
    "One thing we could try is a short grounding exercise: name five things you can see and four you can hear.",
    "Some people find it useful to write the worry down and set a time tomorrow to look at it again.",
    "We could look at a small, doable step, like a ten-minute walk after lunch.",
    "Slow breathing can help: in for four counts, hold for four, out for six.",
    "It might help to notice the thought, label it as a thought, and let it pass without arguing with it.",
    "Keeping a simple sleep routine, same time to bed and up, often steadies things over a few weeks.",
    "We could plan one small activity each day that used to bring you some enjoyment.",
];

const CLOSINGS: &[&str] = &[
    "How does that sound to you?",
    "Would you be willing to try that this week and tell me how it went?",
    "We can take this at whatever pace feels right for you.",
    "What feels most important to focus on first?",
];

const CLIENT_REPLIES: &[&str] = &[
    "I think I could try that.",
    "That sounds manageable, actually.",
    "I'm not sure it will work, but I'll give it a go.",
    "Okay. I like the idea of starting small.",
    "Maybe. I've tried things like that before.",
    "Yes, I'd like that.",
];

const SYSTEM_PROMPTS: &[&str] = &[
    "You are a supportive, non-judgemental counselling assistant. Encourage professional help when appropriate.",
    "You are a warm and careful therapeutic assistant. Listen, reflect, and never diagnose.",
];

const CRISIS_OPENERS: &[&str] = &[
    "I don't see the point of anything anymore and I keep thinking everyone would be better off without me.",
    "I've been having thoughts of hurting myself {situation}.",
    "I feel like I can't keep going. It has been this way for {duration}.",
    "Tonight is really bad. I don't feel safe with my own thoughts.",
    "I keep thinking about ending it. I haven't told anyone.",
];

const CRISIS_RESPONSES: &[&str] = &[
    "I'm really glad you told me. Your safety matters most right now. Are you safe at this moment?",
    "Thank you for trusting me with this. It sounds incredibly painful. Are you thinking about acting on these thoughts tonight?",
    "I hear how much pain you're in, and I'm taking it seriously. Is there someone who can be with you right now?",
];

const CRISIS_REFERRALS: &[&str] = &[
    "If you are in the US, you can call or text 988 to reach the Suicide and Crisis Lifeline, any time, day or night.",
    "You can text HOME to 741741 to reach the Crisis Text Line and talk with a trained counselor.",
    "If you are in immediate danger, please call 911 or go to the nearest emergency department.",
    "The Lifeline is also reachable at 1-800-273-8255 if that number is easier for you.",
];

const COT_CASES: &[&str] = &[
    "A client reports feeling {feeling} {situation} for {duration}, with sleep of about {hours} hours a night.",
    "A client describes avoiding friends and feeling {feeling} {situation}.",
    "A client says they feel {feeling} and have lost interest in hobbies for {duration}.",
    "A client mentions racing thoughts {situation} and difficulty concentrating for more than {minutes} minutes.",
];

const COT_REASONING: &[&str] = &[
    "First, note the duration and impact on daily functioning. Second, check for safety concerns before anything else. Third, identify what maintains the pattern, such as avoidance or poor sleep. Finally, choose one collaborative, low-effort next step.",
    "Start by validating the experience. Then explore onset and triggers, since the change began {situation}. Assess risk briefly. A psychoeducation step about the stress response fits before any technique.",
    "The symptoms cluster around mood and energy. Screening questions about sleep, appetite and hopelessness come first. If risk is low, behavioural activation with small scheduled activities is a reasonable starting point.",
];

const VOICE_LINES: &[&str] = &[
    "What I want you to hear today is that healing is rarely a straight line.",
    "When we talk about shame, we're talking about the feeling that we are the problem, not that we did something wrong.",
    "Notice the voice in your head that says you should be further along by now.",
    "Boundaries are not walls. They are the places where you end and someone else begins.",
    "Your nervous system learned to protect you. It did its job. Now we can teach it that you are safe.",
    "Let's slow down for a moment and just breathe together.",
    "A lot of people write to me and ask whether it ever gets easier. It does, with support and practice.",
    "Self-compassion is not letting yourself off the hook. It is staying with yourself when things are hard.",
];

fn fill(template: &str, rng: &mut Rng) -> String {
    let mut out = template.to_string();
    for (slot, bank) in [
        ("{feeling}", FEELINGS),
        ("{situation}", SITUATIONS),
        ("{duration}", DURATIONS),
    ] {
        while out.contains(slot) {
            out = out.replacen(slot, rng.pick(bank), 1);
        }
    }
    while out.contains("{hours}") {
        out = out.replacen("{hours}", &rng.range(3, 7).to_string(), 1);
    }
    while out.contains("{minutes}") {
        out = out.replacen("{minutes}", &rng.range(5, 40).to_string(), 1);
    }
    out
}

fn therapist_turn(rng: &mut Rng) -> String {
    let mut parts = vec![fill(rng.pick(REFLECTIONS), rng)];
    if rng.chance(60) {
        parts.push(fill(rng.pick(TECHNIQUES), rng));
    }
    let bank = if rng.chance(50) { QUESTIONS } else { CLOSINGS };
    parts.push(fill(rng.pick(bank), rng));
    parts.join(" ")
}

fn counselling(rng: &mut Rng, max_exchanges: u64) -> Vec<(Speaker, String)> {
    let mut turns = Vec::new();
    if rng.chance(30) {
        turns.push((Speaker::System, rng.pick(SYSTEM_PROMPTS).to_string()));
    }
    turns.push((Speaker::Client, fill(rng.pick(OPENERS), rng)));
    turns.push((Speaker::Therapist, therapist_turn(rng)));
    for _ in 1..rng.range(1, max_exchanges) {
        let client = if rng.chance(50) {
            fill(rng.pick(CLIENT_FOLLOWUPS), rng)
        } else {
            rng.pick(CLIENT_REPLIES).to_string()
        };
        turns.push((Speaker::Client, client));
        turns.push((Speaker::Therapist, therapist_turn(rng)));
    }
    turns
}

pub(crate) fn conversation(family: Family, rng: &mut Rng) -> Vec<(Speaker, String)> {
    match family {
        Family::ProfessionalTherapeutic => counselling(rng, 5),
        Family::PriorityDatasets => counselling(rng, 2),
        Family::CotReasoning => {
            let case = fill(rng.pick(COT_CASES), rng);
            let reasoning = fill(rng.pick(COT_REASONING), rng);
            let answer = format!(
                "Reasoning: {reasoning}\n\nResponse: {}",
                therapist_turn(rng)
            );
            vec![
                (
                    Speaker::Client,
                    format!("{case} What would be a careful first response?"),
                ),
                (Speaker::Therapist, answer),
            ]
        }
        Family::EdgeCases => {
            let mut turns = vec![
                (Speaker::Client, fill(rng.pick(CRISIS_OPENERS), rng)),
                (
                    Speaker::Therapist,
                    format!(
                        "{} {}",
                        rng.pick(CRISIS_RESPONSES),
                        rng.pick(CRISIS_REFERRALS)
                    ),
                ),
            ];
            if rng.chance(70) {
                turns.push((
                    Speaker::Client,
                    rng.pick(&[
                        "I'm safe right now, I think. I just needed to say it out loud.",
                        "I don't know. I'm scared of how I feel.",
                        "My roommate is home. I could talk to her.",
                    ])
                    .to_string(),
                ));
                turns.push((
                    Speaker::Therapist,
                    format!(
                        "Thank you for staying with me. {} Would you be willing to reach out to them now while we keep talking?",
                        rng.pick(CRISIS_REFERRALS)
                    ),
                ));
            }
            turns
        }
        Family::VoicePersona => {
            let mut turns = Vec::new();
            for _ in 0..rng.range(2, 5) {
                turns.push((Speaker::Client, fill(rng.pick(OPENERS), rng)));
                let n = rng.range(2, 4);
                let monologue: Vec<&str> = (0..n).map(|_| rng.pick(VOICE_LINES)).collect();
                turns.push((Speaker::Therapist, monologue.join(" ")));
            }
            turns
        }
    }
}
