#![no_main]
//! Response policy files (`--response-policy`): arbitrary text is either a policy file or
//! an error naming the file; an accepted file matches findings without a panic, and only
//! with a rule, severity or risk tier named (a policy matching everything is refused).
use keyward_respond::policy::{FindingFacts, PolicyFile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match PolicyFile::parse("fuzz.yml", text) {
        Ok(file) => {
            for p in &file.policies {
                assert!(
                    !p.when.rules.is_empty() || p.when.severity.is_some() || p.when.risk_tier.is_some()
                );
            }
            for severity in ["info", "high", "critical", "bogus"] {
                for rules in [&["kw-aws-backdoor-access-key"][..], &["kw-posture-risk"], &[]] {
                    let _ = file.matching(&FindingFacts { rules, severity });
                }
            }
        }
        Err(e) => assert!(e.to_string().starts_with("fuzz.yml: ")),
    }
});
