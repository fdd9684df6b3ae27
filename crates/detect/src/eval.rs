//! Rule conditions evaluated without allocating.
//!
//! rsigma compiles every rule (Sigma's and ours) into detections and matchers; this module
//! evaluates that same compiled form, with the same semantics, but:
//!
//! - a condition names its detections by index, not by a string looked up in a hash map;
//! - the selections that held are a bit mask, turned into names only when a finding is
//!   written or a correlation needs them;
//! - case-insensitive equality, prefix, suffix and substring tests on an ASCII value compare
//!   bytes ignoring ASCII case instead of lower-casing the value into a new `String` for
//!   every comparison (rsigma's matchers do that). A value with any non-ASCII byte, and
//!   every other matcher (regular expressions, CIDR, numbers, field references…), goes to
//!   rsigma's own matcher.
//!
//! A rule with a shape this module does not take (keywords, array scopes, more than 64
//! detections) is left to rsigma's condition evaluator. The differential test
//! `fast_evaluation_agrees_with_rsigma` holds both against each other on every event we
//! have, for every rule.

use rsigma_eval::matcher::GroupMode;
use rsigma_eval::{CompiledDetection, CompiledMatcher, CompiledRule, Event, EventValue};
use rsigma_parser::{ConditionExpr, Quantifier};

/// Which of a rule's detections held, as a bit mask over [`RuleEval::names`].
pub type Selected = u64;

/// One rule, prepared for evaluation.
pub struct RuleEval {
    /// The rule's detection names, sorted: bit `i` of a [`Selected`] is `names[i]`.
    names: Vec<String>,
    /// `None`: the rule is left to rsigma's evaluator.
    plan: Option<Plan>,
}

struct Plan {
    /// The detections, in the order of `names`.
    detections: Vec<CompiledDetection>,
    conditions: Vec<Expr>,
}

enum Expr {
    Detection(u8),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// `1 of selection_*`, `all of them`, `2 of filter_*`: the detections the pattern names.
    Selector(Quantifier, Vec<u8>),
}

impl RuleEval {
    pub fn new(rule: &CompiledRule) -> Self {
        let mut names: Vec<String> = rule.detections.keys().cloned().collect();
        names.sort_unstable();
        let plan = Plan::new(rule, &names);
        RuleEval { names, plan }
    }

    /// Whether this module evaluates the rule (else rsigma does).
    pub fn is_planned(&self) -> bool {
        self.plan.is_some()
    }

    /// Evaluates the rule's conditions in order: the first that holds gives the
    /// selections that held while evaluating it, as rsigma reports them.
    pub fn eval(&self, rule: &CompiledRule, event: &impl Event) -> Option<Selected> {
        match &self.plan {
            Some(plan) => plan.conditions.iter().find_map(|c| {
                let mut selected = 0;
                plan.condition(c, event, &mut selected).then_some(selected)
            }),
            None => {
                let mut names = Vec::new();
                rule.conditions.iter().find_map(|c| {
                    names.clear();
                    rsigma_eval::compiler::eval_condition(c, &rule.detections, event, &mut names)
                        .then(|| self.mask(&names))
                })
            }
        }
    }

    fn mask(&self, names: &[String]) -> Selected {
        names
            .iter()
            .filter_map(|n| self.names.binary_search(n).ok())
            .filter(|&i| i < 64)
            .fold(0, |m, i| m | (1 << i))
    }

    /// The names of the selections in `selected`, in name order.
    pub fn names(&self, selected: Selected) -> Vec<String> {
        self.names
            .iter()
            .take(64)
            .enumerate()
            .filter(|(i, _)| selected & (1 << i) != 0)
            .map(|(_, n)| n.clone())
            .collect()
    }
}

impl Plan {
    fn new(rule: &CompiledRule, names: &[String]) -> Option<Plan> {
        if names.len() > 64 {
            return None;
        }
        let detections = names
            .iter()
            .map(|n| {
                let d = rule.detections.get(n)?;
                supported(d).then(|| d.clone())
            })
            .collect::<Option<Vec<_>>>()?;
        let conditions = rule
            .conditions
            .iter()
            .map(|c| expr(c, names))
            .collect::<Option<Vec<_>>>()?;
        Some(Plan {
            detections,
            conditions,
        })
    }

    /// Mirrors rsigma's `eval_condition`: a detection that holds is listed; `and`/`or`
    /// stop at the first detection that decides; a selector evaluates all it names.
    fn condition(&self, c: &Expr, event: &impl Event, selected: &mut Selected) -> bool {
        match c {
            Expr::Detection(i) => {
                let held = self
                    .detections
                    .get(usize::from(*i))
                    .is_some_and(|d| detection(d, event));
                if held {
                    *selected |= 1 << i;
                }
                held
            }
            Expr::And(cs) => cs.iter().all(|c| self.condition(c, event, selected)),
            Expr::Or(cs) => cs.iter().any(|c| self.condition(c, event, selected)),
            Expr::Not(c) => !self.condition(c, event, selected),
            Expr::Selector(q, ids) => {
                let mut held = 0u64;
                for &i in ids {
                    if self
                        .detections
                        .get(usize::from(i))
                        .is_some_and(|d| detection(d, event))
                    {
                        held += 1;
                        *selected |= 1 << i;
                    }
                }
                match q {
                    Quantifier::Any => held >= 1,
                    Quantifier::All => held == ids.len() as u64,
                    Quantifier::Count(n) => held >= *n,
                }
            }
        }
    }
}

/// Detections made of field items only (mappings, lists of mappings).
fn supported(d: &CompiledDetection) -> bool {
    match d {
        CompiledDetection::AllOf(items) => items.iter().all(|i| i.field.is_some()),
        CompiledDetection::AnyOf(ds) | CompiledDetection::And(ds) => ds.iter().all(supported),
        _ => false,
    }
}

fn expr(c: &ConditionExpr, names: &[String]) -> Option<Expr> {
    let index = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .and_then(|i| u8::try_from(i).ok())
    };
    Some(match c {
        // A name the rule does not define never holds (as in rsigma).
        ConditionExpr::Identifier(n) => match index(n) {
            Some(i) => Expr::Detection(i),
            None => Expr::Or(Vec::new()),
        },
        ConditionExpr::And(cs) => Expr::And(
            cs.iter()
                .map(|c| expr(c, names))
                .collect::<Option<Vec<_>>>()?,
        ),
        ConditionExpr::Or(cs) => Expr::Or(
            cs.iter()
                .map(|c| expr(c, names))
                .collect::<Option<Vec<_>>>()?,
        ),
        ConditionExpr::Not(c) => Expr::Not(Box::new(expr(c, names)?)),
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => Expr::Selector(
            quantifier.clone(),
            names
                .iter()
                .filter(|n| pattern.matches_detection_name(n))
                .filter_map(|n| index(n))
                .collect(),
        ),
    })
}

fn detection(d: &CompiledDetection, event: &impl Event) -> bool {
    match d {
        CompiledDetection::AllOf(items) => items.iter().all(|item| {
            let Some(field) = &item.field else {
                return false;
            };
            let value = event.get_field(field);
            if let Some(expect) = item.exists {
                return value.is_some_and(|v| !v.is_null()) == expect;
            }
            match value {
                Some(v) => matches(&item.matcher, &v, event),
                None => matches!(item.matcher, CompiledMatcher::Null),
            }
        }),
        CompiledDetection::AnyOf(ds) => ds.iter().any(|d| detection(d, event)),
        CompiledDetection::And(ds) => ds.iter().all(|d| detection(d, event)),
        // Not planned (see `supported`).
        _ => false,
    }
}

/// rsigma's `CompiledMatcher::matches`, with the string comparisons on an ASCII string
/// value done in place.
fn matches(m: &CompiledMatcher, value: &EventValue, event: &impl Event) -> bool {
    let s = match value {
        EventValue::Str(s) if s.is_ascii() => s.as_ref(),
        _ => return m.matches(value, event),
    };
    match m {
        CompiledMatcher::Exact {
            case_insensitive: false,
            value,
        } => s == value,
        CompiledMatcher::StartsWith {
            case_insensitive: false,
            value,
        } => s.starts_with(value.as_str()),
        CompiledMatcher::EndsWith {
            case_insensitive: false,
            value,
        } => s.ends_with(value.as_str()),
        CompiledMatcher::Contains {
            case_insensitive: false,
            value,
        } => s.contains(value.as_str()),
        CompiledMatcher::Exact { .. }
        | CompiledMatcher::StartsWith { .. }
        | CompiledMatcher::EndsWith { .. }
        | CompiledMatcher::Contains { .. } => lowered(m, s),
        CompiledMatcher::AnyOf(ms) => ms.iter().any(|m| matches(m, value, event)),
        CompiledMatcher::AllOf(ms) => ms.iter().all(|m| matches(m, value, event)),
        CompiledMatcher::Not(inner) => !matches(inner, value, event),
        // rsigma lowers the value once and hands it to each child; children that are plain
        // string comparisons need no lowered copy.
        CompiledMatcher::CaseInsensitiveGroup { children, .. } if children.iter().all(in_place) => {
            lowered(m, s)
        }
        other => other.matches(value, event),
    }
}

/// Matchers [`lowered`] answers: case-insensitive string comparisons, and their
/// negations and groups.
fn in_place(m: &CompiledMatcher) -> bool {
    match m {
        CompiledMatcher::Exact {
            case_insensitive, ..
        }
        | CompiledMatcher::StartsWith {
            case_insensitive, ..
        }
        | CompiledMatcher::EndsWith {
            case_insensitive, ..
        }
        | CompiledMatcher::Contains {
            case_insensitive, ..
        } => *case_insensitive,
        CompiledMatcher::Not(inner) => in_place(inner),
        CompiledMatcher::AnyOf(ms)
        | CompiledMatcher::AllOf(ms)
        | CompiledMatcher::CaseInsensitiveGroup { children: ms, .. } => ms.iter().all(in_place),
        _ => false,
    }
}

/// Whether a matcher [`in_place`] takes holds for the lower-casing of the ASCII string
/// `s` (its values are stored lower-cased): compared ignoring ASCII case, without the copy.
fn lowered(m: &CompiledMatcher, s: &str) -> bool {
    let b = s.as_bytes();
    match m {
        CompiledMatcher::Exact { value, .. } => b.eq_ignore_ascii_case(value.as_bytes()),
        CompiledMatcher::StartsWith { value, .. } => b
            .get(..value.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(value.as_bytes())),
        CompiledMatcher::EndsWith { value, .. } => b
            .len()
            .checked_sub(value.len())
            .and_then(|at| b.get(at..))
            .is_some_and(|p| p.eq_ignore_ascii_case(value.as_bytes())),
        CompiledMatcher::Contains { value, .. } => contains_ignore_ascii_case(b, value.as_bytes()),
        CompiledMatcher::Not(inner) => !lowered(inner, s),
        CompiledMatcher::AnyOf(ms)
        | CompiledMatcher::CaseInsensitiveGroup {
            children: ms,
            mode: GroupMode::Any,
        } => ms.iter().any(|m| lowered(m, s)),
        CompiledMatcher::AllOf(ms)
        | CompiledMatcher::CaseInsensitiveGroup {
            children: ms,
            mode: GroupMode::All,
        } => ms.iter().all(|m| lowered(m, s)),
        _ => false,
    }
}

/// Whether the ASCII lower-casing of `s` contains `needle` (already lower-case, as rsigma
/// stores it): lower-cased on the stack when short, else into a new buffer.
fn contains_ignore_ascii_case(s: &[u8], needle: &[u8]) -> bool {
    let mut buf = [0u8; 512];
    match buf.get_mut(..s.len()) {
        Some(lower) => {
            for (l, b) in lower.iter_mut().zip(s) {
                *l = b.to_ascii_lowercase();
            }
            memchr::memmem::find(lower, needle).is_some()
        }
        None => memchr::memmem::find(&s.to_ascii_lowercase(), needle).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsigma_eval::PlainEvent;

    /// Every string matcher kind, case-sensitive and not, against values with non-ASCII
    /// letters whose lower-casing changes length (`İ`), and ASCII ones: the same answers as
    /// rsigma's own matcher.
    #[test]
    fn string_matchers_agree_with_rsigma() {
        let values = [
            "AssumedRole",
            "assumedrole",
            "ASSUMEDROLE",
            "xAssumedRoley",
            "İAssumedRole",
            "assumedİrole",
            "Straße",
            "STRASSE",
            "",
            "a",
        ];
        let needles = [
            "assumedrole",
            "role",
            "assumed",
            "i̇assumedrole",
            "straße",
            "",
            "x",
        ];
        let event = PlainEvent::new(String::new());
        for needle in needles {
            for ci in [true, false] {
                let ms = [
                    CompiledMatcher::Exact {
                        value: needle.into(),
                        case_insensitive: ci,
                    },
                    CompiledMatcher::StartsWith {
                        value: needle.into(),
                        case_insensitive: ci,
                    },
                    CompiledMatcher::EndsWith {
                        value: needle.into(),
                        case_insensitive: ci,
                    },
                    CompiledMatcher::Contains {
                        value: needle.into(),
                        case_insensitive: ci,
                    },
                ];
                for m in ms {
                    let m = CompiledMatcher::Not(Box::new(CompiledMatcher::AnyOf(vec![m])));
                    for v in values {
                        let v = EventValue::Str(v.into());
                        assert_eq!(
                            matches(&m, &v, &event),
                            m.matches(&v, &event),
                            "{m:?} on {v:?}"
                        );
                    }
                }
            }
        }
        let long = "A".repeat(600) + "RoLe";
        let m = CompiledMatcher::Contains {
            value: "role".into(),
            case_insensitive: true,
        };
        assert!(matches(&m, &EventValue::Str(long.into()), &event));
    }
}
