//! What Terraform declares for each identity it defines, read from the normalizer's
//! `tf_resource` objects: references within a module followed, anything Terraform alone can
//! compute kept as why it cannot be known. Pure: the engine matches and stores
//! ([`super`]).

use std::collections::{BTreeMap, HashMap};

use keyward_model::{IdentityKind, SnapshotObject};
use keyward_respond::restore::items;
use serde_json::Value;

/// Where an identity lives, as far as its key tells.
pub(super) enum Place {
    Account { partition: String, account: String },
    Cluster(String),
    Unknown,
}

/// One resource the normalizer emitted.
#[derive(Debug)]
pub(super) struct Res<'a> {
    ty: &'a str,
    name: &'a str,
    pub(super) address: &'a str,
    file: &'a str,
    line: Option<u64>,
    values: &'a Value,
    /// JSON pointers of non-literal values.
    unresolved: Vec<&'a str>,
    /// The module it belongs to: references resolve within it.
    module: String,
}

impl<'a> Res<'a> {
    pub(super) fn of(o: &'a SnapshotObject) -> Option<Res<'a>> {
        let d = &o.doc;
        let s = |k: &str| d.get(k).and_then(Value::as_str);
        let (ty, name, address, file) = (s("type")?, s("name")?, s("address")?, s("file")?);
        // A `.tf` directory is one module; in `show -json`, the address says which.
        let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
        let prefix = address
            .strip_suffix(&format!("{ty}.{name}"))
            .unwrap_or_default();
        Some(Res {
            ty,
            name,
            address,
            file,
            line: d.get("line").and_then(Value::as_u64),
            values: d.get("values")?,
            unresolved: d
                .get("unresolved")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect(),
            module: format!("{dir}\n{prefix}"),
        })
    }

    pub(super) fn at(&self) -> String {
        match self.line {
            Some(l) => format!("{}:{l}", self.file),
            None => self.file.to_owned(),
        }
    }

    fn get(&self, ptr: &str) -> Option<&'a Value> {
        self.values.pointer(ptr)
    }

    /// The source text of a non-literal value at `ptr` (or above it), if any.
    fn expression(&self, ptr: &str) -> Option<&'a str> {
        let u = self.unresolved.iter().find(|u| {
            **u == ptr || ptr.starts_with(&format!("{u}/")) || u.starts_with(&format!("{ptr}/"))
        })?;
        Some(self.values.pointer(u).and_then(Value::as_str).unwrap_or(u))
    }

    /// Whether nothing at or under `ptr` is an expression Terraform computes.
    fn literal(&self, ptr: &str) -> bool {
        self.expression(ptr).is_none()
    }

    fn provider(&self) -> Option<&'a str> {
        self.get("/provider").and_then(Value::as_str)
    }
}

/// A value Terraform declares: known, an IAM policy of this configuration (its ARN needs
/// the account), or computed by Terraform (why).
#[derive(Debug, Clone)]
enum Val<'a> {
    Known(String),
    Policy(&'a Res<'a>),
    Unknown(String),
}

/// The resources by module, type and name, for references.
struct Index<'a> {
    by: HashMap<(&'a str, &'a str, &'a str), &'a Res<'a>>,
}

impl<'a> Index<'a> {
    fn new(all: &'a [Res<'a>]) -> Self {
        Index {
            by: all
                .iter()
                .map(|r| ((r.module.as_str(), r.ty, r.name), r))
                .collect(),
        }
    }

    /// The string at `ptr` of `r`: `None` when absent (or null).
    fn string(&self, r: &Res<'a>, ptr: &str) -> Option<Val<'a>> {
        let v = r.get(ptr).filter(|v| !v.is_null())?;
        if let Some(text) = r.expression(ptr) {
            return Some(self.reference(r, text));
        }
        Some(match v {
            Value::String(s) => Val::Known(s.clone()),
            other => Val::Unknown(format!("`{other}` at {} is not a string", r.at())),
        })
    }

    /// What a reference to another resource of the module resolves to.
    fn reference(&self, r: &Res<'a>, text: &str) -> Val<'a> {
        let inner = text
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .filter(|t| !t.contains("${"))
            .unwrap_or(text)
            .trim();
        let path = inner.replace("[0]", ".0");
        let parts: Vec<&str> = path.split('.').collect();
        let computed = || {
            let what = match parts.first().copied() {
                Some("var") => "a variable",
                Some("local") => "a local value",
                Some("data") => "a data source, read when Terraform runs",
                Some("module") => "a module's output",
                Some(_) | None => "computed by Terraform",
            };
            Val::Unknown(format!("`{text}` ({}) is {what}", r.at()))
        };
        let (Some(ty), Some(name), rest) = (parts.first(), parts.get(1), parts.get(2..)) else {
            return computed();
        };
        let Some(target) = self.by.get(&(r.module.as_str(), *ty, *name)) else {
            if keyward_normalize::terraform::RESOURCE_TYPES.contains(ty) {
                return Val::Unknown(format!(
                    "`{text}` ({}) names a resource its module does not define",
                    r.at()
                ));
            }
            return computed();
        };
        let literal = |ptr: &str| match target.get(ptr) {
            Some(Value::String(s)) if target.literal(ptr) => Some(s.clone()),
            Some(_) | None => None,
        };
        let not_literal = || {
            Val::Unknown(format!(
                "`{text}` ({}): {} has no literal name",
                r.at(),
                target.address
            ))
        };
        match (*ty, rest.unwrap_or_default()) {
            ("aws_iam_role" | "aws_iam_user" | "aws_iam_group", ["name" | "id"]) => {
                literal("/name").map_or_else(not_literal, Val::Known)
            }
            ("aws_iam_policy", ["arn" | "id"]) => match literal("/arn") {
                Some(arn) => Val::Known(arn),
                None if literal("/name").is_some() => Val::Policy(target),
                None => not_literal(),
            },
            (
                "kubernetes_service_account" | "kubernetes_service_account_v1",
                ["metadata", "0", field @ ("name" | "namespace")],
            ) => literal(&format!("/metadata/0/{field}")).map_or_else(not_literal, Val::Known),
            _ => computed(),
        }
    }

    /// Why the expression `text` of `r` cannot be known here.
    fn why(&self, r: &Res<'a>, text: &str) -> String {
        match self.reference(r, text) {
            Val::Unknown(why) => why,
            Val::Known(_) | Val::Policy(_) => {
                format!("`{text}` ({}) is computed by Terraform", r.at())
            }
        }
    }

    /// The strings of a list attribute, each resolved; `Err` when the list itself is
    /// computed. Absent: empty.
    fn list(&self, r: &Res<'a>, ptr: &str) -> Result<Vec<Val<'a>>, String> {
        match r.get(ptr) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok((0..a.len())
                .filter_map(|i| self.string(r, &format!("{ptr}/{i}")))
                .collect()),
            Some(other) => Err(match r.expression(ptr) {
                Some(text) => self.why(r, text),
                None => format!("`{other}` at {} is not a list", r.at()),
            }),
        }
    }
}

// ---------------------------------------------------------------------------------------
// What Terraform declares per principal

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Kind {
    Role,
    User,
    ServiceAccount,
}

impl Kind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Kind::Role => "role",
            Kind::User => "user",
            Kind::ServiceAccount => "service account",
        }
    }

    pub(super) fn identity_kind(self) -> IdentityKind {
        match self {
            Kind::Role => IdentityKind::IamRole,
            Kind::User => IdentityKind::IamUser,
            Kind::ServiceAccount => IdentityKind::ServiceAccount,
        }
    }
}

/// One declared item of a fact (a policy ARN, a name, a binding), with where.
#[derive(Debug, Clone)]
struct Item<'a> {
    val: Val<'a>,
    by: &'a Res<'a>,
}

/// The principal a separate resource declares something for: kind and name (for a
/// service account, `namespace/name`).
type Target = (Kind, String);

/// The facts separate resources declare, by principal; and facts that cannot be told for
/// any principal of a kind (a resource whose principal is computed).
#[derive(Default)]
struct Declared<'a> {
    items: HashMap<Target, BTreeMap<&'static str, Vec<Item<'a>>>>,
    everywhere: BTreeMap<(Kind, &'static str), String>,
}

impl<'a> Declared<'a> {
    fn add(&mut self, to: Option<Val<'a>>, kind: Kind, fact: &'static str, item: Item<'a>) {
        match to {
            Some(Val::Known(name)) => self
                .items
                .entry((kind, name))
                .or_default()
                .entry(fact)
                .or_default()
                .push(item),
            Some(Val::Unknown(why)) => self.unknown_everywhere(kind, fact, item.by, &why),
            Some(Val::Policy(_)) | None => self.unknown_everywhere(
                kind,
                fact,
                item.by,
                &format!("its {} is not known until apply", kind.as_str()),
            ),
        }
    }

    fn unknown_everywhere(&mut self, kind: Kind, fact: &'static str, by: &Res<'_>, why: &str) {
        self.everywhere.entry((kind, fact)).or_insert_with(|| {
            format!(
                "{} ({}) may declare it for any {}: {why}",
                by.address,
                by.at(),
                kind.as_str()
            )
        });
    }

    /// Records what one resource declares.
    fn resource(&mut self, ix: &Index<'a>, r: &'a Res<'a>) {
        let one = |ptr: &str| ix.string(r, ptr);
        let item = |val: Option<Val<'a>>, missing: &str| Item {
            val: val
                .unwrap_or_else(|| Val::Unknown(format!("{} ({}) {missing}", r.address, r.at()))),
            by: r,
        };
        let unknown_item = |why: String| Item {
            val: Val::Unknown(why),
            by: r,
        };
        match r.ty {
            "aws_iam_role_policy_attachment" | "aws_iam_user_policy_attachment" => {
                let (kind, who) = principal_attribute(r.ty);
                let policy = item(one("/policy_arn"), "has no known `policy_arn`");
                self.add(one(who), kind, "attached_policies", policy);
            }
            "aws_iam_role_policy" | "aws_iam_user_policy" => {
                let (kind, who) = principal_attribute(r.ty);
                let name = item(one("/name"), "has no `name`: Terraform generates one");
                self.add(one(who), kind, "inline_policies", name);
            }
            "aws_iam_role_policy_attachments_exclusive"
            | "aws_iam_user_policy_attachments_exclusive"
            | "aws_iam_role_policies_exclusive"
            | "aws_iam_user_policies_exclusive" => {
                let (kind, who) = principal_attribute(r.ty);
                let (fact, list) = if r.ty.contains("attachments") {
                    ("attached_policies", "/policy_arns")
                } else {
                    ("inline_policies", "/policy_names")
                };
                match ix.list(r, list) {
                    Ok(vals) => {
                        for v in vals {
                            self.add(one(who), kind, fact, item(Some(v), ""));
                        }
                    }
                    Err(why) => self.add(one(who), kind, fact, unknown_item(why)),
                }
            }
            "aws_iam_policy_attachment" => {
                for (kind, list) in [(Kind::Role, "/roles"), (Kind::User, "/users")] {
                    match ix.list(r, list) {
                        Ok(names) => {
                            for n in names {
                                let policy = item(one("/policy_arn"), "has no known `policy_arn`");
                                self.add(Some(n), kind, "attached_policies", policy);
                            }
                        }
                        Err(why) => self.unknown_everywhere(kind, "attached_policies", r, &why),
                    }
                }
            }
            "aws_iam_user_group_membership" => match ix.list(r, "/groups") {
                Ok(groups) => {
                    for g in groups {
                        self.add(one("/user"), Kind::User, "groups", item(Some(g), ""));
                    }
                }
                Err(why) => self.add(one("/user"), Kind::User, "groups", unknown_item(why)),
            },
            "aws_iam_group_membership" => match ix.list(r, "/users") {
                Ok(users) => {
                    for u in users {
                        let group = item(one("/group"), "has no known `group`");
                        self.add(Some(u), Kind::User, "groups", group);
                    }
                }
                Err(why) => self.unknown_everywhere(Kind::User, "groups", r, &why),
            },
            "aws_iam_access_key" => {
                let key = match (one("/id"), one("/status")) {
                    (_, Some(Val::Known(s))) if s == "Inactive" => None,
                    (Some(Val::Known(id)), _) => Some(Val::Known(id)),
                    (Some(Val::Unknown(why)), _) => Some(Val::Unknown(why)),
                    (Some(Val::Policy(_)) | None, _) => Some(Val::Unknown(format!(
                        "{} ({}): an access key's id is known only after apply — approve from `terraform show -json` of the state to govern keys",
                        r.address,
                        r.at()
                    ))),
                };
                if let Some(k) = key {
                    self.add(one("/user"), Kind::User, "active_keys", item(Some(k), ""));
                }
            }
            "kubernetes_role_binding"
            | "kubernetes_role_binding_v1"
            | "kubernetes_cluster_role_binding"
            | "kubernetes_cluster_role_binding_v1" => self.binding(ix, r),
            _ => {}
        }
    }

    /// A binding: one item per service-account subject, its graph key made once the
    /// subject's cluster is known (`kind\nnamespace\nname`).
    fn binding(&mut self, ix: &Index<'a>, r: &'a Res<'a>) {
        let cluster_wide = r.ty.contains("cluster_role");
        let ns = match ix.string(r, "/metadata/0/namespace") {
            Some(Val::Known(n)) => Ok(n),
            None => Ok("default".to_owned()),
            Some(Val::Unknown(why)) => Err(why),
            Some(Val::Policy(_)) => {
                Err(format!("{} ({}) has no known namespace", r.address, r.at()))
            }
        };
        let binding = match (ix.string(r, "/metadata/0/name"), &ns, cluster_wide) {
            (Some(Val::Known(name)), _, true) => {
                Val::Known(format!("ClusterRoleBinding\n\n{name}"))
            }
            (Some(Val::Known(name)), Ok(ns), false) => {
                Val::Known(format!("RoleBinding\n{ns}\n{name}"))
            }
            (_, Err(why), false) => Val::Unknown(why.clone()),
            (Some(Val::Unknown(why)), _, _) => Val::Unknown(why),
            (Some(Val::Policy(_)) | None, _, _) => {
                Val::Unknown(format!("{} ({}) has no known name", r.address, r.at()))
            }
        };
        let subjects = match r.get("/subject") {
            None => 0,
            Some(Value::Array(a)) => a.len(),
            Some(other) => {
                let why = match r.expression("/subject") {
                    Some(text) => ix.why(r, text),
                    None => format!("`{other}` is not a list of subjects"),
                };
                self.unknown_everywhere(Kind::ServiceAccount, "bindings", r, &why);
                return;
            }
        };
        for i in 0..subjects {
            let at = |f: &str| ix.string(r, &format!("/subject/{i}/{f}"));
            match at("kind") {
                Some(Val::Known(k)) if k == "ServiceAccount" => {}
                Some(Val::Known(_)) => continue,
                Some(Val::Unknown(why)) => {
                    self.unknown_everywhere(Kind::ServiceAccount, "bindings", r, &why);
                    continue;
                }
                Some(Val::Policy(_)) | None => continue,
            }
            let sns = match (at("namespace"), &ns) {
                (Some(Val::Known(n)), _) => Val::Known(n),
                (None, Ok(n)) => Val::Known(n.clone()),
                (Some(Val::Unknown(why)), _) => Val::Unknown(why),
                (None, Err(why)) => Val::Unknown(why.clone()),
                (Some(Val::Policy(_)), _) => Val::Unknown(format!(
                    "{} ({}): a subject's namespace is not known",
                    r.address,
                    r.at()
                )),
            };
            let target = match (sns, at("name")) {
                (Val::Known(sns), Some(Val::Known(name))) => {
                    Some(Val::Known(format!("{sns}/{name}")))
                }
                (Val::Unknown(why), _) | (_, Some(Val::Unknown(why))) => Some(Val::Unknown(why)),
                (_, Some(Val::Policy(_)) | None) | (Val::Policy(_), _) => None,
            };
            let item = Item {
                val: binding.clone(),
                by: r,
            };
            self.add(target, Kind::ServiceAccount, "bindings", item);
        }
    }
}

/// The principal kind and attribute of a resource attached to one principal.
fn principal_attribute(ty: &str) -> (Kind, &'static str) {
    let kind = if ty.starts_with("aws_iam_user") {
        Kind::User
    } else {
        Kind::Role
    };
    let attr = match (kind, ty.ends_with("_exclusive")) {
        (Kind::User, true) => "/user_name",
        (Kind::User, false) => "/user",
        (Kind::Role | Kind::ServiceAccount, true) => "/role_name",
        (Kind::Role | Kind::ServiceAccount, false) => "/role",
    };
    (kind, attr)
}

// ---------------------------------------------------------------------------------------
// Identities

/// One identity Terraform defines, with what it declares for it.
pub(super) struct Intent<'a> {
    pub(super) res: &'a Res<'a>,
    pub(super) kind: Kind,
    pub(super) name: String,
    pub(super) namespace: String,
    /// Its ARN, when Terraform knows it (state).
    pub(super) arn: Option<String>,
    /// Facts declared on the resource itself or by others, unresolved policy ARNs included.
    declared: BTreeMap<&'static str, Vec<Item<'a>>>,
    /// Facts that cannot be told, with why.
    unknown: BTreeMap<&'static str, String>,
    /// The trust policy (roles).
    trust: Option<Value>,
    boundary: Option<Val<'a>>,
    pub(super) key: Option<String>,
    pub(super) refused: Option<String>,
}

/// The identities the resources define (references resolve within a module).
pub(super) fn intents<'a>(all: &'a [Res<'a>]) -> Vec<Intent<'a>> {
    let ix = Index::new(all);
    let mut declared = Declared::default();
    for r in all {
        declared.resource(&ix, r);
    }
    let mut out = Vec::new();
    for r in all {
        let kind = match r.ty {
            "aws_iam_role" => Kind::Role,
            "aws_iam_user" => Kind::User,
            "kubernetes_service_account" | "kubernetes_service_account_v1" => Kind::ServiceAccount,
            _ => continue,
        };
        out.push(intent(&ix, &declared, r, kind));
    }
    out
}

fn intent<'a>(ix: &Index<'a>, declared: &Declared<'a>, r: &'a Res<'a>, kind: Kind) -> Intent<'a> {
    let mut t = Intent {
        res: r,
        kind,
        name: String::new(),
        namespace: String::new(),
        arn: None,
        declared: BTreeMap::new(),
        unknown: BTreeMap::new(),
        trust: None,
        boundary: None,
        key: None,
        refused: None,
    };
    // `count = 0` makes nothing; `for_each` and computed counts make what Terraform says.
    for meta in ["/count", "/for_each"] {
        match r.get(meta) {
            None => {}
            Some(v) if r.literal(meta) && v.as_u64() == Some(1) => {}
            Some(v) => {
                let what = r
                    .expression(meta)
                    .map_or_else(|| v.to_string(), str::to_owned);
                t.refused = Some(format!(
                    "`{}` is `{what}`: how many Terraform makes is not known here",
                    meta.trim_start_matches('/')
                ));
                return t;
            }
        }
    }
    let name_ptr = match kind {
        Kind::Role | Kind::User => "/name",
        Kind::ServiceAccount => {
            t.namespace = match ix.string(r, "/metadata/0/namespace") {
                Some(Val::Known(n)) => n,
                None => "default".into(),
                Some(Val::Unknown(why)) => {
                    t.refused = Some(format!("its namespace is not known: {why}"));
                    return t;
                }
                Some(Val::Policy(_)) => String::new(),
            };
            "/metadata/0/name"
        }
    };
    match ix.string(r, name_ptr) {
        Some(Val::Known(n)) if !n.is_empty() => t.name = n,
        Some(Val::Unknown(why)) => {
            t.refused = Some(format!("its name is not known: {why}"));
            return t;
        }
        Some(Val::Known(_) | Val::Policy(_)) | None => {
            t.refused = Some(if r.get("/name_prefix").is_some() {
                "named by `name_prefix`: Terraform picks the name".into()
            } else {
                "it has no `name`: Terraform generates one".into()
            });
            return t;
        }
    }
    let who = match kind {
        Kind::ServiceAccount => format!("{}/{}", t.namespace, t.name),
        Kind::Role | Kind::User => t.name.clone(),
    };
    if let Some(Val::Known(arn)) = ix.string(r, "/arn") {
        t.arn = Some(arn);
    }
    if let Some(mine) = declared.items.get(&(kind, who)) {
        t.declared.clone_from(mine);
    }
    let facts: &[&'static str] = match kind {
        Kind::Role => &["attached_policies", "inline_policies"],
        Kind::User => &[
            "attached_policies",
            "inline_policies",
            "groups",
            "active_keys",
        ],
        Kind::ServiceAccount => &["bindings"],
    };
    for f in facts {
        t.declared.entry(f).or_default();
        if let Some(why) = declared.everywhere.get(&(kind, *f)) {
            t.unknown.insert(f, why.clone());
        }
    }
    if kind == Kind::ServiceAccount {
        if t.declared.get("bindings").is_none_or(Vec::is_empty) {
            t.unknown.entry("bindings").or_insert_with(|| {
                "Terraform binds it nowhere (bindings applied with kubectl or Helm are common)"
                    .into()
            });
        }
        t.unknown.insert(
            "groups",
            "a service account's groups are implied by Kubernetes, not declared".into(),
        );
        return t;
    }
    if kind == Kind::Role {
        match ix.list(r, "/managed_policy_arns") {
            Ok(arns) => t
                .declared
                .entry("attached_policies")
                .or_default()
                .extend(arns.into_iter().map(|val| Item { val, by: r })),
            Err(why) => {
                t.unknown.insert("attached_policies", why);
            }
        }
        let blocks = r
            .get("/inline_policy")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        for i in 0..blocks {
            match ix.string(r, &format!("/inline_policy/{i}/name")) {
                // State keeps an empty block when there is none.
                Some(Val::Known(n)) if n.is_empty() => {}
                Some(val) => t
                    .declared
                    .entry("inline_policies")
                    .or_default()
                    .push(Item { val, by: r }),
                None => {
                    t.unknown.insert(
                        "inline_policies",
                        format!("an `inline_policy` block ({}) has no `name`", r.at()),
                    );
                }
            }
        }
        t.trust = match r.get("/assume_role_policy") {
            None => {
                t.unknown.insert(
                    "trust_policy",
                    format!("`assume_role_policy` ({}) is not known until apply", r.at()),
                );
                None
            }
            Some(doc @ Value::Object(_)) if r.literal("/assume_role_policy") => Some(doc.clone()),
            Some(other) => {
                let why = match r.expression("/assume_role_policy") {
                    Some(text) => match ix.reference(r, text) {
                        Val::Unknown(why) => why,
                        Val::Known(_) | Val::Policy(_) => {
                            format!("`{text}` is computed by Terraform")
                        }
                    },
                    None => format!("`{other}` ({}) is not a JSON policy document", r.at()),
                };
                t.unknown
                    .insert("trust_policy", format!("assume_role_policy: {why}"));
                None
            }
        };
    }
    t.boundary = ix.string(r, "/permissions_boundary");
    if t.kind == Kind::User && t.declared.get("active_keys").is_none_or(Vec::is_empty) {
        t.unknown.entry("active_keys").or_insert_with(|| {
            "Terraform declares no access key for it (keys made outside Terraform are common)"
                .into()
        });
    }
    t
}

impl Intent<'_> {
    /// The governed facts in the inventory's shapes, and the ungoverned ones with why.
    pub(super) fn facts(
        &self,
        place: Place,
    ) -> (BTreeMap<String, Value>, BTreeMap<String, String>) {
        let mut facts = BTreeMap::new();
        let mut ungoverned: BTreeMap<String, String> = self
            .unknown
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        let provider = self.res.provider();
        let resolve = |v: &Val<'_>| -> Result<String, String> {
            match (v, &place) {
                (Val::Known(s), _) => Ok(s.clone()),
                (Val::Unknown(why), _) => Err(why.clone()),
                (Val::Policy(p), _) if p.provider() != provider => Err(format!(
                    "{} ({}) is made by another provider: its account is not known",
                    p.address,
                    p.at()
                )),
                (Val::Policy(p), Place::Account { partition, account }) => {
                    let path = match p.get("/path") {
                        Some(Value::String(s)) if p.literal("/path") => s.clone(),
                        Some(_) => return Err(format!("{}'s `path` is computed", p.address)),
                        None => "/".into(),
                    };
                    let name = p.get("/name").and_then(Value::as_str).unwrap_or_default();
                    Ok(format!("arn:{partition}:iam::{account}:policy{path}{name}"))
                }
                (Val::Policy(p), Place::Cluster(_) | Place::Unknown) => Err(format!(
                    "{}'s ARN needs the account: pass --account",
                    p.address
                )),
            }
        };
        for (fact, list) in &self.declared {
            if ungoverned.contains_key(*fact) {
                continue;
            }
            let mut out = Vec::new();
            for item in list {
                let v = match (*fact == "bindings", &item.val, &place) {
                    (true, Val::Known(b), Place::Cluster(c)) => {
                        let mut p = b.splitn(3, '\n');
                        let (kind, ns, name) = (p.next(), p.next(), p.next());
                        Ok(format!(
                            "k8s-obj:{c}/{}/{}/{}",
                            kind.unwrap_or_default(),
                            ns.unwrap_or_default(),
                            name.unwrap_or_default()
                        ))
                    }
                    (true, Val::Known(_), Place::Account { .. } | Place::Unknown) => {
                        Err("its cluster is not known".to_owned())
                    }
                    (true, Val::Unknown(_) | Val::Policy(_), _) | (false, _, _) => {
                        resolve(&item.val)
                    }
                };
                match v {
                    Ok(s) => out.push(s),
                    Err(why) => {
                        ungoverned.insert((*fact).to_owned(), why);
                        break;
                    }
                }
            }
            if !ungoverned.contains_key(*fact) {
                facts.insert((*fact).to_owned(), Value::from(items(&Value::from(out))));
            }
        }
        if let Some(doc) = &self.trust {
            facts.insert("trust_policy".into(), doc.clone());
        }
        match self.boundary.as_ref().map(resolve) {
            None => {}
            Some(Ok(arn)) if arn.is_empty() => {}
            Some(Ok(arn)) => {
                facts.insert("permissions_boundary".into(), Value::String(arn));
            }
            Some(Err(why)) => {
                ungoverned.insert("permissions_boundary".into(), why);
            }
        }
        (facts, ungoverned)
    }
}

/// Two resources defining one identity disagree about it: neither is approved.
pub(super) fn refuse_twice_defined(intents: &mut [Intent<'_>]) {
    let mut at: HashMap<String, Vec<String>> = HashMap::new();
    for t in intents.iter().filter(|t| t.refused.is_none()) {
        if let Some(k) = &t.key {
            at.entry(k.clone())
                .or_default()
                .push(format!("{} ({})", t.res.address, t.res.at()));
        }
    }
    for t in intents.iter_mut().filter(|t| t.refused.is_none()) {
        if let Some(places) = t
            .key
            .as_ref()
            .and_then(|k| at.get(k))
            .filter(|p| p.len() > 1)
        {
            t.refused = Some(format!("defined more than once: {}", places.join(", ")));
        }
    }
}
