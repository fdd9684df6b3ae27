//! An account's edges from its IAM snapshot: groups, effective permissions, instance
//! profiles, trust, and privilege escalation.

use super::*;

/// Edges from one account's IAM snapshot: group membership, attached policies, effective
/// permissions by resource pattern (`can`), trust (`can_assume`, including other accounts,
/// services, OIDC subjects and anyone), and escalation steps to other principals (`can`
/// with the technique id).
pub fn account_edges(account: &str, snap: &Snapshot, names: &Names) -> Vec<EdgeSpec> {
    let mut out = Vec::new();
    let principals = snap.principals();
    group_edges(snap, &mut out);
    permission_edges(account, &principals, &mut out);
    instance_profile_edges(snap, &mut out);
    trust_edges(account, &principals, names, &mut out);
    escalation_edges(account, snap, &mut out);
    out
}

/// The principals of an account's IAM snapshot, by canonical id.
type Principals = BTreeMap<String, crate::iam::authz::PrincipalPolicies>;

/// Groups bound to their managed policies.
fn group_edges(snap: &Snapshot, out: &mut Vec<EdgeSpec>) {
    for g in snap.groups() {
        let Some(gid) = ids::canonical_iam_arn(&g.arn) else {
            continue;
        };
        let gnode = NodeSpec::new(
            gid.as_str(),
            NodeKind::Group,
            gid.rsplit('/').next().unwrap_or(&gid),
        );
        for p in &g.identity {
            if let Some(arn) = p.source.strip_prefix("managed:") {
                out.push(edge(gnode.clone(), EdgeKind::BoundTo, policy_node(arn)));
            }
        }
    }
}

/// Each principal's groups, managed policies and effective permissions by resource
/// pattern (`can` edges with the actions allowed and the conditions left open).
fn permission_edges(account: &str, principals: &Principals, out: &mut Vec<EdgeSpec>) {
    let ctx = Context::default();
    for (id, p) in principals {
        let me = id_node(id, kind_of_id(id));
        for g in &p.groups {
            out.push(sourced(
                edge(
                    me.clone(),
                    EdgeKind::MemberOf,
                    NodeSpec::new(ids::iam(account, "group", g), NodeKind::Group, g.as_str()),
                ),
                "iam-authorization-details",
            ));
        }
        for src in &p.identity {
            if let Some(arn) = src.source.strip_prefix("managed:") {
                out.push(edge(me.clone(), EdgeKind::BoundTo, policy_node(arn)));
            }
        }
        // Effective permissions by resource pattern.
        let identity = p.identity_policies();
        let boundary = p.boundary.as_ref().map(|b| &b.policy);
        let mut per_resource: BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)> =
            BTreeMap::new();
        for src in &p.identity {
            for pat in src.policy.allow_patterns() {
                for r in pat.resources.unwrap_or(&[]) {
                    for a in pat.actions {
                        let req = Request {
                            action: a,
                            resource: r,
                            principal: None,
                            context: &ctx,
                        };
                        let entry = per_resource.entry(r.clone()).or_default();
                        let d = policy::evaluate(&identity, boundary, &req).decision;
                        // Organizations guardrails cap what the account's principals reach.
                        match crate::iam::escalation::capped(p, d, a, r, &ctx) {
                            Decision::Allow => {
                                entry.0.insert(a.clone());
                            }
                            Decision::ConditionalAllow(keys) => {
                                entry.0.insert(a.clone());
                                entry.1.extend(keys);
                            }
                            Decision::ExplicitDeny | Decision::ImplicitDeny => {}
                        }
                    }
                }
            }
        }
        for (r, (actions, conditions)) in per_resource {
            if actions.is_empty() {
                continue;
            }
            let mut e = edge(me.clone(), EdgeKind::Can, resource_node(&r, account));
            e.detail = Some(Detail {
                actions: actions.into_iter().collect(),
                conditions: conditions.into_iter().collect(),
                ..Detail::default()
            });
            out.push(e);
        }
    }
}

/// EC2 instance profiles: instances launched with one run as its role.
fn instance_profile_edges(snap: &Snapshot, out: &mut Vec<EdgeSpec>) {
    for r in &snap.roles {
        let Some(rid) = r
            .get("Arn")
            .and_then(Value::as_str)
            .and_then(ids::canonical_iam_arn)
        else {
            continue;
        };
        for ip in r
            .get("InstanceProfileList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(arn) = ip.get("Arn").and_then(Value::as_str) {
                let name = ip
                    .get("InstanceProfileName")
                    .and_then(Value::as_str)
                    .unwrap_or(arn);
                out.push(sourced(
                    edge(
                        NodeSpec::new(
                            format!("instance-profile:{arn}"),
                            NodeKind::Workload,
                            format!("EC2 instance profile {name}"),
                        ),
                        EdgeKind::RunsAs,
                        id_node(&rid, IdentityKind::IamRole),
                    ),
                    "iam-authorization-details",
                ));
            }
        }
    }
}

/// Who may assume each role: its trust policy read against every principal's identity
/// policies, federated subjects, and the account-wide shortcut (see [`assume_anywhere`]).
fn trust_edges(account: &str, principals: &Principals, names: &Names, out: &mut Vec<EdgeSpec>) {
    let assumers = assumers(principals);
    let anywhere = assume_anywhere(account, &assumers);
    let trusting_account = NodeSpec::new(
        format!("aws-roles-trusting:{account}"),
        NodeKind::Group,
        format!("roles that trust account {account}"),
    );
    let mut open_roles = 0usize;
    for (rid, role) in principals {
        let Some(trust) = &role.trust else { continue };
        let rnode = id_node(rid, IdentityKind::IamRole);
        let role = TrustingRole {
            id: rid,
            arn: &role.arn,
            node: &rnode,
            account: account_of(rid).unwrap_or(account),
            trust,
        };
        let trusted = trust.trusted();
        // Trusts the whole account, unconditionally, and denies no one.
        let open = role.account == account
            && !trust.may_deny("sts:AssumeRole")
            && trusted
                .iter()
                .any(|t| t.conditions.is_empty() && names_own_account(t, role.account));
        if open && !anywhere.is_empty() {
            open_roles += 1;
            out.push(role.edge(trusting_account.clone(), Vec::new()));
        }
        // Those assuming every role reach an open role through the group node.
        let through_group = if open { Some(&anywhere) } else { None };
        same_account_edges(&role, &trusted, principals, &assumers, through_group, out);
        for t in &trusted {
            trusted_principal_edges(&role, t, names, out);
        }
    }
    if open_roles > 0 {
        for pid in &anywhere {
            let mut e = edge(
                id_node(pid, kind_of_id(pid)),
                EdgeKind::CanAssume,
                trusting_account.clone(),
            );
            e.detail = Some(Detail {
                source: "identity policy: sts:AssumeRole on every role".into(),
                ..Detail::default()
            });
            out.push(e);
        }
    }
}

/// A principal and its policies, by canonical id.
type Assumer<'p> = (&'p String, &'p crate::iam::authz::PrincipalPolicies);

/// Principals whose identity policies (and boundary) could allow `sts:AssumeRole` at all.
fn assumers(principals: &Principals) -> Vec<Assumer<'_>> {
    principals
        .iter()
        .filter(|(_, p)| {
            p.identity
                .iter()
                .any(|s| s.policy.may_allow("sts:AssumeRole"))
                && p.boundary
                    .as_ref()
                    .is_none_or(|b| b.policy.may_allow("sts:AssumeRole"))
        })
        .collect()
}

/// Principals allowed to assume every role of the account, unconditionally and with no
/// deny that could narrow it: rather than an edge to each role trusting the account
/// (principals × roles, millions in a large account), one edge to a group node that has
/// an edge to each such role.
fn assume_anywhere<'p>(account: &str, assumers: &[Assumer<'p>]) -> BTreeSet<&'p String> {
    let ctx = Context::default();
    let any_role = format!("arn:aws:iam::{account}:role/*");
    assumers
        .iter()
        .filter(|(_, p)| {
            let denies = p
                .identity
                .iter()
                .any(|s| s.policy.may_deny("sts:AssumeRole"))
                || p.boundary
                    .as_ref()
                    .is_some_and(|b| b.policy.may_deny("sts:AssumeRole"));
            let req = Request {
                action: "sts:AssumeRole",
                resource: &any_role,
                principal: None,
                context: &ctx,
            };
            !denies
                && policy::evaluate(
                    &p.identity_policies(),
                    p.boundary.as_ref().map(|b| &b.policy),
                    &req,
                )
                .decision
                    == Decision::Allow
        })
        .map(|(id, _)| *id)
        .collect()
}

/// A role whose trust policy is being read.
struct TrustingRole<'a> {
    /// Canonical id.
    id: &'a str,
    arn: &'a str,
    node: &'a NodeSpec,
    /// The role's own account.
    account: &'a str,
    trust: &'a policy::Policy,
}

impl TrustingRole<'_> {
    /// A `can_assume` edge from `from` to the role, with the conditions left open.
    fn edge(&self, from: NodeSpec, conditions: Vec<String>) -> EdgeSpec {
        let mut e = edge(from, EdgeKind::CanAssume, self.node.clone());
        e.detail = Some(Detail {
            source: "trust policy".into(),
            conditions,
            ..Detail::default()
        });
        e
    }
}

/// Whether a trust statement names the role's own account (its id or root).
fn names_own_account(t: &policy::TrustedPrincipals<'_>, role_account: &str) -> bool {
    t.aws
        .iter()
        .any(|a| a == role_account || (a.ends_with(":root") && account_of(a) == Some(role_account)))
}

/// Principals of the role's own account, each evaluated: the trust policy for that
/// principal (with `aws:PrincipalArn` and `aws:PrincipalAccount` known), and unless the
/// trust names the principal itself, its identity policies too. Those in `through_group`
/// reach the role through the account's group node instead.
fn same_account_edges(
    role: &TrustingRole<'_>,
    trusted: &[policy::TrustedPrincipals<'_>],
    principals: &Principals,
    assumers: &[Assumer<'_>],
    through_group: Option<&BTreeSet<&String>>,
    out: &mut Vec<EdgeSpec>,
) {
    let names_account = trusted
        .iter()
        .any(|t| t.any || names_own_account(t, role.account));
    let named: BTreeSet<String> = trusted
        .iter()
        .flat_map(|t| t.aws.iter())
        .filter_map(|a| ids::canonical_iam_arn(a))
        .filter(|id| !id.ends_with(":root") && account_of(id) == Some(role.account))
        .collect();
    let mut candidates: BTreeSet<&String> = named
        .iter()
        .filter_map(|n| principals.get_key_value(n).map(|(k, _)| k))
        .collect();
    if names_account {
        candidates.extend(assumers.iter().map(|(id, _)| *id));
    }
    for pid in candidates {
        if through_group.is_some_and(|g| g.contains(pid)) {
            continue;
        }
        let Some(p) = principals.get(pid).filter(|_| pid != role.id) else {
            continue;
        };
        let who = PrincipalRef::Aws {
            account: role.account.to_owned(),
            arn: p.arn.clone(),
        };
        let mut tctx = Context::default();
        tctx.set("aws:PrincipalArn", [p.arn.as_str()]);
        tctx.set("aws:PrincipalAccount", [role.account]);
        let mut keys: BTreeSet<String> = BTreeSet::new();
        match policy::evaluate_trust(role.trust, role.arn, &who, "sts:AssumeRole", &tctx).decision {
            Decision::Allow => {}
            Decision::ConditionalAllow(k) => keys.extend(k),
            Decision::ExplicitDeny | Decision::ImplicitDeny => continue,
        }
        if !named.contains(pid) {
            let req = Request {
                action: "sts:AssumeRole",
                resource: role.arn,
                principal: None,
                context: &tctx,
            };
            let d = policy::evaluate(
                &p.identity_policies(),
                p.boundary.as_ref().map(|b| &b.policy),
                &req,
            )
            .decision;
            match crate::iam::escalation::capped(p, d, "sts:AssumeRole", role.arn, &tctx) {
                Decision::Allow => {}
                Decision::ConditionalAllow(k) => keys.extend(k),
                Decision::ExplicitDeny | Decision::ImplicitDeny => continue,
            }
        }
        out.push(role.edge(id_node(pid, kind_of_id(pid)), keys.into_iter().collect()));
    }
}

/// The edges one trust statement's principals give, beyond the role's own account (done
/// principal by principal in [`same_account_edges`]): anyone, other accounts, services
/// and federated identities, each with the statement's conditions.
fn trusted_principal_edges(
    role: &TrustingRole<'_>,
    t: &policy::TrustedPrincipals<'_>,
    names: &Names,
    out: &mut Vec<EdgeSpec>,
) {
    let conds: Vec<String> = t
        .conditions
        .iter()
        .map(|(op, k, v)| format!("{op} {k} {}", v.join(",")))
        .collect();
    if t.any {
        out.push(role.edge(account_node("*"), conds.clone()));
    }
    for a in t.aws.iter().filter(|a| *a != "*") {
        let acct = if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) {
            Some(a.as_str())
        } else {
            account_of(a)
        };
        match acct {
            // Handled principal by principal.
            Some(acct) if acct == role.account => {}
            // Another account: whoever it lets call (its own policies are not ours to
            // see), with this trust's conditions.
            Some(acct) => {
                let from = match ids::canonical_iam_arn(a).filter(|id| !id.ends_with(":root")) {
                    Some(id) => id_node(&id, kind_of_id(&id)),
                    None => account_node(acct),
                };
                out.push(role.edge(from, conds.clone()));
            }
            None => {}
        }
    }
    for svc in t.service {
        out.push(role.edge(
            id_node(&ids::aws_service(svc), IdentityKind::AwsService),
            conds.clone(),
        ));
    }
    for fed in t.federated {
        federated_edges(role, t, fed, &conds, names, out);
    }
}

/// Edges from a federated provider's users: any SAML user; for OIDC, the subjects seen in
/// activity that the trust admits, and the subjects it admits as written (a pattern is a
/// node).
fn federated_edges(
    role: &TrustingRole<'_>,
    t: &policy::TrustedPrincipals<'_>,
    fed: &String,
    conds: &[String],
    names: &Names,
    out: &mut Vec<EdgeSpec>,
) {
    if fed.contains(":saml-provider/") {
        out.push(role.edge(
            NodeSpec::new(
                format!("saml:{fed}#*"),
                NodeKind::Identity(IdentityKind::SamlSubject),
                "any SAML user",
            ),
            conds.to_vec(),
        ));
        return;
    }
    let issuer = ids::issuer_key(
        fed.split_once(":oidc-provider/")
            .map_or(fed.as_str(), |(_, host)| host),
    );
    let who = PrincipalRef::Federated(fed.clone());
    // Subjects seen in activity: the trust evaluated with their `sub`.
    let mut matched_any = false;
    for (sid, iss, sub) in &names.oidc_subjects {
        if iss != issuer {
            continue;
        }
        let mut fctx = Context::default();
        fctx.set(&format!("{issuer}:sub"), [sub.as_str()]);
        let keys = match policy::evaluate_trust(
            role.trust,
            role.arn,
            &who,
            "sts:AssumeRoleWithWebIdentity",
            &fctx,
        )
        .decision
        {
            Decision::Allow => Vec::new(),
            Decision::ConditionalAllow(k) => k.into_iter().collect(),
            Decision::ExplicitDeny | Decision::ImplicitDeny => continue,
        };
        matched_any = true;
        out.push(role.edge(id_node(sid, IdentityKind::OidcSubject), keys));
    }
    // And the subjects the trust admits, as written (a pattern is a node).
    let subs: Vec<&String> = t
        .conditions
        .iter()
        .filter(|(_, k, _)| k.ends_with(":sub"))
        .flat_map(|(_, _, v)| v.iter())
        .collect();
    if subs.is_empty() {
        out.push(role.edge(
            NodeSpec::new(
                ids::oidc(issuer, "*"),
                NodeKind::Identity(IdentityKind::OidcSubject),
                format!("any subject of {issuer}"),
            ),
            conds.to_vec(),
        ));
    }
    for sub in subs {
        let seen = names
            .oidc_subjects
            .iter()
            .any(|(_, iss, ssub)| iss == issuer && ssub == sub);
        if !(seen && matched_any) {
            out.push(role.edge(
                NodeSpec::new(
                    ids::oidc(issuer, sub),
                    NodeKind::Identity(IdentityKind::OidcSubject),
                    sub.as_str(),
                ),
                conds.to_vec(),
            ));
        }
    }
}

/// Escalation to other principals. A principal that can take over many principals by one
/// technique (passing any role to a new Lambda function) shares that set with every
/// principal with the same grant: each set becomes one group node, so the graph holds
/// principals + targets edges instead of principals × targets.
fn escalation_edges(account: &str, snap: &Snapshot, out: &mut Vec<EdgeSpec>) {
    // Escalation to other principals. A principal that can take over many principals by
    // one technique (passing any role to a new Lambda function) shares that set with every
    // principal with the same grant: each set becomes one group node, so the graph holds
    // principals + targets edges instead of principals × targets.
    let analysis = Analysis::run(snap);
    let kind = kind_of_id;
    let mut by_from: BTreeMap<(&str, &'static str), Vec<&crate::iam::escalation::Step>> =
        BTreeMap::new();
    for step in analysis.steps.iter().filter(|s| s.from != s.to) {
        by_from
            .entry((step.from.as_str(), step.technique))
            .or_default()
            .push(step);
    }
    // Each distinct (technique, targets) set, numbered in a stable order.
    let mut sets: BTreeMap<(&'static str, Vec<&str>), usize> = BTreeMap::new();
    for ((from, technique), steps) in by_from {
        let conditions = |steps: &[&crate::iam::escalation::Step]| -> Vec<String> {
            steps
                .iter()
                .flat_map(|s| s.conditional.iter().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        if steps.len() <= ESCALATION_GROUP_MIN {
            for step in steps {
                let mut e = edge(
                    id_node(from, kind(from)),
                    EdgeKind::Can,
                    id_node(&step.to, kind(&step.to)),
                );
                e.detail = Some(Detail {
                    source: "escalation".into(),
                    actions: vec![technique.to_owned()],
                    conditions: step.conditional.iter().cloned().collect(),
                    ..Detail::default()
                });
                out.push(e);
            }
            continue;
        }
        let mut targets: Vec<&str> = steps.iter().map(|s| s.to.as_str()).collect();
        targets.sort_unstable();
        targets.dedup();
        let next = sets.len();
        let (set, new) = match sets.get(&(technique, targets.clone())) {
            Some(&n) => (n, false),
            None => {
                sets.insert((technique, targets.clone()), next);
                (next, true)
            }
        };
        let group = NodeSpec::new(
            format!("aws-escalation:{account}:{technique}:{set}"),
            NodeKind::Group,
            format!("{} principals reachable by {technique}", targets.len()),
        );
        let mut e = edge(id_node(from, kind(from)), EdgeKind::Can, group.clone());
        e.detail = Some(Detail {
            source: "escalation".into(),
            actions: vec![technique.to_owned()],
            conditions: conditions(&steps),
            ..Detail::default()
        });
        out.push(e);
        if new {
            for t in targets {
                let mut e = edge(group.clone(), EdgeKind::Can, id_node(t, kind(t)));
                e.detail = Some(Detail {
                    source: "escalation".into(),
                    actions: vec![technique.to_owned()],
                    ..Detail::default()
                });
                out.push(e);
            }
        }
    }
}

/// Escalation sets larger than this become a group node.
const ESCALATION_GROUP_MIN: usize = 16;
