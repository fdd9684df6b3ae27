#![no_main]
//! Policy files on arbitrary bytes: the text before the first NUL is a `.cedar` file, the
//! rest an `entities.json`. Never a panic; a refusal names its file and a line ≥ 1 when it
//! has one; a set that loads answers every action, and an allow names the permits behind it.
use keyward_policy::load::from_sources;
use keyward_policy::{Act, Ask, Principal, Resource, Situation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (policy, entities) = match text.split_once('\0') {
        Some((p, e)) => (p.to_owned(), Some(("entities.json".to_owned(), e.to_owned()))),
        None => (text.into_owned(), None),
    };
    match from_sources(&[("fuzz.cedar".to_owned(), policy)], entities) {
        Ok(loaded) => {
            let who = Principal::Person {
                name: "fuzz".into(),
            };
            for action in Act::ALL {
                let d = loaded.policies.decide(&Ask {
                    principal: &who,
                    action,
                    resource: &Resource::Estate,
                    situation: &Situation::default(),
                });
                // An allow is always some permit's.
                assert!(!d.allowed || !d.policies.is_empty());
            }
        }
        Err(e) => {
            assert!(!e.problems.is_empty());
            for p in &e.problems {
                assert!(!p.file.is_empty() && !p.message.is_empty());
                assert!(p.line.is_none_or(|l| l >= 1));
            }
        }
    }
});
