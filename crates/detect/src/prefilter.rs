//! An action index in front of rule evaluation.
//!
//! Almost every identity rule names the API call it is about (`eventName: CreateAccessKey`,
//! `verb: create`). Each compiled rule is read once for the literal values its condition
//! *requires* of such a key field; an event is then checked only against the rules whose
//! required values include its own, plus the rules that require none. rsigma's general
//! candidate index (which probes every indexed field of every rule) is not consulted.
//!
//! Soundness: a rule is left out only when its condition cannot be true for the event's key
//! value, by the same semantics rsigma evaluates (its condition evaluator over the same event is the
//! authority for every candidate). Values are compared lower-cased, a superset of both the
//! case-insensitive (Sigma's default) and the case-sensitive equality. A key value that is
//! not a scalar (an array) sends every rule on that key to evaluation. The differential test
//! `prefilter_agrees_with_rsigma` holds this against rsigma's own index on every example.

use keyward_model::SourceKind;
use rsigma_eval::{CompiledDetection, CompiledMatcher, CompiledRule, Event as _, EventValue};
use rsigma_parser::{ConditionExpr, LogSource, Quantifier};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::view::View;

/// Fields rules are indexed by, in order of preference.
const KEY_FIELDS: &[&str] = &[
    "eventName",
    "verb",
    "objectRef.resource",
    "eventSource",
    "userIdentity.type",
    "userAgent",
];

/// Values a condition requires of one field; `None`: it requires nothing of it.
type Req = Option<FxHashSet<String>>;

#[derive(Default)]
struct SourceIndex {
    /// Rules requiring nothing of any key field.
    always: Vec<u32>,
    /// Per key field: required value → rules, and every rule indexed on that field.
    keys: Vec<KeyIndex>,
}

/// Values are kept as bytes: a value lower-cased on the stack is looked up without a UTF-8
/// check.
type KeyIndex = (&'static str, FxHashMap<Box<[u8]>, Vec<u32>>, Vec<u32>);

/// The index, per event source.
#[derive(Default)]
pub struct Prefilter {
    sources: Vec<(SourceKind, SourceIndex)>,
}

/// How many rules of a source are indexed and how many are always evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    pub indexed: usize,
    pub always: usize,
}

impl Prefilter {
    /// `rules` are the engine's compiled rules; `keep(rule, source)` says whether a rule
    /// reports on events of that source at all (the catalog's logsource mapping).
    pub fn new(
        rules: &[CompiledRule],
        sources: &[(SourceKind, LogSource)],
        keep: impl Fn(&CompiledRule, SourceKind) -> bool,
    ) -> Self {
        let mut out = Prefilter::default();
        for (source, ls) in sources {
            let mut ix = SourceIndex::default();
            for (i, rule) in rules.iter().enumerate() {
                let Ok(i) = u32::try_from(i) else { continue };
                if !compatible(&rule.logsource, ls) || !keep(rule, *source) {
                    continue;
                }
                let found = KEY_FIELDS
                    .iter()
                    .find_map(|f| rule_requires(rule, f).map(|vals| (*f, vals)));
                let Some((field, values)) = found else {
                    ix.always.push(i);
                    continue;
                };
                let slot = match ix.keys.iter().position(|(f, _, _)| *f == field) {
                    Some(p) => p,
                    None => {
                        ix.keys.push((field, FxHashMap::default(), Vec::new()));
                        ix.keys.len() - 1
                    }
                };
                if let Some((_, map, all)) = ix.keys.get_mut(slot) {
                    all.push(i);
                    for v in values {
                        map.entry(v.into_bytes().into_boxed_slice())
                            .or_default()
                            .push(i);
                    }
                }
            }
            out.sources.push((*source, ix));
        }
        out
    }

    pub fn coverage(&self, source: SourceKind) -> Coverage {
        self.sources.iter().find(|(s, _)| *s == source).map_or(
            Coverage {
                indexed: 0,
                always: 0,
            },
            |(_, ix)| Coverage {
                indexed: ix.keys.iter().map(|(_, _, all)| all.len()).sum(),
                always: ix.always.len(),
            },
        )
    }

    /// Rules of a source that run on every event (indices into the engine's rules).
    pub fn always(&self, source: SourceKind) -> &[u32] {
        self.sources
            .iter()
            .find(|(s, _)| *s == source)
            .map_or(&[], |(_, ix)| ix.always.as_slice())
    }

    /// Rules (indices into `rules`) that may match the event, ascending.
    pub fn candidates(&self, view: &View<'_>) -> Vec<u32> {
        let Some((_, ix)) = self.sources.iter().find(|(s, _)| *s == view.event.source) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(ix.always.len() + 8);
        out.extend_from_slice(&ix.always);
        // Every list is ascending: with one contributing, nothing needs sorting.
        let mut lists = usize::from(!ix.always.is_empty());
        let mut add = |out: &mut Vec<u32>, rules: Option<&Vec<u32>>| {
            if let Some(rules) = rules.filter(|r| !r.is_empty()) {
                out.extend_from_slice(rules);
                lists += 1;
            }
        };
        for (field, map, all) in &ix.keys {
            match view.get_field(field) {
                None | Some(EventValue::Null) => {}
                Some(EventValue::Str(s)) => add(&mut out, lookup_lowercase(map, &s)),
                Some(EventValue::Int(n)) => add(&mut out, map.get(n.to_string().as_bytes())),
                Some(EventValue::Bool(b)) => add(
                    &mut out,
                    map.get(if b { &b"true"[..] } else { &b"false"[..] }),
                ),
                Some(_) => add(&mut out, Some(all)),
            }
        }
        if lists > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }
}

/// The rules listed under the value lower-cased; ASCII values up to 256 bytes (event
/// names, most user agents) are lower-cased on the stack.
fn lookup_lowercase<'m>(map: &'m FxHashMap<Box<[u8]>, Vec<u32>>, s: &str) -> Option<&'m Vec<u32>> {
    if !s.is_ascii() {
        let lower: String = s.chars().flat_map(char::to_lowercase).collect();
        return map.get(lower.as_bytes());
    }
    let mut buf = [0u8; 256];
    if let Some(b) = buf.get_mut(..s.len()) {
        b.copy_from_slice(s.as_bytes());
        b.make_ascii_lowercase();
        return map.get(&*b);
    }
    map.get(s.to_ascii_lowercase().as_bytes())
}

/// rsigma's own logsource compatibility: a field set on both sides must agree.
fn compatible(rule: &LogSource, event: &LogSource) -> bool {
    fn conflicts(r: &Option<String>, e: &Option<String>) -> bool {
        matches!((r, e), (Some(r), Some(e)) if !r.eq_ignore_ascii_case(e))
    }
    let custom = rule.custom.iter().any(|(k, rv)| {
        event
            .custom
            .get(k)
            .is_some_and(|ev| !rv.eq_ignore_ascii_case(ev))
    });
    !(conflicts(&rule.product, &event.product)
        || conflicts(&rule.service, &event.service)
        || conflicts(&rule.category, &event.category)
        || custom)
}

/// What the rule requires of `field`: any of its conditions may fire, so all must require.
fn rule_requires(rule: &CompiledRule, field: &str) -> Req {
    let mut all = FxHashSet::default();
    for c in &rule.conditions {
        all.extend(condition(c, rule, field)?);
    }
    Some(all)
}

fn condition(c: &ConditionExpr, rule: &CompiledRule, field: &str) -> Req {
    match c {
        ConditionExpr::Identifier(name) => detection(rule.detections.get(name)?, field),
        ConditionExpr::And(xs) => and(xs.iter().map(|x| condition(x, rule, field))),
        ConditionExpr::Or(xs) => or(xs.iter().map(|x| condition(x, rule, field))),
        ConditionExpr::Not(_) => None,
        ConditionExpr::Selector {
            quantifier,
            pattern,
        } => {
            let named = rule
                .detections
                .iter()
                .filter(|(n, _)| pattern.matches_detection_name(n))
                .map(|(_, d)| detection(d, field));
            match quantifier {
                // All of none is true: nothing required.
                Quantifier::All => and(named),
                Quantifier::Any => or(named),
                Quantifier::Count(0) => None,
                // At least one must hold.
                Quantifier::Count(_) => or(named),
            }
        }
    }
}

fn detection(d: &CompiledDetection, field: &str) -> Req {
    match d {
        CompiledDetection::AllOf(items) => and(items.iter().map(|it| {
            if it.exists.is_some() || it.field.as_deref() != Some(field) {
                return None;
            }
            matcher(&it.matcher)
        })),
        CompiledDetection::AnyOf(ds) => or(ds.iter().map(|d| detection(d, field))),
        CompiledDetection::And(ds) => and(ds.iter().map(|d| detection(d, field))),
        _ => None,
    }
}

fn matcher(m: &CompiledMatcher) -> Req {
    match m {
        CompiledMatcher::Exact { value, .. } => Some(FxHashSet::from_iter([value.to_lowercase()])),
        CompiledMatcher::AnyOf(ms) => or(ms.iter().map(matcher)),
        CompiledMatcher::AllOf(ms) => and(ms.iter().map(matcher)),
        CompiledMatcher::CaseInsensitiveGroup { children, mode } => match mode {
            rsigma_eval::matcher::GroupMode::Any => or(children.iter().map(matcher)),
            rsigma_eval::matcher::GroupMode::All => and(children.iter().map(matcher)),
        },
        _ => None,
    }
}

/// Every part must hold: the intersection of what the constrained parts require.
fn and(parts: impl Iterator<Item = Req>) -> Req {
    let mut acc: Req = None;
    for p in parts.flatten() {
        acc = Some(match acc {
            None => p,
            Some(a) => a.intersection(&p).cloned().collect(),
        });
    }
    acc
}

/// One part must hold: the union, only when every part is constrained. No parts: false.
fn or(parts: impl Iterator<Item = Req>) -> Req {
    let mut acc = FxHashSet::default();
    for p in parts {
        acc.extend(p?);
    }
    Some(acc)
}
