//! Policy documents and their evaluation.
//!
//! Follows the IAM evaluation logic for one account: an explicit `Deny` in any applicable
//! policy wins; otherwise an identity-policy `Allow` is needed, and when a permissions
//! boundary is set, the boundary must allow too. `Action` / `NotAction` match
//! case-insensitively with `*` and `?`; `Resource` / `NotResource` and ARNs match
//! case-sensitively. Conditions support every documented operator family (string,
//! numeric, date, bool, binary, IP address, ARN, `Null`), the `…IfExists` suffix, the
//! `ForAnyValue:` / `ForAllValues:` set qualifiers, and `${key}` policy variables.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use keyward_model::ids;
use keyward_model::time::Millis;
use serde_json::Value;

/// Three-valued truth: a condition on a key the request leaves open is `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    /// Undecided; the condition keys that would decide it.
    Unknown(BTreeSet<String>),
}

impl Tri {
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, x) | (x, Tri::True) => x,
            (Tri::Unknown(mut a), Tri::Unknown(b)) => {
                a.extend(b);
                Tri::Unknown(a)
            }
        }
    }

    fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::False, x) | (x, Tri::False) => x,
            (Tri::Unknown(mut a), Tri::Unknown(b)) => {
                a.extend(b);
                Tri::Unknown(a)
            }
        }
    }

    fn from_bool(b: bool) -> Tri {
        if b { Tri::True } else { Tri::False }
    }

    fn unknown(key: &str) -> Tri {
        Tri::Unknown(BTreeSet::from([key.to_owned()]))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction`, `Resource` or `NotResource`, `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq)]
enum Match<T> {
    Is(T),
    IsNot(T),
}

/// Principals named by a trust (resource) policy statement.
#[derive(Debug, Clone, PartialEq, Default)]
struct Principals {
    any: bool,
    aws: Vec<String>,
    service: Vec<String>,
    federated: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Condition {
    operator: String,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct Statement {
    effect: Effect,
    actions: Match<Vec<String>>,
    resources: Option<Match<Vec<String>>>,
    principals: Option<Match<Principals>>,
    conditions: Vec<Condition>,
}

/// Why a policy document cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("`Statement` must be an object or a list")]
    StatementShape,
    #[error("missing `Statement`")]
    NoStatement,
    /// Statement `index` (from 0) is malformed.
    #[error("statement {index}: {problem}")]
    Statement {
        index: usize,
        problem: StatementError,
    },
}

/// What is wrong with one statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The `Effect` it has (`None`: missing or not a string).
    #[error("`Effect` is {0:?}, expected `Allow` or `Deny`")]
    Effect(Option<String>),
    #[error("exactly one of `Action` / `NotAction` is required")]
    Action,
    #[error("both `Resource` and `NotResource`")]
    BothResource,
    #[error("both `Principal` and `NotPrincipal`")]
    BothPrincipal,
    #[error("unknown principal type `{0}`")]
    PrincipalType(String),
    #[error("`Principal` must be `\"*\"` or an object")]
    PrincipalShape,
    #[error("`Condition` must be an object")]
    ConditionShape,
    #[error("condition `{0}` must map keys to values")]
    ConditionOperator(String),
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Policy {
    statements: Vec<Statement>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Value::Bool(b) => vec![b.to_string()],
        Value::Number(n) => vec![n.to_string()],
        _ => Vec::new(),
    }
}

fn principals(v: &Value) -> Result<Principals, StatementError> {
    let mut p = Principals::default();
    match v {
        Value::String(s) if s == "*" => p.any = true,
        Value::Object(map) => {
            for (ty, list) in map {
                let list = strings(list);
                match ty.as_str() {
                    "AWS" => {
                        if list.iter().any(|s| s == "*") {
                            p.any = true;
                        }
                        p.aws.extend(list);
                    }
                    "Service" => p.service.extend(list),
                    "Federated" => p.federated.extend(list),
                    // `CanonicalUser` names S3 account owners, never IAM callers.
                    "CanonicalUser" => {}
                    other => return Err(StatementError::PrincipalType(other.to_owned())),
                }
            }
        }
        _ => return Err(StatementError::PrincipalShape),
    }
    Ok(p)
}

impl Policy {
    /// Parses a policy document (a JSON object; a URL-encoded string must be decoded by
    /// the caller).
    pub fn parse(doc: &Value) -> Result<Policy, PolicyError> {
        let statements = match doc.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            Some(_) => return Err(PolicyError::StatementShape),
            None => return Err(PolicyError::NoStatement),
        };
        let mut out = Vec::with_capacity(statements.len());
        for (i, st) in statements.into_iter().enumerate() {
            let at = |problem: StatementError| PolicyError::Statement { index: i, problem };
            let effect = match st.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                other => return Err(at(StatementError::Effect(other.map(str::to_owned)))),
            };
            let actions = match (st.get("Action"), st.get("NotAction")) {
                (Some(a), None) => Match::Is(strings(a)),
                (None, Some(a)) => Match::IsNot(strings(a)),
                _ => return Err(at(StatementError::Action)),
            };
            let resources = match (st.get("Resource"), st.get("NotResource")) {
                (Some(r), None) => Some(Match::Is(strings(r))),
                (None, Some(r)) => Some(Match::IsNot(strings(r))),
                (None, None) => None,
                _ => return Err(at(StatementError::BothResource)),
            };
            let principals = match (st.get("Principal"), st.get("NotPrincipal")) {
                (Some(p), None) => Some(Match::Is(principals(p).map_err(at)?)),
                (None, Some(p)) => Some(Match::IsNot(principals(p).map_err(at)?)),
                (None, None) => None,
                _ => return Err(at(StatementError::BothPrincipal)),
            };
            let mut conditions = Vec::new();
            if let Some(c) = st.get("Condition") {
                let Value::Object(ops) = c else {
                    return Err(at(StatementError::ConditionShape));
                };
                for (op, keys) in ops {
                    let Value::Object(keys) = keys else {
                        return Err(at(StatementError::ConditionOperator(op.clone())));
                    };
                    for (key, values) in keys {
                        conditions.push(Condition {
                            operator: op.clone(),
                            key: key.clone(),
                            values: strings(values),
                        });
                    }
                }
            }
            out.push(Statement {
                effect,
                actions,
                resources,
                principals,
                conditions,
            });
        }
        Ok(Policy { statements: out })
    }
}

impl Policy {
    /// `Allow` of `*` on `*`: what an AWS-managed `FullAWSAccess` policy says.
    pub fn allow_all() -> Policy {
        Policy {
            statements: vec![Statement {
                effect: Effect::Allow,
                actions: Match::Is(vec!["*".to_owned()]),
                resources: Some(Match::Is(vec!["*".to_owned()])),
                principals: None,
                conditions: Vec::new(),
            }],
        }
    }
}

impl Policy {
    /// Whether some `Allow` statement could allow `action` on some resource under some
    /// conditions: a cheap necessary condition, used to skip work, never to decide.
    pub fn may_allow(&self, action: &str) -> bool {
        self.statements.iter().any(|st| {
            st.effect == Effect::Allow
                && match &st.actions {
                    Match::Is(list) => list.iter().any(|a| glob(a, action, true)),
                    Match::IsNot(list) => !list.iter().any(|a| glob(a, action, true)),
                }
        })
    }
}

impl Policy {
    /// Whether some `Deny` statement could apply to `action` (on some resource, under some
    /// conditions): a cheap necessary condition, like [`Policy::may_allow`].
    pub fn may_deny(&self, action: &str) -> bool {
        self.statements.iter().any(|st| {
            st.effect == Effect::Deny
                && match &st.actions {
                    Match::Is(list) => list.iter().any(|a| glob(a, action, true)),
                    Match::IsNot(list) => !list.iter().any(|a| glob(a, action, true)),
                }
        })
    }
}

/// One `Allow` statement's positive lists, for enumerating what a policy grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowPattern<'p> {
    pub actions: &'p [String],
    /// `None` for a statement without `Resource` (trust policies).
    pub resources: Option<&'p [String]>,
    /// Condition keys the statement depends on.
    pub condition_keys: Vec<&'p str>,
}

/// Principals a trust statement names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedPrincipals<'p> {
    pub any: bool,
    pub aws: &'p [String],
    pub service: &'p [String],
    pub federated: &'p [String],
    /// Conditions as (operator, key, values).
    pub conditions: Vec<(&'p str, &'p str, &'p [String])>,
}

impl Policy {
    /// The `Allow` statements that list actions positively (`NotAction` statements are
    /// left to [`evaluate`]).
    pub fn allow_patterns(&self) -> Vec<AllowPattern<'_>> {
        self.statements
            .iter()
            .filter(|st| st.effect == Effect::Allow)
            .filter_map(|st| {
                let Match::Is(actions) = &st.actions else {
                    return None;
                };
                let resources = match &st.resources {
                    Some(Match::Is(r)) => Some(r.as_slice()),
                    Some(Match::IsNot(_)) => return None,
                    None => None,
                };
                Some(AllowPattern {
                    actions,
                    resources,
                    condition_keys: st.conditions.iter().map(|c| c.key.as_str()).collect(),
                })
            })
            .collect()
    }

    /// The principals each `Allow` statement of a trust policy names.
    pub fn trusted(&self) -> Vec<TrustedPrincipals<'_>> {
        self.statements
            .iter()
            .filter(|st| st.effect == Effect::Allow)
            .filter_map(|st| match &st.principals {
                Some(Match::Is(p)) => Some(TrustedPrincipals {
                    any: p.any,
                    aws: &p.aws,
                    service: &p.service,
                    federated: &p.federated,
                    conditions: st
                        .conditions
                        .iter()
                        .map(|c| (c.operator.as_str(), c.key.as_str(), c.values.as_slice()))
                        .collect(),
                }),
                _ => None,
            })
            .collect()
    }
}

/// Whether a pattern list names every value: `*` (or `*:*` for actions).
fn covers_all(list: &[String]) -> bool {
    list.iter()
        .any(|p| p == "*:*" || (!p.is_empty() && p.bytes().all(|b| b == b'*')))
}

/// The statement's conditions, all together.
fn conditions_hold(st: &Statement, ctx: &Context) -> Tri {
    st.conditions
        .iter()
        .fold(Tri::True, |acc, c| acc.and(condition(c, ctx)))
}

impl Policy {
    /// Whether an `Allow` statement grants every action on every resource (`Action` and
    /// `Resource` of `*`; `NotAction` and `NotResource` always leave something out): the
    /// condition keys left open (empty: unconditionally), or `None`. A statement whose
    /// conditions are decided false under `ctx` grants nothing.
    pub fn grants_everything(&self, ctx: &Context) -> Option<BTreeSet<String>> {
        let mut found: Option<BTreeSet<String>> = None;
        for st in self.statements.iter().filter(|s| s.effect == Effect::Allow) {
            let all = matches!(&st.actions, Match::Is(a) if covers_all(a))
                && matches!(&st.resources, Some(Match::Is(r)) if covers_all(r));
            if !all {
                continue;
            }
            match conditions_hold(st, ctx) {
                Tri::True => return Some(BTreeSet::new()),
                Tri::Unknown(keys) => found.get_or_insert_with(BTreeSet::new).extend(keys),
                Tri::False => {}
            }
        }
        found
    }

    /// Whether a `Deny` statement certainly applies (no condition left open under `ctx`)
    /// to some action on every resource (`Resource` `*`, or any `NotResource`), so that
    /// not everything is allowed.
    pub fn denies_everywhere(&self, ctx: &Context) -> bool {
        self.statements
            .iter()
            .filter(|s| s.effect == Effect::Deny)
            .any(|st| {
                let some_action = match &st.actions {
                    Match::Is(a) => !a.is_empty(),
                    Match::IsNot(a) => !covers_all(a),
                };
                let everywhere = match &st.resources {
                    Some(Match::Is(r)) => covers_all(r),
                    Some(Match::IsNot(_)) => true,
                    None => false,
                };
                some_action && everywhere && conditions_hold(st, ctx) == Tri::True
            })
    }
}

/// Glob match (`*`, `?`) as IAM matches ARNs: case-sensitive.
pub fn arn_glob(pattern: &str, text: &str) -> bool {
    glob(pattern, text, false)
}

/// Glob match (`*`, `?`) as IAM matches actions: case-insensitive.
pub fn action_glob(pattern: &str, action: &str) -> bool {
    glob(pattern, action, true)
}

/// Glob match with `*` (any run) and `?` (one character).
fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    // Policies and ARNs are ASCII in practice: match bytes without allocating. Otherwise
    // characters, so `?` is one character, not one byte.
    if pattern.is_ascii() && text.is_ascii() {
        let eq = |a: &u8, b: &u8| {
            if ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        glob_by(pattern.as_bytes(), text.as_bytes(), &b'*', &b'?', eq)
    } else {
        let eq = |a: &char, b: &char| {
            if ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_by(&p, &t, &'*', &'?', eq)
    }
}

/// Wildcard matching with one backtracking point (linear in practice).
fn glob_by<T: PartialEq>(p: &[T], t: &[T], star: &T, one: &T, eq: impl Fn(&T, &T) -> bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut back, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        match p.get(pi) {
            Some(c) if c == star => {
                back = Some(pi);
                pi += 1;
                mark = ti;
            }
            Some(c) if c == one || t.get(ti).is_some_and(|x| eq(c, x)) => {
                pi += 1;
                ti += 1;
            }
            _ => match back {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    while p.get(pi) == Some(star) {
        pi += 1;
    }
    pi == p.len()
}

/// Who is asking, for trust policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalRef {
    /// An IAM principal (user, role, session, root) of an account.
    Aws {
        account: String,
        arn: String,
    },
    Service(String),
    /// A web-identity or SAML provider (`arn:aws:iam::…:oidc-provider/…`, `cognito-identity.amazonaws.com`).
    Federated(String),
}

/// What the request context says. Keys compare case-insensitively. With `closed`, a key
/// that is absent is known to be absent (as AWS evaluates a real request); otherwise it is
/// unknown. A key may also be known only to lie in a range of instants ([`Context::at`]).
#[derive(Debug, Clone, Default)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
    /// Key → the instants (ms, inclusive) its value lies between.
    ranges: BTreeMap<String, (Millis, Millis)>,
    pub closed: bool,
}

/// The longest a temporary credential lives (`GetSessionToken` as an IAM user): a token
/// usable at analysis time was issued at most this long before it.
pub const MAX_TOKEN_AGE: Millis = 36 * 3_600_000;

impl Context {
    pub fn set(
        &mut self,
        key: &str,
        values: impl IntoIterator<Item = impl Into<String>>,
    ) -> &mut Self {
        self.values.insert(
            key.to_ascii_lowercase(),
            values.into_iter().map(Into::into).collect(),
        );
        self
    }

    fn get(&self, key: &str) -> Option<&Vec<String>> {
        self.values.get(&key.to_ascii_lowercase())
    }

    /// Decides the time keys for an analysis at `now`: `aws:CurrentTime` and
    /// `aws:EpochTime` are `now`; `aws:TokenIssueTime` lies within [`MAX_TOKEN_AGE`]
    /// before it. A condition such as `DateLessThan aws:CurrentTime 2020-01-01` is then
    /// decided instead of left open.
    pub fn at(&mut self, now: Millis) -> &mut Self {
        self.set("aws:CurrentTime", [keyward_model::time::format(now)]);
        self.set("aws:EpochTime", [(now.div_euclid(1000)).to_string()]);
        self.ranges.insert(
            "aws:tokenissuetime".to_owned(),
            (now.saturating_sub(MAX_TOKEN_AGE), now),
        );
        self
    }

    fn range(&self, key: &str) -> Option<(Millis, Millis)> {
        self.ranges.get(&key.to_ascii_lowercase()).copied()
    }
}

pub struct Request<'a> {
    pub action: &'a str,
    pub resource: &'a str,
    pub principal: Option<&'a PrincipalRef>,
    pub context: &'a Context,
}

/// Substitutes `${key}` policy variables from the context; `None` when one is unknown.
fn substitute(value: &str, ctx: &Context) -> Option<String> {
    if !value.contains("${") {
        return Some(value.to_owned());
    }
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(rest.get(..start)?);
        let after = rest.get(start + 2..)?;
        let end = after.find('}')?;
        let key = after.get(..end)?;
        match key {
            "*" => out.push('*'),
            "?" => out.push('?'),
            "$" => out.push('$'),
            k => out.push_str(ctx.get(k)?.first()?),
        }
        rest = after.get(end + 1..)?;
    }
    out.push_str(rest);
    Some(out)
}

fn ip_in(ip: &str, cidr: &str) -> Option<bool> {
    let ip: IpAddr = ip.parse().ok()?;
    let (net, len) = match cidr.split_once('/') {
        Some((n, l)) => (n.parse::<IpAddr>().ok()?, l.parse::<u32>().ok()?),
        None => {
            let n: IpAddr = cidr.parse().ok()?;
            (n, if n.is_ipv4() { 32 } else { 128 })
        }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some(u32::from(a) & mask == u32::from(b) & mask)
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some(u128::from(a) & mask == u128::from(b) & mask)
        }
        _ => Some(false),
    }
}

/// One value against one policy value, for a base operator (no qualifiers).
fn compare(op: &str, actual: &str, wanted: &str) -> Option<bool> {
    let num = |s: &str| s.parse::<f64>().ok();
    let date =
        |s: &str| keyward_model::time::parse(s).or_else(|| s.parse::<i64>().ok().map(|e| e * 1000));
    Some(match op {
        "StringEquals" | "StringNotEquals" | "BinaryEquals" => actual == wanted,
        "StringEqualsIgnoreCase" | "StringNotEqualsIgnoreCase" => {
            actual.eq_ignore_ascii_case(wanted)
        }
        "StringLike" | "StringNotLike" => glob(wanted, actual, false),
        "ArnEquals" | "ArnNotEquals" | "ArnLike" | "ArnNotLike" => glob(wanted, actual, false),
        "NumericEquals" | "NumericNotEquals" => num(actual)? == num(wanted)?,
        "NumericLessThan" => num(actual)? < num(wanted)?,
        "NumericLessThanEquals" => num(actual)? <= num(wanted)?,
        "NumericGreaterThan" => num(actual)? > num(wanted)?,
        "NumericGreaterThanEquals" => num(actual)? >= num(wanted)?,
        "DateEquals" | "DateNotEquals" => date(actual)? == date(wanted)?,
        "DateLessThan" => date(actual)? < date(wanted)?,
        "DateLessThanEquals" => date(actual)? <= date(wanted)?,
        "DateGreaterThan" => date(actual)? > date(wanted)?,
        "DateGreaterThanEquals" => date(actual)? >= date(wanted)?,
        "Bool" => actual.eq_ignore_ascii_case(wanted),
        "IpAddress" | "NotIpAddress" => ip_in(actual, wanted)?,
        _ => return None,
    })
}

fn negated(op: &str) -> bool {
    matches!(
        op,
        "StringNotEquals"
            | "StringNotEqualsIgnoreCase"
            | "StringNotLike"
            | "NumericNotEquals"
            | "DateNotEquals"
            | "NotIpAddress"
            | "ArnNotEquals"
            | "ArnNotLike"
    )
}

fn condition(c: &Condition, ctx: &Context) -> Tri {
    let (set, op) = match c.operator.split_once(':') {
        Some((q @ ("ForAnyValue" | "ForAllValues"), op)) => (Some(q), op),
        _ => (None, c.operator.as_str()),
    };
    let (op, if_exists) = match op.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (op, false),
    };
    if let Some((lo, hi)) = ctx.range(&c.key) {
        return ranged(c, op, (lo, hi), ctx);
    }
    let Some(actual) = ctx.get(&c.key) else {
        if !ctx.closed {
            return Tri::unknown(&c.key);
        }
        // The key is absent from the request.
        return Tri::from_bool(match (op, set) {
            ("Null", _) => c.values.iter().any(|v| v.eq_ignore_ascii_case("true")),
            (_, Some("ForAllValues")) => true,
            _ if if_exists => true,
            _ => negated(op) && set.is_none(),
        });
    };
    if op == "Null" {
        return Tri::from_bool(c.values.iter().any(|v| v.eq_ignore_ascii_case("false")));
    }
    against(c, op, set, actual, ctx)
}

/// A condition on a key known only to lie between two instants: decided when the
/// operator orders values and both ends agree (so does every instant between), else open.
fn ranged(c: &Condition, op: &str, (lo, hi): (Millis, Millis), ctx: &Context) -> Tri {
    let ordered = [
        "LessThan",
        "LessThanEquals",
        "GreaterThan",
        "GreaterThanEquals",
    ]
    .iter()
    .any(|o| op == format!("Date{o}") || op == format!("Numeric{o}"));
    if !ordered || c.operator.contains(':') {
        return Tri::unknown(&c.key);
    }
    // Date operators read epoch seconds as well as ISO 8601.
    let at = |t: Millis| vec![t.div_euclid(1000).to_string()];
    match (
        against(c, op, None, &at(lo), ctx),
        against(c, op, None, &at(hi), ctx),
    ) {
        (a, b) if a == b => a,
        _ => Tri::unknown(&c.key),
    }
}

/// A condition's base operator `op` (qualifier `set`) against the request's values.
fn against(c: &Condition, op: &str, set: Option<&str>, actual: &[String], ctx: &Context) -> Tri {
    let mut wanted = Vec::with_capacity(c.values.len());
    for v in &c.values {
        match substitute(v, ctx) {
            Some(v) => wanted.push(v),
            None => return Tri::unknown(&c.key),
        }
    }
    // One context value matches when it matches any policy value (negated operators:
    // when it matches none).
    let matches_one = |a: &str| -> Option<bool> {
        let mut any = false;
        for w in &wanted {
            any |= compare(op, a, w)?;
        }
        Some(if negated(op) { !any } else { any })
    };
    let mut results = Vec::with_capacity(actual.len());
    for a in actual {
        match matches_one(a) {
            Some(r) => results.push(r),
            None => return Tri::unknown(&c.key),
        }
    }
    Tri::from_bool(match set {
        Some("ForAllValues") => results.iter().all(|&r| r),
        Some(_) => results.iter().any(|&r| r),
        // A single-valued key: every value given must satisfy it (there is normally one).
        None => !results.is_empty() && results.iter().all(|&r| r),
    })
}

fn principal_matches(p: &Principals, who: &PrincipalRef) -> bool {
    if p.any {
        return true;
    }
    match who {
        PrincipalRef::Aws { account, arn } => p.aws.iter().any(|named| {
            named == account
                || *named == ids::account_root(account)
                || ids::canonical_iam_arn(named)
                    .is_some_and(|c| ids::canonical_iam_arn(arn).is_some_and(|a| a == c))
        }),
        PrincipalRef::Service(s) => p.service.iter().any(|n| n == s),
        PrincipalRef::Federated(f) => p
            .federated
            .iter()
            .any(|n| n == f || ids::issuer_key(n) == ids::issuer_key(f)),
    }
}

fn statement_applies(st: &Statement, req: &Request) -> Tri {
    let action = match &st.actions {
        Match::Is(list) => list.iter().any(|a| glob(a, req.action, true)),
        Match::IsNot(list) => !list.iter().any(|a| glob(a, req.action, true)),
    };
    if !action {
        return Tri::False;
    }
    let resource = match &st.resources {
        Some(Match::Is(list)) => list
            .iter()
            .any(|r| substitute(r, req.context).is_some_and(|r| glob(&r, req.resource, false))),
        Some(Match::IsNot(list)) => !list
            .iter()
            .any(|r| substitute(r, req.context).is_some_and(|r| glob(&r, req.resource, false))),
        // Trust policies name no resource: the role itself is the resource.
        None => st.principals.is_some(),
    };
    if !resource {
        return Tri::False;
    }
    match (&st.principals, req.principal) {
        (Some(Match::Is(p)), Some(who)) if !principal_matches(p, who) => return Tri::False,
        (Some(Match::IsNot(p)), Some(who)) if principal_matches(p, who) => return Tri::False,
        (Some(_), None) => return Tri::False,
        _ => {}
    }
    conditions_hold(st, req.context)
}

/// The answer to "is this request allowed?".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed only if the listed condition keys take the right values.
    ConditionalAllow(BTreeSet<String>),
    ExplicitDeny,
    /// No statement allows it.
    ImplicitDeny,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// Allowed, or allowed under conditions the request leaves open.
    pub fn possibly_allowed(&self) -> bool {
        matches!(self, Decision::Allow | Decision::ConditionalAllow(_))
    }
}

/// The decision with the statements that made it (policy index, statement index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub allowed_by: Vec<(usize, usize)>,
    pub denied_by: Vec<(usize, usize)>,
}

fn fold(
    policies: &[&Policy],
    effect: Effect,
    req: &Request,
    hits: &mut Vec<(usize, usize)>,
) -> Tri {
    let mut acc = Tri::False;
    for (pi, p) in policies.iter().enumerate() {
        for (si, st) in p
            .statements
            .iter()
            .enumerate()
            .filter(|(_, s)| s.effect == effect)
        {
            let t = statement_applies(st, req);
            if t != Tri::False {
                hits.push((pi, si));
            }
            acc = acc.or(t);
        }
    }
    acc
}

/// Evaluates identity policies (inline, attached managed, group-inherited — already
/// resolved by the caller), with an optional permissions boundary.
pub fn evaluate(identity: &[&Policy], boundary: Option<&Policy>, req: &Request) -> Outcome {
    let mut denied_by = Vec::new();
    let mut allowed_by = Vec::new();
    let mut all: Vec<&Policy> = identity.to_vec();
    all.extend(boundary);
    let deny = fold(&all, Effect::Deny, req, &mut denied_by);
    if deny == Tri::True {
        denied_by.retain(|&(p, s)| {
            all.get(p)
                .and_then(|p| p.statements.get(s))
                .is_some_and(|st| statement_applies(st, req) == Tri::True)
        });
        return Outcome {
            decision: Decision::ExplicitDeny,
            allowed_by,
            denied_by,
        };
    }
    let mut allow = fold(identity, Effect::Allow, req, &mut allowed_by);
    if let Some(b) = boundary {
        allow = allow.and(fold(&[b], Effect::Allow, req, &mut Vec::new()));
    }
    // A deny that may apply makes an allow conditional on it not applying.
    let decision = match (allow, deny) {
        (Tri::False, _) => Decision::ImplicitDeny,
        (Tri::True, Tri::False) => Decision::Allow,
        (Tri::True, Tri::Unknown(k)) | (Tri::Unknown(k), Tri::False) => {
            Decision::ConditionalAllow(k)
        }
        (Tri::Unknown(mut a), Tri::Unknown(b)) => {
            a.extend(b);
            Decision::ConditionalAllow(a)
        }
        (_, Tri::True) => Decision::ExplicitDeny,
    };
    Outcome {
        decision,
        allowed_by,
        denied_by,
    }
}

/// Whether a role's trust policy lets `who` call `action` (`sts:AssumeRole`,
/// `sts:AssumeRoleWithWebIdentity`, `sts:AssumeRoleWithSAML`, `sts:TagSession`, …).
pub fn evaluate_trust(
    trust: &Policy,
    role_arn: &str,
    who: &PrincipalRef,
    action: &str,
    ctx: &Context,
) -> Outcome {
    let req = Request {
        action,
        resource: role_arn,
        principal: Some(who),
        context: ctx,
    };
    evaluate(&[trust], None, &req)
}

#[cfg(test)]
mod tests;
