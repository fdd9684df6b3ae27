//! A question as Cedar values: the principal (with its roles and teams), the resource (with
//! the account, cluster and namespace it sits in) and the context.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr as _;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
};

use crate::{Ask, Policies, Principal, Resource};

pub const TYPE_PERSON: &str = "Keyward::Person";
pub const TYPE_TOKEN: &str = "Keyward::Token";
pub const TYPE_SERVICE: &str = "Keyward::Service";
pub const TYPE_ROLE: &str = "Keyward::Role";
pub const TYPE_TEAM: &str = "Keyward::Team";
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

/// `Type::"id"`.
pub fn uid(ty: &str, id: &str) -> Result<EntityUid, RequestError> {
    let ty = EntityTypeName::from_str(ty).map_err(|_| RequestError::Type(ty.to_owned()))?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

/// A request and the entities it is evaluated against.
pub struct Built {
    pub request: Request,
    pub entities: Entities,
}

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
fn principal(p: &Policies, who: &Principal) -> Result<Entity, RequestError> {
    let (ty, id, mut attrs) = match who {
        Principal::Person { name } => (TYPE_PERSON, name, HashMap::new()),
        Principal::Token { id, name, .. } => (
            TYPE_TOKEN,
            id,
            HashMap::from([("name".to_owned(), string(name))]),
        ),
        Principal::Service { name } => (TYPE_SERVICE, name, HashMap::new()),
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
        Principal::Person { .. } | Principal::Service { .. } => {}
    }
    entity(me, attrs, parents)
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
        let attrs = HashMap::from([("name".to_owned(), string(n))]);
        out.push(entity(
            id.clone(),
            attrs,
            HashSet::from([cl, estate.clone()]),
        )?);
        Ok(id)
    };
    let me = match r {
        Resource::Estate => estate.clone(),
        Resource::Account(a) => account(&mut out, a)?,
        Resource::Cluster(c) => cluster(&mut out, c)?,
        Resource::Namespace { cluster: c, name } => namespace(&mut out, c, name)?,
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

/// The context record (the schema's `Situation`).
fn context(ask: &Ask<'_>) -> serde_json::Value {
    let s = ask.situation;
    let day = 86_400_000;
    let ip = s.source_ip.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    serde_json::json!({
        "time": s.now.div_euclid(1000),
        "hour": s.now.rem_euclid(day) / 3_600_000,
        // 1970-01-01 was a Thursday (3 with Monday as 0).
        "weekday": (s.now.div_euclid(day) + 3).rem_euclid(7),
        "source_ip": {"__extn": {"fn": "ip", "arg": ip.to_string()}},
        "surface": s.surface.as_str(),
        "risk_tier": s.risk_tier.as_deref().unwrap_or("none"),
        "environment": s.environment.as_deref().unwrap_or(""),
        "break_glass": s.break_glass,
        "revoke": s.revoke,
        "requester": s.requester.as_deref().unwrap_or(""),
        "duration_secs": s.duration.unwrap_or(0).div_euclid(1000),
    })
}

/// The Cedar request for `ask`, validated against the schema.
pub fn request(p: &Policies, ask: &Ask<'_>) -> Result<Built, RequestError> {
    let who = principal(p, ask.principal)?;
    let who_id = who.uid();
    let (what_id, what) = resource(ask.resource)?;
    let action = uid(TYPE_ACTION, ask.action.as_str())?;
    let mut added: HashSet<EntityUid> = what.iter().map(Entity::uid).collect();
    added.insert(who_id.clone());
    // The resource chain can repeat an entity (a cluster under two names): keep the first.
    let mut chain = Vec::with_capacity(what.len() + 1);
    let mut seen = HashSet::new();
    for e in std::iter::once(who).chain(what) {
        if seen.insert(e.uid()) {
            chain.push(e);
        }
    }
    let entities = Entities::from_entities(
        p.known
            .iter()
            .filter(|e| !added.contains(&e.uid()))
            .cloned()
            .chain(chain),
        Some(&p.schema),
    )
    .map_err(|e| RequestError::Entity(e.to_string()))?;
    let context = Context::from_json_value(context(ask), Some((&p.schema, &action)))
        .map_err(|e| RequestError::Context(e.to_string()))?;
    let request = Request::new(who_id, action, what_id, context, Some(&p.schema))
        .map_err(|e| RequestError::Request(e.to_string()))?;
    Ok(Built { request, entities })
}
