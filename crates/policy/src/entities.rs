//! A question as Cedar values: the principal (with its roles and teams), the resource (with
//! the account, cluster and namespace it sits in) and the context.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
};

use crate::{Act, Ask, Policies, Principal, Resource, Situation};

pub const TYPE_PERSON: &str = "Keyward::Person";
pub const TYPE_TOKEN: &str = "Keyward::Token";
pub const TYPE_SERVICE: &str = "Keyward::Service";
pub const TYPE_ROLE: &str = "Keyward::Role";
pub const TYPE_TEAM: &str = "Keyward::Team";
pub const TYPE_WORKLOAD: &str = "Keyward::Workload";
const TYPE_CREDENTIAL: &str = "Keyward::Credential";
const TYPE_ESTATE: &str = "Keyward::Estate";
const TYPE_ACCOUNT: &str = "Keyward::Account";
const TYPE_CLUSTER: &str = "Keyward::Cluster";
const TYPE_NAMESPACE: &str = "Keyward::Namespace";
const TYPE_IDENTITY: &str = "Keyward::Identity";
const TYPE_ACTION: &str = "Keyward::Action";

/// The built-in roles, weakest first: each is in the one before it.
pub const ROLES: [&str; 3] = ["viewer", "operator", "admin"];

/// The one estate every resource is in.
const ESTATE: &str = "keyward";

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("`{0}` is not a Cedar entity type")]
    Type(String),
    #[error("an entity of the request: {0}")]
    Entity(String),
    #[error("the request's context: {0}")]
    Context(String),
    #[error("the request: {0}")]
    Request(String),
}

/// `Type::"id"`. Keyward's own types are parsed once.
pub fn uid(ty: &str, id: &str) -> Result<EntityUid, RequestError> {
    static OURS: std::sync::OnceLock<HashMap<&'static str, EntityTypeName>> =
        std::sync::OnceLock::new();
    let ours = OURS.get_or_init(|| {
        [
            TYPE_PERSON,
            TYPE_TOKEN,
            TYPE_SERVICE,
            TYPE_ROLE,
            TYPE_TEAM,
            TYPE_WORKLOAD,
            TYPE_CREDENTIAL,
            TYPE_ESTATE,
            TYPE_ACCOUNT,
            TYPE_CLUSTER,
            TYPE_NAMESPACE,
            TYPE_IDENTITY,
            TYPE_ACTION,
        ]
        .into_iter()
        .filter_map(|t| Some((t, EntityTypeName::from_str(t).ok()?)))
        .collect()
    });
    let ty = match ours.get(ty) {
        Some(t) => t.clone(),
        None => EntityTypeName::from_str(ty).map_err(|_| RequestError::Type(ty.to_owned()))?,
    };
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

/// A request and the entities it is evaluated against, and Cedar's decision on it once
/// asked: the policies a cache serves are fixed (a reload is a new `Policies` with a new
/// cache), so the same request gets the same answer.
pub struct Built {
    pub request: Request,
    pub entities: Entities,
    pub decision: std::sync::OnceLock<crate::Decision>,
}

/// Requests already built and checked against the schema, by question (principal,
/// action, resource, and the context's values to the second). Building one (schema checks,
/// the transitive closure, parsing an IP) costs several times Cedar's evaluation, and a
/// workload asks the broker the same question many times a second; what is built from the
/// same values is the same. Bounded: emptied when full.
#[derive(Default)]
pub struct Cache {
    requests: Mutex<HashMap<RequestKey, Arc<Built>>>,
}

type RequestKey = (Principal, Resource, Act, ContextKey);

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cache")
    }
}

/// The most requests the cache holds.
const CACHE_MAX: usize = 4_096;

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn entity(
    id: EntityUid,
    attrs: HashMap<String, RestrictedExpression>,
    parents: HashSet<EntityUid>,
) -> Result<Entity, RequestError> {
    Entity::new(id, attrs, parents).map_err(|e| RequestError::Entity(e.to_string()))
}

/// The principal's entity: its attributes, and its parents — from the entities file, plus a
/// token's role; a person the file does not name is an admin when there is no file at all.
fn principal(p: &Policies, who: &Principal) -> Result<Vec<Entity>, RequestError> {
    if let Principal::Workload(w) = who {
        return workload(w);
    }
    let (ty, id, mut attrs) = match who {
        Principal::Person { name } => (TYPE_PERSON, name, HashMap::new()),
        Principal::Token { id, name, .. } => (
            TYPE_TOKEN,
            id,
            HashMap::from([("name".to_owned(), string(name))]),
        ),
        Principal::Service { name } => (TYPE_SERVICE, name, HashMap::new()),
        Principal::Workload(w) => return workload(w),
    };
    attrs.insert("actor".into(), string(&who.actor()));
    let me = uid(ty, id)?;
    let mut parents: HashSet<EntityUid> = p
        .known
        .get(&me)
        .map(|e| e.clone().into_inner().2)
        .unwrap_or_default();
    match who {
        Principal::Token { role, .. } => {
            parents.insert(uid(TYPE_ROLE, role)?);
        }
        Principal::Person { .. } if !p.has_entities_file => {
            parents.insert(uid(TYPE_ROLE, "admin")?);
        }
        Principal::Person { .. } | Principal::Service { .. } | Principal::Workload(_) => {}
    }
    Ok(vec![entity(me, attrs, parents)?])
}

/// The optional `Workload` attributes of the schema: the claims a policy may test.
const WORKLOAD_ATTRS: [&str; 8] = [
    "service_account",
    "repository",
    "ref",
    "environment",
    "workflow",
    "trust_domain",
    "audience",
    "agent",
];

/// A workload and the namespace (and cluster) it runs in, which it is in.
fn workload(w: &crate::Workload) -> Result<Vec<Entity>, RequestError> {
    let estate = uid(TYPE_ESTATE, ESTATE)?;
    let mut out = vec![Entity::new_no_attrs(estate.clone(), HashSet::new())];
    let mut parents = HashSet::from([estate.clone()]);
    if let Some(c) = &w.cluster {
        let cl = uid(TYPE_CLUSTER, c)?;
        out.push(Entity::new_no_attrs(
            cl.clone(),
            HashSet::from([estate.clone()]),
        ));
        if let Some(n) = &w.namespace {
            let ns = uid(TYPE_NAMESPACE, &format!("{c}/{n}"))?;
            out.push(Entity::new_no_attrs(
                ns.clone(),
                HashSet::from([cl.clone(), estate.clone()]),
            ));
            parents.insert(ns);
        }
        parents.insert(cl);
    }
    let mut attrs = HashMap::from([
        (
            "actor".to_owned(),
            string(&format!("workload:{}", w.identity)),
        ),
        ("proof".to_owned(), string(&w.proof)),
        ("issuer".to_owned(), string(&w.issuer)),
        ("subject".to_owned(), string(&w.subject)),
        ("identity".to_owned(), string(&w.identity)),
    ]);
    if let Some(n) = &w.namespace {
        attrs.insert("namespace".into(), string(n));
    }
    for k in WORKLOAD_ATTRS {
        if let Some(v) = w.attrs.get(k) {
            attrs.insert(k.to_owned(), string(v));
        }
    }
    let me = uid(TYPE_WORKLOAD, &w.identity)?;
    out.insert(0, entity(me, attrs, parents)?);
    Ok(out)
}

/// The resource's entity and the ones it is in.
fn resource(r: &Resource) -> Result<(EntityUid, Vec<Entity>), RequestError> {
    let estate = uid(TYPE_ESTATE, ESTATE)?;
    let mut out = vec![Entity::new_no_attrs(estate.clone(), HashSet::new())];
    let in_estate = || HashSet::from([estate.clone()]);
    let account = |out: &mut Vec<Entity>, a: &str| -> Result<EntityUid, RequestError> {
        let id = uid(TYPE_ACCOUNT, a)?;
        out.push(Entity::new_no_attrs(id.clone(), in_estate()));
        Ok(id)
    };
    let cluster = |out: &mut Vec<Entity>, c: &str| -> Result<EntityUid, RequestError> {
        let id = uid(TYPE_CLUSTER, c)?;
        out.push(Entity::new_no_attrs(id.clone(), in_estate()));
        Ok(id)
    };
    let namespace = |out: &mut Vec<Entity>, c: &str, n: &str| -> Result<EntityUid, RequestError> {
        let cl = cluster(out, c)?;
        let id = uid(TYPE_NAMESPACE, &format!("{c}/{n}"))?;
        // The schema's `Namespace` has no attributes: its id is `cluster/name`.
        out.push(Entity::new_no_attrs(
            id.clone(),
            HashSet::from([cl, estate.clone()]),
        ));
        Ok(id)
    };
    let me = match r {
        Resource::Estate => estate.clone(),
        Resource::Account(a) => account(&mut out, a)?,
        Resource::Cluster(c) => cluster(&mut out, c)?,
        Resource::Namespace { cluster: c, name } => namespace(&mut out, c, name)?,
        Resource::Credential { kind, target } => {
            let id = uid(TYPE_CREDENTIAL, &format!("{kind}:{target}"))?;
            let attrs = HashMap::from([
                ("kind".to_owned(), string(kind)),
                ("target".to_owned(), string(target)),
            ]);
            out.push(entity(id.clone(), attrs, in_estate())?);
            id
        }
        Resource::Identity(t) => {
            let mut parents = HashSet::from([estate.clone()]);
            if let Some(a) = &t.account {
                parents.insert(account(&mut out, a)?);
            }
            match (&t.cluster, &t.namespace) {
                (Some(c), Some(n)) => {
                    parents.insert(namespace(&mut out, c, n)?);
                }
                (Some(c), None) => {
                    parents.insert(cluster(&mut out, c)?);
                }
                (None, Some(_) | None) => {}
            }
            let mut attrs = HashMap::from([
                ("kind".to_owned(), string(&t.kind)),
                ("platform".to_owned(), string(&t.platform)),
                ("name".to_owned(), string(&t.name)),
            ]);
            if let Some(team) = &t.team {
                attrs.insert(
                    "team".into(),
                    RestrictedExpression::new_entity_uid(uid(TYPE_TEAM, team)?),
                );
            }
            let id = uid(TYPE_IDENTITY, &t.id)?;
            out.push(entity(id.clone(), attrs, parents)?);
            id
        }
    };
    Ok((me, out))
}

/// The context record's values (the schema's `Situation`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ContextKey {
    time: i64,
    source_ip: IpAddr,
    surface: &'static str,
    risk_tier: String,
    environment: String,
    break_glass: bool,
    revoke: bool,
    requester: String,
    duration_secs: i64,
}

impl ContextKey {
    fn of(s: &Situation) -> ContextKey {
        ContextKey {
            time: s.now.div_euclid(1000),
            source_ip: s.source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            surface: s.surface.as_str(),
            risk_tier: s.risk_tier.clone().unwrap_or_else(|| "none".to_owned()),
            environment: s.environment.clone().unwrap_or_default(),
            break_glass: s.break_glass,
            revoke: s.revoke,
            requester: s.requester.clone().unwrap_or_default(),
            duration_secs: s.duration.unwrap_or(0).div_euclid(1000),
        }
    }

    /// The context record, built as Cedar values (no JSON to parse); `Request::new`
    /// checks it against the schema.
    fn context(&self) -> Result<Context, RequestError> {
        let day_secs = 86_400;
        Context::from_pairs([
            ("time".to_owned(), long(self.time)),
            (
                "hour".to_owned(),
                long(self.time.rem_euclid(day_secs) / 3_600),
            ),
            // 1970-01-01 was a Thursday (3 with Monday as 0).
            (
                "weekday".to_owned(),
                long((self.time.div_euclid(day_secs) + 3).rem_euclid(7)),
            ),
            (
                "source_ip".to_owned(),
                RestrictedExpression::new_ip(self.source_ip.to_string()),
            ),
            ("surface".to_owned(), string(self.surface)),
            ("risk_tier".to_owned(), string(&self.risk_tier)),
            ("environment".to_owned(), string(&self.environment)),
            (
                "break_glass".to_owned(),
                RestrictedExpression::new_bool(self.break_glass),
            ),
            (
                "revoke".to_owned(),
                RestrictedExpression::new_bool(self.revoke),
            ),
            ("requester".to_owned(), string(&self.requester)),
            ("duration_secs".to_owned(), long(self.duration_secs)),
        ])
        .map_err(|e| RequestError::Context(e.to_string()))
    }
}

fn long(v: i64) -> RestrictedExpression {
    RestrictedExpression::new_long(v)
}

/// The Cedar request for `ask`, validated against the schema.
pub fn request(p: &Policies, ask: &Ask<'_>) -> Result<Arc<Built>, RequestError> {
    let key: RequestKey = (
        ask.principal.clone(),
        ask.resource.clone(),
        ask.action,
        ContextKey::of(ask.situation),
    );
    if let Some(built) = p
        .cache
        .requests
        .lock()
        .ok()
        .and_then(|m| m.get(&key).cloned())
    {
        return Ok(built);
    }
    let built = Arc::new(build(p, ask, &key.3)?);
    if let Ok(mut m) = p.cache.requests.lock() {
        if m.len() >= CACHE_MAX {
            m.clear();
        }
        m.insert(key, Arc::clone(&built));
    }
    Ok(built)
}

fn build(p: &Policies, ask: &Ask<'_>, situation: &ContextKey) -> Result<Built, RequestError> {
    let who = principal(p, ask.principal)?;
    let who_id = who
        .first()
        .map(Entity::uid)
        .ok_or_else(|| RequestError::Entity("no principal".into()))?;
    let (what_id, what) = resource(ask.resource)?;
    let action = uid(TYPE_ACTION, ask.action.as_str())?;
    // The chains can repeat an entity (a cluster under two names, the estate in both): keep
    // the first.
    let mut chain = Vec::with_capacity(what.len() + who.len());
    let mut seen = HashSet::new();
    for e in who.into_iter().chain(what) {
        if seen.insert(e.uid()) {
            chain.push(e);
        }
    }
    // The known entities were checked and closed once, at load; only the request's own are
    // checked here, and replace any known one of the same id.
    let entities = p
        .known
        .clone()
        .upsert_entities(chain, Some(&p.schema))
        .map_err(|e| RequestError::Entity(format!("{e}: {}", miette_chain(&e))))?;
    let request = Request::new(
        who_id,
        action,
        what_id,
        situation.context()?,
        Some(&p.schema),
    )
    .map_err(|e| RequestError::Request(e.to_string()))?;
    Ok(Built {
        request,
        entities,
        decision: std::sync::OnceLock::new(),
    })
}

/// An error's causes, each after the one it explains.
fn miette_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push(c.to_string());
        cur = c.source();
    }
    out.join(": ")
}
