#![no_main]
//! Playbook files: arbitrary text is either a playbook (which then validates, matches
//! subjects, and substitutes its steps' variables without a panic) or an error naming the
//! file. Substitution of arbitrary text never panics either.
use keyward_respond::playbook::{Playbook, Subject, Trigger, resolve_step, substitute};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lookup = |v: &str| (v.len() < 40).then(|| format!("<{v}>"));
    let _ = substitute(text, &lookup);
    match Playbook::parse("fuzz.yaml", text) {
        Ok(book) => {
            assert!(book.check().is_ok());
            let subject = Subject {
                id: "arn:aws:iam::111122223333:role/payments-api".into(),
                name: "payments-api".into(),
                kind: "iam_role".into(),
                platform: "aws".into(),
                source: "terraform".into(),
                tags: [("team".to_owned(), "payments".to_owned())].into(),
                ..Subject::default()
            };
            let _ = book.conditions_hold(&subject, 1_800_000_000_000);
            if let Some(Trigger::Inventory(m)) = &book.trigger {
                let _ = m.matches(&subject);
            }
            for step in &book.steps {
                let _ = resolve_step(step, &lookup);
            }
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.yaml: ")),
    }
});
