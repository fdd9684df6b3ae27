#!/usr/bin/env python3
"""Benign-noise benchmark estate for Keyward (issue 24's quality bar).

Writes a three-week AWS + EKS estate of a fictitious company ("acme") laid out the way a
user drops exports into a directory:

  aws/111122223333/iam-authorization-details.json     aws iam get-account-authorization-details
  aws/111122223333/credential-report.csv              aws iam get-credential-report (decoded)
  aws/AWSLogs/111122223333/CloudTrail/<region>/YYYY/MM/DD/*.json.gz
                                                      CloudTrail S3 delivery ({"Records": [...]})
  k8s/rbac.json                                       kubectl get serviceaccounts,roles,rolebindings,
                                                      clusterroles,clusterrolebindings,pods,
                                                      deployments,secrets -A -o json
  k8s/audit/audit.log                                 kube-apiserver audit log (audit.k8s.io/v1 Event lines)
  repo/infra/iam.tf, repo/.github/CODEOWNERS          the Terraform that defines the application roles
  directory/people.csv                                HR export of current staff
                                                      (email,name,team,status,github_login;
                                                      statuses active / on_leave; leavers absent)
  truth.json                                          ground truth: planted incidents, posture per category

Routine workloads (the benign noise): EKS node groups and message brokers whose instance
credentials call EC2 describe APIs from public addresses; cluster add-ons that list and
watch secrets cluster-wide (cert-manager, ingress-nginx, kube-state-metrics,
kubernetes-dashboard, velero); a workflow scheduler that execs into its workers; CI
(GitHub Actions OIDC roles, a Jenkins IAM user with keys used by parallel runners,
Terraform plan/apply) deploying on weekdays, a team that deploys on weekends, tagged
releases; monitoring (Prometheus exporter, a monitoring SaaS assuming a role every 10
minutes); nightly batches reading the same buckets; approved partner accounts assuming
roles cross-account. Days 0-13 are a clean training window; 12 incidents are planted in
days 14-20.

Everything is fictitious. Python 3.11, stdlib only; deterministic (fixed seed, gzip
mtime=0): the same arguments give the same bytes.

    python3 examples/quality/generate.py [--out DIR] [--scale 1.0]
"""
import argparse
import base64
import csv
import gzip
import io
import json
import os
import random
import shutil
import sys
import uuid
from datetime import datetime, timedelta, timezone

SEED = 20261124
R = random.Random(SEED)
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import estate_formats
from estate_formats import (ALNUM, B32, account_from_key, ampm, uid, rand_str, ct, cli, sts_exp, k8s_us, k8s_s, jit, d,
                            doc, allow)

estate_formats.R = R
UTC = timezone.utc

PROD = "111122223333"
TOOLING = "444455556666"          # our own CI account (approved)
PARTNER_MON = "210987654321"      # monitoring SaaS (approved partner)
PARTNER_BACKUP = "310987654321"   # backup vendor (approved partner)
PARTNER_AUDIT = "410987654321"    # external auditor (approved partner)
UNKNOWN = "999988887777"          # nobody we know
ATTACKER_TRUST = "777766665555"   # account written into a trust policy by an incident
APPROVED = [TOOLING, PARTNER_MON, PARTNER_BACKUP, PARTNER_AUDIT]

US = "us-east-1"
CLUSTER = "prod-eks"
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
NDAYS = 21
TRAIN_DAYS = 14
DAYS = [START + timedelta(days=i) for i in range(NDAYS)]
# When the credential report was exported: the start of the third week, before the incidents.
REPORT_AT = DAYS[14]
END = START + timedelta(days=NDAYS) - timedelta(minutes=10)
SNAPSHOT = START + timedelta(days=NDAYS, hours=6, minutes=12)
SCALE = 1.0

EKS_OIDC_HOST = "oidc.eks.us-east-1.amazonaws.com/id/5C3B1F0E9D8A7C6B5A4F3E2D1C0B9A87"
EKS_OIDC_ARN = f"arn:aws:iam::{PROD}:oidc-provider/{EKS_OIDC_HOST}"
GH_HOST = "token.actions.githubusercontent.com"
GH_OIDC_ARN = f"arn:aws:iam::{PROD}:oidc-provider/{GH_HOST}"
SAML_ARN = f"arn:aws:iam::{PROD}:saml-provider/Okta"

# ---------------------------------------------------------------------------
# ids and time formats (the patterns of examples/generate_estate.py)
# ---------------------------------------------------------------------------


def _encoded16(account):
    z = (int(account) << 7) | R.getrandbits(7)
    return base64.b32encode(z.to_bytes(6, "big") + R.randbytes(4)).decode()


def make_key(prefix, account=PROD):
    k = prefix + _encoded16(account)
    assert len(k) == 20 and account_from_key(k) == account, k
    return k


def make_uid(prefix, account=PROD):
    k = prefix + _encoded16(account) + R.choice(B32)
    assert len(k) == 21
    return k


def hexs(n):
    return "%0*x" % (n, R.getrandbits(4 * n))


def session_token():
    return "IQoJb3JpZ2luX2Vj" + base64.b64encode(R.randbytes(120)).decode()


def at(day, h, m=0, s=0):
    return day + timedelta(hours=h, minutes=m, seconds=s)


def rand_time(day, lo_h, hi_h):
    return day + timedelta(seconds=R.randrange(int(lo_h * 3600), int(hi_h * 3600)))


def every(day, minutes, jitter=60, lo_h=0, hi_h=24):
    """Times through the day every `minutes` (scaled), each jittered by up to `jitter` s."""
    step = max(1.0, minutes / SCALE) * 60
    t = lo_h * 3600 + R.uniform(0, step)
    out = []
    while t < hi_h * 3600:
        tt = day + timedelta(seconds=int(t) + R.randint(0, jitter))
        if tt <= END:
            out.append(tt)
        t += step
    return out


def n_scaled(n):
    x = n * SCALE
    return int(x) + (1 if R.random() < x - int(x) else 0)


def pub_ip(block, i):
    return f"{block}.{i}"


# ---------------------------------------------------------------------------
# people
# ---------------------------------------------------------------------------
FIRST = ["alice", "bruno", "carol", "dmitri", "erin", "farah", "gus", "hana", "ivan", "jules", "kemal",
         "lena", "marco", "nadia", "oscar", "priya", "quentin", "rosa", "sven", "tariq", "uma", "victor",
         "wen", "xavier", "yara", "zoe", "amir", "bea", "chen", "dara", "eli", "fatou", "goran", "hiro",
         "ines", "jonas", "kira", "luca", "mei", "nils", "olga", "pablo", "rui", "sara", "tom", "ula",
         "vera", "will", "yusuf", "zara", "anton", "bianca", "cyril", "dina", "emil", "flora"]
LAST = ["moreau", "lindqvist", "nguyen", "okafor", "walsh", "haddad", "berg", "sato", "petrov", "martin",
        "demir", "fischer", "rossi", "karimi", "ortega", "iyer", "dupont", "silva", "nilsen", "aziz"]
TEAMS = ["platform", "payments", "orders", "data", "search", "identity", "web", "security", "sre", "ml"]


def build_people():
    people = []
    for i, f in enumerate(FIRST):
        last = LAST[i % len(LAST)]
        people.append({"email": f"{f}.{last}@acme.example", "name": f"{f.title()} {last.title()}",
                       "team": TEAMS[i % len(TEAMS)], "github_login": f"{f}{last[:2]}-acme", "status": "active"})
    return people


PEOPLE = build_people()
LEAVERS = [PEOPLE[i]["email"] for i in (1, 8, 14, 22, 32)]   # left: absent from the HR export
ON_LEAVE = [PEOPLE[i]["email"] for i in (7, 38, 44)]          # still here, status on_leave
for p in PEOPLE:
    if p["email"] in ON_LEAVE:
        p["status"] = "on_leave"
STAFF = [p for p in PEOPLE if p["email"] not in LEAVERS]
TEAM_OWNER = {}
for p in STAFF:
    if p["status"] == "active":
        TEAM_OWNER.setdefault(p["team"], p["email"])


def owner_for(team):
    return TEAM_OWNER[team]


# ---------------------------------------------------------------------------
# IAM model
# ---------------------------------------------------------------------------
def svc_trust(svc):
    return doc({"Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"})


def irsa_trust(ns, sa):
    return doc({"Effect": "Allow", "Principal": {"Federated": EKS_OIDC_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{EKS_OIDC_HOST}:sub": f"system:serviceaccount:{ns}:{sa}",
                                               f"{EKS_OIDC_HOST}:aud": "sts.amazonaws.com"}}})


def gh_trust(repo):
    return doc({"Effect": "Allow", "Principal": {"Federated": GH_OIDC_ARN},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{GH_HOST}:aud": "sts.amazonaws.com"},
                              "StringLike": {f"{GH_HOST}:sub": f"repo:{repo}:*"}}})


def account_trust(account, external_id=None):
    s = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
    if external_id:
        s["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return doc(s)


AWS_MANAGED = {
    "AdministratorAccess": ("/", doc(allow("*"))),
    "ReadOnlyAccess": ("/", doc(allow(["ec2:Describe*", "s3:Get*", "s3:List*", "iam:Get*", "iam:List*",
                                       "rds:Describe*", "eks:Describe*", "eks:List*", "logs:Describe*",
                                       "cloudwatch:Get*", "cloudwatch:List*", "sqs:Get*", "sqs:List*",
                                       "dynamodb:Describe*", "dynamodb:List*", "lambda:List*", "lambda:Get*"]))),
    "AmazonEKSWorkerNodePolicy": ("/", doc(allow(["ec2:DescribeInstances", "ec2:DescribeInstanceTypes",
                                                  "ec2:DescribeRouteTables", "ec2:DescribeSecurityGroups",
                                                  "ec2:DescribeSubnets", "ec2:DescribeVolumes", "ec2:DescribeVpcs",
                                                  "eks:DescribeCluster"]))),
    "AmazonEKS_CNI_Policy": ("/", doc(allow(["ec2:AssignPrivateIpAddresses", "ec2:AttachNetworkInterface",
                                             "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface",
                                             "ec2:DescribeInstances", "ec2:DescribeTags",
                                             "ec2:DescribeNetworkInterfaces", "ec2:DescribeInstanceTypes",
                                             "ec2:DetachNetworkInterface", "ec2:ModifyNetworkInterfaceAttribute",
                                             "ec2:UnassignPrivateIpAddresses"]))),
    "AmazonEC2ContainerRegistryReadOnly": ("/", doc(allow(["ecr:GetAuthorizationToken",
                                                           "ecr:BatchCheckLayerAvailability",
                                                           "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]))),
    "AmazonSSMManagedInstanceCore": ("/", doc(allow(["ssm:UpdateInstanceInformation", "ssm:GetParameters",
                                                     "ssmmessages:*", "ec2messages:*"]))),
    "AWSLambdaBasicExecutionRole": ("/service-role/", doc(allow(["logs:CreateLogGroup", "logs:CreateLogStream",
                                                                 "logs:PutLogEvents"]))),
    "CloudWatchReadOnlyAccess": ("/", doc(allow(["cloudwatch:Describe*", "cloudwatch:Get*", "cloudwatch:List*",
                                                 "logs:Get*", "logs:Describe*", "tag:GetResources"]))),
    "SecurityAudit": ("/job-function/", doc(allow(["iam:Get*", "iam:List*", "iam:GenerateCredentialReport",
                                                   "ec2:Describe*", "s3:GetBucket*", "cloudtrail:Describe*",
                                                   "cloudtrail:GetTrailStatus"]))),
    "AWSBackupServiceRolePolicyForBackup": ("/service-role/", doc(allow(["ec2:CreateSnapshot", "ec2:DescribeVolumes",
                                                                         "ec2:DescribeSnapshots", "rds:CreateDBSnapshot",
                                                                         "rds:DescribeDBSnapshots"]))),
    "AWSServiceRoleForAutoScalingPolicy": ("/aws-service-role/", doc(allow(["ec2:RunInstances", "ec2:TerminateInstances",
                                                                            "ec2:Describe*", "elasticloadbalancing:Register*"]))),
}


def aws_managed_arn(name):
    return f"arn:aws:iam::aws:policy{AWS_MANAGED[name][0]}{name}"


LOCAL_POLICIES = {}  # name -> doc


def local_policy(name, document):
    LOCAL_POLICIES[name] = document
    return name


ROLES = {}
USERS = {}
GROUPS = {}
TRUTH_POSTURE = {"admin_wildcard": set(), "stale": set(), "orphaned": set(), "escalation": set()}
NEUTRAL = {"admin_wildcard": set(), "stale": set(), "orphaned": set(), "escalation": set()}
LAST_USED = {}   # canonical id or key id -> (t, region, service)
REPORTED_LAST_USED = {}  # the same, as the credential report (taken at REPORT_AT) shows it


def role_id(name):
    return f"arn:aws:iam::{PROD}:role/{name}"


def user_id(name):
    return f"arn:aws:iam::{PROD}:user/{name}"


def sa_id(ns, name, cluster=CLUSTER):
    return f"k8s:{cluster}/system:serviceaccount:{ns}:{name}"


def add_role(name, trust, created, managed=(), inline=(), owner=None, team=None, path="/", slr=False,
             instance_profile=False, last_used=None, extra_tags=None, desc=None):
    tags = []
    if team:
        tags.append({"Key": "team", "Value": team})
    if owner:
        tags.append({"Key": "owner", "Value": owner})
    for k, v in (extra_tags or {}).items():
        tags.append({"Key": k, "Value": v})
    r = {"name": name, "id": make_uid("AROA"), "arn": f"arn:aws:iam::{PROD}:role{path}{name}", "path": path,
         "created": created, "trust": trust, "managed": list(managed), "inline": list(inline), "tags": tags,
         "slr": slr, "instance_profile": instance_profile, "preset_last_used": last_used, "owner": owner,
         "desc": desc}
    ROLES[name] = r
    return r


def add_user(name, created, managed=(), inline=(), groups=(), owner=None, team=None, keys=(), password=False,
             path="/"):
    tags = []
    if team:
        tags.append({"Key": "team", "Value": team})
    if owner:
        tags.append({"Key": "owner", "Value": owner})
    u = {"name": name, "id": make_uid("AIDA"), "arn": f"arn:aws:iam::{PROD}:user{path}{name}", "path": path,
         "created": created, "managed": list(managed), "inline": list(inline), "groups": list(groups),
         "tags": tags, "keys": [], "password": password, "owner": owner}
    for k in keys:  # (created, preset_last_used or None)
        u["keys"].append({"id": make_key("AKIA"), "created": k[0], "preset_last_used": k[1]})
    USERS[name] = u
    return u


def touch(ident_id, t, region=US, service="sts"):
    lu = LAST_USED.get(ident_id)
    if lu is None or t > lu[0]:
        LAST_USED[ident_id] = (t, region, service)
    # The credential report is the weekly export taken as the third week starts.
    lu = REPORTED_LAST_USED.get(ident_id)
    if t < REPORT_AT and (lu is None or t > lu[0]):
        REPORTED_LAST_USED[ident_id] = (t, region, service)


# ---------------------------------------------------------------------------
# CloudTrail records
# ---------------------------------------------------------------------------
EVENTS = []  # (t, region, json) of the day being generated
READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "BatchGet", "Decrypt", "GenerateDataKey", "Head")
COUNTS = {"cloudtrail": 0, "audit": 0}


def host_for(source, region):
    svc = source.split(".")[0]
    if svc in ("iam", "s3", "route53", "cloudfront"):
        return source
    return f"{svc}.{region}.amazonaws.com"


def ev(t, ident, source, name, region=US, ip=None, ua=None, req=None, resp=None, ro=None, err=None,
       resources=None, shared=False, tls=True, data=False, addl=None, vpce=None, recipient=PROD):
    if ro is None:
        ro = name.startswith(READ_PREFIXES)
    r = {"eventVersion": "1.09", "userIdentity": ident, "eventTime": ct(t), "eventSource": source,
         "eventName": name, "awsRegion": region, "sourceIPAddress": ip, "userAgent": ua}
    if err:
        r["errorCode"] = err[0]
        r["errorMessage"] = err[1]
    r["requestParameters"] = req
    r["responseElements"] = resp
    if addl is not None:
        r["additionalEventData"] = addl
    r["requestID"] = uid()
    r["eventID"] = uid()
    r["readOnly"] = ro
    if resources:
        r["resources"] = resources
    r["eventType"] = "AwsApiCall"
    r["managementEvent"] = not data
    r["recipientAccountId"] = recipient
    if shared:
        r["sharedEventID"] = uid()
    if vpce:
        r["vpcEndpointId"] = vpce
        r["vpcEndpointAccountId"] = PROD
    r["eventCategory"] = "Data" if data else "Management"
    if tls:
        r["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": host_for(source, region)}
    EVENTS.append((t, region, r))
    # last use of the principal and its key (for RoleLastUsed and the credential report)
    if not err:
        ty = ident.get("type")
        svc = source.split(".")[0]
        if ty == "IAMUser":
            touch(ident["accessKeyId"], t, region, svc)
            touch(user_id(ident["userName"]), t, region, svc)
        elif ty == "AssumedRole":
            touch(role_id(ident["sessionContext"]["sessionIssuer"]["userName"]), t, region, svc)
        if name.startswith("AssumeRole") and req and "roleArn" in req:
            touch(role_id(req["roleArn"].rsplit("/", 1)[1]), t, region, "sts")
    return r


class Session:
    def __init__(self, role, name, created, ec2=False, web=None):
        self.role = role
        self.name = name
        self.created = created
        self.key = make_key("ASIA")
        self.ec2 = ec2
        self.web = web
        self._ident = None

    @property
    def arn(self):
        return f"arn:aws:sts::{PROD}:assumed-role/{self.role['name']}/{self.name}"

    def ident(self):
        if self._ident is None:
            sc = {"sessionIssuer": {"type": "Role", "principalId": self.role["id"], "arn": self.role["arn"],
                                    "accountId": PROD, "userName": self.role["name"]},
                  "webIdFederationData": self.web or {},
                  "attributes": {"creationDate": ct(self.created), "mfaAuthenticated": "false"}}
            if self.ec2:
                sc["ec2RoleDelivery"] = "2.0"
            self._ident = {"type": "AssumedRole", "principalId": f"{self.role['id']}:{self.name}",
                           "arn": self.arn, "accountId": PROD, "accessKeyId": self.key, "sessionContext": sc}
        return self._ident


def role_resource(arn):
    return [{"accountId": PROD, "type": "AWS::IAM::Role", "ARN": arn}]


def assume_resp(sess, duration):
    return {"credentials": {"accessKeyId": sess.key, "sessionToken": session_token(),
                            "expiration": sts_exp(sess.created + timedelta(seconds=duration))},
            "assumedRoleUser": {"assumedRoleId": f"{sess.role['id']}:{sess.name}", "arn": sess.arn}}


def service_assume(t, service, role, session_name, duration=3600, ec2=False):
    sess = Session(role, session_name, t, ec2=ec2)
    ev(t, {"type": "AWSService", "invokedBy": service}, "sts.amazonaws.com", "AssumeRole", US, service, service,
       req={"roleArn": role["arn"], "roleSessionName": session_name, "durationSeconds": duration},
       resp=assume_resp(sess, duration), resources=role_resource(role["arn"]), shared=True, tls=False, ro=True)
    return sess


def web_identity_assume(t, role, provider_arn, subject, session_name, ip, ua, attrs=None):
    sess = Session(role, session_name, t, web={"federatedProvider": provider_arn, "attributes": attrs or {}})
    ident = {"type": "WebIdentityUser", "principalId": f"{provider_arn}:sts.amazonaws.com:{subject}",
             "userName": subject, "identityProvider": provider_arn}
    resp = {"credentials": {"accessKeyId": sess.key, "sessionToken": session_token(),
                            "expiration": sts_exp(t + timedelta(hours=1))},
            "subjectFromWebIdentityToken": subject,
            "assumedRoleUser": {"assumedRoleId": f"{role['id']}:{session_name}", "arn": sess.arn},
            "provider": provider_arn, "audience": "sts.amazonaws.com"}
    ev(t, ident, "sts.amazonaws.com", "AssumeRoleWithWebIdentity", US, ip, ua,
       req={"roleArn": role["arn"], "roleSessionName": session_name, "durationSeconds": 3600},
       resp=resp, resources=role_resource(role["arn"]), ro=True)
    return sess


def cross_account_assume(t, role, account, caller_role_id, session_name, ip, ua, external_id=None):
    sess = Session(role, session_name, t)
    req = {"roleArn": role["arn"], "roleSessionName": session_name, "durationSeconds": 3600}
    if external_id:
        req["externalId"] = external_id
    ev(t, {"type": "AWSAccount", "principalId": f"{caller_role_id}:{session_name}", "accountId": account},
       "sts.amazonaws.com", "AssumeRole", US, ip, ua, req=req, resp=assume_resp(sess, 3600),
       resources=role_resource(role["arn"]), shared=True, ro=True)
    return sess


def user_ident(u, key):
    return {"type": "IAMUser", "principalId": u["id"], "arn": u["arn"], "accountId": PROD, "accessKeyId": key,
            "userName": u["name"]}


def s3_data(t, ident, ip, ua, name, bucket, key=None):
    req = {"bucketName": bucket, "Host": f"{bucket}.s3.us-east-1.amazonaws.com"}
    res = [{"type": "AWS::S3::Bucket", "ARN": f"arn:aws:s3:::{bucket}", "accountId": PROD}]
    if key:
        req["key"] = key
        res.insert(0, {"type": "AWS::S3::Object", "ARN": f"arn:aws:s3:::{bucket}/{key}"})
    else:
        req["list-type"] = "2"
        req["prefix"] = ""
    return ev(t, ident, "s3.amazonaws.com", name, US, ip, ua, req=req, resources=res, data=True, ro=True,
              addl={"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256",
                    "bytesTransferredIn": 0, "AuthenticationMethod": "AuthHeader",
                    "bytesTransferredOut": R.randint(2000, 900000)})


UA_BOTO = ("Boto3/1.35.20 md/Botocore#1.35.20 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 "
           "lang/python#3.11.10 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.20")
UA_GO = "aws-sdk-go-v2/1.30.3 ua/2.0 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.177.0"
UA_CNI = "aws-sdk-go/1.55.5 (go1.22.8; linux; amd64) amazon-vpc-cni-k8s/v1.18.5"
UA_KUBELET = "aws-sdk-go/1.55.5 (go1.22.8; linux; amd64) ecr-credential-provider/v1.30.0"
UA_JAVA = ("aws-sdk-java/2.25.60 Linux/6.1.112-124.190.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.5+11-LTS "
           "Java/21.0.5 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy")
UA_RABBIT = "aws-sdk-erlang/rabbitmq-peer-discovery-aws/3.13.7"
UA_LAMBDA = ("Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.227-239.884.amzn2.x86_64 "
             "exec-env/AWS_Lambda_python3.12 Botocore/1.34.145")
UA_LAMBDA_LOGS = "awslambda-worker/1.0 rusoto/0.48.0 rust/1.79.0 linux"
UA_GH = ("aws-cli/2.17.50 md/awscrt#0.21.2 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 lang/python#3.12.6 "
         "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22")
UA_GH_STS = "aws-sdk-js/3.645.0 ua/2.0 os/linux#6.5.0-1025-azure lang/js md/nodejs#20.17.0 api/sts#3.645.0"
UA_TF = ("APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 "
         "aws-sdk-go-v2/1.31.0 ua/2.0 os/linux lang/go#1.23.1")
UA_JENKINS = "aws-cli/2.15.30 Python/3.11.8 Linux/5.15.0-1057-aws exe/x86_64.ubuntu.22 prompt/off"
UA_DD = "Datadog/AWS-Integration aws-sdk-go/1.44.327 (go1.21.4; linux; amd64)"
UA_BACKUPV = "Boto3/1.28.57 Python/3.10.12 Linux/5.15.0-1049-aws Botocore/1.31.57 vendor/acmebackup"
UA_AUDIT = "aws-cli/2.13.25 Python/3.11.5 Darwin/23.1.0 exe/x86_64 prompt/off command/iam.get-account-authorization-details"
UA_CONSOLE = "AWS Internal"
UA_ATTACK = "aws-cli/2.11.0 Python/3.11.2 Linux/6.2.0-kali3-amd64 exe/x86_64.kali.2023"

NAT_IPS = ["198.51.100.10", "198.51.100.11", "198.51.100.12"]

# ---------------------------------------------------------------------------
# the estate: who exists
# ---------------------------------------------------------------------------
SERVICES = ["orders-api", "payments-api", "checkout", "cart", "catalog", "search-indexer", "inventory",
            "pricing", "shipping", "notifications", "email-sender", "user-profile", "auth-gateway",
            "recommendations", "reviews", "loyalty", "fraud-scoring", "ledger", "invoicing", "refunds",
            "media-resizer", "feature-flags", "audit-trail", "webhooks", "partner-api", "geo-lookup",
            "tax-calc", "returns", "wishlist", "promo-engine"]
SVC_NS = {s: ("payments" if s in ("payments-api", "ledger", "invoicing", "refunds", "fraud-scoring")
              else "orders" if s in ("orders-api", "checkout", "cart", "returns", "shipping")
              else "web") for s in SERVICES}
SVC_TEAM = {s: TEAMS[i % 7] for i, s in enumerate(SERVICES)}
LAMBDAS = ["thumbnailer", "order-events", "invoice-pdf", "slack-notifier", "s3-virus-scan", "dlq-replayer",
           "cost-report", "ses-bounce-handler", "cognito-trigger", "log-shipper", "ami-cleanup",
           "snapshot-pruner", "cert-expiry-check", "tag-enforcer", "guardduty-forwarder", "iam-user-sync",
           "config-remediator", "webhook-relay", "queue-depth-alarm", "nightly-export"]
ECS_TASKS = ["reports-exporter", "pdf-renderer", "ml-inference", "etl-runner", "crm-sync", "sitemap-builder",
             "price-importer", "warehouse-sync", "data-quality", "archiver"]
BATCHES = {  # nightly batches: role -> buckets read every night
    "batch-reconcile": ["acme-ledger-exports", "acme-bank-statements", "acme-payouts"],
    "batch-billing": ["acme-usage-events", "acme-price-lists", "acme-invoices"],
    "batch-analytics": ["acme-clickstream", "acme-orders-archive", "acme-catalog-dumps"],
    "batch-ml-features": ["acme-clickstream", "acme-ml-features", "acme-user-events"],
    "batch-search-reindex": ["acme-catalog-dumps", "acme-search-snapshots", "acme-media-index"],
    "batch-gdpr-purge": ["acme-user-events", "acme-orders-archive", "acme-support-tickets"],
    "batch-finance-close": ["acme-ledger-exports", "acme-invoices", "acme-tax-reports"],
    "batch-inventory-sync": ["acme-warehouse-feeds", "acme-supplier-feeds", "acme-catalog-dumps"],
}
NODEGROUPS = {"general": 6, "spot": 4, "memory": 3, "system": 3}
BROKERS = {"kafka-broker": 3, "rabbitmq-cluster": 3}
REPOS = ["acme/orders-api", "acme/payments-api", "acme/web-frontend", "acme/search", "acme/catalog",
         "acme/infra", "acme/data-platform", "acme/mobile-bff", "acme/notifications", "acme/ledger"]
WEEKEND_DEPLOYERS = {"acme/web-frontend", "acme/mobile-bff"}
SLRS = ["AWSServiceRoleForAutoScaling", "AWSServiceRoleForElasticLoadBalancing", "AWSServiceRoleForAmazonEKS",
        "AWSServiceRoleForAmazonEKSNodegroup", "AWSServiceRoleForECS", "AWSServiceRoleForRDS",
        "AWSServiceRoleForSupport", "AWSServiceRoleForTrustedAdvisor", "AWSServiceRoleForOrganizations",
        "AWSServiceRoleForEC2Spot", "AWSServiceRoleForCloudWatchEvents", "AWSServiceRoleForAmazonSSM",
        "AWSServiceRoleForBackup", "AWSServiceRoleForGlobalAccelerator"]
SLR_USED = {"AWSServiceRoleForAutoScaling", "AWSServiceRoleForElasticLoadBalancing", "AWSServiceRoleForAmazonEKS",
            "AWSServiceRoleForAmazonEKSNodegroup", "AWSServiceRoleForECS"}


def build_iam():
    old = d(2024, 5, 14)
    # service-linked roles: never stale by definition (AWS owns them); most are rarely used
    for i, name in enumerate(SLRS):
        svc = name[len("AWSServiceRoleFor"):].lower()
        principal = {"autoscaling": "autoscaling.amazonaws.com", "elasticloadbalancing": "elasticloadbalancing.amazonaws.com",
                     "amazoneks": "eks.amazonaws.com", "amazoneksnodegroup": "eks-nodegroup.amazonaws.com",
                     "ecs": "ecs.amazonaws.com"}.get(svc, f"{svc}.amazonaws.com")
        lu = None if name in SLR_USED else (d(2026, 6, 3 + i, 4) if i % 3 else None)
        add_role(name, svc_trust(principal), d(2023, 3, 1 + i, 12), managed=["AWSServiceRoleForAutoScalingPolicy"]
                 if name == "AWSServiceRoleForAutoScaling" else ["ReadOnlyAccess"],
                 path=f"/aws-service-role/{principal}/", slr=True, last_used=lu)
        ROLES[name]["principal_service"] = principal
        NEUTRAL["orphaned"].add(role_id(name))
    # EKS node groups and brokers: instance profiles
    for g in NODEGROUPS:
        add_role(f"eks-nodegroup-{g}", svc_trust("ec2.amazonaws.com"), d(2025, 3, 1, 9, 20),
                 managed=["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                          "AmazonSSMManagedInstanceCore"], owner=owner_for("platform"), team="platform",
                 instance_profile=True)
    for b in BROKERS:
        add_role(b, svc_trust("ec2.amazonaws.com"), d(2024, 9, 9, 11),
                 managed=["AmazonSSMManagedInstanceCore"],
                 inline=[("peer-discovery", doc(allow(["ec2:DescribeInstances", "ec2:DescribeTags",
                                                       "autoscaling:DescribeAutoScalingInstances"])))],
                 owner=owner_for("sre"), team="sre", instance_profile=True)
    # IRSA: application services
    for i, s in enumerate(SERVICES):
        ns = SVC_NS[s]
        team = SVC_TEAM[s]
        owner = owner_for(team)
        if s in ("geo-lookup", "tax-calc", "wishlist"):
            owner = LEAVERS[i % 3]            # the person who built it has left
        if s == "reviews":
            owner = ON_LEAVE[0]               # owner on leave: still here
        add_role(f"irsa-{s}", irsa_trust(ns, s), d(2025, 3, 1) + timedelta(days=3 * i),
                 inline=[(f"{s}-access", doc(
                     allow(["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"],
                           f"arn:aws:dynamodb:us-east-1:{PROD}:table/{s}"),
                     allow(["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage", "sqs:ReceiveMessage"],
                           f"arn:aws:sqs:us-east-1:{PROD}:{s}-*"),
                     allow(["kms:Decrypt"], f"arn:aws:kms:us-east-1:{PROD}:key/*"),
                     allow(["ssm:GetParameter", "ssm:GetParametersByPath"],
                           f"arn:aws:ssm:us-east-1:{PROD}:parameter/{s}/*")))],
                 owner=owner, team=team, path="/app/")
    # IRSA: cluster add-ons
    addon_policies = {
        "cert-manager": doc(allow(["route53:GetChange", "route53:ChangeResourceRecordSets",
                                   "route53:ListResourceRecordSets", "route53:ListHostedZonesByName"])),
        "external-dns": doc(allow(["route53:ChangeResourceRecordSets", "route53:ListHostedZones",
                                   "route53:ListResourceRecordSets", "route53:ListTagsForResource"])),
        "cluster-autoscaler": doc(allow(["autoscaling:Describe*", "autoscaling:SetDesiredCapacity",
                                         "autoscaling:TerminateInstanceInAutoScalingGroup", "ec2:Describe*"])),
        "aws-load-balancer-controller": doc(allow(["elasticloadbalancing:*", "ec2:Describe*",
                                                   "ec2:AuthorizeSecurityGroupIngress", "wafv2:GetWebACL"])),
        "ebs-csi-controller": doc(allow(["ec2:CreateVolume", "ec2:AttachVolume", "ec2:DetachVolume",
                                         "ec2:DescribeVolumes", "ec2:DescribeInstances", "ec2:CreateTags"])),
        "velero": doc(allow(["ec2:CreateSnapshot", "ec2:DescribeVolumes", "ec2:DescribeSnapshots",
                             "ec2:CreateTags"]),
                      allow(["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:DeleteObject"],
                            ["arn:aws:s3:::acme-velero-backups", "arn:aws:s3:::acme-velero-backups/*"])),
        "cloudwatch-exporter": doc(allow(["cloudwatch:GetMetricData", "cloudwatch:ListMetrics",
                                          "tag:GetResources"])),
        "airflow-scheduler": doc(allow(["s3:GetObject", "s3:ListBucket"],
                                       ["arn:aws:s3:::acme-airflow-dags", "arn:aws:s3:::acme-airflow-dags/*"]),
                                 allow(["logs:PutLogEvents", "logs:CreateLogStream"])),
    }
    for i, (a, pol) in enumerate(addon_policies.items()):
        ns, sa = ADDON_SA[a]
        add_role(f"irsa-{a}", irsa_trust(ns, sa), d(2025, 3, 2) + timedelta(days=i),
                 inline=[(a, pol)], owner=owner_for("platform"), team="platform", path="/addons/")
    # Lambda functions
    for i, fn in enumerate(LAMBDAS):
        inline = [(f"{fn}-access", doc(allow(["s3:GetObject", "s3:PutObject"], f"arn:aws:s3:::acme-{fn}/*"),
                                       allow(["secretsmanager:GetSecretValue"],
                                             f"arn:aws:secretsmanager:us-east-1:{PROD}:secret:lambda/{fn}-*")))]
        owner = owner_for(TEAMS[i % len(TEAMS)])
        if fn in ("ami-cleanup", "snapshot-pruner"):
            owner = LEAVERS[3]
        if fn == "iam-user-sync":  # provisions IAM users from the directory: can take over users
            inline.append(("iam-users", doc(allow(["iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile",
                                                   "iam:AddUserToGroup", "iam:ListUsers"],
                                                  f"arn:aws:iam::{PROD}:user/*"))))
            TRUTH_POSTURE["escalation"].add(role_id(f"lambda-{fn}"))
        last = None
        if fn in ("ami-cleanup", "cert-expiry-check", "config-remediator"):  # functions nobody invokes any more
            last = d(2026, 8, 20 + i % 5, 3)
        add_role(f"lambda-{fn}", svc_trust("lambda.amazonaws.com"), d(2024, 10, 1) + timedelta(days=11 * i),
                 managed=["AWSLambdaBasicExecutionRole"], inline=inline, owner=owner,
                 team=TEAMS[i % len(TEAMS)], path="/service-role/", last_used=last)
        if last:
            TRUTH_POSTURE["stale"].add(role_id(f"lambda-{fn}"))
    # ECS task roles
    for i, task in enumerate(ECS_TASKS):
        managed = ["ReadOnlyAccess"] if task == "reports-exporter" else []
        add_role(f"ecs-task-{task}", svc_trust("ecs-tasks.amazonaws.com"), d(2025, 1, 10) + timedelta(days=7 * i),
                 managed=managed,
                 inline=[(task, doc(allow(["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                                          [f"arn:aws:s3:::acme-{task}", f"arn:aws:s3:::acme-{task}/*"]),
                                    allow(["ec2:RunInstances", "ec2:DescribeInstances"])
                                    if task == "ml-inference" else allow(["sqs:SendMessage"],
                                                                          f"arn:aws:sqs:us-east-1:{PROD}:{task}")))],
                 owner=owner_for(TEAMS[(i + 3) % len(TEAMS)]), team=TEAMS[(i + 3) % len(TEAMS)])
    # nightly batches (ECS scheduled tasks)
    for i, (b, buckets) in enumerate(BATCHES.items()):
        add_role(b, svc_trust("ecs-tasks.amazonaws.com"), d(2024, 11, 4) + timedelta(days=9 * i),
                 inline=[("read-inputs", doc(allow(["s3:GetObject", "s3:ListBucket"], "arn:aws:s3:::acme-*")))],
                 owner=owner_for("data"), team="data", path="/batch/")
    # CI: one GitHub Actions role per repository; infra has plan and apply
    for i, repo in enumerate(REPOS):
        short = repo.split("/")[1]
        if short == "infra":
            continue
        add_role(f"gha-{short}", gh_trust(repo), d(2025, 1, 20) + timedelta(days=5 * i),
                 inline=[("deploy", doc(allow(["ecr:GetAuthorizationToken", "ecr:PutImage", "ecr:InitiateLayerUpload",
                                               "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
                                               "ecr:BatchCheckLayerAvailability", "eks:DescribeCluster",
                                               "ecs:UpdateService", "ecs:DescribeServices",
                                               "ecs:RegisterTaskDefinition", "s3:PutObject", "s3:ListBucket",
                                               "cloudfront:CreateInvalidation"])))],
                 owner=owner_for(TEAMS[i % len(TEAMS)]), team=TEAMS[i % len(TEAMS)], path="/ci/",
                 extra_tags={"repo": repo})
    add_role("gha-infra-plan", gh_trust("acme/infra"), d(2025, 1, 22), managed=["ReadOnlyAccess"],
             owner=owner_for("platform"), team="platform", path="/ci/", extra_tags={"repo": "acme/infra"})
    # the apply role can change CloudTrail (it manages the trail) but is not an administrator
    add_role("gha-infra-apply", gh_trust("acme/infra"), d(2025, 1, 22),
             inline=[("apply", doc(allow(["iam:Get*", "iam:List*", "iam:UpdateAssumeRolePolicy", "iam:PutRolePolicy",
                                          "iam:TagRole", "iam:CreatePolicyVersion"], f"arn:aws:iam::{PROD}:*"),
                                   allow(["cloudtrail:*", "s3:*", "ec2:*", "eks:*", "route53:*", "logs:*"])))],
             owner=owner_for("platform"), team="platform", path="/ci/", extra_tags={"repo": "acme/infra"})
    TRUTH_POSTURE["escalation"].add(role_id("gha-infra-apply"))
    add_role("terraform-admin", account_trust(TOOLING), d(2023, 6, 1), managed=["AdministratorAccess"],
             owner=owner_for("platform"), team="platform")
    TRUTH_POSTURE["admin_wildcard"].add(role_id("terraform-admin"))
    add_role("cross-account-deployer", account_trust(TOOLING, "acme-deploy-7f3c"), d(2024, 6, 11),
             inline=[("deploy", doc(allow(["cloudformation:*", "ecs:*", "ecr:*"])))],
             owner=owner_for("platform"), team="platform")
    # monitoring and partners
    add_role("datadog-integration", account_trust(PARTNER_MON, "dd-acme-52c1"), d(2024, 2, 2),
             managed=["CloudWatchReadOnlyAccess", "ReadOnlyAccess"], owner=owner_for("sre"), team="sre",
             extra_tags={"vendor": "monitoring-saas"})
    add_role("partner-backup-access", account_trust(PARTNER_BACKUP, "acmebk-991"), d(2024, 4, 15),
             managed=["AWSBackupServiceRolePolicyForBackup"], owner=owner_for("sre"), team="sre",
             extra_tags={"vendor": "backup"})
    add_role("auditor-readonly", account_trust(PARTNER_AUDIT), d(2025, 5, 5), managed=["SecurityAudit"],
             owner=owner_for("security"), team="security", extra_tags={"vendor": "auditor"})
    add_role("vendor-analytics-legacy", account_trust(UNKNOWN), d(2022, 9, 1), managed=["ReadOnlyAccess"],
             owner=LEAVERS[0], team="data", last_used=d(2026, 3, 2, 14))
    # humans' SSO roles (admin and read-only)
    add_role("AWSReservedSSO_AdministratorAccess_3f2a9c1b7d6e5a40", doc(
        {"Effect": "Allow", "Principal": {"Federated": SAML_ARN}, "Action": "sts:AssumeRoleWithSAML"}),
        d(2023, 2, 6), managed=["AdministratorAccess"], path="/aws-reserved/sso.amazonaws.com/",
        owner=owner_for("security"), team="security")
    TRUTH_POSTURE["admin_wildcard"].add(role_id("AWSReservedSSO_AdministratorAccess_3f2a9c1b7d6e5a40"))
    add_role("AWSReservedSSO_ReadOnly_8e7d6c5b4a392817", doc(
        {"Effect": "Allow", "Principal": {"Federated": SAML_ARN}, "Action": "sts:AssumeRoleWithSAML"}),
        d(2023, 2, 6), managed=["ReadOnlyAccess"], path="/aws-reserved/sso.amazonaws.com/",
        owner=owner_for("security"), team="security")
    # admin-equivalent by inline wildcard, written three ways
    add_role("ops-break-glass", account_trust(PROD), d(2023, 2, 6),
             inline=[("everything", doc(allow("*", "*")))], owner=owner_for("security"), team="security",
             last_used=d(2026, 7, 14, 22))
    TRUTH_POSTURE["admin_wildcard"].add(role_id("ops-break-glass"))
    TRUTH_POSTURE["stale"].add(role_id("ops-break-glass"))
    add_role("legacy-ops-automation", svc_trust("ec2.amazonaws.com"), d(2021, 11, 3),
             inline=[("ops", doc(allow(["*"], ["*"])))], owner=LEAVERS[1], team="sre",
             last_used=d(2026, 4, 2, 3))
    for c in ("admin_wildcard", "stale", "orphaned"):
        TRUTH_POSTURE[c].add(role_id("legacy-ops-automation"))
    local_policy("platform-full-access", doc(allow("*", "*", Sid="PlatformFull")))
    add_role("platform-operator", account_trust(TOOLING), d(2024, 1, 9), managed=["platform-full-access"],
             owner=owner_for("platform"), team="platform")
    TRUTH_POSTURE["admin_wildcard"].add(role_id("platform-operator"))
    # escalation without being admin
    local_policy("policy-manager", doc(allow(["iam:CreatePolicyVersion", "iam:SetDefaultPolicyVersion",
                                              "iam:ListPolicies", "iam:GetPolicy"], "*")))
    add_role("iam-policy-manager", account_trust(TOOLING), d(2024, 8, 8), managed=["policy-manager"],
             owner=owner_for("security"), team="security")
    TRUTH_POSTURE["escalation"].add(role_id("iam-policy-manager"))
    add_role("role-factory", svc_trust("lambda.amazonaws.com"), d(2024, 8, 9),
             inline=[("roles", doc(allow(["iam:AttachRolePolicy", "iam:PutRolePolicy", "iam:CreateRole",
                                          "iam:PassRole"], "*"), allow(["lambda:CreateFunction",
                                                                        "lambda:InvokeFunction"])))],
             owner=owner_for("platform"), team="platform", last_used=d(2026, 11, 1, 9))
    TRUTH_POSTURE["escalation"].add(role_id("role-factory"))
    # roles nobody uses any more (stale); two with nobody accountable (orphaned too)
    for i, (name, owner, lu) in enumerate([("legacy-batch-role", owner_for("data"), d(2026, 4, 30, 3)),
                                            ("old-reporting-role", owner_for("data"), d(2026, 2, 11, 6)),
                                            ("poc-sagemaker-role", owner_for("ml"), None),
                                            ("tmp-migration-2024", None, d(2024, 12, 2, 10)),
                                            ("test-role-jdoe", None, None),
                                            ("jenkins-old-agent", LEAVERS[2], d(2025, 11, 3, 1)),
                                            ("ecs-legacy-cron", LEAVERS[4], d(2026, 5, 17, 2))]):
        add_role(name, svc_trust("ec2.amazonaws.com" if i % 2 else "ecs-tasks.amazonaws.com"),
                 d(2024, 1, 5) + timedelta(days=40 * i),
                 inline=[("s3", doc(allow(["s3:GetObject", "s3:ListBucket"], f"arn:aws:s3:::acme-{name}/*")))],
                 owner=owner, team=None if owner is None else "data", last_used=lu)
        TRUTH_POSTURE["stale"].add(role_id(name))
        if owner is None or owner in LEAVERS:
            TRUTH_POSTURE["orphaned"].add(role_id(name))
    # data-export: a role whose trust an incident rewrites
    add_role("data-export", account_trust(TOOLING), d(2025, 2, 14),
             inline=[("export", doc(allow(["s3:GetObject", "s3:ListBucket"], "arn:aws:s3:::acme-*")))],
             owner=owner_for("data"), team="data")

    # --- users
    GROUPS["admins"] = {"id": make_uid("AGPA"), "created": d(2023, 2, 6), "managed": ["AdministratorAccess"],
                        "inline": []}
    GROUPS["automation"] = {"id": make_uid("AGPA"), "created": d(2024, 3, 1), "managed": [],
                            "inline": [("automation-app-roles", doc(
                                allow("iam:*", [f"arn:aws:iam::{PROD}:role/app/*", f"arn:aws:iam::{PROD}:policy/*"]),
                                allow(["iam:Get*", "iam:List*", "sts:GetCallerIdentity"])))]}
    GROUPS["readonly"] = {"id": make_uid("AGPA"), "created": d(2023, 2, 6), "managed": ["ReadOnlyAccess"],
                          "inline": []}
    recent = d(2026, 9, 1)
    add_user("ci-jenkins", d(2023, 5, 17), inline=[("ci", doc(allow(["ecr:*", "s3:GetObject", "s3:PutObject",
                                                                       "s3:ListBucket", "eks:DescribeCluster",
                                                                       "iam:CreateAccessKey", "iam:ListAccessKeys"])))],
             owner=owner_for("platform"), team="platform", keys=[(d(2026, 6, 2), None)])
    TRUTH_POSTURE["escalation"].add(user_id("ci-jenkins"))  # iam:CreateAccessKey on every user
    add_user("terraform-runner", d(2024, 3, 1), groups=["automation"], owner=owner_for("platform"), team="platform",
             keys=[(d(2026, 3, 3), None)])
    TRUTH_POSTURE["escalation"].add(user_id("terraform-runner"))
    add_user("ops-automation", d(2023, 4, 4), groups=["admins"], owner=owner_for("sre"), team="sre",
             keys=[(d(2026, 5, 5), None)])
    TRUTH_POSTURE["admin_wildcard"].add(user_id("ops-automation"))
    add_user("svc-deploy-legacy", d(2022, 8, 30),
             inline=[("deploy", doc(allow(["ecs:UpdateService", "ecs:DescribeServices", "ecr:GetAuthorizationToken"]),
                                    allow(["iam:PutUserPolicy", "iam:GetUserPolicy"],
                                          f"arn:aws:iam::{PROD}:user/svc-deploy-legacy")))],
             owner=owner_for("payments"), team="payments", keys=[(d(2025, 12, 1), None)])
    TRUTH_POSTURE["escalation"].add(user_id("svc-deploy-legacy"))
    add_user("svc-legacy-etl", d(2021, 10, 12), inline=[("etl", doc(allow(["s3:*"], "arn:aws:s3:::acme-*"),
                                                                    allow(["glue:*", "athena:*"])))],
             owner=LEAVERS[1], team="data", keys=[(d(2023, 1, 9), d(2026, 9, 4, 2, 31))])
    TRUTH_POSTURE["orphaned"].add(user_id("svc-legacy-etl"))
    add_user("legacy-admin-bot", d(2020, 6, 1), inline=[("admin", doc({"Effect": "Allow", "Action": "*",
                                                                       "Resource": "*"}))],
             owner=LEAVERS[2], team="sre", keys=[(d(2021, 2, 2), d(2026, 1, 19, 8))])
    for c in ("admin_wildcard", "stale", "orphaned"):
        TRUTH_POSTURE[c].add(user_id("legacy-admin-bot"))
    daily_users = ["svc-reporting", "svc-backup", "svc-crm-export", "svc-sftp-ingest", "svc-metrics-push",
                   "svc-pagerduty", "svc-status-page", "svc-support-tool"]
    for i, n in enumerate(daily_users):
        owner = owner_for(TEAMS[i % len(TEAMS)])
        if n == "svc-sftp-ingest":
            owner = LEAVERS[3]
            TRUTH_POSTURE["orphaned"].add(user_id(n))
        add_user(n, d(2023, 9, 1) + timedelta(days=30 * i),
                 inline=[("access", doc(allow(["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                                              [f"arn:aws:s3:::acme-{n}", f"arn:aws:s3:::acme-{n}/*"]),
                                        allow(["cloudwatch:PutMetricData", "sqs:SendMessage"])))],
                 owner=owner, team=TEAMS[i % len(TEAMS)], keys=[(recent - timedelta(days=20 * i), None)])
    stale_users = [("svc-old-backup", owner_for("sre"), d(2026, 7, 1, 2)),
                   ("svc-marketing-feed", owner_for("web"), d(2026, 3, 9, 12)),
                   ("svc-partner-upload", LEAVERS[0], d(2025, 10, 9, 17)),
                   ("svc-nagios", LEAVERS[4], None),
                   ("svc-hackathon", None, None)]
    for i, (n, owner, lu) in enumerate(stale_users):
        add_user(n, d(2022, 1, 10) + timedelta(days=60 * i),
                 inline=[("access", doc(allow(["s3:GetObject", "s3:ListBucket"], f"arn:aws:s3:::acme-{n}/*")))],
                 owner=owner, team=None if owner is None else "sre", keys=[(d(2022, 1, 11) + timedelta(days=60 * i), lu)])
        TRUTH_POSTURE["stale"].add(user_id(n))
        if owner is None or owner in LEAVERS:
            TRUTH_POSTURE["orphaned"].add(user_id(n))
    # humans
    for p in STAFF[:6]:
        n = p["email"].split("@")[0]
        add_user(n, d(2023, 2, 6), groups=["readonly"], owner=p["email"], team=p["team"], password=True)
        USERS[n]["human"] = True
    # keys are credentials of their user: posture findings are about the user (the
    # inventory marks an orphan user's keys too), so keys are neutral in every category
    for u in USERS.values():
        for k in u["keys"]:
            for c in ("admin_wildcard", "stale", "orphaned", "escalation"):
                NEUTRAL[c].add(k["id"])


# ---------------------------------------------------------------------------
# Kubernetes objects
# ---------------------------------------------------------------------------
ADDON_SA = {"cert-manager": ("cert-manager", "cert-manager"), "external-dns": ("kube-system", "external-dns"),
            "cluster-autoscaler": ("kube-system", "cluster-autoscaler"),
            "aws-load-balancer-controller": ("kube-system", "aws-load-balancer-controller"),
            "ebs-csi-controller": ("kube-system", "ebs-csi-controller-sa"), "velero": ("velero", "velero"),
            "cloudwatch-exporter": ("monitoring", "cloudwatch-exporter"),
            "airflow-scheduler": ("airflow", "airflow-scheduler")}
# add-ons that list/watch secrets cluster-wide by design
SECRET_WATCHERS = [("cert-manager", "cert-manager"), ("ingress-nginx", "ingress-nginx"),
                   ("monitoring", "kube-state-metrics"), ("kubernetes-dashboard", "kubernetes-dashboard"),
                   ("velero", "velero")]
OTHER_SAS = [("kube-system", "coredns"), ("kube-system", "aws-node"), ("monitoring", "prometheus"),
             ("monitoring", "grafana"), ("monitoring", "node-exporter"), ("airflow", "airflow-worker"),
             ("argocd", "argocd-application-controller"), ("argocd", "argocd-server"),
             ("ci", "tekton-pipeline"), ("ci", "gitlab-deployer"), ("kube-system", "metrics-server")]
STALE_SAS = [("payments", "legacy-cron"), ("orders", "old-importer"), ("web", "ab-test-runner"),
             ("data", "spark-legacy")]
NAMESPACES = sorted({"default", "kube-system", "kube-public", "kube-node-lease", "cert-manager", "ingress-nginx",
                     "monitoring", "kubernetes-dashboard", "velero", "airflow", "argocd", "ci", "payments", "orders",
                     "web", "data"})
NODES = {}
PODS = {}   # "ns/sa" -> list of (pod name, node, ip, uid)
K8S = {"sa_uid": {}, "sa_meta": {}}
KUBELET_UA = "kubelet/v1.30.6 (linux/amd64) kubernetes/7f9249a"
KUBECTL_UA = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"


def all_sas():
    out = []
    for s in SERVICES:
        out.append((SVC_NS[s], s))
    for a, (ns, sa) in ADDON_SA.items():
        out.append((ns, sa))
    out += SECRET_WATCHERS + OTHER_SAS
    seen = []
    for x in out:
        if x not in seen:
            seen.append(x)
    return seen


def sa_owner(ns, name):
    if ns in ("payments", "orders", "web"):
        return owner_for(SVC_TEAM.get(name, "platform"))
    return owner_for("platform")


def build_nodes():
    i = 0
    for g, n in NODEGROUPS.items():
        for k in range(n):
            ip = f"10.0.{1 + k % 3}.{20 + i}"
            name = f"ip-{ip.replace('.', '-')}.ec2.internal"
            NODES[name] = {"uid": uid(), "ip": ip, "group": g, "instance": "i-0" + hexs(16),
                           "public": f"203.0.113.{10 + i}"}
            i += 1


def rvs():
    return str(R.randint(1_000_000, 9_999_999))


def meta(name, ns=None, created=None, labels=None, annotations=None):
    m = {"name": name, "uid": uid(), "resourceVersion": rvs(), "creationTimestamp": k8s_s(created)}
    if ns:
        m["namespace"] = ns
    if labels:
        m["labels"] = labels
    if annotations:
        m["annotations"] = annotations
    return m


def build_k8s():
    items = []
    created = d(2025, 3, 1, 9, 12)
    sas = []
    for ns in NAMESPACES:
        m = meta("default", ns, created + timedelta(minutes=1))
        sas.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": m})
        K8S["sa_uid"][f"{ns}/default"] = m["uid"]
        for c in TRUTH_POSTURE:
            NEUTRAL[c].add(sa_id(ns, "default"))
    for i, (ns, name) in enumerate(all_sas()):
        ann = {"owner": sa_owner(ns, name)}
        if name in SERVICES:
            ann["eks.amazonaws.com/role-arn"] = ROLES[f"irsa-{name}"]["arn"]
            if ROLES[f"irsa-{name}"]["owner"] in LEAVERS:
                ann["owner"] = ROLES[f"irsa-{name}"]["owner"]
                TRUTH_POSTURE["orphaned"].add(sa_id(ns, name))
            elif ROLES[f"irsa-{name}"]["owner"] in ON_LEAVE:
                ann["owner"] = ROLES[f"irsa-{name}"]["owner"]
        for a, (ans, asa) in ADDON_SA.items():
            if (ans, asa) == (ns, name):
                ann["eks.amazonaws.com/role-arn"] = ROLES[f"irsa-{a}"]["arn"]
        m = meta(name, ns, created + timedelta(days=2 + i), {"app.kubernetes.io/name": name}, ann)
        sas.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": m})
        K8S["sa_uid"][f"{ns}/{name}"] = m["uid"]
        K8S["sa_meta"][f"{ns}/{name}"] = (created + timedelta(days=2 + i), ann["owner"])
    for i, (ns, name) in enumerate(STALE_SAS):
        m = meta(name, ns, d(2025, 4, 18) + timedelta(days=20 * i), {"app.kubernetes.io/name": name})
        sas.append({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": m})
        K8S["sa_uid"][f"{ns}/{name}"] = m["uid"]
        K8S["sa_meta"][f"{ns}/{name}"] = (d(2025, 4, 18) + timedelta(days=20 * i), None)
        # Unused for the 21 days of audit log, created long before: whether it was used
        # in the 30 days a stale verdict needs is unknown (the log does not cover them).
        NEUTRAL["stale"].add(sa_id(ns, name))
        TRUTH_POSTURE["orphaned"].add(sa_id(ns, name))
    items += sorted(sas, key=lambda x: (x["metadata"]["namespace"], x["metadata"]["name"]))

    def crole(name, rules):
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": meta(name, None, created), "rules": rules}

    def binding(kind, name, ns, role_kind, role, subjects):
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta(name, ns, created),
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
                "subjects": subjects}

    def subj(ns, name):
        return {"kind": "ServiceAccount", "name": name, "namespace": ns}

    ro = ["get", "list", "watch"]
    croles = [
        crole("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        crole("view", [{"apiGroups": ["", "apps", "batch"], "resources": ["pods", "services", "configmaps",
                                                                         "deployments", "jobs"], "verbs": ro}]),
        crole("secret-watcher", [{"apiGroups": [""], "resources": ["secrets", "configmaps", "services",
                                                                   "endpoints", "pods"], "verbs": ro}]),
        crole("dashboard-viewer", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ro}]),
        crole("velero-server", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
        crole("workflow-executor", [{"apiGroups": [""], "resources": ["pods", "pods/exec", "pods/log"],
                                     "verbs": ["get", "list", "watch", "create", "delete", "patch"]}]),
        crole("app-config", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]},
                             {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]),
        crole("deployer", [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch",
                                                                                          "update"]},
                           {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterrolebindings"],
                            "verbs": ["get", "list", "create"]}]),
        crole("prometheus", [{"apiGroups": [""], "resources": ["nodes", "pods", "services", "endpoints"],
                              "verbs": ro}]),
    ]
    items += croles
    crbs = [binding("ClusterRoleBinding", "cluster-admin", None, "ClusterRole", "cluster-admin",
                    [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]),
            binding("ClusterRoleBinding", "argocd-application-controller", None, "ClusterRole", "cluster-admin",
                    [subj("argocd", "argocd-application-controller")]),
            binding("ClusterRoleBinding", "velero", None, "ClusterRole", "velero-server", [subj("velero", "velero")]),
            binding("ClusterRoleBinding", "kubernetes-dashboard", None, "ClusterRole", "dashboard-viewer",
                    [subj("kubernetes-dashboard", "kubernetes-dashboard")]),
            binding("ClusterRoleBinding", "secret-watchers", None, "ClusterRole", "secret-watcher",
                    [subj(ns, n) for ns, n in SECRET_WATCHERS if n not in ("velero", "kubernetes-dashboard")]),
            binding("ClusterRoleBinding", "prometheus", None, "ClusterRole", "prometheus",
                    [subj("monitoring", "prometheus"), subj("monitoring", "grafana")]),
            binding("ClusterRoleBinding", "ci-deployer", None, "ClusterRole", "deployer",
                    [subj("ci", "tekton-pipeline"), subj("ci", "gitlab-deployer")])]
    items += crbs
    rbs = [binding("RoleBinding", "airflow-executor", "airflow", "ClusterRole", "workflow-executor",
                   [subj("airflow", "airflow-scheduler")])]
    for ns in ("payments", "orders", "web"):
        rbs.append(binding("RoleBinding", "app-config", ns, "ClusterRole", "app-config",
                           [subj(ns, s) for s in SERVICES if SVC_NS[s] == ns]))
    items += rbs
    # pods: every SA but the stale ones runs a workload
    node_names = list(NODES)
    pods = []
    for i, (ns, name) in enumerate(all_sas()):
        if (ns, name) in (("ci", "gitlab-deployer"),):
            continue  # used from outside the cluster with a token; no pod
        n = 3 if name in ("aws-node", "node-exporter") else (2 if ns in ("payments", "orders", "web") else 1)
        if name == "airflow-worker":
            n = 4
        rs = hexs(9)
        PODS[f"{ns}/{name}"] = []
        for k in range(n):
            pname = f"{name}-{rs}-{rand_str(5, 'bcdfghjklmnpqrstvwxz2456789')}"
            node = node_names[(i + k) % len(node_names)]
            ip = f"10.0.{10 + (i + k) % 40}.{10 + (i * 7 + k) % 240}"
            m = meta(pname, ns, d(2026, 10, 20, 3) + timedelta(minutes=i), {"app.kubernetes.io/name": name})
            pods.append({"apiVersion": "v1", "kind": "Pod", "metadata": m,
                         "spec": {"serviceAccountName": name, "serviceAccount": name, "nodeName": node,
                                  "containers": [{"name": name, "image": f"registry.acme.example/{name}:1.{i}.{k}"}]},
                         "status": {"phase": "Running", "podIP": ip, "hostIP": NODES[node]["ip"]}})
            PODS[f"{ns}/{name}"].append((pname, node, ip, m["uid"]))
    items += pods
    secrets = []
    for ns in ("payments", "orders", "web", "cert-manager", "ingress-nginx"):
        for sname in ("db-credentials", "api-keys", "tls-cert"):
            secrets.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                            "metadata": meta(f"{ns}-{sname}", ns, created + timedelta(days=30)),
                            "data": {"placeholder": "ZmljdGl0aW91cw=="}})
    items += secrets
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


AUDIT = []  # (t, line) of the day being generated
K8S_ACTIVE = set()  # usernames that made a successful request


def sa_user(ns, name, pod=None):
    u = {"username": f"system:serviceaccount:{ns}:{name}", "uid": K8S["sa_uid"].get(f"{ns}/{name}", uid()),
         "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]}
    if pod:
        pname, node, _ip, puid = pod
        u["extra"] = {"authentication.kubernetes.io/node-name": [node],
                      "authentication.kubernetes.io/pod-name": [pname],
                      "authentication.kubernetes.io/pod-uid": [puid]}
    return u


def ref(resource, ns=None, name=None, group=None, sub=None, version="v1"):
    x = {"resource": resource}
    if ns:
        x["namespace"] = ns
    if name:
        x["name"] = name
    if group:
        x["apiGroup"] = group
    x["apiVersion"] = version
    if sub:
        x["subresource"] = sub
    return x


def audit(t, user, verb, uri, objref, code, ips, ua, reason="", level="Metadata", request_object=None,
          two_stage=False):
    aid = uid()
    if code < 400:
        K8S_ACTIVE.add(user["username"])
    rr = t + timedelta(microseconds=R.randint(0, 999_999))
    done = rr + timedelta(milliseconds=R.randint(2, 40))
    base = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": aid}

    def line(stage, ts, final):
        x = dict(base)
        x["stage"] = stage
        x["requestURI"] = uri
        x["verb"] = verb
        x["user"] = user
        x["sourceIPs"] = ips
        x["userAgent"] = ua
        if objref is not None:
            x["objectRef"] = objref
        if final:
            x["responseStatus"] = {"metadata": {}, "code": code}
        if request_object is not None and level in ("Request", "RequestResponse"):
            x["requestObject"] = request_object
        x["requestReceivedTimestamp"] = k8s_us(rr)
        x["stageTimestamp"] = k8s_us(ts)
        if final:
            x["annotations"] = {"authorization.k8s.io/decision": "allow" if code < 400 else "forbid",
                                "authorization.k8s.io/reason": reason}
        return x

    if two_stage:
        AUDIT.append((rr, line("RequestReceived", rr, False)))
    AUDIT.append((done, line("ResponseComplete", done, True)))


def rbac_reason(kind, binding, role, ns, name):
    return f'RBAC: allowed by {kind} "{binding}" of ClusterRole "{role}" to ServiceAccount "{name}/{ns}"'


# ---------------------------------------------------------------------------
# routine activity, one day at a time
# ---------------------------------------------------------------------------
GH_RUNNER_IPS = [f"20.{R.randint(30, 250)}.{R.randint(0, 255)}.{R.randint(1, 254)}" for _ in range(60)]
STATE = {"tags": {}, "ecs_rev": 100}


def day_nodegroups(day):
    """Node-group instance credentials: the VPC CNI and the kubelet call EC2/ECR from the node's
    public address (nodes in public subnets); sessions are named after the instance."""
    for nn, node in NODES.items():
        role = ROLES[f"eks-nodegroup-{node['group']}"]
        for h in range(0, 24, 6):
            t0 = at(day, h, R.randint(0, 10), R.randint(0, 59))
            sess = service_assume(t0, "ec2.amazonaws.com", role, node["instance"], 21600, ec2=True)
            ident = sess.ident()
            for t in every(day, 12, 120, h, h + 6):
                name = R.choice(["DescribeInstances", "DescribeNetworkInterfaces", "DescribeInstances",
                                 "DescribeInstanceTypes", "DescribeTags"])
                req = {"instancesSet": {"items": [{"instanceId": node["instance"]}]}} \
                    if name == "DescribeInstances" else {"filterSet": {}}
                ev(t, ident, "ec2.amazonaws.com", name, US, node["public"], UA_CNI, req=req)
            for t in every(day, 60, 300, h, h + 6):
                ev(t, ident, "ecr.amazonaws.com", "GetAuthorizationToken", US, node["public"], UA_KUBELET,
                   req={"registryIds": ["602401143452"]})


BROKER_HOSTS = {}


def day_brokers(day):
    """Kafka and RabbitMQ peer discovery: DescribeInstances from each broker's public address."""
    for b, n in BROKERS.items():
        role = ROLES[b]
        hosts = BROKER_HOSTS.setdefault(b, [("i-0" + hexs(16), f"198.51.100.{60 + 10 * len(BROKER_HOSTS) + k}")
                                            for k in range(n)])
        ua = UA_RABBIT if b.startswith("rabbit") else UA_JAVA
        for inst, ip in hosts:
            for h in range(0, 24, 6):
                t0 = at(day, h, R.randint(0, 10), R.randint(0, 59))
                sess = service_assume(t0, "ec2.amazonaws.com", role, inst, 21600, ec2=True)
                for t in every(day, 15, 60, h, h + 6):
                    ev(t, sess.ident(), "ec2.amazonaws.com", "DescribeInstances", US, ip, ua,
                       req={"filterSet": {"items": [{"name": "tag:cluster", "valueSet": {"items": [{"value": b}]}}]}})


def irsa_session(t, role_name, ns, sa, ip):
    role = ROLES[role_name]
    subject = f"system:serviceaccount:{ns}:{sa}"
    return web_identity_assume(t, role, EKS_OIDC_ARN, subject, f"botocore-session-{int(t.timestamp())}", ip,
                               UA_BOTO)


def day_services(day):
    for i, s in enumerate(SERVICES):
        ns = SVC_NS[s]
        nat = NAT_IPS[i % len(NAT_IPS)]
        for h in range(0, 24, 2):
            t = at(day, h, R.randint(0, 50), R.randint(0, 59))
            if t > END:
                continue
            sess = irsa_session(t, f"irsa-{s}", ns, s, nat)
            ident = sess.ident()
            ev(jit(t, 1, 5), ident, "sqs.amazonaws.com", "GetQueueUrl", US, nat, UA_BOTO,
               req={"queueName": f"{s}-events"})
            ev(jit(t, 2, 9), ident, "dynamodb.amazonaws.com", "DescribeTable", US, nat, UA_BOTO,
               req={"tableName": s})
            ev(jit(t, 3, 30), ident, "kms.amazonaws.com", "Decrypt", US, nat, UA_BOTO,
               req={"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"app": s}},
               resources=[{"accountId": PROD, "type": "AWS::KMS::Key",
                           "ARN": f"arn:aws:kms:us-east-1:{PROD}:key/{uuid.UUID(int=i + 1, version=4)}"}])
            if h % 6 == 0:
                ev(jit(t, 30, 600), ident, "ssm.amazonaws.com", "GetParametersByPath", US, nat, UA_BOTO,
                   req={"path": f"/{s}/", "recursive": True, "withDecryption": True})


def day_addons(day):
    nat = NAT_IPS[0]
    # external-dns: route53 sync loop
    for t in every(day, 10, 30):
        sess = Session(ROLES["irsa-external-dns"], "external-dns", t)
        if t.minute < 10:
            sess = irsa_session(t, "irsa-external-dns", "kube-system", "external-dns", nat)
        ev(t, sess.ident(), "route53.amazonaws.com", "ListHostedZones", US, nat, UA_GO, req=None)
        ev(jit(t, 1, 3), sess.ident(), "route53.amazonaws.com", "ListResourceRecordSets", US, nat, UA_GO,
           req={"hostedZoneId": "Z0123456789ABCDEFGHIJ"})
    # cluster-autoscaler
    for t in every(day, 5, 20):
        sess = irsa_session(t, "irsa-cluster-autoscaler", "kube-system", "cluster-autoscaler", nat) \
            if t.minute < 5 else Session(ROLES["irsa-cluster-autoscaler"], "cluster-autoscaler", t)
        ev(t, sess.ident(), "autoscaling.amazonaws.com", "DescribeAutoScalingGroups", US, nat, UA_GO, req={})
    # load balancer controller and EBS CSI
    for t in every(day, 30, 120):
        sess = irsa_session(t, "irsa-aws-load-balancer-controller", "kube-system", "aws-load-balancer-controller", nat)
        for name in ("DescribeLoadBalancers", "DescribeTargetGroups", "DescribeTargetHealth"):
            ev(jit(t, 1, 20), sess.ident(), "elasticloadbalancing.amazonaws.com", name, US, nat, UA_GO, req={})
    for t in every(day, 120, 300):
        sess = irsa_session(t, "irsa-ebs-csi-controller", "kube-system", "ebs-csi-controller-sa", nat)
        ev(jit(t, 1, 20), sess.ident(), "ec2.amazonaws.com", "DescribeVolumes", US, nat, UA_GO, req={})
    # cert-manager: DNS-01 challenges a few times a day
    for _ in range(n_scaled(3)):
        t = rand_time(day, 0, 23.5)
        sess = irsa_session(t, "irsa-cert-manager", "cert-manager", "cert-manager", nat)
        for name in ("ListHostedZonesByName", "ChangeResourceRecordSets", "GetChange", "ChangeResourceRecordSets"):
            t = jit(t, 2, 60)
            ev(t, sess.ident(), "route53.amazonaws.com", name, US, nat, UA_GO, req={"hostedZoneId": "Z0123456789ABCDEFGHIJ"})
    # velero nightly backup
    t = at(day, 1, R.randint(0, 20))
    sess = irsa_session(t, "irsa-velero", "velero", "velero", nat)
    for _ in range(8):
        t = jit(t, 5, 40)
        ev(t, sess.ident(), "ec2.amazonaws.com", "CreateSnapshot", US, nat, UA_GO,
           req={"volumeId": "vol-0" + hexs(16)}, ro=False)
    ev(jit(t, 5, 40), sess.ident(), "ec2.amazonaws.com", "DescribeSnapshots", US, nat, UA_GO, req={})
    # cloudwatch exporter
    for t in every(day, 5, 30):
        sess = Session(ROLES["irsa-cloudwatch-exporter"], "cw-exporter", t)
        if t.minute < 5:
            sess = irsa_session(t, "irsa-cloudwatch-exporter", "monitoring", "cloudwatch-exporter", nat)
        ev(t, sess.ident(), "monitoring.amazonaws.com", "GetMetricData", US, nat, UA_GO, req={"maxDatapoints": 1000})
    # airflow scheduler reads its DAGs bucket
    for t in every(day, 60, 300):
        sess = irsa_session(t, "irsa-airflow-scheduler", "airflow", "airflow-scheduler", nat)
        s3_data(jit(t, 1, 30), sess.ident(), nat, UA_BOTO, "ListObjects", "acme-airflow-dags")


def day_lambdas(day):
    for i, fn in enumerate(LAMBDAS):
        role = ROLES[f"lambda-{fn}"]
        if role["preset_last_used"]:
            continue
        n = n_scaled(4 + (i * 7) % 20)
        for t in sorted(rand_time(day, 0, 23.7) for _ in range(n)):
            sess = service_assume(t, "lambda.amazonaws.com", role, fn, 43200)
            ev(jit(t, 1, 3), sess.ident(), "logs.amazonaws.com", "CreateLogStream", US, NAT_IPS[2], UA_LAMBDA_LOGS,
               req={"logGroupName": f"/aws/lambda/{fn}", "logStreamName": f"{t:%Y/%m/%d}/[$LATEST]{hexs(32)}"})
            if i % 3 == 0:
                ev(jit(t, 3, 6), sess.ident(), "secretsmanager.amazonaws.com", "GetSecretValue", US, "10.0.12.41",
                   UA_LAMBDA, req={"secretId": f"lambda/{fn}"}, vpce="vpce-0c4f1a9d2b7e35a61")
            if fn == "iam-user-sync" and t.hour < 8:
                ev(jit(t, 5, 20), sess.ident(), "iam.amazonaws.com", "ListUsers", US, NAT_IPS[2], UA_LAMBDA, req={})


def day_ecs(day):
    for i, task in enumerate(ECS_TASKS):
        role = ROLES[f"ecs-task-{task}"]
        for _ in range(n_scaled(6)):
            t = rand_time(day, 6, 22)
            sess = service_assume(t, "ecs-tasks.amazonaws.com", role, hexs(32), 21600)
            s3_data(jit(t, 2, 30), sess.ident(), NAT_IPS[1], UA_BOTO, "PutObject", f"acme-{task}",
                    f"out/{t:%Y%m%d}/{hexs(8)}.json")
            if task == "ml-inference":
                ev(jit(t, 2, 30), sess.ident(), "ec2.amazonaws.com", "DescribeInstances", US, "10.0.31.5", UA_BOTO,
                   req={"filterSet": {}}, vpce="vpce-0a1b2c3d4e5f60789")  # through the EC2 VPC endpoint


def day_batches(day, skip=()):
    for i, (b, buckets) in enumerate(BATCHES.items()):
        if b in skip:
            continue
        role = ROLES[b]
        t = at(day, 2, 5 * i, R.randint(0, 59))
        sess = service_assume(t, "ecs-tasks.amazonaws.com", role, hexs(32), 21600)
        for bucket in buckets:
            t = jit(t, 5, 30)
            s3_data(t, sess.ident(), NAT_IPS[1], UA_BOTO, "ListObjects", bucket)
            for _ in range(n_scaled(25)):
                t = jit(t, 1, 8)
                s3_data(t, sess.ident(), NAT_IPS[1], UA_BOTO, "GetObject", bucket,
                        f"{day:%Y/%m/%d}/part-{R.randint(0, 99999):05d}.parquet")


def gh_run(t, repo, subject, deploy=True):
    short = repo.split("/")[1]
    role = ROLES[f"gha-{short}"]
    ip = R.choice(GH_RUNNER_IPS)
    attrs = {f"{GH_HOST}:sub": subject, f"{GH_HOST}:aud": "sts.amazonaws.com",
             f"{GH_HOST}:repository": repo}
    sess = web_identity_assume(t, role, GH_OIDC_ARN, subject, "GitHubActions", ip, UA_GH_STS, attrs)
    ident = sess.ident()
    t = jit(t, 10, 40)
    ev(t, ident, "ecr.amazonaws.com", "GetAuthorizationToken", US, ip, UA_GH, req={"registryIds": [PROD]})
    if not deploy:
        return sess
    STATE["ecs_rev"] += 1
    t = jit(t, 60, 300)
    ev(t, ident, "ecs.amazonaws.com", "RegisterTaskDefinition", US, ip, UA_GH, ro=False,
       req={"family": short, "containerDefinitions": [{"name": short,
                                                         "image": f"{PROD}.dkr.ecr.us-east-1.amazonaws.com/{short}:sha-{hexs(7)}"}]})
    ev(jit(t, 2, 6), ident, "ecs.amazonaws.com", "UpdateService", US, ip, UA_GH, ro=False,
       req={"cluster": "prod", "service": short, "taskDefinition": f"{short}:{STATE['ecs_rev']}"})
    ev(jit(t, 20, 60), ident, "ecs.amazonaws.com", "DescribeServices", US, ip, UA_GH,
       req={"cluster": "prod", "services": [short]})
    ev(jit(t, 60, 120), ident, "eks.amazonaws.com", "DescribeCluster", US, ip, UA_GH, req={"name": CLUSTER})
    return sess


def day_ci(day):
    weekday = day.weekday() < 5
    for repo in REPOS:
        short = repo.split("/")[1]
        if short == "infra":
            continue
        main = f"repo:{repo}:ref:refs/heads/main"
        if weekday:
            n = n_scaled(R.randint(2, 6))
        elif repo in WEEKEND_DEPLOYERS:
            n = R.randint(1, 3)  # this team ships on weekends too
        else:
            n = 0
        for t in sorted(rand_time(day, 8 if weekday else 10, 20) for _ in range(n)):
            gh_run(t, repo, main)
        if weekday:
            for _ in range(n_scaled(R.randint(2, 5))):
                gh_run(rand_time(day, 8, 20), repo, f"repo:{repo}:pull_request", deploy=False)
        if weekday and R.random() < 0.12:  # a tagged release: a new OIDC subject
            v = STATE["tags"].get(repo, 40) + 1
            STATE["tags"][repo] = v
            gh_run(rand_time(day, 14, 18), repo, f"repo:{repo}:ref:refs/tags/v1.{v}.0")
    # Terraform plan on every infra PR (weekdays), apply on Tuesday and Thursday
    if weekday:
        for _ in range(n_scaled(R.randint(2, 5))):
            t = rand_time(day, 9, 18)
            ip = R.choice(GH_RUNNER_IPS)
            subj = "repo:acme/infra:pull_request"
            sess = web_identity_assume(t, ROLES["gha-infra-plan"], GH_OIDC_ARN, subj, "GitHubActions", ip, UA_TF)
            for rn in R.sample(sorted(ROLES), 25):
                t = jit(t, 0, 2)
                ev(t, sess.ident(), "iam.amazonaws.com", "GetRole", US, ip, UA_TF, req={"roleName": rn})
            for name in ("DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups", "DescribeRouteTables"):
                ev(jit(t, 0, 3), sess.ident(), "ec2.amazonaws.com", name, US, ip, UA_TF, req={})
    if day.weekday() in (1, 3):
        t = rand_time(day, 14, 16)
        ip = R.choice(GH_RUNNER_IPS)
        subj = "repo:acme/infra:environment:production"
        sess = web_identity_assume(t, ROLES["gha-infra-apply"], GH_OIDC_ARN, subj, "GitHubActions", ip, UA_TF)
        for rn in R.sample([r for r in sorted(ROLES) if r.startswith("irsa-")], 3):
            t = jit(t, 2, 20)
            ev(t, sess.ident(), "iam.amazonaws.com", "PutRolePolicy", US, ip, UA_TF, ro=False,
               req={"roleName": rn, "policyName": rn[5:] + "-access", "policyDocument": json.dumps(
                   doc(allow(["dynamodb:GetItem"], f"arn:aws:dynamodb:us-east-1:{PROD}:table/{rn[5:]}")))})
        rn = R.choice([r for r in sorted(ROLES) if r.startswith("irsa-")])
        ev(jit(t, 2, 20), sess.ident(), "iam.amazonaws.com", "UpdateAssumeRolePolicy", US, ip, UA_TF, ro=False,
           req={"roleName": rn, "policyDocument": json.dumps(ROLES[rn]["trust"])})
        ev(jit(t, 2, 20), sess.ident(), "cloudtrail.amazonaws.com", "DescribeTrails", US, ip, UA_TF, req={})
        ev(jit(t, 2, 20), sess.ident(), "route53.amazonaws.com", "ChangeResourceRecordSets", US, ip, UA_TF, ro=False,
           req={"hostedZoneId": "Z0123456789ABCDEFGHIJ"})
    # Jenkins: one IAM user key shared by parallel runners behind two NATs
    u = USERS["ci-jenkins"]
    key = u["keys"][0]["id"]
    if weekday:
        for _ in range(n_scaled(R.randint(10, 18))):
            t = rand_time(day, 7, 21)
            for ip in ("192.0.2.15", "192.0.2.16") if R.random() < 0.3 else (R.choice(("192.0.2.15", "192.0.2.16")),):
                t = jit(t, 0, 8)
                ev(t, user_ident(u, key), "ecr.amazonaws.com", "GetAuthorizationToken", US, ip, UA_JENKINS,
                   req={"registryIds": [PROD]})
                s3_data(jit(t, 2, 30), user_ident(u, key), ip, UA_JENKINS, "PutObject", "acme-build-artifacts",
                        f"builds/{hexs(10)}.tgz")
    # terraform-runner (nightly drift check with a key)
    u = USERS["terraform-runner"]
    t = at(day, 3, R.randint(0, 30))
    for rn in R.sample(sorted(ROLES), 10):
        t = jit(t, 0, 3)
        ev(t, user_ident(u, u["keys"][0]["id"]), "iam.amazonaws.com", "GetRole", US, "192.0.2.40", UA_TF,
           req={"roleName": rn})
    # cross-account deployer from our tooling account
    if weekday:
        for _ in range(2):
            t = rand_time(day, 9, 18)
            sess = cross_account_assume(t, ROLES["cross-account-deployer"], TOOLING, "AROAQ3EXAMPLETOOLING01",
                                        "deploy-session", "198.51.100.30", UA_GO, "acme-deploy-7f3c")
            ev(jit(t, 3, 30), sess.ident(), "cloudformation.amazonaws.com", "DescribeStacks", US, "198.51.100.30",
               UA_GO, req={"stackName": "data-platform"})


def day_partners(day):
    # monitoring SaaS: every 10 minutes, a handful of describe/list calls
    for t in every(day, 10, 60):
        sess = cross_account_assume(t, ROLES["datadog-integration"], PARTNER_MON, "AROAPARTNERMON0000001",
                                    f"DatadogAWSIntegration-{hexs(6)}", "3.233.146.17", UA_DD, "dd-acme-52c1")
        for name, src in (("GetMetricData", "monitoring"), ("DescribeInstances", "ec2"),
                          ("DescribeAlarms", "monitoring"), ("ListFunctions", "lambda")):
            ev(jit(t, 1, 30), sess.ident(), f"{src}.amazonaws.com", name, US, "3.233.146.17", UA_DD, req={})
    # backup vendor: nightly
    t = at(day, 0, 30 + R.randint(0, 15))
    sess = cross_account_assume(t, ROLES["partner-backup-access"], PARTNER_BACKUP, "AROAPARTNERBKP0000001",
                                "acmebackup-nightly", "192.0.2.120", UA_BACKUPV, "acmebk-991")
    for _ in range(6):
        t = jit(t, 10, 90)
        ev(t, sess.ident(), "ec2.amazonaws.com", "CreateSnapshot", US, "192.0.2.120", UA_BACKUPV, ro=False,
           req={"volumeId": "vol-0" + hexs(16)})
    ev(jit(t, 10, 90), sess.ident(), "rds.amazonaws.com", "DescribeDBSnapshots", US, "192.0.2.120", UA_BACKUPV, req={})
    # auditor: Wednesdays
    if day.weekday() == 2:
        t = rand_time(day, 13, 16)
        sess = cross_account_assume(t, ROLES["auditor-readonly"], PARTNER_AUDIT, "AROAPARTNERAUD0000001",
                                    "auditor", "203.0.113.200", UA_AUDIT)
        for name in ("GetAccountAuthorizationDetails", "GenerateCredentialReport", "GetCredentialReport",
                     "ListRoles", "ListUsers"):
            t = jit(t, 5, 60)
            ev(t, sess.ident(), "iam.amazonaws.com", name, US, "203.0.113.200", UA_AUDIT, req={})


def day_users(day):
    daily = ["svc-reporting", "svc-backup", "svc-crm-export", "svc-sftp-ingest", "svc-metrics-push",
             "svc-pagerduty", "svc-status-page", "svc-support-tool"]
    for i, n in enumerate(daily):
        u = USERS[n]
        key = u["keys"][0]["id"]
        ip = f"192.0.2.{50 + i}"
        for t in every(day, 60 + 30 * i, 600):
            s3_data(t, user_ident(u, key), ip, UA_BOTO, "PutObject" if i % 2 else "GetObject", f"acme-{n}",
                    f"{t:%Y/%m/%d}/{hexs(8)}.csv")
            ev(jit(t, 1, 20), user_ident(u, key), "monitoring.amazonaws.com", "PutMetricData", US, ip, UA_BOTO,
               req={"namespace": n}, ro=False)
    u = USERS["svc-deploy-legacy"]
    if day.weekday() < 5:
        t = rand_time(day, 10, 17)
        ev(t, user_ident(u, u["keys"][0]["id"]), "ecs.amazonaws.com", "DescribeServices", US, "192.0.2.77",
           UA_JENKINS, req={"cluster": "prod", "services": ["ledger"]})
        ev(jit(t, 5, 30), user_ident(u, u["keys"][0]["id"]), "ecs.amazonaws.com", "UpdateService", US,
           "192.0.2.77", UA_JENKINS, req={"cluster": "prod", "service": "ledger"}, ro=False)
    u = USERS["ops-automation"]
    for t in every(day, 240, 600):
        ev(t, user_ident(u, u["keys"][0]["id"]), "ec2.amazonaws.com", "DescribeInstances", US, "192.0.2.90", UA_BOTO,
           req={"filterSet": {}})


def day_slrs(day):
    for name, svc in (("AWSServiceRoleForAutoScaling", "autoscaling.amazonaws.com"),
                      ("AWSServiceRoleForElasticLoadBalancing", "elasticloadbalancing.amazonaws.com"),
                      ("AWSServiceRoleForAmazonEKS", "eks.amazonaws.com"),
                      ("AWSServiceRoleForAmazonEKSNodegroup", "eks-nodegroup.amazonaws.com"),
                      ("AWSServiceRoleForECS", "ecs.amazonaws.com")):
        role = ROLES[name]
        for t in every(day, 240, 900):
            sess = Session(role, svc.split(".")[0].title(), t)
            ident = dict(sess.ident())
            ident["invokedBy"] = svc
            ev(t, ident, "ec2.amazonaws.com", "DescribeInstances" if "EKS" not in name else "DescribeSubnets", US,
               svc, svc, req={"filterSet": {}}, tls=False)


def day_humans(day):
    if day.weekday() >= 5:
        return
    for k in range(R.randint(1, 3)):
        t = rand_time(day, 8, 18)
        name = R.choice(["AWSReservedSSO_AdministratorAccess_3f2a9c1b7d6e5a40", "AWSReservedSSO_ReadOnly_8e7d6c5b4a392817"])
        role = ROLES[name]
        who = R.choice(STAFF[:8])["email"]
        sess = Session(role, who, t)
        ev(t, {"type": "SAMLUser", "principalId": f"Fq3Cd8NFfWc5DuWS8R6aqxMmk4s=:{who}", "userName": who,
               "identityProvider": "Fq3Cd8NFfWc5DuWS8R6aqxMmk4s="}, "sts.amazonaws.com", "AssumeRoleWithSAML", US,
           "203.0.113.25", UA_CONSOLE,
           req={"roleSessionName": who, "roleArn": role["arn"], "principalArn": SAML_ARN, "durationSeconds": 3600},
           resp={"credentials": {"accessKeyId": sess.key, "sessionToken": session_token(),
                                 "expiration": sts_exp(t + timedelta(hours=1))},
                 "assumedRoleUser": {"assumedRoleId": f"{role['id']}:{who}", "arn": sess.arn}},
           resources=role_resource(role["arn"]))
        for _ in range(R.randint(3, 12)):
            t = jit(t, 10, 300)
            ev(t, sess.ident(), R.choice(["ec2.amazonaws.com", "iam.amazonaws.com", "eks.amazonaws.com"]),
               R.choice(["DescribeInstances", "ListRoles", "DescribeCluster"]), US, "203.0.113.25", UA_CONSOLE, req={})


# ---- Kubernetes audit, per day
def day_k8s(day):
    # add-ons that watch secrets cluster-wide (watch reconnects every ~10 minutes, a relist hourly)
    for ns, name in SECRET_WATCHERS:
        pod = PODS[f"{ns}/{name}"][0]
        u = sa_user(ns, name, pod)
        reason = rbac_reason("ClusterRoleBinding", "secret-watchers", "secret-watcher", ns, name)
        if name == "velero":
            # hourly backups list every secret of the cluster, then nothing until the next run
            for h in range(24):
                t = at(day, h, R.randint(0, 25), R.randint(0, 59))
                for res in ("secrets", "configmaps", "serviceaccounts", "persistentvolumeclaims"):
                    t = jit(t, 1, 20)
                    audit(t, u, "list", f"/api/v1/{res}?limit=500", ref(res), 200, [pod[2]],
                          "velero-server/v1.14.1 (linux/amd64)", reason)
            continue
        if name == "kubernetes-dashboard":
            # lists secrets when someone browses the Secrets page (office hours, weekdays)
            if day.weekday() < 5:
                for _ in range(R.randint(2, 6)):
                    t = rand_time(day, 8, 19)
                    for ns2 in R.sample(NAMESPACES, 3):
                        t = jit(t, 5, 90)
                        audit(t, u, "list", f"/api/v1/namespaces/{ns2}/secrets", ref("secrets", ns2), 200, [pod[2]],
                              "dashboard/v2.7.0", reason)
                    audit(jit(t, 5, 90), u, "list", "/api/v1/secrets", ref("secrets"), 200, [pod[2]],
                          "dashboard/v2.7.0", reason)
            continue
        for t in every(day, 10, 60):
            audit(t, u, "watch", f"/api/v1/secrets?allowWatchBookmarks=true&resourceVersion={rvs()}&watch=true",
                  ref("secrets"), 200, [pod[2]], f"{name}/v1.15.3 (linux/amd64)", reason)
        for t in every(day, 60, 120):
            audit(t, u, "list", "/api/v1/secrets?limit=500&resourceVersion=0", ref("secrets"), 200, [pod[2]],
                  f"{name}/v1.15.3 (linux/amd64)", reason)
            audit(jit(t, 0, 2), u, "list", "/api/v1/configmaps?limit=500", ref("configmaps"), 200, [pod[2]],
                  f"{name}/v1.15.3 (linux/amd64)", reason)
    # controllers and monitoring
    for ns, name, res, minutes in (("kube-system", "coredns", "endpointslices", 10), ("kube-system", "aws-node", "pods", 15),
                                   ("monitoring", "prometheus", "endpoints", 5), ("monitoring", "node-exporter", "nodes", 30),
                                   ("kube-system", "cluster-autoscaler", "nodes", 10),
                                   ("kube-system", "external-dns", "services", 10),
                                   ("kube-system", "aws-load-balancer-controller", "ingresses", 10),
                                   ("kube-system", "ebs-csi-controller-sa", "persistentvolumeclaims", 30),
                                   ("kube-system", "metrics-server", "nodes", 15),
                                   ("argocd", "argocd-application-controller", "deployments", 5),
                                   ("argocd", "argocd-server", "applications", 30),
                                   ("monitoring", "cloudwatch-exporter", "configmaps", 60),
                                   ("monitoring", "grafana", "configmaps", 30),
                                   ("airflow", "airflow-worker", "configmaps", 60)):
        pods = PODS[f"{ns}/{name}"]
        for t in every(day, minutes, 60):
            pod = R.choice(pods)
            audit(t, sa_user(ns, name, pod), R.choice(["list", "watch"]), f"/api/v1/{res}?limit=500", ref(res), 200,
                  [pod[2]], f"{name}/v0.0.0 (linux/amd64) kubernetes/$Format",
                  f'RBAC: allowed by ClusterRoleBinding "{name}" of ClusterRole "{name}" to ServiceAccount "{name}/{ns}"')
    # the workflow scheduler execs into its workers to run tasks
    sched = PODS["airflow/airflow-scheduler"][0]
    workers = PODS["airflow/airflow-worker"]
    for t in every(day, 20, 300):
        w = R.choice(workers)
        audit(t, sa_user("airflow", "airflow-scheduler", sched), "create",
              f"/api/v1/namespaces/airflow/pods/{w[0]}/exec?command=airflow&command=tasks&command=run&container=worker"
              "&stderr=true&stdout=true", ref("pods", "airflow", w[0], sub="exec"), 101, [sched[2]],
              "airflow-kubernetes-executor/2.10.3", rbac_reason("RoleBinding", "airflow-executor/airflow",
                                                                 "workflow-executor", "airflow", "airflow-scheduler"))
    # applications read their config and renew leader leases
    for s in SERVICES:
        ns = SVC_NS[s]
        for t in every(day, 30, 300):
            pod = R.choice(PODS[f"{ns}/{s}"])
            if R.random() < 0.5:
                audit(t, sa_user(ns, s, pod), "get", f"/api/v1/namespaces/{ns}/configmaps/{s}-config",
                      ref("configmaps", ns, f"{s}-config"), 200, [pod[2]], "Go-http-client/2.0",
                      rbac_reason("RoleBinding", f"app-config/{ns}", "app-config", ns, s))
            else:
                audit(t, sa_user(ns, s, pod), "update", f"/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{s}",
                      ref("leases", ns, s, group="coordination.k8s.io"), 200, [pod[2]], "Go-http-client/2.0",
                      rbac_reason("RoleBinding", f"app-config/{ns}", "app-config", ns, s))
    # kubelets
    for nn, node in NODES.items():
        for t in every(day, 20, 60):
            audit(t, {"username": f"system:node:{nn}", "groups": ["system:nodes", "system:authenticated"]},
                  "patch", f"/api/v1/nodes/{nn}/status?timeout=10s", ref("nodes", None, nn, sub="status"), 200,
                  [node["ip"]], KUBELET_UA)
    # CI deploys: tekton (in-cluster) and gitlab (token from outside) patch deployments on weekdays
    if day.weekday() < 5:
        for sa_name, ip in (("tekton-pipeline", None), ("gitlab-deployer", "192.0.2.61")):
            pods = PODS.get(f"ci/{sa_name}")
            for _ in range(n_scaled(R.randint(3, 8))):
                t = rand_time(day, 9, 19)
                s = R.choice(SERVICES)
                ns = SVC_NS[s]
                pod = pods[0] if pods else None
                src = [pod[2]] if pod else [ip]
                u = sa_user("ci", sa_name, pod)
                reason = rbac_reason("ClusterRoleBinding", "ci-deployer", "deployer", "ci", sa_name)
                audit(t, u, "get", f"/apis/apps/v1/namespaces/{ns}/deployments/{s}",
                      ref("deployments", ns, s, group="apps"), 200, src, KUBECTL_UA, reason)
                audit(jit(t, 1, 3), u, "patch", f"/apis/apps/v1/namespaces/{ns}/deployments/{s}",
                      ref("deployments", ns, s, group="apps"), 200, src, KUBECTL_UA, reason, level="Request",
                      request_object={"spec": {"template": {"spec": {"containers": [
                          {"name": s, "image": f"registry.acme.example/{s}:sha-{hexs(7)}"}]}}}})


# ---------------------------------------------------------------------------
# the planted incidents (days 14-20)
# ---------------------------------------------------------------------------
INCIDENTS = []


def incident(iid, day_index, description, identities, rules, fn):
    day = DAYS[day_index]
    start_t = [None]

    def run():
        before_ct, before_k8s = len(EVENTS), len(AUDIT)
        fn(day)
        times = [e[0] for e in EVENTS[before_ct:]] + [a[0] for a in AUDIT[before_k8s:]]
        start_t[0] = (min(times), max(times))
    INCIDENTS.append({"id": iid, "day": day_index, "description": description, "identities": identities,
                      "rules": rules, "run": run, "window": start_t})


def inc_stoplogging(day):
    t = at(day, 19, 42, 7)
    ip = "203.0.113.99"
    subj = "repo:acme/infra:ref:refs/heads/fix-logging"
    sess = web_identity_assume(t, ROLES["gha-infra-apply"], GH_OIDC_ARN, subj, "GitHubActions", ip, UA_ATTACK)
    ev(jit(t, 20, 40), sess.ident(), "cloudtrail.amazonaws.com", "DescribeTrails", US, ip, UA_ATTACK, req={})
    ev(jit(t, 60, 90), sess.ident(), "cloudtrail.amazonaws.com", "StopLogging", US, ip, UA_ATTACK, ro=False,
       req={"name": f"arn:aws:cloudtrail:us-east-1:{PROD}:trail/org-trail"})


def inc_backdoor_key(day):
    u = USERS["ci-jenkins"]
    t = at(day, 2, 13, 44)
    ip = "192.0.2.15"
    ident = user_ident(u, u["keys"][0]["id"])
    ev(t, ident, "iam.amazonaws.com", "ListAccessKeys", US, ip, UA_JENKINS, req={"userName": "svc-reporting"})
    newkey = make_key("AKIA")
    ev(jit(t, 5, 20), ident, "iam.amazonaws.com", "CreateAccessKey", US, ip, UA_JENKINS, ro=False,
       req={"userName": "svc-reporting"},
       resp={"accessKey": {"userName": "svc-reporting", "accessKeyId": newkey, "status": "Active",
                           "createDate": f"{t:%b} {t.day}, {t.year} {ampm(t)}"}})


def inc_fourth_bucket(day):
    role = ROLES["batch-reconcile"]
    t = at(day, 2, 0, R.randint(0, 59))
    sess = service_assume(t, "ecs-tasks.amazonaws.com", role, hexs(32), 21600)
    for bucket in BATCHES["batch-reconcile"] + ["acme-hr-payroll"]:
        t = jit(t, 5, 30)
        s3_data(t, sess.ident(), NAT_IPS[1], UA_BOTO, "ListObjects", bucket)
        for _ in range(n_scaled(25)):
            t = jit(t, 1, 8)
            s3_data(t, sess.ident(), NAT_IPS[1], UA_BOTO, "GetObject", bucket,
                    f"{day:%Y/%m/%d}/part-{R.randint(0, 99999):05d}.parquet")


def inc_dormant_key(day):
    u = USERS["svc-legacy-etl"]
    key = u["keys"][0]["id"]
    ip = "185.220.101.47"
    t = at(day, 4, 2, 51)
    ident = user_ident(u, key)
    ev(t, ident, "sts.amazonaws.com", "GetCallerIdentity", US, ip, UA_ATTACK, req=None)
    ev(jit(t, 10, 30), ident, "s3.amazonaws.com", "ListBuckets", US, ip, UA_ATTACK, req={"Host": "s3.amazonaws.com"})
    for b in ("acme-orders-archive", "acme-user-events", "acme-ledger-exports"):
        t = jit(t, 20, 60)
        s3_data(t, ident, ip, UA_ATTACK, "ListObjects", b)
        for _ in range(10):
            t = jit(t, 1, 5)
            s3_data(t, ident, ip, UA_ATTACK, "GetObject", b, f"exports/{hexs(8)}.csv.gz")


def inc_cluster_admin(day):
    pod = PODS["ci/tekton-pipeline"][0]
    t = at(day, 23, 11, 5)
    u = sa_user("ci", "tekton-pipeline", pod)
    reason = rbac_reason("ClusterRoleBinding", "ci-deployer", "deployer", "ci", "tekton-pipeline")
    audit(t, u, "create", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
          ref("clusterrolebindings", None, "ci-maintenance", group="rbac.authorization.k8s.io"), 201, [pod[2]],
          KUBECTL_UA, reason, level="RequestResponse",
          request_object={"kind": "ClusterRoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
                          "metadata": {"name": "ci-maintenance"},
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                      "name": "cluster-admin"},
                          "subjects": [{"kind": "ServiceAccount", "name": "tekton-pipeline", "namespace": "ci"}]})


def inc_secret_dump(day):
    pod = PODS["payments/payments-api"][0]
    u = sa_user("payments", "payments-api", pod)
    t = at(day, 3, 27, 40)
    audit(t, u, "list", "/api/v1/secrets?limit=500", ref("secrets"), 200, [pod[2]], "curl/8.5.0",
          'RBAC: allowed by ClusterRoleBinding "app-debug" of ClusterRole "cluster-admin" to ServiceAccount "payments-api/payments"')
    for ns in ("kube-system", "payments", "orders"):
        t = jit(t, 2, 10)
        audit(t, u, "list", f"/api/v1/namespaces/{ns}/secrets", ref("secrets", ns), 200, [pod[2]], "curl/8.5.0",
              'RBAC: allowed by ClusterRoleBinding "app-debug" of ClusterRole "cluster-admin" to ServiceAccount "payments-api/payments"')


def inc_exec(day):
    pod = PODS["monitoring/grafana"][0]
    target = PODS["payments/ledger"][0]
    t = at(day, 21, 3, 12)
    audit(t, sa_user("monitoring", "grafana", pod), "create",
          f"/api/v1/namespaces/payments/pods/{target[0]}/exec?command=sh&container=ledger&stdin=true&stdout=true&tty=true",
          ref("pods", "payments", target[0], sub="exec"), 101, [pod[2]], KUBECTL_UA,
          'RBAC: allowed by ClusterRoleBinding "grafana-debug" of ClusterRole "cluster-admin" to ServiceAccount "grafana/monitoring"')


def inc_unknown_account(day):
    t = at(day, 5, 44, 2)
    sess = cross_account_assume(t, ROLES["vendor-analytics-legacy"], UNKNOWN, "AROAUNKNOWNACCT000001",
                                "analytics", "45.137.21.9", UA_ATTACK)
    for name in ("ListBuckets", "DescribeInstances"):
        t = jit(t, 10, 60)
        ev(t, sess.ident(), "s3.amazonaws.com" if name == "ListBuckets" else "ec2.amazonaws.com", name, US,
           "45.137.21.9", UA_ATTACK, req={})


def inc_trust_backdoor(day):
    # the tooling account's terraform (admin) session rewrites data-export's trust policy
    t = at(day, 22, 40, 9)
    sess = cross_account_assume(t, ROLES["terraform-admin"], TOOLING, "AROAQ3EXAMPLETOOLING02", "tf-admin",
                                "198.51.100.30", UA_ATTACK)
    trust = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{TOOLING}:root"}, "Action": "sts:AssumeRole"},
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ATTACKER_TRUST}:root"},
                 "Action": "sts:AssumeRole"})
    ev(jit(t, 20, 60), sess.ident(), "iam.amazonaws.com", "UpdateAssumeRolePolicy", US, "198.51.100.30", UA_ATTACK,
       ro=False, req={"roleName": "data-export", "policyDocument": json.dumps(trust)})


def inc_new_region(day):
    role = ROLES["ecs-task-ml-inference"]
    t = at(day, 1, 17, 30)
    sess = service_assume(t, "ecs-tasks.amazonaws.com", role, hexs(32), 21600)
    for _ in range(3):
        t = jit(t, 20, 90)
        ev(t, sess.ident(), "ec2.amazonaws.com", "RunInstances", "ap-southeast-1", NAT_IPS[1], UA_BOTO, ro=False,
           req={"instanceType": "p4d.24xlarge", "minCount": 4, "maxCount": 4, "imageId": "ami-0" + hexs(16)})


def inc_self_escalation(day):
    u = USERS["svc-deploy-legacy"]
    t = at(day, 20, 5, 33)
    ev(t, user_ident(u, u["keys"][0]["id"]), "iam.amazonaws.com", "PutUserPolicy", US, "192.0.2.77", UA_JENKINS,
       ro=False, req={"userName": "svc-deploy-legacy", "policyName": "ops",
                      "policyDocument": json.dumps(doc(allow("*", "*")))})


def inc_secrets_harvest(day):
    t = at(day, 14, 12, 3)
    s = "search-indexer"
    sess = irsa_session(t, f"irsa-{s}", SVC_NS[s], s, NAT_IPS[0])
    ev(jit(t, 5, 10), sess.ident(), "secretsmanager.amazonaws.com", "ListSecrets", US, NAT_IPS[0], UA_BOTO, req={})
    for i in range(14):
        t = jit(t, 3, 15)
        ev(t, sess.ident(), "secretsmanager.amazonaws.com", "GetSecretValue", US, NAT_IPS[0], UA_BOTO,
           req={"secretId": f"prod/{LAMBDAS[i]}/credentials"})


def plant_incidents():
    anyb = "kw-baseline-anomaly"
    # The way in is a branch nobody uses: its web-identity subject is the incident's too.
    incident("I01-stop-logging", 15, "CloudTrail StopLogging by the infra CI apply role, from an unknown branch",
             [role_id("gha-infra-apply"),
              "oidc:token.actions.githubusercontent.com#repo:acme/infra:ref:refs/heads/fix-logging"],
             ["kw-aws-cloudtrail-tampering", "kw-aws-new-web-identity-subject"], inc_stoplogging)
    incident("I02-backdoor-key", 14, "ci-jenkins creates an access key for svc-reporting (backdoor)",
             [user_id("ci-jenkins")], ["kw-aws-backdoor-access-key"], inc_backdoor_key)
    incident("I03-fourth-bucket", 16, "batch-reconcile, which read the same three buckets nightly for two weeks, "
             "reads a fourth (acme-hr-payroll)", [role_id("batch-reconcile")], [anyb, "kw-aws-new-resource"], inc_fourth_bucket)
    incident("I04-dormant-key", 17, "svc-legacy-etl's key, dormant since early September and whose owner left, "
             "is used again from a new address", [user_id("svc-legacy-etl"), USERS["svc-legacy-etl"]["keys"][0]["id"]],
             ["kw-aws-used-after-retirement", anyb, "kw-aws-key-multi-ip", "kw-aws-dormant-reuse"], inc_dormant_key)
    incident("I05-cluster-admin-binding", 18, "ci/tekton-pipeline binds itself to cluster-admin",
             [sa_id("ci", "tekton-pipeline")], ["kw-k8s-cluster-admin-binding"], inc_cluster_admin)
    incident("I06-secret-dump", 19, "payments/payments-api, which never listed secrets, lists them cluster-wide "
             "and in kube-system", [sa_id("payments", "payments-api")], ["kw-k8s-secret-dump", anyb], inc_secret_dump)
    incident("I07-exec-unusual", 16, "monitoring/grafana execs a shell in a payments pod",
             [sa_id("monitoring", "grafana")], ["kw-k8s-exec-attach", anyb], inc_exec)
    incident("I08-unknown-account", 15, "vendor-analytics-legacy assumed from an account nobody approved",
             [role_id("vendor-analytics-legacy"), f"arn:aws:iam::{UNKNOWN}:*", f"arn:aws:sts::{UNKNOWN}:*",
              f"{UNKNOWN}"], ["kw-aws-untrusted-account-assume", anyb], inc_unknown_account)
    incident("I09-trust-backdoor", 19, "terraform-admin (from tooling) rewrites data-export's trust policy to trust "
             f"account {ATTACKER_TRUST}", [role_id("terraform-admin")],
             ["kw-aws-backdoor-role", "kw-aws-trust-policy-change"], inc_trust_backdoor)
    incident("I10-new-region", 20, "ecs-task-ml-inference runs p4d instances in ap-southeast-1",
             [role_id("ecs-task-ml-inference")], ["kw-aws-new-region", anyb], inc_new_region)
    incident("I11-self-escalation", 17, "svc-deploy-legacy writes itself an Allow * policy (PutUserPolicy on itself)",
             [user_id("svc-deploy-legacy")], ["kw-aws-self-permission-change", "kw-aws-admin-policy-attached"],
             inc_self_escalation)
    incident("I12-secrets-harvest", 18, "irsa-search-indexer, which never read a secret, reads 14 secrets in minutes",
             [role_id("irsa-search-indexer")], ["kw-aws-secrets-bulk-retrieval", anyb], inc_secrets_harvest)


# ---------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------
OUT = None


def write_gz(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(data, compresslevel=6, mtime=0))


def flush_day(day, audit_file):
    EVENTS.sort(key=lambda e: e[0])
    buckets = {}
    for t, region, rec in EVENTS:
        if t > END:
            continue
        buckets.setdefault((region, t.hour // (1 if region == US else 24)), []).append(rec)
    for (region, part), recs in sorted(buckets.items()):
        last = recs[-1]["eventTime"]
        stamp = f"{day:%Y%m%d}T{last[11:13]}{int(last[14:16]) // 5 * 5:02d}Z"
        name = f"{PROD}_CloudTrail_{region}_{stamp}_{rand_str(16)}.json.gz"
        path = os.path.join(OUT, "aws", "AWSLogs", PROD, "CloudTrail", region, f"{day:%Y}", f"{day:%m}",
                            f"{day:%d}", name)
        write_gz(path, json.dumps({"Records": recs}, separators=(",", ":")).encode())
        COUNTS["cloudtrail"] += len(recs)
    EVENTS.clear()
    AUDIT.sort(key=lambda a: a[0])
    for t, line in AUDIT:
        if t > END:
            continue
        audit_file.write(json.dumps(line, separators=(",", ":")))
        audit_file.write("\n")
        COUNTS["audit"] += 1
    AUDIT.clear()


def write_json(path, document, indent=2):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(document, indent=indent, ensure_ascii=False))
        f.write("\n")


def build_authz():
    attach = {}

    def att(name):
        arn = aws_managed_arn(name) if name in AWS_MANAGED else f"arn:aws:iam::{PROD}:policy/{name}"
        attach[arn] = attach.get(arn, 0) + 1
        return {"PolicyName": name, "PolicyArn": arn}

    users = []
    for n in sorted(USERS):
        u = USERS[n]
        x = {"Path": u["path"], "UserName": n, "UserId": u["id"], "Arn": u["arn"], "CreateDate": cli(u["created"])}
        if u["inline"]:
            x["UserPolicyList"] = [{"PolicyName": pn, "PolicyDocument": pd} for pn, pd in u["inline"]]
        x["GroupList"] = list(u["groups"])
        x["AttachedManagedPolicies"] = [att(m) for m in u["managed"]]
        x["Tags"] = u["tags"]
        users.append(x)
    groups = []
    for g in sorted(GROUPS):
        G = GROUPS[g]
        groups.append({"Path": "/", "GroupName": g, "GroupId": G["id"], "Arn": f"arn:aws:iam::{PROD}:group/{g}",
                       "CreateDate": cli(G["created"]),
                       "GroupPolicyList": [{"PolicyName": pn, "PolicyDocument": pd} for pn, pd in G["inline"]],
                       "AttachedManagedPolicies": [att(m) for m in G["managed"]]})
    roles = []
    for n in sorted(ROLES, key=str.lower):
        r = ROLES[n]
        x = {"Path": r["path"], "RoleName": n, "RoleId": r["id"], "Arn": r["arn"], "CreateDate": cli(r["created"]),
             "AssumeRolePolicyDocument": r["trust"], "InstanceProfileList": [],
             "RolePolicyList": [{"PolicyName": pn, "PolicyDocument": pd} for pn, pd in r["inline"]],
             "AttachedManagedPolicies": [att(m) for m in r["managed"]], "Tags": r["tags"]}
        if r["instance_profile"]:
            x["InstanceProfileList"] = [{"Path": "/", "InstanceProfileName": n, "InstanceProfileId": make_uid("AIPA"),
                                         "Arn": f"arn:aws:iam::{PROD}:instance-profile/{n}",
                                         "CreateDate": cli(r["created"]),
                                         "Roles": [{"Path": "/", "RoleName": n, "RoleId": r["id"], "Arn": r["arn"],
                                                    "CreateDate": cli(r["created"]),
                                                    "AssumeRolePolicyDocument": r["trust"]}]}]
        lu = LAST_USED.get(role_id(n))
        lu_t = lu[0] if lu else r["preset_last_used"]
        x["RoleLastUsed"] = {"LastUsedDate": cli(lu_t), "Region": US} if lu_t else {}
        roles.append(x)
    policies = []
    for name in sorted(LOCAL_POLICIES):
        arn = f"arn:aws:iam::{PROD}:policy/{name}"
        policies.append({"PolicyName": name, "PolicyId": make_uid("ANPA"), "Arn": arn, "Path": "/",
                         "DefaultVersionId": "v1", "AttachmentCount": attach.get(arn, 0),
                         "PermissionsBoundaryUsageCount": 0, "IsAttachable": True,
                         "CreateDate": cli(d(2024, 1, 1)), "UpdateDate": cli(d(2024, 1, 1)),
                         "PolicyVersionList": [{"Document": LOCAL_POLICIES[name], "VersionId": "v1",
                                                "IsDefaultVersion": True, "CreateDate": cli(d(2024, 1, 1))}]})
    for name in sorted(AWS_MANAGED):
        path, document = AWS_MANAGED[name]
        arn = aws_managed_arn(name)
        policies.append({"PolicyName": name, "PolicyId": "ANPA" + rand_str(17, B32), "Arn": arn, "Path": path,
                         "DefaultVersionId": "v1", "AttachmentCount": attach.get(arn, 0),
                         "PermissionsBoundaryUsageCount": 0, "IsAttachable": True,
                         "CreateDate": cli(d(2015, 2, 6)), "UpdateDate": cli(d(2024, 2, 6)),
                         "PolicyVersionList": [{"Document": document, "VersionId": "v1", "IsDefaultVersion": True,
                                                "CreateDate": cli(d(2024, 2, 6))}]})
    return {"UserDetailList": users, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": policies,
            "IsTruncated": False}


def write_credential_report():
    cols = ["user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
            "password_next_rotation", "mfa_active", "access_key_1_active", "access_key_1_last_rotated",
            "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
            "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
            "access_key_2_last_used_region", "access_key_2_last_used_service", "cert_1_active",
            "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated"]

    def key_cols(k):
        if not k:
            return ["false", "N/A", "N/A", "N/A", "N/A"]
        lu = REPORTED_LAST_USED.get(k["id"])
        if lu is None and k["preset_last_used"]:
            lu = (k["preset_last_used"], US, "s3")
        if not lu:
            return ["true", cli(k["created"]), "N/A", "N/A", "N/A"]
        return ["true", cli(k["created"]), cli(lu[0].replace(second=0)), lu[1], lu[2]]

    rows = [["<root_account>", f"arn:aws:iam::{PROD}:root", "2019-04-08T12:31:07+00:00", "not_supported",
             "2026-06-01T09:12:00+00:00", "not_supported", "not_supported", "true"] + key_cols(None) + key_cols(None)
            + ["false", "N/A", "false", "N/A"]]
    for n in sorted(USERS):
        u = USERS[n]
        pw = ["true", cli(DAYS[12] + timedelta(hours=9)), "2026-08-14T09:40:22+00:00", "N/A", "true"] \
            if u["password"] else ["false", "N/A", "N/A", "N/A", "false"]
        ks = u["keys"] + [None, None]
        rows.append([n, u["arn"], cli(u["created"])] + pw + key_cols(ks[0]) + key_cols(ks[1])
                    + ["false", "N/A", "false", "N/A"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    w.writerows(rows)
    with open(os.path.join(OUT, "aws", PROD, "credential-report.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


def tf_role(r):
    name = r["name"]
    rn = name.replace("-", "_")
    lines = [f'resource "aws_iam_role" "{rn}" {{', f'  name = "{name}"', f'  path = "{r["path"]}"',
             f"  assume_role_policy = jsonencode({json.dumps(r['trust'])})"]
    if r["tags"]:
        lines.append("  tags = {")
        for t in r["tags"]:
            lines.append(f'    {t["Key"]} = "{t["Value"]}"')
        lines.append("  }")
    lines.append("}")
    for pn, pd in r["inline"]:
        lines += ["", f'resource "aws_iam_role_policy" "{rn}_{pn.replace("-", "_")}" {{', f'  name = "{pn}"',
                  f"  role = aws_iam_role.{rn}.id", f"  policy = jsonencode({json.dumps(pd)})", "}"]
    return "\n".join(lines)


def write_repo():
    base = os.path.join(OUT, "repo")
    os.makedirs(os.path.join(base, "infra"), exist_ok=True)
    os.makedirs(os.path.join(base, ".github"), exist_ok=True)
    header = ('terraform {\n  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
              '      version = "~> 5.70"\n    }\n  }\n}\n\nprovider "aws" {\n  region = "us-east-1"\n}\n')
    apps = [tf_role(ROLES[f"irsa-{s}"]) for s in SERVICES]
    with open(os.path.join(base, "infra", "iam.tf"), "w", encoding="utf-8", newline="\n") as f:
        f.write(header + "\n" + "\n\n".join(apps) + "\n")
    addons = [tf_role(ROLES[f"irsa-{a}"]) for a in ADDON_SA]
    with open(os.path.join(base, "infra", "addons.tf"), "w", encoding="utf-8", newline="\n") as f:
        f.write(header + "\n" + "\n\n".join(addons) + "\n")
    with open(os.path.join(base, ".github", "CODEOWNERS"), "w", encoding="utf-8", newline="\n") as f:
        f.write("# The last matching rule wins.\n"
                f"*                 @acme/platform {owner_for('platform')}\n"
                f"/infra/iam.tf     @acme/platform @acme/security {owner_for('security')}\n"
                f"/infra/addons.tf  @acme/platform {owner_for('platform')}\n")


def write_people():
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["email", "name", "team", "status", "github_login"])
    for p in STAFF:
        w.writerow([p["email"], p["name"], p["team"], p["status"], p["github_login"]])
    path = os.path.join(OUT, "directory", "people.csv")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())


def finalize_truth():
    """Stale and orphaned, computed from what happened: no activity for 30 days or more before the last
    event (service-linked roles never stale), and no owner or only owners who left. The hand-placed
    cases above must agree."""
    as_of = END
    stale, orphan = set(), set()

    def is_stale(last):
        return as_of - last >= timedelta(days=30)

    for n, r in ROLES.items():
        rid = role_id(n)
        if r["slr"]:
            NEUTRAL["stale"].discard(rid)
            continue
        lu = LAST_USED.get(rid)
        last = lu[0] if lu else (r["preset_last_used"] or r["created"])
        if is_stale(last):
            stale.add(rid)
        if r["owner"] is None or r["owner"] in LEAVERS:
            orphan.add(rid)
    for n, u in USERS.items():
        uid_ = user_id(n)
        times = [LAST_USED[uid_][0]] if uid_ in LAST_USED else []
        times += [k["preset_last_used"] for k in u["keys"] if k["preset_last_used"]]
        if u["password"]:
            times.append(DAYS[-3])
        if is_stale(max(times) if times else u["created"]):
            stale.add(uid_)
        if u["owner"] is None or u["owner"] in LEAVERS:
            orphan.add(uid_)
    for key, (created, owner) in K8S["sa_meta"].items():
        ns, name = key.split("/")
        sid = sa_id(ns, name)
        # The audit log covers 21 days: a service account it never shows is not known to be
        # unused for 30 (unknown, neutral), however old.
        if f"system:serviceaccount:{ns}:{name}" not in K8S_ACTIVE and is_stale(created):
            NEUTRAL["stale"].add(sid)
        if owner is None or owner in LEAVERS:
            orphan.add(sid)
    for c, computed in (("stale", stale), ("orphaned", orphan)):
        missing = TRUTH_POSTURE[c] - computed
        assert not missing, (c, sorted(missing))
        TRUTH_POSTURE[c] = computed


def write_truth(counts):
    incidents = []
    for inc in INCIDENTS:
        lo, hi = inc["window"][0]
        incidents.append({"id": inc["id"], "description": inc["description"], "identities": inc["identities"],
                          "window": {"start": ct(lo.replace(minute=0, second=0) - timedelta(hours=1)),
                                     "end": ct(hi + timedelta(hours=2))},
                          "rules": inc["rules"]})
    machine = [i for i in all_identity_ids() if not i[1]]
    truth = {
        "generator": "examples/quality/generate.py", "seed": SEED, "scale": SCALE,
        "estate": {"accounts": {"own": [PROD, TOOLING], "approved_partners": [PARTNER_MON, PARTNER_BACKUP, PARTNER_AUDIT]},
                   "cluster": CLUSTER, "start": ct(START), "end": ct(END), "training_days": TRAIN_DAYS,
                   "snapshot": ct(SNAPSHOT), "machine_identities": len(machine),
                   "iam_roles": len(ROLES), "iam_users": len(USERS),
                   "access_keys": sum(len(u["keys"]) for u in USERS.values()),
                   "service_accounts": len(K8S["sa_uid"]), "people": len(STAFF), "leavers": LEAVERS,
                   "on_leave": ON_LEAVE, "cloudtrail_records": counts["cloudtrail"],
                   "audit_events": counts["audit"]},
        "config": {"allow_accounts": APPROVED},
        "notes": [
            "Kubernetes ids are written with the cluster's real name (prod-eks); the files sit at k8s/rbac.json and "
            "k8s/audit/audit.log as a user lays them out, so the scorer compares service accounts without the "
            "cluster part.",
            "Posture: access keys (credentials of the users the findings are about) and namespaces' default "
            "service accounts are neutral (neither right nor wrong).",
            "stale = no activity for 30 days or more before the snapshot, service-linked roles excluded (never "
            "stale); service accounts the 21 days of audit log never show are unknown (neutral)."],
        "incidents": incidents,
        "posture": {c: {"identities": sorted(TRUTH_POSTURE[c]), "neutral": sorted(NEUTRAL[c])}
                    for c in TRUTH_POSTURE},
        "posture_rules": {"admin_wildcard": "kw-posture-admin-wildcard", "stale": "kw-posture-stale",
                          "orphaned": "kw-posture-orphaned", "escalation": "kw-posture-escalation"},
    }
    write_json(os.path.join(OUT, "truth.json"), truth)
    return truth


def all_identity_ids():
    """(id, human?) of every identity the snapshots define."""
    out = [(role_id(n), n.startswith("AWSReservedSSO")) for n in ROLES]
    for n, u in USERS.items():
        out.append((user_id(n), bool(u.get("human"))))
        out += [(k["id"], False) for k in u["keys"]]
    out += [(f"k8s:{CLUSTER}/system:serviceaccount:{k.replace('/', ':')}", False) for k in K8S["sa_uid"]]
    return out


def main(argv=None):
    global OUT, SCALE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "..", "target", "quality", "estate"),
                    help="output directory (emptied first; default target/quality/estate)")
    ap.add_argument("--scale", type=float, default=1.0, help="volume factor for the periodic workloads")
    a = ap.parse_args(argv)
    OUT = os.path.abspath(a.out)
    SCALE = a.scale
    if os.path.exists(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    build_iam()
    build_nodes()
    snap = build_k8s()
    plant_incidents()
    by_day = {}
    for inc in INCIDENTS:
        by_day.setdefault(inc["day"], []).append(inc)
    audit_path = os.path.join(OUT, "k8s", "audit", "audit.log")
    os.makedirs(os.path.dirname(audit_path), exist_ok=True)
    with open(audit_path, "w", encoding="utf-8", newline="\n") as af:
        for i, day in enumerate(DAYS):
            day_nodegroups(day)
            day_brokers(day)
            day_services(day)
            day_addons(day)
            day_lambdas(day)
            day_ecs(day)
            skip = {"batch-reconcile"} if any(x["id"] == "I03-fourth-bucket" for x in by_day.get(i, [])) else set()
            day_batches(day, skip)
            day_ci(day)
            day_partners(day)
            day_users(day)
            day_slrs(day)
            day_humans(day)
            day_k8s(day)
            for inc in by_day.get(i, []):
                inc["run"]()
            flush_day(day, af)
            print(f"  {day:%Y-%m-%d}: {COUNTS['cloudtrail']} CloudTrail records, {COUNTS['audit']} audit events",
                  file=sys.stderr)
    finalize_truth()
    write_json(os.path.join(OUT, "aws", PROD, "iam-authorization-details.json"), build_authz())
    write_credential_report()
    write_json(os.path.join(OUT, "k8s", "rbac.json"), snap)
    write_repo()
    write_people()
    truth = write_truth(COUNTS)
    e = truth["estate"]
    print(f"estate in {OUT}: {e['machine_identities']} machine identities ({e['iam_roles']} roles, {e['iam_users']} users, "
          f"{e['access_keys']} access keys, {e['service_accounts']} service accounts); "
          f"{COUNTS['cloudtrail']} CloudTrail records, {COUNTS['audit']} audit events; "
          f"{len(INCIDENTS)} incidents")


if __name__ == "__main__":
    main()
