//! AWS IAM privilege escalation: which principals can become an administrator, by which
//! technique, in how many hops.
//!
//! Techniques are numbered like the pathfinding.cloud catalogue (`iam-001`, `ec2-001`, …)
//! so findings line up with it; the table below is Keyward's own encoding of what each
//! technique needs. Every permission is checked with the policy evaluator against the
//! principal's real policies (inline, managed, group, boundary) and, for role targets, the
//! role's trust policy. A permission allowed only under conditions the analysis cannot
//! decide makes the path conditional (reported with its condition keys), never silently
//! certain.
//!
//! Techniques that take over a role through an *existing* workload (a Lambda function, an
//! EC2 instance, a Glue endpoint…) are reported against the roles that service can assume:
//! the snapshot lists roles, not workloads, so such a path says "if a workload runs as it".

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use keyward_model::ids;
use keyward_model::time::Millis;

use super::authz::{PrincipalPolicies, Snapshot, Sourced};
use super::policy::{Context, Decision, PrincipalRef, Request, evaluate, evaluate_trust};

/// What a technique acts on, and so what the attacker becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The principal's own policies (or its groups', or a group it joins).
    SelfPolicy,
    /// Another IAM user, whose credentials or policies the principal controls.
    User,
    /// A role the principal can (make itself able to) assume.
    Role,
    /// A role passed to a new workload of one of these services.
    PassRole(&'static [&'static str]),
    /// A role already used by a workload of one of these services.
    ExistingWorkload(&'static [&'static str]),
}

#[derive(Debug, Clone, Copy)]
pub struct Technique {
    pub id: &'static str,
    pub actions: &'static [&'static str],
    pub target: Target,
}

const LAMBDA: &[&str] = &["lambda.amazonaws.com"];
const EC2: &[&str] = &["ec2.amazonaws.com"];
const GLUE: &[&str] = &["glue.amazonaws.com"];
const CFN: &[&str] = &["cloudformation.amazonaws.com"];
const CODEBUILD: &[&str] = &["codebuild.amazonaws.com"];
const ECS: &[&str] = &["ecs-tasks.amazonaws.com"];
const SAGEMAKER: &[&str] = &["sagemaker.amazonaws.com"];
const APPRUNNER: &[&str] = &["tasks.apprunner.amazonaws.com"];
const AGENTCORE: &[&str] = &["bedrock-agentcore.amazonaws.com"];
const PIPELINE: &[&str] = &[
    "datapipeline.amazonaws.com",
    "elasticmapreduce.amazonaws.com",
];

macro_rules! t {
    ($id:expr, [$($a:literal),+], $target:expr) => {
        Technique { id: $id, actions: &[$($a),+], target: $target }
    };
}

/// The techniques Keyward checks.
pub const TECHNIQUES: &[Technique] = &[
    t!(
        "apprunner-001",
        ["iam:PassRole", "apprunner:CreateService"],
        Target::PassRole(APPRUNNER)
    ),
    t!(
        "apprunner-002",
        ["apprunner:UpdateService"],
        Target::ExistingWorkload(APPRUNNER)
    ),
    t!(
        "bedrock-001",
        [
            "iam:PassRole",
            "bedrock-agentcore:CreateCodeInterpreter",
            "bedrock-agentcore:StartCodeInterpreterSession",
            "bedrock-agentcore:InvokeCodeInterpreter"
        ],
        Target::PassRole(AGENTCORE)
    ),
    t!(
        "bedrock-002",
        [
            "bedrock-agentcore:StartCodeInterpreterSession",
            "bedrock-agentcore:InvokeCodeInterpreter"
        ],
        Target::ExistingWorkload(AGENTCORE)
    ),
    t!(
        "cloudformation-001",
        ["iam:PassRole", "cloudformation:CreateStack"],
        Target::PassRole(CFN)
    ),
    t!(
        "cloudformation-002",
        ["cloudformation:UpdateStack"],
        Target::ExistingWorkload(CFN)
    ),
    t!(
        "cloudformation-003",
        [
            "iam:PassRole",
            "cloudformation:CreateStackSet",
            "cloudformation:CreateStackInstances"
        ],
        Target::PassRole(CFN)
    ),
    t!(
        "cloudformation-004",
        ["iam:PassRole", "cloudformation:UpdateStackSet"],
        Target::PassRole(CFN)
    ),
    t!(
        "cloudformation-005",
        [
            "cloudformation:CreateChangeSet",
            "cloudformation:ExecuteChangeSet"
        ],
        Target::ExistingWorkload(CFN)
    ),
    t!(
        "codebuild-001",
        [
            "iam:PassRole",
            "codebuild:CreateProject",
            "codebuild:StartBuild"
        ],
        Target::PassRole(CODEBUILD)
    ),
    t!(
        "codebuild-002",
        ["codebuild:StartBuild"],
        Target::ExistingWorkload(CODEBUILD)
    ),
    t!(
        "codebuild-003",
        ["codebuild:StartBuildBatch"],
        Target::ExistingWorkload(CODEBUILD)
    ),
    t!(
        "codebuild-004",
        [
            "iam:PassRole",
            "codebuild:CreateProject",
            "codebuild:StartBuildBatch"
        ],
        Target::PassRole(CODEBUILD)
    ),
    t!(
        "datapipeline-001",
        [
            "iam:PassRole",
            "datapipeline:CreatePipeline",
            "datapipeline:PutPipelineDefinition",
            "datapipeline:ActivatePipeline"
        ],
        Target::PassRole(PIPELINE)
    ),
    t!(
        "ec2instanceconnect-003",
        [
            "ec2-instance-connect:SendSSHPublicKey",
            "ec2:DescribeInstances"
        ],
        Target::ExistingWorkload(EC2)
    ),
    t!(
        "ec2-001",
        ["iam:PassRole", "ec2:RunInstances"],
        Target::PassRole(EC2)
    ),
    t!(
        "ec2-002",
        [
            "ec2:ModifyInstanceAttribute",
            "ec2:StopInstances",
            "ec2:StartInstances"
        ],
        Target::ExistingWorkload(EC2)
    ),
    t!(
        "ec2-003",
        ["iam:PassRole", "ec2:RequestSpotInstances"],
        Target::PassRole(EC2)
    ),
    t!(
        "ec2-004",
        [
            "ec2:CreateLaunchTemplateVersion",
            "ec2:ModifyLaunchTemplate"
        ],
        Target::ExistingWorkload(EC2)
    ),
    t!(
        "ecs-001",
        [
            "iam:PassRole",
            "ecs:CreateCluster",
            "ecs:RegisterTaskDefinition",
            "ecs:CreateService"
        ],
        Target::PassRole(ECS)
    ),
    t!(
        "ecs-002",
        [
            "iam:PassRole",
            "ecs:CreateCluster",
            "ecs:RegisterTaskDefinition",
            "ecs:RunTask"
        ],
        Target::PassRole(ECS)
    ),
    t!(
        "ecs-003",
        [
            "iam:PassRole",
            "ecs:RegisterTaskDefinition",
            "ecs:CreateService"
        ],
        Target::PassRole(ECS)
    ),
    t!(
        "ecs-004",
        ["iam:PassRole", "ecs:RegisterTaskDefinition", "ecs:RunTask"],
        Target::PassRole(ECS)
    ),
    t!(
        "ecs-005",
        [
            "iam:PassRole",
            "ecs:RegisterTaskDefinition",
            "ecs:StartTask"
        ],
        Target::PassRole(ECS)
    ),
    t!(
        "glue-001",
        ["iam:PassRole", "glue:CreateDevEndpoint"],
        Target::PassRole(GLUE)
    ),
    t!(
        "glue-002",
        ["glue:UpdateDevEndpoint"],
        Target::ExistingWorkload(GLUE)
    ),
    t!(
        "glue-003",
        ["iam:PassRole", "glue:CreateJob", "glue:StartJobRun"],
        Target::PassRole(GLUE)
    ),
    t!(
        "glue-004",
        ["iam:PassRole", "glue:CreateJob", "glue:CreateTrigger"],
        Target::PassRole(GLUE)
    ),
    t!(
        "glue-005",
        ["iam:PassRole", "glue:UpdateJob", "glue:StartJobRun"],
        Target::PassRole(GLUE)
    ),
    t!(
        "glue-006",
        ["iam:PassRole", "glue:UpdateJob", "glue:CreateTrigger"],
        Target::PassRole(GLUE)
    ),
    t!("iam-001", ["iam:CreatePolicyVersion"], Target::SelfPolicy),
    t!("iam-002", ["iam:CreateAccessKey"], Target::User),
    t!(
        "iam-003",
        ["iam:CreateAccessKey", "iam:DeleteAccessKey"],
        Target::User
    ),
    t!("iam-004", ["iam:CreateLoginProfile"], Target::User),
    t!("iam-005", ["iam:PutRolePolicy"], Target::SelfPolicy),
    t!("iam-006", ["iam:UpdateLoginProfile"], Target::User),
    t!("iam-007", ["iam:PutUserPolicy"], Target::SelfPolicy),
    t!("iam-008", ["iam:AttachUserPolicy"], Target::SelfPolicy),
    t!("iam-009", ["iam:AttachRolePolicy"], Target::SelfPolicy),
    t!("iam-010", ["iam:AttachGroupPolicy"], Target::SelfPolicy),
    t!("iam-011", ["iam:PutGroupPolicy"], Target::SelfPolicy),
    t!("iam-012", ["iam:UpdateAssumeRolePolicy"], Target::Role),
    t!("iam-013", ["iam:AddUserToGroup"], Target::SelfPolicy),
    t!(
        "iam-014",
        ["iam:AttachRolePolicy", "sts:AssumeRole"],
        Target::Role
    ),
    t!(
        "iam-015",
        ["iam:AttachUserPolicy", "iam:CreateAccessKey"],
        Target::User
    ),
    t!(
        "iam-016",
        ["iam:CreatePolicyVersion", "sts:AssumeRole"],
        Target::Role
    ),
    t!(
        "iam-017",
        ["iam:PutRolePolicy", "sts:AssumeRole"],
        Target::Role
    ),
    t!(
        "iam-018",
        ["iam:PutUserPolicy", "iam:CreateAccessKey"],
        Target::User
    ),
    t!(
        "iam-019",
        ["iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"],
        Target::Role
    ),
    t!(
        "iam-020",
        ["iam:CreatePolicyVersion", "iam:UpdateAssumeRolePolicy"],
        Target::Role
    ),
    t!(
        "iam-021",
        ["iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy"],
        Target::Role
    ),
    t!(
        "lambda-001",
        [
            "iam:PassRole",
            "lambda:CreateFunction",
            "lambda:InvokeFunction"
        ],
        Target::PassRole(LAMBDA)
    ),
    t!(
        "lambda-002",
        [
            "iam:PassRole",
            "lambda:CreateFunction",
            "lambda:CreateEventSourceMapping"
        ],
        Target::PassRole(LAMBDA)
    ),
    t!(
        "lambda-003",
        ["lambda:UpdateFunctionCode"],
        Target::ExistingWorkload(LAMBDA)
    ),
    t!(
        "lambda-004",
        ["lambda:UpdateFunctionCode", "lambda:InvokeFunction"],
        Target::ExistingWorkload(LAMBDA)
    ),
    t!(
        "lambda-005",
        ["lambda:UpdateFunctionCode", "lambda:AddPermission"],
        Target::ExistingWorkload(LAMBDA)
    ),
    t!(
        "lambda-006",
        [
            "iam:PassRole",
            "lambda:CreateFunction",
            "lambda:AddPermission"
        ],
        Target::PassRole(LAMBDA)
    ),
    t!(
        "sagemaker-001",
        ["iam:PassRole", "sagemaker:CreateNotebookInstance"],
        Target::PassRole(SAGEMAKER)
    ),
    t!(
        "sagemaker-002",
        ["iam:PassRole", "sagemaker:CreateTrainingJob"],
        Target::PassRole(SAGEMAKER)
    ),
    t!(
        "sagemaker-003",
        ["iam:PassRole", "sagemaker:CreateProcessingJob"],
        Target::PassRole(SAGEMAKER)
    ),
    t!(
        "sagemaker-004",
        ["sagemaker:CreatePresignedNotebookInstanceUrl"],
        Target::ExistingWorkload(SAGEMAKER)
    ),
    t!(
        "sagemaker-005",
        [
            "sagemaker:CreateNotebookInstanceLifecycleConfig",
            "sagemaker:StopNotebookInstance",
            "sagemaker:UpdateNotebookInstance",
            "sagemaker:StartNotebookInstance"
        ],
        Target::ExistingWorkload(SAGEMAKER)
    ),
    t!(
        "ssm-001",
        ["ssm:StartSession"],
        Target::ExistingWorkload(EC2)
    ),
    t!(
        "ssm-002",
        ["ssm:SendCommand"],
        Target::ExistingWorkload(EC2)
    ),
    t!(
        SET_DEFAULT_VERSION,
        ["iam:SetDefaultPolicyVersion"],
        Target::SelfPolicy
    ),
    t!("sts-001", ["sts:AssumeRole"], Target::Role),
];

pub fn technique(id: &str) -> Option<&'static Technique> {
    TECHNIQUES.iter().find(|t| t.id == id)
}

/// Keyward's own technique, absent from the catalogue: making an existing, more
/// privileged version of a customer-managed policy attached to oneself the default.
pub const SET_DEFAULT_VERSION: &str = "kw-iam-001";

/// Actions a full administrator can perform on any resource; a principal allowed all of
/// them is treated as admin-equivalent.
pub(crate) const ADMIN_PROBES: [&str; 6] = [
    "iam:CreateUser",
    "iam:AttachRolePolicy",
    "ec2:RunInstances",
    "s3:GetObject",
    "kms:Decrypt",
    "organizations:LeaveOrganization",
];

/// One escalation step from a principal (or from every member of a group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub technique: &'static str,
    pub from: String,
    /// The principal reached (the same one for self-escalation).
    pub to: String,
    /// The step ends with admin-equivalent power: the target is admin, or the technique
    /// lets the attacker grant it admin (self-escalation, writing the target's policies).
    pub reaches_admin: bool,
    /// Condition keys that must take the right values for the step to work.
    pub conditional: BTreeSet<String>,
    /// The step relies on an existing workload of the target's service running as it.
    pub via_existing_workload: bool,
    /// What a self-escalation acts on when that is not the principal itself: the group
    /// joined or written, the policy whose version is set or created.
    pub via: Option<String>,
}

/// A multi-hop path from a principal to an admin-equivalent one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    pub steps: Vec<Step>,
}

struct Account<'s> {
    snap: &'s Snapshot,
    principals: BTreeMap<String, PrincipalPolicies>,
    /// Groups by canonical id, each as a subject holding only the group's policies.
    groups: BTreeMap<String, PrincipalPolicies>,
    admin: BTreeSet<String>,
    /// Service principal → roles whose trust policy lets it assume them (with open keys).
    service_roles: BTreeMap<&'static str, Vec<(String, BTreeSet<String>)>>,
    /// What the analysis knows of every request (the time, when given).
    ctx: Context,
}

/// Whether `p` could be allowed `action` at all (see [`super::policy::Policy::may_allow`]).
fn may(p: &PrincipalPolicies, action: &str) -> bool {
    p.identity.iter().any(|s| s.policy.may_allow(action))
        && p.boundary
            .as_ref()
            .is_none_or(|b| b.policy.may_allow(action))
        && p.org.as_ref().is_none_or(|g| g.may_allow(action))
}

/// The decision of `p`'s identity policies and permissions boundary, capped by its
/// account's guardrails (SCPs and RCPs: an allow they stop is an implicit deny).
pub(crate) fn decide(
    p: &PrincipalPolicies,
    action: &str,
    resource: &str,
    ctx: &Context,
) -> Decision {
    let boundary = p.boundary.as_ref().map(|b| &b.policy);
    let d = evaluate(
        &p.identity_policies(),
        boundary,
        &Request {
            action,
            resource,
            principal: None,
            context: ctx,
        },
    )
    .decision;
    capped(p, d, action, resource, ctx)
}

/// Decision `d` of `p`'s own policies, capped by its account's guardrails.
pub(crate) fn capped(
    p: &PrincipalPolicies,
    d: Decision,
    action: &str,
    resource: &str,
    ctx: &Context,
) -> Decision {
    let Some(g) = p.org.as_ref().filter(|_| d.possibly_allowed()) else {
        return d;
    };
    match (g.check(action, resource, ctx), d) {
        (Err(_), _) => Decision::ImplicitDeny,
        (Ok(k), Decision::Allow) if k.is_empty() => Decision::Allow,
        (Ok(k), Decision::Allow) => Decision::ConditionalAllow(k),
        (Ok(k), Decision::ConditionalAllow(mut keys)) => {
            keys.extend(k);
            Decision::ConditionalAllow(keys)
        }
        (Ok(_), d @ (Decision::ExplicitDeny | Decision::ImplicitDeny)) => d,
    }
}

/// All of `actions` on `resource` (the `iam:PassRole` one on `pass_to`): `None` if any is
/// denied, else the condition keys that stay open.
fn allowed_all(
    p: &PrincipalPolicies,
    actions: &[&str],
    (resource, pass_to): (&str, &str),
    ctx: &Context,
) -> Option<BTreeSet<String>> {
    let mut keys = BTreeSet::new();
    for a in actions {
        let r = if a.eq_ignore_ascii_case("iam:PassRole") {
            pass_to
        } else {
            resource
        };
        match decide(p, a, r, ctx) {
            Decision::Allow => {}
            Decision::ConditionalAllow(k) => keys.extend(k),
            Decision::ExplicitDeny | Decision::ImplicitDeny => return None,
        }
    }
    Some(keys)
}

/// Customer-managed policies that apply to a principal (AWS-managed ones cannot be edited).
fn customer_managed(p: &PrincipalPolicies) -> Vec<String> {
    p.identity
        .iter()
        .filter_map(|s| {
            s.source
                .rsplit_once("managed:")
                .map(|(_, arn)| arn.to_owned())
        })
        .filter(|arn| !arn.starts_with("arn:aws:iam::aws:policy/"))
        .collect()
}

fn is_admin(p: &PrincipalPolicies, ctx: &Context) -> bool {
    ADMIN_PROBES
        .iter()
        .all(|a| decide(p, a, "*", ctx).allowed())
}

fn kind_of(arn: &str) -> &str {
    ids::Arn::parse(arn)
        .and_then(|a| a.type_and_name())
        .map_or("", |(t, _)| t)
}

fn account_of(p: &PrincipalPolicies) -> String {
    ids::Arn::parse(&p.arn)
        .map(|a| a.account.to_owned())
        .unwrap_or_default()
}

fn trusts(
    role: &PrincipalPolicies,
    who: &PrincipalRef,
    action: &str,
    ctx: &Context,
) -> Option<BTreeSet<String>> {
    let trust = role.trust.as_ref()?;
    match evaluate_trust(trust, &role.arn, who, action, ctx).decision {
        Decision::Allow => Some(BTreeSet::new()),
        Decision::ConditionalAllow(k) => Some(k),
        Decision::ExplicitDeny | Decision::ImplicitDeny => None,
    }
}

/// `p` with `extra`'s identity policies added as a group's (joining group `group`).
fn joined(p: &PrincipalPolicies, group: &str, extra: &PrincipalPolicies) -> PrincipalPolicies {
    let mut q = p.clone();
    q.groups.push(group.to_owned());
    q.identity.extend(extra.identity.iter().map(|s| Sourced {
        source: format!("group:{group}/{}", s.source),
        policy: s.policy.clone(),
    }));
    q
}

/// The name of a group from its ARN.
fn group_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl<'s> Account<'s> {
    fn new(snap: &'s Snapshot, ctx: Context) -> Self {
        let principals = snap.principals();
        let groups = snap
            .groups()
            .into_iter()
            .filter_map(|g| ids::canonical_iam_arn(&g.arn).map(|id| (id, g)))
            .collect();
        let admin = principals
            .iter()
            .filter(|(_, p)| is_admin(p, &ctx))
            .map(|(id, _)| id.clone())
            .collect();
        let mut service_roles: BTreeMap<&'static str, Vec<(String, BTreeSet<String>)>> =
            BTreeMap::new();
        for t in TECHNIQUES {
            if let Target::PassRole(services) | Target::ExistingWorkload(services) = t.target {
                for &svc in services {
                    service_roles.entry(svc).or_insert_with(|| {
                        let who = PrincipalRef::Service(svc.to_owned());
                        principals
                            .iter()
                            .filter(|(id, r)| kind_of(id) == "role" && !r.is_service_linked())
                            .filter_map(|(id, r)| {
                                trusts(r, &who, "sts:AssumeRole", &ctx).map(|k| (id.clone(), k))
                            })
                            .collect()
                    });
                }
            }
        }
        Account {
            snap,
            principals,
            groups,
            admin,
            service_roles,
            ctx,
        }
    }

    /// Steps from principal (or group) `id`, holding policies `p`, by one technique.
    fn steps(&self, id: &str, p: &PrincipalPolicies, t: &Technique) -> Vec<Step> {
        if !t.actions.iter().all(|a| may(p, a)) {
            return Vec::new();
        }
        let step = |to: &str, conditional: BTreeSet<String>, existing: bool| Step {
            technique: t.id,
            from: id.to_owned(),
            to: to.to_owned(),
            reaches_admin: false,
            conditional,
            via_existing_workload: existing,
            via: None,
        };
        match t.target {
            Target::SelfPolicy => self
                .self_resources(id, p, t.id)
                .into_iter()
                .find_map(|(resource, via)| {
                    let k = allowed_all(p, t.actions, (&resource, &resource), &self.ctx)?;
                    Some(Step {
                        via,
                        ..step(id, k, false)
                    })
                })
                .into_iter()
                .collect(),
            // Taking over a non-admin user only helps if the technique also grants it
            // policies (iam-015, iam-018); otherwise it is a lateral move.
            Target::User => self
                .principals
                .iter()
                .filter(|(u, _)| u.as_str() != id && kind_of(u) == "user")
                .filter_map(|(uid, u)| {
                    let k = allowed_all(p, t.actions, (&u.arn, &u.arn), &self.ctx)?;
                    Some(step(uid, k, false))
                })
                .collect(),
            Target::Role => self.role_steps(id, p, t, step),
            Target::PassRole(services) | Target::ExistingWorkload(services) => {
                let existing = matches!(t.target, Target::ExistingWorkload(_));
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                let candidates = services
                    .iter()
                    .filter_map(|s| self.service_roles.get(s))
                    .flatten();
                for (rid, tk) in candidates {
                    let Some(r) = self.principals.get(rid) else {
                        continue;
                    };
                    if !seen.insert(rid) {
                        continue;
                    }
                    if let Some(mut k) = allowed_all(p, t.actions, ("*", &r.arn), &self.ctx) {
                        k.extend(tk.iter().cloned());
                        out.push(step(rid, k, existing));
                    }
                }
                out
            }
        }
    }

    /// Steps to the roles `p` can act on by `t` and then assume (or, rewriting the trust
    /// policy, make itself able to assume). Service-linked roles are never targets.
    fn role_steps(
        &self,
        id: &str,
        p: &PrincipalPolicies,
        t: &Technique,
        step: impl Fn(&str, BTreeSet<String>, bool) -> Step,
    ) -> Vec<Step> {
        let me = PrincipalRef::Aws {
            account: account_of(p),
            arn: p.arn.clone(),
        };
        let rewrites_trust = t.actions.contains(&"iam:UpdateAssumeRolePolicy");
        let mut out = Vec::new();
        for (rid, r) in self
            .principals
            .iter()
            .filter(|(r, p)| r.as_str() != id && kind_of(r) == "role" && !p.is_service_linked())
        {
            let Some(mut k) = self.allowed_on_role(p, t.actions, r) else {
                continue;
            };
            if !rewrites_trust {
                // `sts:AssumeRole` also needs the role's trust policy to allow us.
                match trusts(r, &me, "sts:AssumeRole", &self.ctx) {
                    Some(tk) => k.extend(tk),
                    None => continue,
                }
            }
            out.push(step(rid, k, false));
        }
        out
    }

    /// All `actions` against role `r`: `iam:CreatePolicyVersion` acts on a customer-managed
    /// policy attached to the role, everything else on the role itself.
    fn allowed_on_role(
        &self,
        p: &PrincipalPolicies,
        actions: &[&str],
        r: &PrincipalPolicies,
    ) -> Option<BTreeSet<String>> {
        let (versioned, direct): (Vec<&str>, Vec<&str>) = actions
            .iter()
            .partition(|a| a.eq_ignore_ascii_case("iam:CreatePolicyVersion"));
        let mut keys = allowed_all(p, &direct, (&r.arn, &r.arn), &self.ctx)?;
        if !versioned.is_empty() {
            let policies = customer_managed(r);
            let k = policies
                .iter()
                .find_map(|arn| allowed_all(p, &versioned, (arn, arn), &self.ctx))?;
            keys.extend(k);
        }
        Some(keys)
    }

    /// What a self-escalation technique acts on, with what to report it acted on: the
    /// principal itself, a managed policy attached to it, a group it is in, or (joining a
    /// group) a group that gives it more power. A group subject stands for every member.
    fn self_resources(
        &self,
        id: &str,
        p: &PrincipalPolicies,
        technique: &str,
    ) -> Vec<(String, Option<String>)> {
        let kind = kind_of(id);
        let me = || vec![(p.arn.clone(), None)];
        let via = |arns: Vec<String>| arns.into_iter().map(|a| (a.clone(), Some(a))).collect();
        match (technique, kind) {
            ("iam-001", _) => via(customer_managed(p)),
            (SET_DEFAULT_VERSION, _) => via(self.better_versions(id, p)),
            ("iam-005" | "iam-009", "role") => me(),
            ("iam-007" | "iam-008", "user") => me(),
            // Every member: a resource pattern must cover every user to cover them all.
            ("iam-007" | "iam-008", "group") => {
                vec![(format!("arn:aws:iam::{}:user/*", account_of(p)), None)]
            }
            ("iam-010" | "iam-011", "user") => via(self.own_groups(p)),
            ("iam-010" | "iam-011", "group") => me(),
            ("iam-013", "user" | "group") => via(self.better_groups(id, p)),
            _ => Vec::new(),
        }
    }

    /// The ARNs of the groups `p` is a member of.
    fn own_groups(&self, p: &PrincipalPolicies) -> Vec<String> {
        let account = account_of(p);
        p.groups
            .iter()
            .map(|g| {
                let id = ids::iam(&account, "group", g);
                self.groups.get(&id).map_or(id, |g| g.arn.clone())
            })
            .collect()
    }

    /// Groups `p` is not in whose policies, added to its own, make it admin-equivalent
    /// or let it reach admin in one more step (joining a group escalates only to what the
    /// group can do).
    fn better_groups(&self, id: &str, p: &PrincipalPolicies) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(gid, g)| {
                gid.as_str() != id
                    && !p.groups.iter().any(|m| m == group_name(&g.arn))
                    && self.becomes_admin(id, &joined(p, group_name(&g.arn), g))
            })
            .map(|(_, g)| g.arn.clone())
            .collect()
    }

    /// Customer-managed policies attached to `p` with a non-default version that, made
    /// the default, makes `p` admin-equivalent or lets it reach admin in one more step.
    fn better_versions(&self, id: &str, p: &PrincipalPolicies) -> Vec<String> {
        let mut out = Vec::new();
        for arn in customer_managed(p) {
            let versions = self.snap.other_versions(&arn);
            let better = versions.into_iter().any(|(_, version)| {
                let mut q = p.clone();
                for s in q.identity.iter_mut().filter(|s| s.source.ends_with(&arn)) {
                    s.policy = version.clone();
                }
                self.becomes_admin(id, &q)
            });
            if better && !out.contains(&arn) {
                out.push(arn);
            }
        }
        out
    }

    /// Whether `q` (a changed `id`) is admin-equivalent or has a one-step path to admin
    /// by a technique that does not itself change what `q` holds.
    fn becomes_admin(&self, id: &str, q: &PrincipalPolicies) -> bool {
        is_admin(q, &self.ctx)
            || TECHNIQUES
                .iter()
                .filter(|t| !matches!(t.id, "iam-013" | SET_DEFAULT_VERSION))
                .any(|t| self.steps(id, q, t).iter().any(|s| self.reaches_admin(s)))
    }

    /// Whether reaching `to` by `step` gives admin power.
    fn reaches_admin(&self, step: &Step) -> bool {
        match technique(step.technique).map(|t| t.target) {
            // Self-escalation writes an admin policy for itself (or joins a group, or sets
            // a policy version, only when that gives admin); so do the user/role
            // techniques that grant policies to the target.
            Some(Target::SelfPolicy) => true,
            Some(Target::User | Target::Role)
                if technique(step.technique).is_some_and(|t| {
                    t.actions
                        .iter()
                        .any(|a| a.contains("Policy") && !a.contains("AssumeRole"))
                }) =>
            {
                true
            }
            _ => self.admin.contains(&step.to),
        }
    }

    /// Every step from subject `id` holding `p`, with whether it reaches admin.
    fn all_steps(&self, id: &str, p: &PrincipalPolicies) -> Vec<Step> {
        let mut out = Vec::new();
        for t in TECHNIQUES {
            for mut s in self.steps(id, p, t) {
                s.reaches_admin = self.reaches_admin(&s);
                out.push(s);
            }
        }
        out
    }
}

/// Escalation analysis of one account snapshot.
pub struct Analysis {
    /// Admin-equivalent principals as found.
    pub admins: BTreeSet<String>,
    /// Every single step found, from every principal.
    pub steps: Vec<Step>,
    /// Steps every member of a group can take by the group's policies alone (`from` is
    /// the group's canonical id).
    pub group_steps: Vec<Step>,
    /// Groups whose policies alone make every member admin-equivalent.
    pub admin_groups: BTreeSet<String>,
}

impl Analysis {
    /// The analysis with nothing known of the time: conditions on it stay open.
    pub fn run(snap: &Snapshot) -> Analysis {
        Self::with(snap, Context::default())
    }

    /// The analysis at `now`: conditions on `aws:CurrentTime`, `aws:EpochTime` and
    /// `aws:TokenIssueTime` are decided, so a grant that has expired grants nothing.
    pub fn run_at(snap: &Snapshot, now: Millis) -> Analysis {
        let mut ctx = Context::default();
        ctx.at(now);
        Self::with(snap, ctx)
    }

    fn with(snap: &Snapshot, ctx: Context) -> Analysis {
        let account = Account::new(snap, ctx);
        let mut steps = Vec::new();
        // Admin-equivalent principals have nothing to escalate to; service-linked roles
        // are AWS's to use, never a starting point.
        for (id, p) in account
            .principals
            .iter()
            .filter(|(id, p)| !account.admin.contains(*id) && !p.is_service_linked())
        {
            steps.extend(account.all_steps(id, p));
        }
        let mut group_steps = Vec::new();
        let mut admin_groups = BTreeSet::new();
        for (id, g) in &account.groups {
            if is_admin(g, &account.ctx) {
                admin_groups.insert(id.clone());
            } else {
                group_steps.extend(account.all_steps(id, g));
            }
        }
        Analysis {
            admins: account.admin,
            steps,
            group_steps,
            admin_groups,
        }
    }

    /// The shortest escalation path from `from` (a principal, or a group for what every
    /// member can do) to admin-equivalent power, if any.
    pub fn path_to_admin(&self, from: &str) -> Option<Path> {
        if self.admins.contains(from) || self.admin_groups.contains(from) {
            return Some(Path { steps: Vec::new() });
        }
        // Breadth-first over "becomes" steps; the first step that reaches admin ends the
        // search, so the path found is a shortest one.
        let mut prev: BTreeMap<String, &Step> = BTreeMap::new();
        let mut queue = VecDeque::from([from.to_owned()]);
        let mut seen = BTreeSet::from([from.to_owned()]);
        while let Some(cur) = queue.pop_front() {
            for s in self
                .steps
                .iter()
                .chain(&self.group_steps)
                .filter(|s| s.from == cur)
            {
                if s.reaches_admin {
                    let mut steps = vec![s.clone()];
                    let mut at = cur.clone();
                    while at != from {
                        let Some(p) = prev.get(&at) else { break };
                        steps.push((*p).clone());
                        at = p.from.clone();
                    }
                    steps.reverse();
                    return Some(Path { steps });
                }
                if seen.insert(s.to.clone()) {
                    prev.insert(s.to.clone(), s);
                    queue.push_back(s.to.clone());
                }
            }
        }
        None
    }
}
