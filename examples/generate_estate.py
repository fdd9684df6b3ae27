#!/usr/bin/env python3
"""Deterministic generator for the Keyward example estate "acme".

Writes a small, internally consistent AWS + EKS estate under examples/estate/
in the platforms' native formats:

  aws/111122223333/iam-authorization-details.json   aws iam get-account-authorization-details
  aws/111122223333/credential-report.csv            aws iam get-credential-report (decoded)
  aws/111122223333/lookup-events-2026-11-15.json    aws cloudtrail lookup-events
  AWSLogs/111122223333/CloudTrail/<region>/...      CloudTrail S3 delivery (.json.gz)
  k8s/prod-eks/rbac-snapshot.json                   kubectl get ... -A -o json
  k8s/prod-eks/audit.jsonl                          EKS kube-apiserver audit (CloudWatch export)
  aws/111122223333/lambda-functions.json            aws lambda list-functions
  terraform/iam.tf, terraform/CODEOWNERS            the Terraform managing the application roles
  people.csv                                        the people directory (an HR export)
  agents/finops-agent-traces.jsonl                  an AI agent's OTLP JSON traces (agent_estate.py)
  agents/mcp-server-shell.log                       Claude Desktop's MCP log of a shell server (agent_estate.py)

Everything is fictitious. Run with Python 3.11, stdlib only:

    python3 examples/generate_estate.py

Output is byte-identical across runs (fixed seed, gzip mtime=0).
"""
import base64
import csv
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import sys
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

SEED = 20261116
R = random.Random(SEED)
import agent_estate
import estate_formats
from estate_formats import (ALNUM, B32, account_from_key, ampm, uid, rand_str, ct, cli, sts_exp, k8s_us, k8s_s, jit, d,
                            doc, allow)

estate_formats.R = R

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "estate")

PROD = "111122223333"
TOOLING = "444455556666"
UNKNOWN = "999988887777"
US = "us-east-1"
EU = "eu-west-1"
UTC = timezone.utc
WEEK_START = datetime(2026, 11, 9, tzinfo=UTC)
WEEK_END = datetime(2026, 11, 15, 23, 50, tzinfo=UTC)  # no events after 23:50 (delivery stays same-day)
SNAPSHOT = datetime(2026, 11, 16, 6, 12, 44, tzinfo=UTC)
DAYS = [WEEK_START + timedelta(days=i) for i in range(7)]

EKS_OIDC_HOST = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
EKS_OIDC_ARN = f"arn:aws:iam::{PROD}:oidc-provider/{EKS_OIDC_HOST}"
GH_HOST = "token.actions.githubusercontent.com"
GH_OIDC_ARN = f"arn:aws:iam::{PROD}:oidc-provider/{GH_HOST}"
SAML_ARN = f"arn:aws:iam::{PROD}:saml-provider/Okta"
IDSTORE_ARN = f"arn:aws:identitystore::{PROD}:identitystore/d-9067642ac7"

# ---------------------------------------------------------------------------
# ids, keys, time formats
# ---------------------------------------------------------------------------


def _encoded16(account):
    z = (int(account) << 7) | R.getrandbits(7)
    raw = z.to_bytes(6, "big") + R.randbytes(4)
    return base64.b32encode(raw).decode()


def make_key(prefix, account):
    """AKIA/ASIA key id: prefix + 16 base32 chars encoding account<<7."""
    k = prefix + _encoded16(account)
    assert len(k) == 20 and account_from_key(k) == account, k
    return k


def make_uid(prefix, account):
    """21-char unique id (AIDA/AROA/ANPA/AGPA/AIPA...) that also decodes to the account."""
    k = prefix + _encoded16(account) + R.choice(B32)
    assert len(k) == 21 and account_from_key(k) == account, k
    return k


def hexs(n):
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def session_token():
    return "IQoJb3JpZ2luX2Vj" + base64.b64encode(R.randbytes(300)).decode()


def iam_date(dt):  # IAM createDate in responseElements
    return f"{dt:%b} {dt.day}, {dt.year} {ampm(dt)}"


def at(day, h, m=0, s=0):
    return day.replace(hour=h, minute=m, second=s)


def rand_time(day, lo_h, hi_h):
    start = day + timedelta(hours=lo_h)
    return start + timedelta(seconds=R.randrange(int((hi_h - lo_h) * 3600)))


# ---------------------------------------------------------------------------
# IAM model
# ---------------------------------------------------------------------------
def user_rec(name, created, path="/"):
    return {"name": name, "id": make_uid("AIDA", PROD), "arn": f"arn:aws:iam::{PROD}:user{path}{name}",
            "created": created, "path": path}


def role_rec(name, created, path="/"):
    return {"name": name, "id": make_uid("AROA", PROD), "arn": f"arn:aws:iam::{PROD}:role{path}{name}",
            "created": created, "path": path}


U = {u["name"]: u for u in [
    user_rec("alice", d(2023, 2, 6, 9, 12, 40)),
    user_rec("svc-backup", d(2024, 1, 22, 14, 3, 11)),
    user_rec("svc-ci-legacy", d(2023, 5, 17, 16, 41, 2)),
    user_rec("svc-reporting", d(2025, 4, 2, 11, 20, 54)),
    user_rec("terraform-runner", d(2024, 3, 1, 10, 0, 0)),
]}
# created during the week by alice -> only visible in CloudTrail
U_TEMP = user_rec("svc-temp-migration", d(2026, 11, 10, 9, 21, 7))

ROLES = {r["name"]: r for r in [
    role_rec("AWSServiceRoleForECS", d(2023, 3, 14, 12, 5, 31), "/aws-service-role/ecs.amazonaws.com/"),
    role_rec("cross-account-deployer", d(2024, 6, 11, 15, 30, 12)),
    role_rec("data-pipeline", d(2024, 6, 11, 15, 31, 48)),
    role_rec("ec2-web-app", d(2023, 9, 4, 8, 47, 19)),
    role_rec("github-actions-deploy", d(2025, 1, 20, 13, 2, 55)),
    role_rec("irsa-orders-api", d(2025, 3, 1, 10, 26, 3)),
    role_rec("lambda-orders-processor", d(2024, 3, 1, 10, 0, 0)),
    role_rec("legacy-batch-role", d(2022, 11, 30, 17, 55, 40)),
    role_rec("okta-admin", d(2023, 2, 6, 9, 30, 0)),
    role_rec("vendor-audit-access", d(2025, 8, 19, 12, 14, 9)),
]}
# created by terraform-runner on 2026-11-11 (so it IS in the snapshot)
ROLES["reports-exporter"] = role_rec("reports-exporter", d(2026, 11, 11, 14, 6, 22), "/app/")
# deleted on 2026-11-11 by alice (so NOT in the snapshot)
OLD_TEST_ROLE = role_rec("old-test-role", d(2026, 8, 3, 12, 0, 0))

GROUPS = {
    "admins": {"id": make_uid("AGPA", PROD), "created": d(2023, 2, 6, 9, 10, 0)},
    "automation": {"id": make_uid("AGPA", PROD), "created": d(2024, 3, 1, 9, 55, 0)},
}

KEYS = {
    "svc-ci-legacy-1": {"user": "svc-ci-legacy", "id": make_key("AKIA", PROD), "created": d(2025, 10, 12, 8, 14, 55)},
    "svc-ci-legacy-2": {"user": "svc-ci-legacy", "id": make_key("AKIA", PROD), "created": d(2026, 10, 6, 15, 2, 31)},
    "svc-backup-1": {"user": "svc-backup", "id": make_key("AKIA", PROD), "created": d(2026, 9, 17, 7, 40, 12)},
    "svc-reporting-1": {"user": "svc-reporting", "id": make_key("AKIA", PROD), "created": d(2026, 6, 19, 10, 5, 44)},
    "terraform-runner-1": {"user": "terraform-runner", "id": make_key("AKIA", PROD), "created": d(2026, 3, 3, 9, 31, 8)},
}
TEMP_KEY = make_key("AKIA", PROD)  # svc-temp-migration, created 2026-11-10

TOOLING_DEPLOY_ROLE_ID = make_uid("AROA", TOOLING)
UNKNOWN_VENDOR_ROLE_ID = make_uid("AROA", UNKNOWN)

INSTANCE_ID = "i-0a1b2c3d4e5f60718"
KMS_KEY_ARN = f"arn:aws:kms:{US}:{PROD}:key/5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f"
SECRET_ARN = f"arn:aws:secretsmanager:{US}:{PROD}:secret:prod/orders/db-Xy7Qp2"

# IPs: documentation ranges for anything external, 10.x internal
NAT_US = ["198.51.100.10", "198.51.100.11"]
TOOLING_NAT = "198.51.100.30"
JENKINS_IP = "192.0.2.15"
CI_RUNNER2_IP = "192.0.2.16"
TFC_IP = "192.0.2.40"
ALICE_IP = "203.0.113.25"
ALICE_IP2 = "203.0.113.26"
CONTRACTOR_IP = "192.0.2.77"
ROOT_IP = "192.0.2.200"
VENDOR_IP = "203.0.113.77"
SCANNER_IP = "198.51.100.201"
ANON_K8S_IP = "198.51.100.77"

UA_BROWSER = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36")
UA_LAMBDA = ("Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.227-239.884.amzn2.x86_64 "
             "md/arch#x86_64 lang/python#3.12.7 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 "
             "cfg/retry-mode#legacy Botocore/1.34.145")
UA_LAMBDA_LOGS = "awslambda-worker/1.0 rusoto/0.48.0 rust/1.79.0 linux"
UA_SSM = "aws-sdk-go/1.44.260 (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.859.0"
UA_EC2_APP = ("aws-sdk-java/2.25.60 Linux/6.1.112-124.190.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/21.0.5+11-LTS "
              "Java/21.0.5 vendor/Amazon.com_Inc. io/sync http/Apache cfg/retry-mode/legacy")
UA_GH_STS = ("aws-sdk-js/3.645.0 ua/2.0 os/linux#6.5.0-1025-azure lang/js md/nodejs#20.17.0 "
             "api/sts#3.645.0 m/E,e")


def ua_gh_cli(cmd):
    return ("aws-cli/2.17.50 md/awscrt#0.21.2 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 "
            "lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe "
            f"md/distrib#ubuntu.22 md/prompt#off md/command#{cmd}")


UA_IRSA = ("Boto3/1.35.20 md/Botocore#1.35.20 ua/2.0 os/linux#5.10.225-213.878.amzn2.x86_64 md/arch#x86_64 "
           "lang/python#3.11.10 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.20")
UA_CI_LEGACY = "aws-cli/1.18.69 Python/3.6.8 Linux/3.10.0-1160.el7.x86_64 botocore/1.16.19"
UA_CI_NEW = ("aws-cli/2.15.30 Python/3.11.8 Linux/5.15.0-1057-aws exe/x86_64.ubuntu.22 prompt/off "
             "command/ecr.get-login-password")
UA_BACKUP = "Boto3/1.26.137 Python/3.9.16 Linux/4.14.336-257.562.amzn2.x86_64 Botocore/1.29.137"
UA_TF = ("APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.70.0 "
         "(+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.31.0 ua/2.0 os/linux "
         "lang/go#1.23.1 md/GOOS#linux md/GOARCH#amd64")
UA_DEPLOY = ("aws-cli/2.18.3 md/awscrt#0.22.0 ua/2.0 os/linux#5.10.226-214.880.amzn2.x86_64 md/arch#x86_64 "
             "lang/python#3.12.6 md/pyimpl#CPython exec-env/AWS_ECS_FARGATE cfg/retry-mode#standard")
UA_VENDOR = "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64"
UA_TEMP = ("aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/windows#10 md/arch#amd64 lang/python#3.11.8 "
           "md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off")

# ---------------------------------------------------------------------------
# CloudTrail record construction
# ---------------------------------------------------------------------------
EVENTS = []  # list of dicts: {"rec": record, "trail": bool}

READ_PREFIXES = ("Get", "List", "Describe", "Lookup", "BatchGet", "Decrypt", "GenerateDataKey")


def host_for(source, region):
    svc = source.split(".")[0]
    if svc in ("iam",):
        return "iam.amazonaws.com"
    if svc == "s3":
        return "s3.amazonaws.com"
    if svc == "signin":
        return "signin.aws.amazon.com" if region == US else f"{region}.signin.aws.amazon.com"
    if svc == "sso":
        return f"portal.sso.{region}.amazonaws.com"
    return f"{svc}.{region}.amazonaws.com"


def ev(t, ident, source, name, region=US, ip=None, ua=None, req=None, resp=None, ro=None, err=None,
       addl=None, resources=None, shared=False, tls=True, console=False, etype="AwsApiCall",
       vpce=None, api_version=None, version="1.09", host=None, trail=True, request_id=None):
    assert WEEK_START <= t <= WEEK_END, t
    if ro is None:
        ro = name.startswith(READ_PREFIXES) or name.startswith("AssumeRole")
    r = {"eventVersion": version, "userIdentity": ident, "eventTime": ct(t), "eventSource": source,
         "eventName": name, "awsRegion": region, "sourceIPAddress": ip, "userAgent": ua}
    if err:
        if err[0]:
            r["errorCode"] = err[0]
        r["errorMessage"] = err[1]
    r["requestParameters"] = req
    r["responseElements"] = resp
    if addl is not None:
        r["additionalEventData"] = addl
    r["requestID"] = request_id or uid()
    r["eventID"] = uid()
    r["readOnly"] = ro
    if resources:
        r["resources"] = resources
    r["eventType"] = etype
    if api_version:
        r["apiVersion"] = api_version
    r["managementEvent"] = True
    r["recipientAccountId"] = PROD
    if shared:
        r["sharedEventID"] = uid()
    if vpce:
        r["vpcEndpointId"] = vpce
        r["vpcEndpointAccountId"] = PROD
    r["eventCategory"] = "Management"
    if tls:
        r["tlsDetails"] = {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256",
                           "clientProvidedHostHeader": host or host_for(source, region)}
    if console:
        r["sessionCredentialFromConsole"] = "true"
    EVENTS.append({"rec": r, "trail": trail, "t": t})
    return r


def s3_list_buckets(t, ident, ip, ua, region=US, console=False):
    return ev(t, ident, "s3.amazonaws.com", "ListBuckets", region, ip, ua,
              req={"Host": "s3.amazonaws.com"}, resp=None,
              addl={"SignatureVersion": "SigV4", "CipherSuite": "TLS_AES_128_GCM_SHA256", "bytesTransferredIn": 0,
                    "AuthenticationMethod": "AuthHeader", "x-amz-id-2": base64.b64encode(R.randbytes(48)).decode(),
                    "bytesTransferredOut": R.randint(900, 2400)},
              request_id=rand_str(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), console=console)


def caller_identity(t, ident, ip, ua, region=US):
    return ev(t, ident, "sts.amazonaws.com", "GetCallerIdentity", region, ip, ua)


def role_resource(arn, account=PROD):
    return [{"accountId": account, "type": "AWS::IAM::Role", "ARN": arn}]


# identities -----------------------------------------------------------------
def ident_user(u, key, console_created=None, mfa=False):
    x = {"type": "IAMUser", "principalId": u["id"], "arn": u["arn"], "accountId": PROD, "accessKeyId": key,
         "userName": u["name"]}
    if console_created:
        x["sessionContext"] = {"sessionIssuer": {}, "webIdFederationData": {},
                               "attributes": {"creationDate": ct(console_created),
                                              "mfaAuthenticated": "true" if mfa else "false"}}
    return x


class Session:
    """A role session (AssumedRole identity)."""

    def __init__(self, role, name, created, key=None, ec2=False, web=None, source_identity=None, mfa=False):
        self.role = role
        self.name = name
        self.created = created
        self.key = key or make_key("ASIA", PROD)
        self.ec2 = ec2
        self.web = web
        self.source_identity = source_identity
        self.mfa = mfa

    @property
    def arn(self):
        return f"arn:aws:sts::{PROD}:assumed-role/{self.role['name']}/{self.name}"

    @property
    def assumed_id(self):
        return f"{self.role['id']}:{self.name}"

    def ident(self, invoked_by=None):
        sc = {"sessionIssuer": {"type": "Role", "principalId": self.role["id"], "arn": self.role["arn"],
                                "accountId": PROD, "userName": self.role["name"]},
              "webIdFederationData": self.web or {},
              "attributes": {"creationDate": ct(self.created), "mfaAuthenticated": "true" if self.mfa else "false"}}
        if self.source_identity:
            sc["sourceIdentity"] = self.source_identity
        if self.ec2:
            sc["ec2RoleDelivery"] = "2.0"
        x = {"type": "AssumedRole", "principalId": self.assumed_id, "arn": self.arn, "accountId": PROD,
             "accessKeyId": self.key, "sessionContext": sc}
        if invoked_by:
            x["invokedBy"] = invoked_by
        return x


def assume_resp(sess, duration, extra_after=None):
    resp = {"credentials": {"accessKeyId": sess.key, "sessionToken": session_token(),
                            "expiration": sts_exp(sess.created + timedelta(seconds=duration))},
            "assumedRoleUser": {"assumedRoleId": sess.assumed_id, "arn": sess.arn}}
    if extra_after:
        resp.update(extra_after)
    return resp


def service_assume(t, service, role, session_name, duration=3600, region=US):
    sess = Session(role, session_name, t)
    ev(t, {"type": "AWSService", "invokedBy": service}, "sts.amazonaws.com", "AssumeRole", region,
       service, service, req={"roleArn": role["arn"], "roleSessionName": session_name},
       resp=assume_resp(sess, duration), resources=role_resource(role["arn"]), shared=True, tls=False)
    return sess


def web_identity_assume(t, role, provider_arn, provider_host, subject, session_name, ip, ua, duration=3600,
                        web_attrs=None, verification=None):
    sess = Session(role, session_name, t)
    sess.web = {"federatedProvider": provider_arn, "attributes": web_attrs or {}}
    ident = {"type": "WebIdentityUser",
             "principalId": f"{provider_arn}:sts.amazonaws.com:{subject}",
             "userName": subject, "identityProvider": provider_arn}
    resp = {"credentials": {"accessKeyId": sess.key, "sessionToken": session_token(),
                            "expiration": sts_exp(t + timedelta(seconds=duration))},
            "subjectFromWebIdentityToken": subject,
            "assumedRoleUser": {"assumedRoleId": sess.assumed_id, "arn": sess.arn},
            "provider": provider_arn, "audience": "sts.amazonaws.com"}
    addl = {"identityProviderConnectionVerificationMethod": verification} if verification else None
    ev(t, ident, "sts.amazonaws.com", "AssumeRoleWithWebIdentity", US, ip, ua,
       req={"roleArn": role["arn"], "roleSessionName": session_name, "durationSeconds": duration},
       resp=resp, addl=addl, resources=role_resource(role["arn"]))
    return sess


# ---------------------------------------------------------------------------
# Workload activity
# ---------------------------------------------------------------------------
K8S_LINKS = {"github": [], "okta": []}  # sessions reused by the EKS audit log


def gen_lambda():
    role = ROLES["lambda-orders-processor"]
    for day in DAYS:
        n = R.randint(26, 32)
        starts = sorted(rand_time(day, 0, 23.2) for _ in range(n))
        for t in starts:
            sess = service_assume(t, "lambda.amazonaws.com", role, "orders-processor", 43200)
            t1 = jit(t, 1, 3)
            ev(t1, sess.ident(), "logs.amazonaws.com", "CreateLogStream", US, R.choice(NAT_US), UA_LAMBDA_LOGS,
               req={"logGroupName": "/aws/lambda/orders-processor",
                    "logStreamName": f"{t1:%Y/%m/%d}/[$LATEST]{hexs(32)}"})
            t2 = jit(t1, 1, 4)
            ev(t2, sess.ident(), "secretsmanager.amazonaws.com", "GetSecretValue", US, "10.0.12.41", UA_LAMBDA,
               req={"secretId": "prod/orders/db"}, vpce="vpce-0c4f1a9d2b7e35a61")
            # KMS calls: excluded from the trail (ExcludeManagementEventSources kms), visible in Event history
            ev(t2, sess.ident("secretsmanager.amazonaws.com"), "kms.amazonaws.com", "Decrypt", US,
               "secretsmanager.amazonaws.com", "secretsmanager.amazonaws.com",
               req={"encryptionContext": {"SecretARN": SECRET_ARN, "SecretVersionId": uid()},
                    "encryptionAlgorithm": "SYMMETRIC_DEFAULT"},
               resources=[{"accountId": PROD, "type": "AWS::KMS::Key", "ARN": KMS_KEY_ARN}], tls=False,
               trail=False)
            t3 = jit(t2, 5, 900)
            ev(t3, sess.ident(), "kms.amazonaws.com", "Decrypt", US, R.choice(NAT_US), UA_LAMBDA,
               req={"encryptionAlgorithm": "SYMMETRIC_DEFAULT", "encryptionContext": {"app": "orders"}},
               resources=[{"accountId": PROD, "type": "AWS::KMS::Key", "ARN": KMS_KEY_ARN}], trail=False)


def gen_ec2_web_app():
    role = ROLES["ec2-web-app"]
    for day in DAYS:
        for h in (0, 6, 12, 18):
            t = at(day, h, R.randint(2, 20), R.randint(0, 59))
            sess = service_assume(t, "ec2.amazonaws.com", role, INSTANCE_ID, 21600)
            sess.ec2 = True
            for k in range(3):
                tu = t + timedelta(minutes=12 + k * 120 + R.randint(0, 9), seconds=R.randint(0, 59))
                ev(tu, sess.ident(), "ssm.amazonaws.com", "UpdateInstanceInformation", US, "10.0.1.57", UA_SSM,
                   req={"instanceId": INSTANCE_ID, "agentVersion": "3.3.859.0", "agentStatus": "Active",
                        "platformType": "Linux", "platformName": "Amazon Linux", "platformVersion": "2023",
                        "iPAddress": "10.0.1.57", "computerName": "ip-10-0-1-57.ec2.internal",
                        "agentName": "amazon-ssm-agent", "availabilityZone": "us-east-1a",
                        "availabilityZoneId": "use1-az4", "sSMConnectionChannel": "ssmmessages"},
                   vpce="vpce-0b9e27c4d1f3a8e52")
            tg = jit(t, 60, 1800)
            ev(tg, sess.ident(), "ssm.amazonaws.com", "GetParameters", US, "10.0.1.57", UA_EC2_APP,
               req={"names": ["/web-app/prod/db-host", "/web-app/prod/feature-flags"], "withDecryption": True},
               vpce="vpce-0b9e27c4d1f3a8e52")
            if h in (6, 18):
                s3_list_buckets(jit(t, 120, 3000), sess.ident(), NAT_US[0], UA_EC2_APP)
            if h == 0:
                ev(jit(t, 5, 60), sess.ident(), "ec2.amazonaws.com", "DescribeTags", US, NAT_US[0], UA_EC2_APP,
                   req={"filterSet": {"items": [{"name": "resource-id",
                                                 "valueSet": {"items": [{"value": INSTANCE_ID}]}}]}})


ECS_TASKDEF_REV = [41]


def ecs_slr_activity(t):
    role = ROLES["AWSServiceRoleForECS"]
    sess = service_assume(t, "ecs.amazonaws.com", role, "ecs-service-scheduler", 3600)
    tg = "arn:aws:elasticloadbalancing:us-east-1:111122223333:targetgroup/payments-api-tg/6d0ecf831eec9f09"
    new_ip = f"10.0.{R.randint(20, 23)}.{R.randint(10, 250)}"
    old_ip = f"10.0.{R.randint(20, 23)}.{R.randint(10, 250)}"
    ident = sess.ident("ecs.amazonaws.com")
    t1 = jit(t, 30, 90)
    ev(t1, ident, "ec2.amazonaws.com", "CreateNetworkInterface", US, "ecs.amazonaws.com", "ecs.amazonaws.com",
       req={"subnetId": "subnet-0f1e2d3c4b5a69788", "description": "arn:aws:ecs:us-east-1:111122223333:attachment/"
            + uid(), "groupSet": {"items": [{"groupId": "sg-0a9b8c7d6e5f40312"}]}},
       resp={"requestId": uid(), "networkInterface": {"networkInterfaceId": "eni-0" + hexs(16),
                                                      "subnetId": "subnet-0f1e2d3c4b5a69788",
                                                      "privateIpAddress": new_ip, "status": "pending"}},
       tls=False)
    ev(jit(t1, 60, 120), ident, "elasticloadbalancing.amazonaws.com", "RegisterTargets", US,
       "ecs.amazonaws.com", "ecs.amazonaws.com",
       req={"targetGroupArn": tg, "targets": [{"id": new_ip, "port": 8080}]}, tls=False)
    ev(jit(t1, 150, 240), ident, "elasticloadbalancing.amazonaws.com", "DeregisterTargets", US,
       "ecs.amazonaws.com", "ecs.amazonaws.com",
       req={"targetGroupArn": tg, "targets": [{"id": old_ip, "port": 8080}]}, tls=False)


def gh_run(t, subject, workflow_ref, kind, run_ip):
    role = ROLES["github-actions-deploy"]
    attrs = {f"{GH_HOST}:sub": subject, f"{GH_HOST}:aud": "sts.amazonaws.com",
             f"{GH_HOST}:job_workflow_ref": workflow_ref}
    sess = web_identity_assume(t, role, GH_OIDC_ARN, GH_HOST, subject, "GitHubActions", run_ip, UA_GH_STS,
                               3600, attrs, verification="IAMTrustStore")
    ident = sess.ident()
    t1 = jit(t, 15, 40)
    ev(t1, ident, "ecr.amazonaws.com", "GetAuthorizationToken", US, run_ip, ua_gh_cli("ecr.get-login-password"),
       req={"registryIds": [PROD]})
    if kind == "pr":
        return sess
    t2 = jit(t1, 120, 300)
    ECS_TASKDEF_REV[0] += 1
    rev = ECS_TASKDEF_REV[0]
    tag = "sha-" + hexs(7)
    ev(t2, ident, "ecs.amazonaws.com", "RegisterTaskDefinition", US, run_ip,
       ua_gh_cli("ecs.register-task-definition"),
       req={"family": "payments-api", "networkMode": "awsvpc", "requiresCompatibilities": ["FARGATE"],
            "cpu": "512", "memory": "1024",
            "containerDefinitions": [{"name": "payments-api", "essential": True,
                                      "image": f"{PROD}.dkr.ecr.us-east-1.amazonaws.com/payments-api:{tag}"}]},
       resp={"taskDefinition": {"taskDefinitionArn":
                                f"arn:aws:ecs:us-east-1:{PROD}:task-definition/payments-api:{rev}",
                                "family": "payments-api", "revision": rev, "status": "ACTIVE"}})
    t3 = jit(t2, 2, 6)
    ev(t3, ident, "ecs.amazonaws.com", "UpdateService", US, run_ip, ua_gh_cli("ecs.update-service"),
       req={"cluster": "payments", "service": "payments-api", "taskDefinition": f"payments-api:{rev}"},
       resp={"service": {"serviceArn": f"arn:aws:ecs:us-east-1:{PROD}:service/payments/payments-api",
                         "serviceName": "payments-api", "clusterArn": f"arn:aws:ecs:us-east-1:{PROD}:cluster/payments",
                         "status": "ACTIVE", "desiredCount": 3,
                         "taskDefinition": f"arn:aws:ecs:us-east-1:{PROD}:task-definition/payments-api:{rev}"}})
    ev(jit(t3, 20, 60), ident, "ecs.amazonaws.com", "DescribeServices", US, run_ip,
       ua_gh_cli("ecs.wait.services-stable"), req={"cluster": "payments", "services": ["payments-api"]})
    ecs_slr_activity(jit(t3, 5, 20))
    t4 = jit(t3, 70, 140)
    ev(t4, ident, "eks.amazonaws.com", "DescribeCluster", US, run_ip, ua_gh_cli("eks.update-kubeconfig"),
       req={"name": "prod-eks"})
    K8S_LINKS["github"].append({"session": sess, "t": jit(t4, 8, 20), "ip": run_ip, "tag": tag})
    return sess


def gen_github():
    main = "repo:acme/payments-api:ref:refs/heads/main"
    wf_main = "acme/payments-api/.github/workflows/deploy.yml@refs/heads/main"
    for i, day in enumerate(DAYS):
        n = R.randint(4, 7) if day.weekday() < 5 else R.randint(0, 1)
        for t in sorted(rand_time(day, 13, 22.5) for _ in range(n)):
            gh_run(t, main, wf_main, "main", f"203.0.113.{R.randint(100, 199)}")
    for day, h in ((DAYS[1], 15.2), (DAYS[2], 19.7), (DAYS[3], 14.1), (DAYS[4], 20.4)):
        t = rand_time(day, h, h + 0.5)
        pr = R.choice([407, 412, 415])
        gh_run(t, "repo:acme/payments-api:pull_request",
               f"acme/payments-api/.github/workflows/ci.yml@refs/pull/{pr}/merge", "pr",
               f"203.0.113.{R.randint(100, 199)}")
    for day in (DAYS[1], DAYS[3], DAYS[4]):
        t = rand_time(day, 16, 17)
        gh_run(t, "repo:acme/payments-api:environment:production", wf_main, "prod",
               f"203.0.113.{R.randint(100, 199)}")


IRSA_PODS = [
    {"name": "orders-api-7d9f8b6c5-x2x9q", "node": "ip-10-0-1-23.ec2.internal", "ip": "10.0.1.112"},
    {"name": "orders-api-7d9f8b6c5-k4m7p", "node": "ip-10-0-2-87.ec2.internal", "ip": "10.0.2.64"},
]


def gen_irsa():
    role = ROLES["irsa-orders-api"]
    subject = "system:serviceaccount:orders:orders-api"
    for day in DAYS:
        for p, pod in enumerate(IRSA_PODS):
            for h in range(0, 24, 4):
                t = at(day, h, R.randint(0, 50), R.randint(0, 59))
                if t > WEEK_END - timedelta(minutes=30):
                    continue
                name = f"botocore-session-{int(t.timestamp())}"
                nat = NAT_US[p]
                sess = web_identity_assume(t, role, EKS_OIDC_ARN, EKS_OIDC_HOST, subject, name, nat, UA_IRSA, 3600)
                ident = sess.ident()
                ev(jit(t, 1, 2), ident, "sqs.amazonaws.com", "GetQueueUrl", US, nat, UA_IRSA,
                   req={"queueName": "orders-events"})
                ev(jit(t, 2, 3), ident, "dynamodb.amazonaws.com", "DescribeTable", US, pod["ip"], UA_IRSA,
                   req={"tableName": "orders"},
                   resources=[{"accountId": PROD, "type": "AWS::DynamoDB::Table",
                               "ARN": f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders"}],
                   api_version="2012-08-10", vpce="vpce-0e1d2c3b4a5968778")
                if R.random() < 0.5:
                    ev(jit(t, 600, 2400), ident, "sqs.amazonaws.com", "GetQueueAttributes", US, nat, UA_IRSA,
                       req={"queueUrl": f"https://sqs.us-east-1.amazonaws.com/{PROD}/orders-events",
                            "attributeNames": ["ApproximateNumberOfMessages"]})


def gen_cross_account():
    xrole = ROLES["cross-account-deployer"]
    dp = ROLES["data-pipeline"]
    for day in DAYS[:5]:
        for _ in range(2):
            t = rand_time(day, 9, 18)
            sess = Session(xrole, "deploy-session", t)
            ev(t, {"type": "AWSAccount", "principalId": f"{TOOLING_DEPLOY_ROLE_ID}:deploy-session",
                   "accountId": TOOLING},
               "sts.amazonaws.com", "AssumeRole", US, TOOLING_NAT, UA_DEPLOY,
               req={"roleArn": xrole["arn"], "roleSessionName": "deploy-session", "externalId": "acme-deploy-7f3c",
                    "durationSeconds": 3600},
               resp=assume_resp(sess, 3600), resources=role_resource(xrole["arn"]), shared=True)
            xi = sess.ident()
            t1 = jit(t, 3, 10)
            ev(t1, xi, "cloudformation.amazonaws.com", "DescribeStacks", US, TOOLING_NAT, UA_DEPLOY,
               req={"stackName": "data-platform"})
            t2 = jit(t1, 5, 30)
            chained = Session(dp, "deploy-bot-pipeline", t2, source_identity="deploy-bot")
            ev(t2, xi, "sts.amazonaws.com", "AssumeRole", US, TOOLING_NAT, UA_DEPLOY,
               req={"roleArn": dp["arn"], "roleSessionName": "deploy-bot-pipeline", "sourceIdentity": "deploy-bot",
                    "durationSeconds": 3600},
               resp=assume_resp(chained, 3600, {"sourceIdentity": "deploy-bot"}),
               resources=role_resource(dp["arn"]))
            ci = chained.ident()
            t3 = jit(t2, 2, 20)
            ev(t3, ci, "glue.amazonaws.com", "GetJob", US, TOOLING_NAT, UA_DEPLOY, req={"jobName": "orders-etl"})
            ev(jit(t3, 2, 10), ci, "glue.amazonaws.com", "StartJobRun", US, TOOLING_NAT, UA_DEPLOY,
               req={"jobName": "orders-etl"}, resp={"jobRunId": "jr_" + hexs(64)})
            s3_list_buckets(jit(t3, 15, 60), ci, TOOLING_NAT, UA_DEPLOY)


def gen_vendor():
    role = ROLES["vendor-audit-access"]
    for day, h in ((DAYS[1], 3.4), (DAYS[5], 2.1)):
        t = rand_time(day, h, h + 0.4)
        sess = Session(role, "vendor-audit", t)
        ev(t, {"type": "AWSAccount", "principalId": f"{UNKNOWN_VENDOR_ROLE_ID}:vendor-audit", "accountId": UNKNOWN},
           "sts.amazonaws.com", "AssumeRole", US, VENDOR_IP, UA_VENDOR + " api/sts#1.30.3",
           req={"roleArn": role["arn"], "roleSessionName": "vendor-audit", "durationSeconds": 3600},
           resp=assume_resp(sess, 3600), resources=role_resource(role["arn"]), shared=True)
        i = sess.ident()
        t1 = jit(t, 2, 5)
        ev(t1, i, "sts.amazonaws.com", "GetCallerIdentity", US, VENDOR_IP, UA_VENDOR + " api/sts#1.30.3")
        ev(jit(t1, 1, 4), i, "iam.amazonaws.com", "GetAccountAuthorizationDetails", US, VENDOR_IP,
           UA_VENDOR + " api/iam#1.34.3", req={"filter": ["User", "Role", "Group", "LocalManagedPolicy"]})
        ev(jit(t1, 5, 9), i, "iam.amazonaws.com", "ListUsers", US, VENDOR_IP, UA_VENDOR + " api/iam#1.34.3")
        for reg in (US, EU):
            ev(jit(t1, 10, 30), i, "ec2.amazonaws.com", "DescribeInstances", reg, VENDOR_IP,
               UA_VENDOR + " api/ec2#1.172.0", req={"instancesSet": {}, "filterSet": {}})
        s3_list_buckets(jit(t1, 30, 45), i, VENDOR_IP, UA_VENDOR + " api/s3#1.58.2")


def gen_svc_ci_legacy():
    u = U["svc-ci-legacy"]
    k1, k2 = KEYS["svc-ci-legacy-1"]["id"], KEYS["svc-ci-legacy-2"]["id"]
    for day in DAYS:
        nruns = R.randint(2, 4) if day.weekday() < 5 else 1
        for _ in range(nruns):
            t = rand_time(day, 6, 21)
            i = ident_user(u, k1)
            caller_identity(t, i, JENKINS_IP, UA_CI_LEGACY)
            ev(jit(t, 2, 6), i, "ecr.amazonaws.com", "GetAuthorizationToken", US, JENKINS_IP, UA_CI_LEGACY)
            if R.random() < 0.5:
                s3_list_buckets(jit(t, 10, 40), i, JENKINS_IP, UA_CI_LEGACY)
        if day.weekday() < 5:
            t = rand_time(day, 8, 19)
            i2 = ident_user(u, k2)
            ev(t, i2, "ecr.amazonaws.com", "GetAuthorizationToken", US, CI_RUNNER2_IP, UA_CI_NEW)
            ev(jit(t, 40, 200), i2, "ecr.amazonaws.com", "DescribeImages", US, CI_RUNNER2_IP, UA_CI_NEW,
               req={"repositoryName": "build-tools", "imageIds": [{"imageTag": "latest"}]})
    # AccessDenied on iam:CreateUser (old Jenkins job still trying to create per-build users)
    for m in (2, 9, 17):
        t = at(DAYS[2], 11, 40 + m, R.randint(0, 59))
        ev(t, ident_user(u, k1), "iam.amazonaws.com", "CreateUser", US, JENKINS_IP, UA_CI_LEGACY,
           err=("AccessDenied", f"User: {u['arn']} is not authorized to perform: iam:CreateUser on resource: "
                f"arn:aws:iam::{PROD}:user/jenkins-build-tmp because no identity-based policy allows the "
                "iam:CreateUser action"),
           req={"userName": "jenkins-build-tmp"}, ro=False)
    # one AssumeRole into cross-account-deployer (allowed by a second trust statement)
    xrole = ROLES["cross-account-deployer"]
    t = at(DAYS[4], 16, 12, 9)
    sess = Session(xrole, "jenkins-legacy", t)
    ev(t, ident_user(u, k1), "sts.amazonaws.com", "AssumeRole", US, JENKINS_IP, UA_CI_LEGACY,
       req={"roleArn": xrole["arn"], "roleSessionName": "jenkins-legacy", "durationSeconds": 3600},
       resp=assume_resp(sess, 3600), resources=role_resource(xrole["arn"]))
    ev(jit(t, 3, 8), sess.ident(), "cloudformation.amazonaws.com", "DescribeStacks", US, JENKINS_IP, UA_CI_LEGACY,
       req={"stackName": "data-platform"})


VOLUMES = ["vol-0a11b22c33d44e551", "vol-0b22c33d44e55f662", "vol-0c33d44e55f66a773"]


def gen_svc_backup():
    u = U["svc-backup"]
    k = KEYS["svc-backup-1"]["id"]
    i = ident_user(u, k)
    for day in DAYS:
        t = at(day, 2, R.randint(0, 4), R.randint(0, 59))
        ev(t, i, "ec2.amazonaws.com", "DescribeVolumes", US, NAT_US[1], UA_BACKUP,
           req={"volumeSet": {}, "filterSet": {"items": [{"name": "tag:backup", "valueSet": {"items": [
               {"value": "daily"}]}}]}})
        snaps = []
        for v in VOLUMES:
            t = jit(t, 1, 3)
            sid = "snap-0" + hexs(16)
            snaps.append(sid)
            ev(t, i, "ec2.amazonaws.com", "CreateSnapshot", US, NAT_US[1], UA_BACKUP,
               req={"volumeId": v, "description": f"nightly {day:%Y-%m-%d}"},
               resp={"requestId": uid(), "snapshotId": sid, "volumeId": v, "status": "pending",
                     "startTime": int((t + timedelta(seconds=1)).timestamp() * 1000), "progress": "",
                     "ownerId": PROD, "volumeSize": 100, "encrypted": True})
        ev(jit(t, 5, 20), i, "ec2.amazonaws.com", "DeleteSnapshot", US, NAT_US[1], UA_BACKUP,
           req={"snapshotId": "snap-0" + hexs(16)}, resp={"requestId": uid(), "_return": True})
        t = at(day, 2, R.randint(30, 40), R.randint(0, 59))
        for sid in snaps:
            t = jit(t, 1, 4)
            ev(t, i, "ec2.amazonaws.com", "CopySnapshot", EU, NAT_US[1], UA_BACKUP,
               req={"sourceRegion": US, "sourceSnapshotId": sid, "description": "DR copy", "encrypted": True},
               resp={"requestId": uid(), "snapshotId": "snap-0" + hexs(16)})
        t = at(day, 14, R.randint(0, 50), R.randint(0, 59))
        ev(t, i, "ec2.amazonaws.com", "DescribeSnapshots", EU, NAT_US[1], UA_BACKUP,
           req={"snapshotSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "sharedUsersSet": {},
                "filterSet": {}})
    # GetFederationToken -> FederatedUser session
    t = at(DAYS[3], 3, 10, 22)
    fed_key = make_key("ASIA", PROD)
    pol = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:ListAllMyBuckets",'
           '"ec2:DescribeSnapshots"],"Resource":"*"}]}')
    ev(t, i, "sts.amazonaws.com", "GetFederationToken", US, NAT_US[1], UA_BACKUP,
       req={"name": "backup-export", "durationSeconds": 3600, "policy": pol},
       resp={"credentials": {"accessKeyId": fed_key, "sessionToken": session_token(),
                             "expiration": sts_exp(t + timedelta(hours=1))},
             "federatedUser": {"federatedUserId": f"{PROD}:backup-export",
                               "arn": f"arn:aws:sts::{PROD}:federated-user/backup-export"},
             "packedPolicySize": 9}, ro=True)
    fi = {"type": "FederatedUser", "principalId": f"{PROD}:backup-export",
          "arn": f"arn:aws:sts::{PROD}:federated-user/backup-export", "accountId": PROD, "accessKeyId": fed_key,
          "sessionContext": {"sessionIssuer": {"type": "IAMUser", "principalId": u["id"], "arn": u["arn"],
                                               "accountId": PROD, "userName": "svc-backup"},
                             "webIdFederationData": {},
                             "attributes": {"creationDate": ct(t), "mfaAuthenticated": "false"}}}
    s3_list_buckets(jit(t, 20, 40), fi, CONTRACTOR_IP, UA_TEMP)
    ev(jit(t, 60, 90), fi, "ec2.amazonaws.com", "DescribeSnapshots", US, CONTRACTOR_IP, UA_TEMP,
       req={"snapshotSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "sharedUsersSet": {}, "filterSet": {}})


def gen_terraform():
    u = U["terraform-runner"]
    k = KEYS["terraform-runner-1"]["id"]
    i = ident_user(u, k)
    managed = ["github-deploy-ecs", "orders-processor-policy", "web-app-s3-read"]
    for day in DAYS:
        if day.weekday() >= 5:
            continue
        for _ in range(R.randint(1, 2)):
            t = rand_time(day, 10, 17)
            caller_identity(t, i, TFC_IP, UA_TF + " api/sts#1.31.0")
            for rn in ("github-actions-deploy", "irsa-orders-api", "lambda-orders-processor", "ec2-web-app"):
                t = jit(t, 1, 2)
                ev(t, i, "iam.amazonaws.com", "GetRole", US, TFC_IP, UA_TF + " api/iam#1.36.2",
                   req={"roleName": rn})
                ev(jit(t, 0, 1), i, "iam.amazonaws.com", "ListAttachedRolePolicies", US, TFC_IP,
                   UA_TF + " api/iam#1.36.2", req={"roleName": rn})
            ev(jit(t, 1, 3), i, "iam.amazonaws.com", "ListPolicies", US, TFC_IP, UA_TF + " api/iam#1.36.2",
               req={"scope": "Local", "onlyAttached": False})
            pn = R.choice(managed)
            ev(jit(t, 3, 5), i, "iam.amazonaws.com", "GetPolicy", US, TFC_IP, UA_TF + " api/iam#1.36.2",
               req={"policyArn": f"arn:aws:iam::{PROD}:policy/{pn}"})
    # Day 1: terraform assumes old-test-role for an integration test
    t = at(DAYS[0], 15, 3, 41)
    sess = Session(OLD_TEST_ROLE, "terraform-test", t)
    ev(t, i, "sts.amazonaws.com", "AssumeRole", US, TFC_IP, UA_TF + " api/sts#1.31.0",
       req={"roleArn": OLD_TEST_ROLE["arn"], "roleSessionName": "terraform-test", "durationSeconds": 900},
       resp=assume_resp(sess, 900), resources=role_resource(OLD_TEST_ROLE["arn"]))
    oi = sess.ident()
    caller_identity(jit(t, 1, 2), oi, TFC_IP, UA_TF + " api/sts#1.31.0")
    s3_list_buckets(jit(t, 3, 6), oi, TFC_IP, UA_TF + " api/s3#1.61.0")
    ev(jit(t, 7, 12), oi, "ec2.amazonaws.com", "DescribeInstances", US, TFC_IP, UA_TF + " api/ec2#1.179.0",
       req={"instancesSet": {}, "filterSet": {}})
    # Day 3: apply -> CreateRole /app/reports-exporter + AttachRolePolicy
    role = ROLES["reports-exporter"]
    t = role["created"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    trust_s = json.dumps(trust, separators=(",", ":"))
    ev(t, i, "iam.amazonaws.com", "CreateRole", US, TFC_IP, UA_TF + " api/iam#1.36.2",
       req={"path": "/app/", "roleName": "reports-exporter", "assumeRolePolicyDocument": trust_s,
            "description": "ECS task role for the nightly reports exporter",
            "tags": [{"key": "team", "value": "data"}, {"key": "managed-by", "value": "terraform"}]},
       resp={"role": {"path": "/app/", "roleName": "reports-exporter", "roleId": role["id"], "arn": role["arn"],
                      "createDate": iam_date(t), "assumeRolePolicyDocument": quote(trust_s, safe=""),
                      "tags": [{"key": "team", "value": "data"}, {"key": "managed-by", "value": "terraform"}]}},
       ro=False)
    ev(jit(t, 1, 2), i, "iam.amazonaws.com", "AttachRolePolicy", US, TFC_IP, UA_TF + " api/iam#1.36.2",
       req={"roleName": "reports-exporter", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, ro=False)


def console_login(t, ident, ip, region=US, ok=True, mfa="Yes", extra_addl=None):
    addl = {"LoginTo": "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_"
                       f"{region}_{hexs(16)}", "MobileVersion": "No", "MFAUsed": mfa}
    if extra_addl:
        addl.update(extra_addl)
    return ev(t, ident, "signin.amazonaws.com", "ConsoleLogin", region, ip, UA_BROWSER, req=None,
              resp={"ConsoleLogin": "Success" if ok else "Failure"}, addl=addl,
              err=None if ok else (None, "Failed authentication"), ro=False, etype="AwsConsoleSignIn",
              version="1.08")


def gen_alice():
    a = U["alice"]
    login_ident = {"type": "IAMUser", "principalId": a["id"], "arn": a["arn"], "accountId": PROD,
                   "userName": "alice"}
    # Day 2 (Nov 10): failed attempt, login, create svc-temp-migration + key
    t = at(DAYS[1], 9, 1, 12)
    console_login(t, dict(login_ident, accessKeyId=""), ALICE_IP, ok=False, mfa="No")
    t = at(DAYS[1], 9, 2, 3)
    console_login(t, login_ident, ALICE_IP)
    key = make_key("ASIA", PROD)
    ci = ident_user(a, key, console_created=t, mfa=True)
    ev(jit(t, 30, 60), ci, "iam.amazonaws.com", "GetAccountSummary", US, ALICE_IP, "AWS Internal", console=True)
    ev(jit(t, 70, 120), ci, "iam.amazonaws.com", "ListUsers", US, ALICE_IP, "AWS Internal", console=True)
    tu = U_TEMP["created"]
    tags = [{"key": "purpose", "value": "db-migration"}, {"key": "owner", "value": "alice@acme.example"}]
    ev(tu, ci, "iam.amazonaws.com", "CreateUser", US, ALICE_IP, "AWS Internal",
       req={"userName": "svc-temp-migration", "tags": tags},
       resp={"user": {"path": "/", "userName": "svc-temp-migration", "userId": U_TEMP["id"], "arn": U_TEMP["arn"],
                      "createDate": iam_date(tu), "tags": tags}}, ro=False, console=True)
    ev(jit(tu, 20, 40), ci, "iam.amazonaws.com", "AttachUserPolicy", US, ALICE_IP, "AWS Internal",
       req={"userName": "svc-temp-migration", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, ro=False,
       console=True)
    tk = jit(tu, 70, 100)
    ev(tk, ci, "iam.amazonaws.com", "CreateAccessKey", US, ALICE_IP, "AWS Internal",
       req={"userName": "svc-temp-migration"},
       resp={"accessKey": {"userName": "svc-temp-migration", "accessKeyId": TEMP_KEY, "status": "Active",
                           "createDate": iam_date(tk)}}, ro=False, console=True)
    ev(jit(tk, 5, 15), ci, "iam.amazonaws.com", "ListAccessKeys", US, ALICE_IP, "AWS Internal",
       req={"userName": "svc-temp-migration"}, console=True)
    # svc-temp-migration uses the key
    ti = ident_user(U_TEMP, TEMP_KEY)
    for day, h in ((DAYS[1], 10.1), (DAYS[3], 13.5)):
        t0 = rand_time(day, h, h + 0.2)
        caller_identity(t0, ti, CONTRACTOR_IP, UA_TEMP + " md/command#sts.get-caller-identity")
        s3_list_buckets(jit(t0, 10, 30), ti, CONTRACTOR_IP, UA_TEMP + " md/command#s3.ls")
        for _ in range(2):
            t0 = jit(t0, 40, 200)
            ev(t0, ti, "rds.amazonaws.com", "DescribeDBInstances", US, CONTRACTOR_IP,
               UA_TEMP + " md/command#rds.describe-db-instances", req={})
        ev(jit(t0, 30, 90), ti, "rds.amazonaws.com", "DescribeDBSnapshots", US, CONTRACTOR_IP,
           UA_TEMP + " md/command#rds.describe-db-snapshots", req={"dBInstanceIdentifier": "orders-db"})
    # Day 3 (Nov 11): delete old-test-role
    t = at(DAYS[2], 14, 0, 41)
    console_login(t, login_ident, ALICE_IP)
    key = make_key("ASIA", PROD)
    ci = ident_user(a, key, console_created=t, mfa=True)
    t1 = jit(t, 60, 120)
    ev(t1, ci, "iam.amazonaws.com", "ListRoles", US, ALICE_IP, "AWS Internal", console=True)
    t1 = jit(t1, 30, 60)
    ev(t1, ci, "iam.amazonaws.com", "ListAttachedRolePolicies", US, ALICE_IP, "AWS Internal",
       req={"roleName": "old-test-role"}, console=True)
    t1 = jit(t1, 10, 20)
    ev(t1, ci, "iam.amazonaws.com", "DetachRolePolicy", US, ALICE_IP, "AWS Internal",
       req={"roleName": "old-test-role", "policyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}, ro=False,
       console=True)
    t1 = jit(t1, 2, 5)
    ev(t1, ci, "iam.amazonaws.com", "DeleteRole", US, ALICE_IP, "AWS Internal",
       req={"roleName": "old-test-role"}, ro=False, console=True)
    # Day 5 (Nov 13): browse
    t = at(DAYS[4], 8, 47, 19)
    console_login(t, login_ident, ALICE_IP)
    ci = ident_user(a, make_key("ASIA", PROD), console_created=t, mfa=True)
    ev(jit(t, 40, 90), ci, "ec2.amazonaws.com", "DescribeInstances", US, ALICE_IP, "AWS Internal",
       req={"instancesSet": {}, "filterSet": {}}, console=True)
    ev(jit(t, 100, 200), ci, "iam.amazonaws.com", "GetCredentialReport", US, ALICE_IP, "AWS Internal",
       console=True)


def gen_root():
    t = at(DAYS[3], 7, 41, 5)
    ident = {"type": "Root", "principalId": PROD, "arn": f"arn:aws:iam::{PROD}:root", "accountId": PROD,
             "accessKeyId": ""}
    console_login(t, ident, ROOT_IP, region=US)
    ri = {"type": "Root", "principalId": PROD, "arn": f"arn:aws:iam::{PROD}:root", "accountId": PROD,
          "accessKeyId": make_key("ASIA", PROD),
          "sessionContext": {"sessionIssuer": {}, "webIdFederationData": {},
                             "attributes": {"creationDate": ct(t), "mfaAuthenticated": "true"}}}
    t1 = jit(t, 60, 120)
    ev(t1, ri, "ec2.amazonaws.com", "DescribeInstances", EU, ROOT_IP, "AWS Internal",
       req={"instancesSet": {}, "filterSet": {}}, console=True)
    ev(jit(t1, 20, 60), ri, "ec2.amazonaws.com", "DescribeSecurityGroups", EU, ROOT_IP, "AWS Internal",
       req={"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}}, console=True)


SAML_HASH = "Fq3Cd8NFfWc5DuWS8R6aqxMmk4s="


def gen_saml():
    role = ROLES["okta-admin"]
    for day, h in ((DAYS[0], 9.5), (DAYS[3], 10.2), (DAYS[6], 18.6)):
        t = rand_time(day, h, h + 0.3)
        sess = Session(role, "alice@acme.example", t)
        ident = {"type": "SAMLUser", "principalId": f"{SAML_HASH}:alice@acme.example",
                 "userName": "alice@acme.example", "identityProvider": SAML_HASH}
        ev(t, ident, "sts.amazonaws.com", "AssumeRoleWithSAML", US, ALICE_IP, UA_BROWSER,
           req={"sAMLAssertionID": "id" + hexs(32), "roleSessionName": "alice@acme.example",
                "roleArn": role["arn"], "principalArn": SAML_ARN, "durationSeconds": 3600},
           resp={"credentials": {"accessKeyId": sess.key, "sessionToken": session_token(),
                                 "expiration": sts_exp(t + timedelta(hours=1))},
                 "assumedRoleUser": {"assumedRoleId": sess.assumed_id, "arn": sess.arn},
                 "subject": "alice@acme.example",
                 "subjectType": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
                 "issuer": "http://www.okta.com/exk1a2b3c4d5e6f7g8h9", "audience": "https://signin.aws.amazon.com/saml",
                 "nameQualifier": SAML_HASH},
           resources=role_resource(role["arn"]) + [{"accountId": PROD, "type": "AWS::IAM::SAMLProvider",
                                                    "ARN": SAML_ARN}], host="sts.amazonaws.com")
        login_ident = {"type": "AssumedRole", "principalId": sess.assumed_id, "arn": sess.arn, "accountId": PROD,
                       "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": role["id"],
                                                            "arn": role["arn"], "accountId": PROD,
                                                            "userName": "okta-admin"},
                                          "webIdFederationData": {},
                                          "attributes": {"creationDate": ct(t), "mfaAuthenticated": "false"}}}
        console_login(jit(t, 1, 2), login_ident, ALICE_IP, mfa="No", extra_addl={"SamlProviderArn": SAML_ARN})
        si = sess.ident()
        t1 = jit(t, 30, 90)
        ev(t1, si, "eks.amazonaws.com", "ListClusters", US, ALICE_IP, "AWS Internal", console=True)
        ev(jit(t1, 5, 20), si, "eks.amazonaws.com", "DescribeCluster", US, ALICE_IP, "AWS Internal",
           req={"name": "prod-eks"}, console=True)
        K8S_LINKS["okta"].append({"session": sess, "t": jit(t1, 120, 400), "ip": ALICE_IP})


def gen_identity_center():
    onb = {"userId": "94482488-3041-7026-18f0-6e6f5b8f1a2c", "identityStoreArn": IDSTORE_ARN}
    cred = base64.urlsafe_b64encode(R.randbytes(30)).decode().rstrip("=")
    ident = {"type": "IdentityCenterUser", "accountId": PROD, "onBehalfOf": onb, "credentialId": cred}
    t = at(DAYS[4], 9, 14, 2)
    ev(t, ident, "sso.amazonaws.com", "ListAccounts", US, ALICE_IP2, UA_BROWSER, req=None)
    ev(jit(t, 4, 9), ident, "sso.amazonaws.com", "ListAccountRoles", US, ALICE_IP2, UA_BROWSER,
       req={"accountId": PROD})


def gen_unknown_signins():
    for t in (at(DAYS[5], 3, 17, 44), at(DAYS[5], 3, 18, 2)):
        ident = {"type": "Unknown", "accountId": PROD, "accessKeyId": "",
                 "userName": "HIDDEN_DUE_TO_SECURITY_REASONS"}
        console_login(t, ident, SCANNER_IP, ok=False, mfa="No")


def gen_all_aws():
    gen_lambda()
    gen_ec2_web_app()
    gen_github()
    gen_irsa()
    gen_cross_account()
    gen_vendor()
    gen_svc_ci_legacy()
    gen_svc_backup()
    gen_terraform()
    gen_alice()
    gen_root()
    gen_saml()
    gen_identity_center()
    gen_unknown_signins()
    # every access key id in the logs must decode to the account that owns it
    for e in EVENTS:
        ak = e["rec"]["userIdentity"].get("accessKeyId")
        if ak:
            assert account_from_key(ak) == PROD, ak
        cred = (e["rec"]["responseElements"] or {}).get("credentials") if isinstance(
            e["rec"]["responseElements"], dict) else None
        if cred:
            assert account_from_key(cred["accessKeyId"]) == PROD


# ---------------------------------------------------------------------------
# CloudTrail S3 delivery + lookup-events
# ---------------------------------------------------------------------------
def write_gz(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(gzip.compress(data, compresslevel=9, mtime=0))


def write_cloudtrail():
    shutil.rmtree(os.path.join(OUT, "AWSLogs"), ignore_errors=True)  # file names are derived, start clean
    trail = sorted((e for e in EVENTS if e["trail"]), key=lambda e: e["t"])
    buckets = {}
    for e in trail:
        reg = e["rec"]["awsRegion"]
        t = e["t"]
        width = 6 if reg == US else 12
        key = (reg, t.date(), t.hour // width)
        buckets.setdefault(key, []).append(e["rec"])
    counts = {}
    for (reg, day, _b), recs in sorted(buckets.items()):
        last = max(datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ") for r in recs)
        mins = last.hour * 60 + last.minute
        mins = (mins // 5 + 1) * 5
        stamp = f"{day:%Y%m%d}T{mins // 60:02d}{mins % 60:02d}Z"
        name = f"{PROD}_CloudTrail_{reg}_{stamp}_{rand_str(16)}.json.gz"
        path = os.path.join(OUT, "AWSLogs", PROD, "CloudTrail", reg, f"{day:%Y}", f"{day:%m}", f"{day:%d}", name)
        body = json.dumps({"Records": recs}, separators=(",", ":")).encode()
        write_gz(path, body)
        counts[reg] = counts.get(reg, 0) + len(recs)
    return counts, len(buckets)


def write_lookup_events():
    """aws cloudtrail lookup-events --region us-east-1 \\
         --lookup-attributes AttributeKey=Username,AttributeValue=orders-processor \\
         --start-time 2026-11-15T00:00:00Z --end-time 2026-11-16T00:00:00Z --max-items 20"""
    day = DAYS[6].date()
    cands = [e for e in EVENTS
             if e["t"].date() == day and e["rec"]["awsRegion"] == US
             and e["rec"]["userIdentity"].get("arn", "").endswith("/lambda-orders-processor/orders-processor")]
    cands.sort(key=lambda e: (e["t"], e["rec"]["eventID"]), reverse=True)  # Event history: newest first
    page = cands[:20]
    out = []
    for e in page:
        r = e["rec"]
        item = {"EventId": r["eventID"], "EventName": r["eventName"], "ReadOnly": "true" if r["readOnly"] else "false",
                "AccessKeyId": r["userIdentity"]["accessKeyId"], "EventTime": cli(e["t"]),
                "EventSource": r["eventSource"], "Username": "orders-processor"}
        res = []
        for x in r.get("resources") or []:
            res.append({"ResourceType": x["type"], "ResourceName": x["ARN"]})
        if r["eventName"] == "GetSecretValue":
            res.append({"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": "prod/orders/db"})
        if r["eventName"] == "CreateLogStream":
            res.append({"ResourceType": "AWS::Logs::LogGroup", "ResourceName": "/aws/lambda/orders-processor"})
        item["Resources"] = res
        item["CloudTrailEvent"] = json.dumps(r, separators=(",", ":"))
        out.append(item)
    doc = {"Events": out, "NextToken": base64.b64encode(R.randbytes(96)).decode()}
    path = os.path.join(OUT, "aws", PROD, "lookup-events-2026-11-15.json")
    write_json(path, doc)
    dup = sum(1 for e in page if e["trail"])
    return len(page), dup


def write_json(path, doc, sort_keys=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(json.dumps(doc, indent=4, ensure_ascii=False, sort_keys=sort_keys))
        f.write("\n")


# ---------------------------------------------------------------------------
# IAM snapshot: get-account-authorization-details + credential report
# ---------------------------------------------------------------------------
AWS_MANAGED = {
    "AdministratorAccess": {"path": "/", "id": "ANPAIWMBCKSKIEE64ZLYK", "ver": "v1", "created": d(2015, 2, 6, 18, 39, 46),
                            "updated": d(2015, 2, 6, 18, 39, 46), "doc": doc(allow("*"))},
    "ReadOnlyAccess": {"path": "/", "id": "ANPAILL3HVNFSB6DCOWYQ", "ver": "v121", "created": d(2015, 2, 6, 18, 39, 48),
                       "updated": d(2026, 10, 1, 17, 2, 11),
                       # the real document lists several hundred service actions; trimmed here
                       "doc": doc(dict(allow(["cloudformation:Describe*", "cloudformation:List*", "dynamodb:Describe*",
                                              "dynamodb:List*", "ec2:Describe*", "ecr:Describe*", "ecs:Describe*",
                                              "ecs:List*", "eks:Describe*", "eks:List*", "iam:Get*", "iam:List*",
                                              "iam:Generate*", "kms:Describe*", "kms:List*", "lambda:Get*",
                                              "lambda:List*", "logs:Describe*", "logs:Get*", "rds:Describe*",
                                              "s3:Get*", "s3:List*", "secretsmanager:Describe*",
                                              "secretsmanager:List*", "sqs:Get*", "sqs:List*", "ssm:Describe*",
                                              "ssm:Get*", "ssm:List*", "sts:GetCallerIdentity"]),
                                  Sid="ReadOnlyActions"))},
    "AWSLambdaBasicExecutionRole": {"path": "/service-role/", "id": "ANPAJNCQGXC42545SKXIK", "ver": "v1",
                                    "created": d(2015, 4, 9, 15, 3, 43), "updated": d(2015, 4, 9, 15, 3, 43),
                                    "doc": doc(allow(["logs:CreateLogGroup", "logs:CreateLogStream",
                                                      "logs:PutLogEvents"]))},
    "AmazonSSMManagedInstanceCore": {"path": "/", "id": "ANPAIXSHM2BNB2D3AXXRU", "ver": "v2",
                                     "created": d(2019, 3, 15, 17, 22, 12), "updated": d(2019, 5, 23, 16, 54, 21),
                                     "doc": doc(allow(["ssm:DescribeAssociation", "ssm:GetDeployablePatchSnapshotForInstance",
                                                       "ssm:GetDocument", "ssm:DescribeDocument", "ssm:GetManifest",
                                                       "ssm:GetParameter", "ssm:GetParameters", "ssm:ListAssociations",
                                                       "ssm:ListInstanceAssociations", "ssm:PutInventory",
                                                       "ssm:PutComplianceItems", "ssm:PutConfigurePackageResult",
                                                       "ssm:UpdateAssociationStatus",
                                                       "ssm:UpdateInstanceAssociationStatus",
                                                       "ssm:UpdateInstanceInformation"]),
                                                allow(["ssmmessages:CreateControlChannel",
                                                       "ssmmessages:CreateDataChannel",
                                                       "ssmmessages:OpenControlChannel",
                                                       "ssmmessages:OpenDataChannel"]),
                                                allow(["ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage",
                                                       "ec2messages:FailMessage", "ec2messages:GetEndpoint",
                                                       "ec2messages:GetMessages", "ec2messages:SendReply"]))},
    "AmazonECSServiceRolePolicy": {"path": "/aws-service-role/", "id": "ANPAIVUWKCAI7URU4WUEI", "ver": "v9",
                                   "created": d(2017, 10, 14, 1, 18, 58), "updated": d(2025, 1, 17, 19, 40, 2),
                                   # trimmed
                                   "doc": doc(dict(allow(["ec2:AttachNetworkInterface", "ec2:CreateNetworkInterface",
                                                          "ec2:CreateNetworkInterfacePermission",
                                                          "ec2:DeleteNetworkInterface",
                                                          "ec2:DeleteNetworkInterfacePermission", "ec2:Describe*",
                                                          "ec2:DetachNetworkInterface",
                                                          "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
                                                          "elasticloadbalancing:DeregisterTargets",
                                                          "elasticloadbalancing:Describe*",
                                                          "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
                                                          "elasticloadbalancing:RegisterTargets",
                                                          "servicediscovery:RegisterInstance",
                                                          "servicediscovery:DeregisterInstance"]),
                                                   Sid="ECSTaskManagement"))},
}


def aws_managed_arn(name):
    return f"arn:aws:iam::aws:policy{AWS_MANAGED[name]['path']}{name}"


def local_policies():
    """Customer managed policies: name -> dict(path, versions[(created, doc)], default, description)."""
    P = {}
    P["orders-processor-policy"] = {"versions": [
        (d(2024, 3, 1, 10, 0, 5), doc(allow(["secretsmanager:GetSecretValue"], SECRET_ARN),
                                      allow(["kms:Decrypt"], KMS_KEY_ARN))),
        (d(2025, 6, 18, 13, 44, 51), doc(allow(["secretsmanager:GetSecretValue"], SECRET_ARN, Sid="ReadDbSecret"),
                                         allow(["kms:Decrypt"], KMS_KEY_ARN, Sid="DecryptOrdersKey"),
                                         allow(["sqs:SendMessage", "sqs:GetQueueUrl"],
                                               f"arn:aws:sqs:us-east-1:{PROD}:orders-events", Sid="PublishEvents"))),
    ], "default": 2, "desc": "orders-processor lambda access"}
    P["web-app-s3-read"] = {"versions": [
        (d(2023, 9, 4, 8, 48, 2), doc(allow(["s3:ListAllMyBuckets"]),
                                      allow(["s3:GetObject", "s3:ListBucket"],
                                            ["arn:aws:s3:::acme-web-assets", "arn:aws:s3:::acme-web-assets/*"]),
                                      allow(["ssm:GetParameters", "ssm:GetParameter"],
                                            f"arn:aws:ssm:us-east-1:{PROD}:parameter/web-app/prod/*"),
                                      allow(["ec2:DescribeTags"]))),
    ], "default": 1, "desc": ""}
    P["github-deploy-ecs"] = {"versions": [
        (d(2025, 1, 20, 13, 5, 0), doc(allow(["ecr:GetAuthorizationToken"]),
                                       allow(["ecs:UpdateService", "ecs:DescribeServices"],
                                             f"arn:aws:ecs:us-east-1:{PROD}:service/payments/*"))),
        (d(2025, 2, 3, 9, 12, 37), doc(allow(["ecr:GetAuthorizationToken"]),
                                       allow(["ecr:BatchCheckLayerAvailability", "ecr:PutImage",
                                              "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                              "ecr:CompleteLayerUpload"],
                                             f"arn:aws:ecr:us-east-1:{PROD}:repository/payments-api"),
                                       allow(["ecs:UpdateService", "ecs:DescribeServices",
                                              "ecs:RegisterTaskDefinition"], "*"),
                                       allow("iam:PassRole", f"arn:aws:iam::{PROD}:role/*",
                                             Condition={"StringEquals": {"iam:PassedToService":
                                                                         "ecs-tasks.amazonaws.com"}}))),
        (d(2025, 9, 30, 16, 20, 4), doc(allow(["ecr:GetAuthorizationToken", "eks:DescribeCluster"]),
                                        allow(["ecr:BatchCheckLayerAvailability", "ecr:PutImage",
                                               "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
                                               "ecr:CompleteLayerUpload"],
                                              f"arn:aws:ecr:us-east-1:{PROD}:repository/payments-api"),
                                        allow(["ecs:UpdateService", "ecs:DescribeServices",
                                               "ecs:RegisterTaskDefinition"], "*"),
                                        allow("iam:PassRole", f"arn:aws:iam::{PROD}:role/*",
                                              Condition={"StringEquals": {"iam:PassedToService":
                                                                          "ecs-tasks.amazonaws.com"}}))),
    ], "default": 3, "desc": "GitHub Actions deploy of payments-api"}
    P["acme-deployer-boundary"] = {"versions": [
        (d(2024, 6, 11, 15, 29, 0), doc(allow(["cloudformation:*", "glue:*", "s3:*", "sts:AssumeRole",
                                               "sts:SetSourceIdentity", "iam:PassRole", "iam:Get*", "iam:List*"]),
                                        {"Effect": "Deny", "Action": ["iam:CreateUser", "iam:CreateAccessKey",
                                                                      "organizations:*"], "Resource": "*"})),
    ], "default": 1, "desc": "Permissions boundary for deployment roles"}
    P["data-pipeline-access"] = {"versions": [
        (d(2024, 6, 11, 15, 32, 10), doc(allow(["glue:GetJob", "glue:StartJobRun", "glue:GetJobRun"],
                                               f"arn:aws:glue:us-east-1:{PROD}:job/orders-etl"),
                                         allow(["s3:ListAllMyBuckets"]),
                                         allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::acme-datalake/*"))),
    ], "default": 1, "desc": ""}
    P["legacy-batch-s3"] = {"versions": [
        (d(2022, 11, 30, 17, 56, 30), doc(allow("s3:*", ["arn:aws:s3:::acme-legacy-batch",
                                                         "arn:aws:s3:::acme-legacy-batch/*"]))),
    ], "default": 1, "desc": ""}
    P["ci-legacy-policy"] = {"versions": [
        (d(2023, 5, 17, 16, 45, 0), doc(allow(["ecr:*"]), allow(["s3:ListAllMyBuckets", "s3:GetObject",
                                                                 "s3:PutObject"]))),
        (d(2024, 6, 12, 9, 3, 12), doc(allow(["ecr:*"]), allow(["s3:ListAllMyBuckets", "s3:GetObject",
                                                                "s3:PutObject"]),
                                       allow("sts:AssumeRole", ROLES["cross-account-deployer"]["arn"]))),
    ], "default": 2, "desc": "Jenkins (legacy) build user"}
    P["backup-operator"] = {"versions": [
        (d(2024, 1, 22, 14, 5, 0), doc(allow(["ec2:CreateSnapshot", "ec2:DeleteSnapshot", "ec2:CopySnapshot",
                                              "ec2:DescribeVolumes", "ec2:DescribeSnapshots", "ec2:CreateTags"]),
                                       allow(["sts:GetFederationToken"],
                                             f"arn:aws:sts::{PROD}:federated-user/backup-*"),
                                       allow(["s3:ListAllMyBuckets"]))),
    ], "default": 1, "desc": "nightly EBS snapshots + DR copy"}
    return P


def build_authz():
    LP = local_policies()
    attach = {}  # policy arn -> count
    boundary_use = {}

    def att(name_or_arn):
        if name_or_arn in AWS_MANAGED:
            arn, name = aws_managed_arn(name_or_arn), name_or_arn
        else:
            arn, name = f"arn:aws:iam::{PROD}:policy/{name_or_arn}", name_or_arn
        attach[arn] = attach.get(arn, 0) + 1
        return {"PolicyName": name, "PolicyArn": arn}

    def tags(**kv):
        return [{"Key": k.replace("_", "-"), "Value": v} for k, v in kv.items()]

    # ---- users
    users = []

    def user(name, groups=(), managed=(), inline=None, tag_list=None):
        u = U[name]
        x = {"Path": u["path"], "UserName": name, "UserId": u["id"], "Arn": u["arn"], "CreateDate": cli(u["created"])}
        if inline:
            x["UserPolicyList"] = inline
        x["GroupList"] = list(groups)
        x["AttachedManagedPolicies"] = [att(m) for m in managed]
        x["Tags"] = tag_list or []
        users.append(x)

    user("alice", groups=["admins"], tag_list=tags(team="platform", email="alice@acme.example"))
    user("svc-backup", managed=["backup-operator"], tag_list=tags(team="platform", owner="bob@acme.example"))
    user("svc-ci-legacy", managed=["ci-legacy-policy"], tag_list=tags(team="platform", owner="bob@acme.example"))
    user("svc-reporting",
         inline=[{"PolicyName": "athena-reporting", "PolicyDocument": doc(
             allow(["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"],
                   f"arn:aws:athena:us-east-1:{PROD}:workgroup/reporting"),
             allow(["s3:GetObject", "s3:ListBucket", "s3:PutObject"],
                   ["arn:aws:s3:::acme-athena-results", "arn:aws:s3:::acme-athena-results/*"]),
             allow(["glue:GetTable", "glue:GetDatabase", "glue:GetPartitions"]))}],
         tag_list=tags(team="finance"))
    user("terraform-runner", groups=["automation"], tag_list=tags(team="platform", managed_by="manual"))

    # ---- groups
    groups = [
        {"Path": "/", "GroupName": "admins", "GroupId": GROUPS["admins"]["id"],
         "Arn": f"arn:aws:iam::{PROD}:group/admins", "CreateDate": cli(GROUPS["admins"]["created"]),
         "GroupPolicyList": [], "AttachedManagedPolicies": [att("AdministratorAccess")]},
        {"Path": "/", "GroupName": "automation", "GroupId": GROUPS["automation"]["id"],
         "Arn": f"arn:aws:iam::{PROD}:group/automation", "CreateDate": cli(GROUPS["automation"]["created"]),
         "GroupPolicyList": [{"PolicyName": "automation-app-roles", "PolicyDocument": doc(
             dict(allow("iam:*", [f"arn:aws:iam::{PROD}:role/app/*", f"arn:aws:iam::{PROD}:policy/*"]),
                  Sid="ManageAppRoles"),
             dict(allow(["iam:Get*", "iam:List*", "sts:GetCallerIdentity", "sts:AssumeRole"]), Sid="ReadIam"),
             dict(allow("s3:*"), Sid="S3Full"))}],
         "AttachedManagedPolicies": []},
    ]

    # ---- roles
    last_used = role_last_used()
    roles = []

    def svc_trust(svc):
        return doc({"Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"})

    def role(name, trust, managed=(), inline=(), tag_list=None, boundary=None, ips=None, desc=None,
             max_session=None):
        r = ROLES[name]
        x = {"Path": r["path"], "RoleName": name, "RoleId": r["id"], "Arn": r["arn"],
             "CreateDate": cli(r["created"]), "AssumeRolePolicyDocument": trust,
             "InstanceProfileList": ips or [], "RolePolicyList": list(inline),
             "AttachedManagedPolicies": [att(m) for m in managed]}
        if boundary:
            barn = f"arn:aws:iam::{PROD}:policy/{boundary}"
            boundary_use[barn] = boundary_use.get(barn, 0) + 1
            x["PermissionsBoundary"] = {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": barn}
        x["Tags"] = tag_list or []
        lu = last_used.get(name)
        x["RoleLastUsed"] = {"LastUsedDate": cli(lu[0]), "Region": lu[1]} if lu else {}
        roles.append(x)
        return x

    role("AWSServiceRoleForECS", svc_trust("ecs.amazonaws.com"), managed=["AmazonECSServiceRolePolicy"])
    role("cross-account-deployer",
         doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{TOOLING}:root"}, "Action": "sts:AssumeRole",
              "Condition": {"StringEquals": {"sts:ExternalId": "acme-deploy-7f3c"}}},
             {"Sid": "LegacyJenkins", "Effect": "Allow", "Principal": {"AWS": U["svc-ci-legacy"]["arn"]},
              "Action": "sts:AssumeRole"}),
         inline=[{"PolicyName": "deploy", "PolicyDocument": doc(
             allow(["cloudformation:*"]), allow(["sts:AssumeRole", "sts:SetSourceIdentity"],
                                                ROLES["data-pipeline"]["arn"]),
             allow("iam:PassRole", f"arn:aws:iam::{PROD}:role/app/*"))}],
         boundary="acme-deployer-boundary", tag_list=tags(team="platform", owner="bob@acme.example"))
    role("data-pipeline",
         doc({"Effect": "Allow", "Principal": {"AWS": ROLES["cross-account-deployer"]["arn"]},
              "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"]}),
         managed=["data-pipeline-access"], tag_list=tags(team="data"))
    ip_role = {"Path": "/", "RoleName": "ec2-web-app", "RoleId": ROLES["ec2-web-app"]["id"],
               "Arn": ROLES["ec2-web-app"]["arn"], "CreateDate": cli(ROLES["ec2-web-app"]["created"]),
               "AssumeRolePolicyDocument": svc_trust("ec2.amazonaws.com")}
    ips = [{"Path": "/", "InstanceProfileName": "ec2-web-app-profile", "InstanceProfileId": make_uid("AIPA", PROD),
            "Arn": f"arn:aws:iam::{PROD}:instance-profile/ec2-web-app-profile",
            "CreateDate": cli(ROLES["ec2-web-app"]["created"] + timedelta(seconds=1)), "Roles": [ip_role]}]
    role("ec2-web-app", svc_trust("ec2.amazonaws.com"), managed=["AmazonSSMManagedInstanceCore", "web-app-s3-read"],
         ips=ips, tag_list=tags(team="web", owner="web-team@acme.example"))
    role("github-actions-deploy",
         doc({"Effect": "Allow", "Principal": {"Federated": GH_OIDC_ARN}, "Action": "sts:AssumeRoleWithWebIdentity",
              "Condition": {"StringEquals": {f"{GH_HOST}:aud": "sts.amazonaws.com"},
                            "StringLike": {f"{GH_HOST}:sub": "repo:acme/payments-api:*"}}}),
         managed=["github-deploy-ecs"], tag_list=tags(team="payments", repo="acme/payments-api"))
    role("irsa-orders-api",
         doc({"Effect": "Allow", "Principal": {"Federated": EKS_OIDC_ARN}, "Action": "sts:AssumeRoleWithWebIdentity",
              "Condition": {"StringEquals": {f"{EKS_OIDC_HOST}:sub": "system:serviceaccount:orders:orders-api",
                                             f"{EKS_OIDC_HOST}:aud": "sts.amazonaws.com"}}}),
         inline=[{"PolicyName": "orders-api", "PolicyDocument": doc(
             allow(["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
                    "dynamodb:UpdateItem"], f"arn:aws:dynamodb:us-east-1:{PROD}:table/orders"),
             allow(["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"],
                   f"arn:aws:sqs:us-east-1:{PROD}:orders-events"))}],
         tag_list=tags(team="orders", owner="orders-team@acme.example"))
    role("lambda-orders-processor", svc_trust("lambda.amazonaws.com"),
         managed=["AWSLambdaBasicExecutionRole", "orders-processor-policy"],
         tag_list=tags(owner="orders-team@acme.example", team="orders"))
    role("legacy-batch-role", svc_trust("ec2.amazonaws.com"), managed=["legacy-batch-s3"],
         tag_list=tags(team="data"))
    role("okta-admin",
         doc({"Effect": "Allow", "Principal": {"Federated": SAML_ARN}, "Action": "sts:AssumeRoleWithSAML",
              "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}),
         managed=["AdministratorAccess"], tag_list=tags(team="platform"))
    role("reports-exporter", svc_trust("ecs-tasks.amazonaws.com"), managed=["ReadOnlyAccess"],
         tag_list=[{"Key": "team", "Value": "data"}, {"Key": "managed-by", "Value": "terraform"}])
    role("vendor-audit-access",
         doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{UNKNOWN}:root"}, "Action": "sts:AssumeRole"}),
         managed=["ReadOnlyAccess"], tag_list=tags(vendor="unknown"))
    roles.sort(key=lambda x: x["RoleName"].lower())

    # ---- policies
    policies = []
    for name in sorted(LP):
        p = LP[name]
        arn = f"arn:aws:iam::{PROD}:policy/{name}"
        vers = []
        for i, (c, dd) in enumerate(p["versions"], start=1):
            vers.append({"Document": dd, "VersionId": f"v{i}", "IsDefaultVersion": i == p["default"],
                         "CreateDate": cli(c)})
        vers.reverse()  # newest first, as the API returns them
        policies.append({"PolicyName": name, "PolicyId": make_uid("ANPA", PROD), "Arn": arn, "Path": "/",
                         "DefaultVersionId": f"v{p['default']}", "AttachmentCount": attach.get(arn, 0),
                         "PermissionsBoundaryUsageCount": boundary_use.get(arn, 0), "IsAttachable": True,
                         "CreateDate": cli(p["versions"][0][0]), "UpdateDate": cli(p["versions"][-1][0]),
                         "PolicyVersionList": vers})
    for name in sorted(AWS_MANAGED):
        m = AWS_MANAGED[name]
        arn = aws_managed_arn(name)
        policies.append({"PolicyName": name, "PolicyId": m["id"], "Arn": arn, "Path": m["path"],
                         "DefaultVersionId": m["ver"], "AttachmentCount": attach.get(arn, 0),
                         "PermissionsBoundaryUsageCount": 0, "IsAttachable": True,
                         "CreateDate": cli(m["created"]), "UpdateDate": cli(m["updated"]),
                         "PolicyVersionList": [{"Document": m["doc"], "VersionId": m["ver"],
                                                "IsDefaultVersion": True, "CreateDate": cli(m["updated"])}]})
    assert all(attach.get(p["Arn"], 0) or boundary_use.get(p["Arn"], 0) for p in policies), "unattached policy"
    return {"UserDetailList": users, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": policies,
            "IsTruncated": False}


def role_last_used():
    """Role -> (time, region) of the last successful assumption seen in the logs."""
    lu = {}
    by_arn = {r["arn"]: n for n, r in ROLES.items()}
    for e in EVENTS:
        r = e["rec"]
        if r["eventName"].startswith("AssumeRole") and not r.get("errorCode"):
            n = by_arn.get(r["requestParameters"]["roleArn"])
            if n and (n not in lu or e["t"] > lu[n][0]):
                lu[n] = (e["t"], r["awsRegion"])
    lu["legacy-batch-role"] = (d(2026, 4, 30, 3, 12, 48), US)  # ~200 days before the snapshot
    return lu


def key_last_used():
    lu = {}
    for e in EVENTS:
        r = e["rec"]
        ak = r["userIdentity"].get("accessKeyId", "")
        if ak.startswith("AKIA") and (ak not in lu or e["t"] >= lu[ak][0]):
            lu[ak] = (e["t"], r["awsRegion"], r["eventSource"].split(".")[0])
    return lu


def write_credential_report():
    cols = ["user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
            "password_next_rotation", "mfa_active", "access_key_1_active", "access_key_1_last_rotated",
            "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
            "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
            "access_key_2_last_used_region", "access_key_2_last_used_service", "cert_1_active",
            "cert_1_last_rotated", "cert_2_active", "cert_2_last_rotated"]
    klu = key_last_used()
    klu[KEYS["svc-reporting-1"]["id"]] = (d(2026, 7, 19, 6, 30, 0), US, "athena")  # ~120 days ago

    def minute(t):
        return cli(t.replace(second=0))

    def key_cols(k):
        if not k:
            return ["false", "N/A", "N/A", "N/A", "N/A"]
        lu = klu.get(k["id"])
        if not lu:
            return ["true", cli(k["created"]), "N/A", "N/A", "N/A"]
        return ["true", cli(k["created"]), minute(lu[0]), lu[1], lu[2]]

    root_login = max(e["t"] for e in EVENTS if e["rec"]["eventName"] == "ConsoleLogin"
                     and e["rec"]["userIdentity"]["type"] == "Root")
    alice_login = max(e["t"] for e in EVENTS if e["rec"]["eventName"] == "ConsoleLogin"
                      and e["rec"]["userIdentity"].get("userName") == "alice"
                      and e["rec"]["responseElements"]["ConsoleLogin"] == "Success")
    rows = [["<root_account>", f"arn:aws:iam::{PROD}:root", "2019-04-08T12:31:07+00:00", "not_supported",
             cli(root_login), "not_supported", "not_supported", "true"] + key_cols(None) + key_cols(None)
            + ["false", "N/A", "false", "N/A"]]
    pw = {
        "alice": ["true", cli(alice_login), "2026-08-14T09:40:22+00:00", "N/A", "true"],
        "svc-backup": ["false", "N/A", "N/A", "N/A", "false"],
        "svc-ci-legacy": ["false", "N/A", "N/A", "N/A", "false"],
        "svc-reporting": ["true", "no_information", "2025-04-02T11:24:10+00:00", "N/A", "false"],
        "terraform-runner": ["false", "N/A", "N/A", "N/A", "false"],
    }
    keys = {"svc-backup": ("svc-backup-1", None), "svc-ci-legacy": ("svc-ci-legacy-1", "svc-ci-legacy-2"),
            "svc-reporting": ("svc-reporting-1", None), "terraform-runner": ("terraform-runner-1", None)}
    for name in sorted(U):
        u = U[name]
        k1, k2 = keys.get(name, (None, None))
        rows.append([name, u["arn"], cli(u["created"])] + pw[name]
                    + key_cols(KEYS.get(k1)) + key_cols(KEYS.get(k2)) + ["false", "N/A", "false", "N/A"])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        assert len(r) == 22, r
        w.writerow(r)
    path = os.path.join(OUT, "aws", PROD, "credential-report.csv")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    return len(rows)


# ---------------------------------------------------------------------------
# Kubernetes: RBAC snapshot + audit log
# ---------------------------------------------------------------------------
K8S_VERSION = "v1.30.6-eks-7f9249a"
NODES = {"ip-10-0-1-23.ec2.internal": {"uid": uid(), "ip": "10.0.1.23"},
         "ip-10-0-2-87.ec2.internal": {"uid": uid(), "ip": "10.0.2.87"}}
RV = [4_812_000]


def rv():
    RV[0] += R.randint(3, 400)
    return str(RV[0])


def meta(name, ns=None, created=None, labels=None, annotations=None, owner=None, generate=None):
    m = {"name": name, "uid": uid(), "resourceVersion": rv(), "creationTimestamp": k8s_s(created)}
    if ns:
        m["namespace"] = ns
    if labels:
        m["labels"] = labels
    if annotations:
        m["annotations"] = annotations
    if owner:
        m["ownerReferences"] = [owner]
    if generate:
        m["generateName"] = generate
    return m


CLUSTER_CREATED = d(2025, 3, 1, 9, 12, 30)
SA = {}  # "ns/name" -> item
PODS = {}


def build_k8s_snapshot():
    items = []
    namespaces = ["ci", "default", "kube-system", "monitoring", "orders", "payments"]
    ns_created = {"default": CLUSTER_CREATED, "kube-system": CLUSTER_CREATED,
                  "orders": d(2025, 3, 1, 10, 20, 0), "payments": d(2025, 3, 4, 14, 2, 11),
                  "ci": d(2025, 3, 6, 11, 40, 9), "monitoring": d(2025, 3, 2, 8, 5, 51)}

    def sa(ns, name, created, labels=None, annotations=None):
        x = {"apiVersion": "v1", "kind": "ServiceAccount",
             "metadata": meta(name, ns, created, labels, annotations)}
        SA[f"{ns}/{name}"] = x
        return x

    sas = []
    for ns in namespaces:
        sas.append(sa(ns, "default", ns_created[ns] + timedelta(seconds=1)))
    sas.append(sa("orders", "orders-api", d(2025, 3, 1, 10, 27, 14), {"app": "orders-api", "team": "orders"},
                  {"eks.amazonaws.com/role-arn": ROLES["irsa-orders-api"]["arn"]}))
    sas.append(sa("payments", "payments-worker", d(2025, 3, 4, 14, 3, 0), {"app": "payments-worker",
                                                                        "team": "payments"}))
    sas.append(sa("payments", "legacy-cron", d(2025, 4, 18, 7, 55, 31), {"team": "payments"}))
    sas.append(sa("ci", "jenkins-deploy-sa", d(2025, 3, 6, 11, 44, 2), {"team": "platform"},
                  {"owner": "bob@acme.example"}))
    sas.append(sa("ci", "argo-admin", d(2025, 5, 12, 16, 20, 45), {"app.kubernetes.io/name": "argo-server",
                                                                   "app.kubernetes.io/part-of": "argo"}))
    sas.append(sa("monitoring", "prometheus", d(2025, 3, 2, 8, 6, 12), {"app.kubernetes.io/name": "prometheus"}))
    sas.append(sa("kube-system", "aws-node", CLUSTER_CREATED + timedelta(minutes=3),
                  {"app.kubernetes.io/instance": "aws-vpc-cni", "app.kubernetes.io/name": "aws-node",
                   "app.kubernetes.io/managed-by": "EKS", "app.kubernetes.io/version": "v1.18.5"}))
    sas.append(sa("kube-system", "coredns", CLUSTER_CREATED + timedelta(minutes=3),
                  {"eks.amazonaws.com/component": "coredns", "k8s-app": "kube-dns"}))
    sas.append(sa("kube-system", "ebs-csi-controller-sa", d(2025, 3, 1, 11, 2, 9),
                  {"app.kubernetes.io/component": "csi-driver", "app.kubernetes.io/managed-by": "EKS",
                   "app.kubernetes.io/name": "aws-ebs-csi-driver", "app.kubernetes.io/version": "1.36.0"}))
    sas.sort(key=lambda x: (x["metadata"]["namespace"], x["metadata"]["name"]))
    items += sas

    # Roles
    def role(ns, name, rules, created, labels=None):
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": meta(name, ns, created, labels), "rules": rules}

    roles = [
        role("orders", "config-reader", [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
             d(2025, 3, 1, 10, 28, 0)),
        role("payments", "deployer", [
            {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch", "update"]},
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}], d(2025, 3, 6, 11, 45, 0)),
        role("payments", "secret-reader",
             [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
             d(2025, 3, 4, 14, 3, 30)),
    ]
    items += roles

    def binding(kind, name, ns, role_kind, role_name, subjects, created):
        m = meta(name, ns, created)
        return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": m,
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
                "subjects": subjects}

    def sa_subj(ns, name):
        return {"kind": "ServiceAccount", "name": name, "namespace": ns}

    rbs = [
        binding("RoleBinding", "argo-all", "ci", "ClusterRole", "argo-all", [sa_subj("ci", "argo-admin")],
                d(2025, 5, 12, 16, 21, 0)),
        binding("RoleBinding", "config-reader-binding", "orders", "Role", "config-reader",
                [sa_subj("orders", "orders-api")], d(2025, 3, 1, 10, 28, 5)),
        binding("RoleBinding", "deployer-binding", "payments", "Role", "deployer",
                [sa_subj("ci", "jenkins-deploy-sa")], d(2025, 3, 6, 11, 45, 12)),
        binding("RoleBinding", "secret-reader-binding", "payments", "Role", "secret-reader",
                [sa_subj("payments", "payments-worker")], d(2025, 3, 4, 14, 3, 41)),
    ]
    items += rbs

    boot = {"kubernetes.io/bootstrapping": "rbac-defaults"}
    auto = {"rbac.authorization.kubernetes.io/autoupdate": "true"}

    def crole(name, rules, created, labels=None, annotations=None, aggregation=None):
        x = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": meta(name, None, created, labels, annotations), "rules": rules}
        if aggregation:
            x["aggregationRule"] = aggregation
        return x

    ro_verbs = ["get", "list", "watch"]
    croles = [
        crole("argo-all", [{"apiGroups": ["argoproj.io"], "resources": ["*"], "verbs": ["*"]},
                           {"apiGroups": [""], "resources": ["pods", "pods/exec", "pods/log", "secrets", "configmaps"],
                            "verbs": ["*"]}],
              d(2025, 5, 12, 16, 20, 50), {"app.kubernetes.io/part-of": "argo"}),
        crole("aws-node", [{"apiGroups": ["crd.k8s.amazonaws.com"], "resources": ["eniconfigs"],
                            "verbs": ro_verbs},
                           {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": ro_verbs},
                           {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch", "update"]},
                           {"apiGroups": ["", "events.k8s.io"], "resources": ["events"],
                            "verbs": ["create", "patch", "list"]}],
              CLUSTER_CREATED + timedelta(minutes=3),
              {"app.kubernetes.io/instance": "aws-vpc-cni", "app.kubernetes.io/name": "aws-node"}),
        crole("cluster-admin", [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                                {"nonResourceURLs": ["*"], "verbs": ["*"]}], CLUSTER_CREATED, boot, auto),
        crole("ebs-external-provisioner-role", [
            {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "list", "watch", "create",
                                                                            "patch", "delete"]},
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch",
                                                                                 "update"]},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses", "csinodes"], "verbs": ro_verbs},
            {"apiGroups": ["snapshot.storage.k8s.io"], "resources": ["volumesnapshots", "volumesnapshotcontents"],
             "verbs": ["get", "list"]}], d(2025, 3, 1, 11, 2, 9),
              {"app.kubernetes.io/name": "aws-ebs-csi-driver", "app.kubernetes.io/managed-by": "EKS"}),
        crole("prometheus", [{"apiGroups": [""], "resources": ["nodes", "pods", "services", "endpoints"],
                              "verbs": ro_verbs},
                             {"nonResourceURLs": ["/metrics"], "verbs": ["get"]}], d(2025, 3, 2, 8, 6, 12),
              {"app.kubernetes.io/name": "prometheus"}),
        crole("system:coredns", [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
                                  "verbs": ["list", "watch"]},
                                 {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                                  "verbs": ["list", "watch"]}],
              CLUSTER_CREATED + timedelta(minutes=3), {"eks.amazonaws.com/component": "coredns",
                                                       "k8s-app": "kube-dns", "kubernetes.io/bootstrapping":
                                                           "rbac-defaults"}),
        crole("view", [{"apiGroups": [""], "resources": ["configmaps", "endpoints", "persistentvolumeclaims",
                                                         "pods", "pods/log", "pods/status", "replicationcontrollers",
                                                         "services", "serviceaccounts", "namespaces", "events"],
                        "verbs": ro_verbs},
                       {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "replicasets",
                                                             "statefulsets"], "verbs": ro_verbs},
                       {"apiGroups": ["batch"], "resources": ["cronjobs", "jobs"], "verbs": ro_verbs}],
              CLUSTER_CREATED, dict(boot, **{"rbac.authorization.k8s.io/aggregate-to-edit": "true"}), auto,
              {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}),
    ]
    items += croles

    crbs = [
        binding("ClusterRoleBinding", "argo-admin", None, "ClusterRole", "cluster-admin",
                [sa_subj("ci", "argo-admin")], d(2025, 5, 12, 16, 21, 3)),
        binding("ClusterRoleBinding", "aws-node", None, "ClusterRole", "aws-node",
                [sa_subj("kube-system", "aws-node")], CLUSTER_CREATED + timedelta(minutes=3)),
        binding("ClusterRoleBinding", "cluster-admin", None, "ClusterRole", "cluster-admin",
                [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}],
                CLUSTER_CREATED),
        binding("ClusterRoleBinding", "ebs-csi-provisioner-binding", None, "ClusterRole",
                "ebs-external-provisioner-role", [sa_subj("kube-system", "ebs-csi-controller-sa")],
                d(2025, 3, 1, 11, 2, 10)),
        binding("ClusterRoleBinding", "prometheus", None, "ClusterRole", "prometheus",
                [sa_subj("monitoring", "prometheus")], d(2025, 3, 2, 8, 6, 13)),
        binding("ClusterRoleBinding", "system:coredns", None, "ClusterRole", "system:coredns",
                [sa_subj("kube-system", "coredns")], CLUSTER_CREATED + timedelta(minutes=3)),
    ]
    crbs[2]["metadata"]["labels"] = dict(boot)
    crbs[2]["metadata"]["annotations"] = dict(auto)
    items += crbs

    # Deployments + pods
    deployments = []
    pods = []
    node_names = list(NODES)

    def deploy(ns, name, sa_name, image, replicas, created, revision, labels, pod_specs, port=8080,
               irsa=False, cname=None):
        rs_hash = pod_specs[0][0].rsplit("-", 2)[-2]
        rs_name = f"{name}-{rs_hash}"
        rs_uid = uid()
        sel = {"app": name} if "app" in labels else {k: v for k, v in labels.items() if k == "k8s-app"}
        container = {"name": cname or name, "image": image,
                     "imagePullPolicy": "IfNotPresent", "ports": [{"containerPort": port, "protocol": "TCP"}],
                     "resources": {"limits": {"memory": "512Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}}
        deployments.append({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": dict(meta(name, ns, created, labels,
                                  {"deployment.kubernetes.io/revision": str(revision)}), generation=revision + 3),
            "spec": {"progressDeadlineSeconds": 600, "replicas": replicas, "revisionHistoryLimit": 10,
                     "selector": {"matchLabels": sel},
                     "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                                  "type": "RollingUpdate"},
                     "template": {"metadata": {"labels": dict(sel, **{k: v for k, v in labels.items()
                                                                      if k not in sel})},
                                  "spec": {"containers": [container], "dnsPolicy": "ClusterFirst",
                                           "restartPolicy": "Always", "schedulerName": "default-scheduler",
                                           "securityContext": {}, "serviceAccount": sa_name,
                                           "serviceAccountName": sa_name, "terminationGracePeriodSeconds": 30}}},
            "status": {"availableReplicas": replicas, "observedGeneration": revision + 3,
                       "readyReplicas": replicas, "replicas": replicas, "updatedReplicas": replicas}})
        for pod_name, node, pod_ip, started in pod_specs:
            vols = [{"name": f"kube-api-access-{rand_str(5, 'abcdefghijklmnopqrstuvwxyz0123456789')}",
                     "projected": {"defaultMode": 420, "sources": [
                         {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                         {"configMap": {"items": [{"key": "ca.crt", "path": "ca.crt"}], "name": "kube-root-ca.crt"}},
                         {"downwardAPI": {"items": [{"fieldRef": {"apiVersion": "v1",
                                                                  "fieldPath": "metadata.namespace"},
                                                     "path": "namespace"}]}}]}}]
            mounts = [{"mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "name": vols[0]["name"],
                       "readOnly": True}]
            c = json.loads(json.dumps(container))
            if irsa:
                vols.insert(0, {"name": "aws-iam-token", "projected": {"defaultMode": 420, "sources": [
                    {"serviceAccountToken": {"audience": "sts.amazonaws.com", "expirationSeconds": 86400,
                                             "path": "token"}}]}})
                mounts.append({"mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount",
                               "name": "aws-iam-token", "readOnly": True})
                c["env"] = [{"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
                            {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
                            {"name": "AWS_REGION", "value": "us-east-1"},
                            {"name": "AWS_ROLE_ARN", "value": ROLES["irsa-orders-api"]["arn"]},
                            {"name": "AWS_WEB_IDENTITY_TOKEN_FILE",
                             "value": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"}]
            c["volumeMounts"] = mounts
            p = {"apiVersion": "v1", "kind": "Pod",
                 "metadata": meta(pod_name, ns, started, dict(sel, **{"pod-template-hash": rs_hash}), None,
                                  {"apiVersion": "apps/v1", "blockOwnerDeletion": True, "controller": True,
                                   "kind": "ReplicaSet", "name": rs_name, "uid": rs_uid}, rs_name + "-"),
                 "spec": {"containers": [c], "dnsPolicy": "ClusterFirst", "enableServiceLinks": True,
                          "nodeName": node, "preemptionPolicy": "PreemptLowerPriority", "priority": 0,
                          "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {},
                          "serviceAccount": sa_name, "serviceAccountName": sa_name,
                          "terminationGracePeriodSeconds": 30, "volumes": vols},
                 "status": {"hostIP": NODES[node]["ip"], "phase": "Running", "podIP": pod_ip,
                            "podIPs": [{"ip": pod_ip}], "qosClass": "Burstable", "startTime": k8s_s(started)}}
            PODS[f"{ns}/{pod_name}"] = p
            pods.append(p)

    pod_start = d(2026, 11, 2, 17, 40, 12)
    deploy("orders", "orders-api", "orders-api", f"{PROD}.dkr.ecr.us-east-1.amazonaws.com/orders-api:1.14.2", 2,
           d(2025, 3, 1, 10, 30, 0), 38, {"app": "orders-api", "team": "orders"},
           [(p["name"], p["node"], p["ip"], pod_start + timedelta(seconds=i * 7)) for i, p in enumerate(IRSA_PODS)],
           irsa=True)
    last_gh = max(K8S_LINKS["github"], key=lambda x: x["t"])
    pw_start = last_gh["t"] + timedelta(seconds=4)
    deploy("payments", "payments-worker", "payments-worker",
           f"{PROD}.dkr.ecr.us-east-1.amazonaws.com/payments-worker:{last_gh['tag']}", 2,
           d(2025, 3, 4, 14, 5, 0), 112, {"app": "payments-worker", "team": "payments"},
           [(PAYMENTS_WORKER_PODS[0], node_names[0], "10.0.1.201", pw_start),
            (PAYMENTS_WORKER_PODS[1], node_names[1], "10.0.2.19", pw_start + timedelta(seconds=21))],
           cname="worker")
    deploy("monitoring", "prometheus", "prometheus", "quay.io/prometheus/prometheus:v2.54.1", 1,
           d(2025, 3, 2, 8, 6, 20), 6, {"app": "prometheus", "app.kubernetes.io/name": "prometheus"},
           [("prometheus-6b8c9d7f5-q8w2e", node_names[1], "10.0.2.150", d(2026, 10, 28, 9, 12, 3))], port=9090)
    deploy("kube-system", "coredns", "coredns",
           "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/coredns:v1.11.3-eksbuild.2", 2,
           CLUSTER_CREATED + timedelta(minutes=3), 4, {"eks.amazonaws.com/component": "coredns",
                                                       "k8s-app": "kube-dns"},
           [("coredns-787cb67946-hx8zt", node_names[0], "10.0.1.10", d(2026, 10, 20, 3, 1, 45)),
            ("coredns-787cb67946-wq5lk", node_names[1], "10.0.2.11", d(2026, 10, 20, 3, 1, 45))], port=53)
    deploy("kube-system", "ebs-csi-controller", "ebs-csi-controller-sa",
           "602401143452.dkr.ecr.us-east-1.amazonaws.com/eks/aws-ebs-csi-driver:v1.36.0", 1,
           d(2025, 3, 1, 11, 2, 12), 9, {"app": "ebs-csi-controller",
                                         "app.kubernetes.io/name": "aws-ebs-csi-driver"},
           [("ebs-csi-controller-5b7f6d9c8-7nq4z", node_names[0], "10.0.1.77", d(2026, 10, 20, 3, 2, 30))],
           port=9808, cname="ebs-plugin")
    deploy("ci", "argo-server", "argo-admin", "quay.io/argoproj/argocli:v3.5.11", 1, d(2025, 5, 12, 16, 22, 0), 7,
           {"app": "argo-server", "app.kubernetes.io/part-of": "argo"},
           [("argo-server-6c9d8f7b4d-p2lxs", node_names[1], "10.0.2.98", d(2026, 10, 29, 12, 44, 10))], port=2746)
    pods.sort(key=lambda x: (x["metadata"]["namespace"], x["metadata"]["name"]))
    deployments.sort(key=lambda x: (x["metadata"]["namespace"], x["metadata"]["name"]))
    items += pods + deployments
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


PAYMENTS_WORKER_PODS = ["payments-worker-5c6d7f8b9-r7t2m", "payments-worker-5c6d7f8b9-z9v4n"]
OLD_PAYMENTS_POD = "payments-worker-6f4b8d7c2-m3k8d"

AUDIT = []


def audit(t, user, verb, uri, objref, code, ips, ua, level="Metadata", reason="", decision="allow",
          two_stage=True, dur_ms=None, extra_annotations=None, request_object=None, status_extra=None):
    aid = uid()
    base = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": aid}
    rr = t + timedelta(microseconds=R.randint(0, 999_999))
    done = rr + timedelta(microseconds=(dur_ms if dur_ms is not None else R.randint(2, 40)) * 1000
                          + R.randint(0, 999))

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
            rs = {"metadata": {}}
            if status_extra:
                rs.update(status_extra)
            rs["code"] = code
            x["responseStatus"] = rs
        if request_object is not None and level in ("Request", "RequestResponse"):
            x["requestObject"] = request_object
        x["requestReceivedTimestamp"] = k8s_us(rr)
        x["stageTimestamp"] = k8s_us(ts)
        if final:
            ann = {"authorization.k8s.io/decision": decision, "authorization.k8s.io/reason": reason}
            if extra_annotations:
                ann.update(extra_annotations)
            x["annotations"] = ann
        return x

    if two_stage:
        AUDIT.append((rr, 0, len(AUDIT), line("RequestReceived", rr, False)))
    AUDIT.append((done, 1, len(AUDIT), line("ResponseComplete", done, True)))


def sa_user(ns, name, pod=None, node=None, sa_uid=None, pod_uid=None, jti=None):
    u = {"username": f"system:serviceaccount:{ns}:{name}",
         "uid": sa_uid or SA[f"{ns}/{name}"]["metadata"]["uid"],
         "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]}
    if pod:
        u["extra"] = {"authentication.kubernetes.io/credential-id": [f"JTI={jti or uid()}"],
                      "authentication.kubernetes.io/node-name": [node],
                      "authentication.kubernetes.io/node-uid": [NODES[node]["uid"]] if node in NODES else [uid()],
                      "authentication.kubernetes.io/pod-name": [pod],
                      "authentication.kubernetes.io/pod-uid": [pod_uid]}
    return u


def iam_k8s_user(sess):
    arn = sess.arn
    return {"username": arn,
            "uid": f"aws-iam-authenticator:{PROD}:{sess.role['id']}",
            "groups": ["system:authenticated"],
            "extra": {"accessKeyId": [sess.key], "arn": [arn], "canonicalArn": [sess.role["arn"]],
                      "principalId": [sess.role["id"]], "sessionName": [sess.name],
                      "sigs.k8s.io/aws-iam-authenticator/principalId": [sess.role["id"]]}}


def eks_policy_reason(sess, policy):
    return (f"EKS Access Policy: allowed by ClusterRoleBinding \"{sess.role['arn']}+arn:aws:eks::aws:"
            f"cluster-access-policy/{policy}\" of ClusterRole \"arn:aws:eks::aws:cluster-access-policy/{policy}\" "
            f"to User \"aws-iam-authenticator:{PROD}:{sess.role['id']}\"")


def ref(resource, ns=None, name=None, api_version="v1", group=None, sub=None):
    x = {"resource": resource}
    if ns:
        x["namespace"] = ns
    if name:
        x["name"] = name
    if group:
        x["apiGroup"] = group
    x["apiVersion"] = api_version
    if sub:
        x["subresource"] = sub
    return x


KUBECTL_UA = "kubectl/v1.30.2 (linux/amd64) kubernetes/3968350"


def build_audit():
    # orders-api pods read their config map
    for day in DAYS:
        for pod in IRSA_PODS:
            p = PODS[f"orders/{pod['name']}"]
            jti = uid()
            for _ in range(4):
                t = rand_time(day, 0, 23.5)
                audit(t, sa_user("orders", "orders-api", pod["name"], pod["node"], pod_uid=p["metadata"]["uid"],
                                 jti=jti),
                      "get", "/api/v1/namespaces/orders/configmaps/orders-config",
                      ref("configmaps", "orders", "orders-config"), 200, [pod["ip"]],
                      "python-requests/2.32.3",
                      reason='RBAC: allowed by RoleBinding "config-reader-binding/orders" of Role "config-reader" '
                             'to ServiceAccount "orders-api/orders"')
    # prometheus lists pods/nodes/services/endpoints cluster-wide
    prom = PODS["monitoring/prometheus-6b8c9d7f5-q8w2e"]
    prom_ua = "prometheus/2.54.1"
    for day in DAYS:
        jti = uid()
        for h in (3, 15):
            t = rand_time(day, h, h + 1)
            for res in ("pods", "nodes", "services", "endpoints"):
                t = jit(t, 0, 1)
                audit(t, sa_user("monitoring", "prometheus", prom["metadata"]["name"], prom["spec"]["nodeName"],
                                 pod_uid=prom["metadata"]["uid"], jti=jti),
                      "list", f"/api/v1/{res}?limit=500&resourceVersion=0", ref(res), 200,
                      [prom["status"]["podIP"]], prom_ua,
                      reason='RBAC: allowed by ClusterRoleBinding "prometheus" of ClusterRole "prometheus" to '
                             'ServiceAccount "prometheus/monitoring"', dur_ms=R.randint(8, 90))
    # Jenkins (legacy long-lived SA token, used from outside the cluster) scales payments-worker nightly
    for day in DAYS:
        t = at(day, 1, R.randint(5, 20), R.randint(0, 59))
        u = sa_user("ci", "jenkins-deploy-sa")
        legacy = {"authentication.k8s.io/legacy-token": "system:serviceaccount:ci:jenkins-deploy-sa"}
        reason = ('RBAC: allowed by RoleBinding "deployer-binding/payments" of Role "deployer" to '
                  'ServiceAccount "jenkins-deploy-sa/ci"')
        audit(t, u, "get", "/apis/apps/v1/namespaces/payments/deployments/payments-worker",
              ref("deployments", "payments", "payments-worker", "v1", "apps"), 200, [JENKINS_IP],
              "kubectl/v1.28.4 (linux/amd64) kubernetes/bae2c62", reason=reason, extra_annotations=legacy)
        audit(jit(t, 1, 2), u, "patch", "/apis/apps/v1/namespaces/payments/deployments/payments-worker",
              ref("deployments", "payments", "payments-worker", "v1", "apps"), 200, [JENKINS_IP],
              "kubectl/v1.28.4 (linux/amd64) kubernetes/bae2c62", level="Request", reason=reason,
              extra_annotations=legacy, request_object={"spec": {"replicas": 2}})
    # GitHub Actions (IAM role mapped via EKS access entry) rolls out new images
    for link in K8S_LINKS["github"]:
        sess, t, ip = link["session"], link["t"], link["ip"]
        u = iam_k8s_user(sess)
        reason = eks_policy_reason(sess, "AmazonEKSEditPolicy")
        ua = "kubectl/v1.31.1 (linux/amd64) kubernetes/948afe5"
        audit(t, u, "get", "/apis/apps/v1/namespaces/payments/deployments/payments-worker",
              ref("deployments", "payments", "payments-worker", "v1", "apps"), 200, [ip], ua, reason=reason)
        audit(jit(t, 1, 2), u, "patch", "/apis/apps/v1/namespaces/payments/deployments/payments-worker",
              ref("deployments", "payments", "payments-worker", "v1", "apps"), 200, [ip], ua, level="Request",
              reason=reason,
              request_object={"spec": {"template": {"spec": {"containers": [
                  {"name": "worker",
                   "image": f"{PROD}.dkr.ecr.us-east-1.amazonaws.com/payments-worker:{link['tag']}"}]}}}})
    # kube-controller-manager / eks internal users / kubelets
    for day in DAYS:
        for _ in range(2):
            t = rand_time(day, 0, 23.5)
            audit(t, {"username": "system:kube-controller-manager", "groups": ["system:authenticated"]}, "update",
                  "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager?timeout=5s",
                  ref("leases", "kube-system", "kube-controller-manager", "v1", "coordination.k8s.io"), 200,
                  ["10.0.128.14"], "kube-controller-manager/v1.30.6 (linux/amd64) kubernetes/7f9249a/leader-election",
                  reason='RBAC: allowed by ClusterRoleBinding "system:kube-controller-manager" of ClusterRole '
                         '"system:kube-controller-manager" to User "system:kube-controller-manager"',
                  two_stage=False)
        for nn, node in NODES.items():
            t = rand_time(day, 0, 23.5)
            audit(t, {"username": f"system:node:{nn}", "groups": ["system:nodes", "system:authenticated"]},
                  "patch", f"/api/v1/nodes/{nn}/status?timeout=10s", ref("nodes", None, nn, sub="status"), 200,
                  [node["ip"]], "kubelet/v1.30.6 (linux/amd64) kubernetes/7f9249a", level="Request",
                  two_stage=False, request_object={"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        t = rand_time(day, 0, 23.5)
        audit(t, {"username": "eks:k8s-metrics", "groups": ["system:authenticated"]}, "list",
              "/api/v1/nodes?limit=500", ref("nodes"), 200, ["10.0.128.31"], "eks-k8s-metrics/v0.0.0",
              reason='RBAC: allowed by ClusterRoleBinding "eks:k8s-metrics" of ClusterRole "eks:k8s-metrics" to '
                     'User "eks:k8s-metrics"', two_stage=False)
        t = rand_time(day, 0, 23.5)
        audit(t, {"username": "eks:addon-manager", "groups": ["system:authenticated"]}, "get",
              "/apis/apps/v1/namespaces/kube-system/daemonsets/aws-node",
              ref("daemonsets", "kube-system", "aws-node", "v1", "apps"), 200, ["10.0.128.31"],
              "eks-addon-manager/v0.0.0",
              reason='RBAC: allowed by ClusterRoleBinding "eks:addon-manager" of ClusterRole "eks:addon-manager" '
                     'to User "eks:addon-manager"', two_stage=False)
    # kubelet requests a projected token for orders-api (serviceaccounts/token subresource)
    pod = PODS["orders/" + IRSA_PODS[0]["name"]]
    t = at(DAYS[2], 6, 41, 7)
    audit(t, {"username": "system:node:ip-10-0-1-23.ec2.internal", "groups": ["system:nodes",
                                                                              "system:authenticated"]},
          "create", "/api/v1/namespaces/orders/serviceaccounts/orders-api/token",
          ref("serviceaccounts", "orders", "orders-api", sub="token"), 201, ["10.0.1.23"],
          "kubelet/v1.30.6 (linux/amd64) kubernetes/7f9249a", level="Request",
          request_object={"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
                          "spec": {"audiences": ["sts.amazonaws.com"], "expirationSeconds": 86400,
                                   "boundObjectRef": {"kind": "Pod", "apiVersion": "v1",
                                                      "name": pod["metadata"]["name"],
                                                      "uid": pod["metadata"]["uid"]}}})
    # SHADOW service account payments/debug-sa (not in the snapshot)
    debug_uid, debug_pod, debug_pod_uid = uid(), "netshoot-debug", uid()
    du = sa_user("payments", "debug-sa", debug_pod, "ip-10-0-2-87.ec2.internal", sa_uid=debug_uid,
                 pod_uid=debug_pod_uid)
    dreason = ('RBAC: allowed by RoleBinding "debug-sa-admin/payments" of ClusterRole "cluster-admin" to '
               'ServiceAccount "debug-sa/payments"')
    t = at(DAYS[3], 22, 14, 9)
    for verb, uri, r_ in (
            ("list", "/api/v1/namespaces/payments/secrets?limit=500", ref("secrets", "payments")),
            ("get", "/api/v1/namespaces/payments/secrets/payments-db-credentials",
             ref("secrets", "payments", "payments-db-credentials")),
            ("get", "/api/v1/namespaces/payments/secrets/stripe-api-key", ref("secrets", "payments",
                                                                              "stripe-api-key"))):
        t = jit(t, 3, 20)
        audit(t, du, verb, uri, r_, 200, ["10.0.2.201"], KUBECTL_UA, reason=dreason)
    t = jit(t, 30, 60)
    audit(t, du, "create", "/api/v1/namespaces/payments/pods?fieldManager=kubectl-run",
          ref("pods", "payments", "debug-runner"), 201, ["10.0.2.201"], KUBECTL_UA, level="Request",
          reason=dreason, request_object={"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "debug-runner"},
                                          "spec": {"containers": [{"name": "debug-runner",
                                                                   "image": "nicolaka/netshoot:v0.13"}],
                                                   "serviceAccountName": "payments-worker"}})
    t = jit(t, 40, 90)
    audit(t, du, "create",
          f"/api/v1/namespaces/payments/pods/{OLD_PAYMENTS_POD}/exec?command=sh&container=worker&stdin=true"
          "&stdout=true&tty=true",
          ref("pods", "payments", OLD_PAYMENTS_POD, sub="exec"), 101, ["10.0.2.201"], KUBECTL_UA, reason=dreason,
          dur_ms=R.randint(60_000, 240_000))
    # anonymous probing from the internet
    t = at(DAYS[4], 4, 51, 33)
    anon = {"username": "system:anonymous", "groups": ["system:unauthenticated"]}
    audit(t, anon, "get", "/version", None, 200, [ANON_K8S_IP], "python-requests/2.31.0",
          reason='RBAC: allowed by ClusterRoleBinding "system:public-info-viewer" of ClusterRole '
                 '"system:public-info-viewer" to Group "system:unauthenticated"', two_stage=False)
    for res, ns in (("secrets", "kube-system"), ("pods", None)):
        t = jit(t, 1, 3)
        uri = f"/api/v1/namespaces/{ns}/{res}" if ns else f"/api/v1/{res}"
        where = f' in the namespace "{ns}"' if ns else " at the cluster scope"
        audit(t, anon, "list", uri, ref(res, ns), 403, [ANON_K8S_IP], "python-requests/2.31.0", decision="forbid",
              status_extra={"status": "Failure",
                            "message": f'{res} is forbidden: User "system:anonymous" cannot list resource "{res}" '
                                       f'in API group ""{where}',
                            "reason": "Forbidden", "details": {"kind": res}})
    # alice (via Okta -> okta-admin -> EKS access entry) deletes the leftover payments/legacy-tmp-sa
    link = K8S_LINKS["okta"][1]
    sess = link["session"]
    audit(link["t"], iam_k8s_user(sess), "delete", "/api/v1/namespaces/payments/serviceaccounts/legacy-tmp-sa",
          ref("serviceaccounts", "payments", "legacy-tmp-sa"), 200, [link["ip"]], KUBECTL_UA, level="Request",
          reason=eks_policy_reason(sess, "AmazonEKSClusterAdminPolicy"),
          request_object={"kind": "DeleteOptions", "apiVersion": "meta.k8s.io/__internal",
                          "propagationPolicy": "Background"})
    AUDIT.sort(key=lambda x: x[:3])
    path = os.path.join(OUT, "k8s", "prod-eks", "audit.jsonl")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for _, _, _, line in AUDIT:
            f.write(json.dumps(line, separators=(",", ":")))
            f.write("\n")
    return len(AUDIT)


# ---------------------------------------------------------------------------
# Outside the platforms: Lambda functions, the Terraform that manages the application roles,
# its CODEOWNERS, and the people directory. Built from the IAM snapshot and constants only
# (never from R, and after everything else), so adding them changed no byte of the other files.
# ---------------------------------------------------------------------------
def write_lambda_functions():
    role = ROLES["lambda-orders-processor"]["arn"]

    def code_sha(tag):
        return base64.b64encode(hashlib.sha256(tag.encode()).digest()).decode()

    def revision(tag):
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://acme.example/lambda/{tag}"))

    def fn(name, desc, handler, size, timeout, memory, modified, env, log_format):
        f = {"FunctionName": name, "FunctionArn": f"arn:aws:lambda:{US}:{PROD}:function:{name}",
             "Runtime": "python3.12", "Role": role, "Handler": handler, "CodeSize": size, "Description": desc,
             "Timeout": timeout, "MemorySize": memory, "LastModified": modified,
             "CodeSha256": code_sha(f"{name}@{modified}"), "Version": "$LATEST",
             "VpcConfig": {"SubnetIds": ["subnet-0c7d8e9f0a1b2c3d4", "subnet-0d8e9f0a1b2c3d4e5"],
                           "SecurityGroupIds": ["sg-0e4f5a6b7c8d9e0f1"], "VpcId": "vpc-0a7b8c9d0e1f2a3b4",
                           "Ipv6AllowedForDualStack": False},
             "Environment": {"Variables": env},
             "TracingConfig": {"Mode": "PassThrough"}, "RevisionId": revision(f"{name}@{modified}"),
             "PackageType": "Zip", "Architectures": ["x86_64"], "EphemeralStorage": {"Size": 512},
             "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
             "LoggingConfig": {"LogFormat": log_format, "LogGroup": f"/aws/lambda/{name}"}}
        return f

    functions = [
        # Runs all week (AssumeRole by lambda.amazonaws.com, session `orders-processor`), in the VPC: its
        # Secrets Manager calls go through the VPC endpoint.
        fn("orders-processor", "Processes order events from the orders-events queue", "app.handler", 48213, 60,
           512, "2026-10-28T16:42:17.000+0000",
           {"SECRET_ID": "prod/orders/db", "EVENTS_QUEUE": "orders-events", "LOG_LEVEL": "INFO"}, "Text"),
        # Shares the role and did not run during the week (its sessions would be named `orders-dlq-replay`).
        fn("orders-dlq-replay", "Manual replay of the orders dead-letter queue", "replay.handler", 9120, 900, 256,
           "2025-07-02T09:13:55.000+0000", {"SECRET_ID": "prod/orders/db", "DRY_RUN": "true"}, "JSON"),
    ]
    write_json(os.path.join(OUT, "aws", PROD, "lambda-functions.json"), {"Functions": functions})
    return len(functions)


class Ref(str):
    """An HCL expression written verbatim (a reference such as `aws_iam_role.x.arn`)."""


class JsonEncode(dict):
    """`jsonencode({…})` of a literal object."""


def hcl_key(k):
    return k if k.replace("_", "a").isalnum() and not k[0].isdigit() else json.dumps(k)


def hcl(v, indent=0):
    pad = "  " * indent
    if isinstance(v, Ref):
        return str(v)
    if isinstance(v, JsonEncode):
        return "jsonencode(" + hcl(dict(v), indent) + ")"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        assert "${" not in v and "%{" not in v, v
        return json.dumps(v)
    if isinstance(v, list):
        inline = "[" + ", ".join(hcl(x, indent + 1) for x in v) + "]"
        if all(not isinstance(x, (dict, list)) for x in v) and len(pad) + len(inline) < 90:
            return inline
        return "[\n" + "".join(f"{pad}  {hcl(x, indent + 1)},\n" for x in v) + pad + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        width = max(len(hcl_key(k)) for k in v)
        return "{\n" + "".join(f"{pad}  {hcl_key(k).ljust(width)} = {hcl(x, indent + 1)}\n"
                               for k, x in v.items()) + pad + "}"
    raise TypeError(v)


def tf_block(head, attrs, indent=0):
    """`head { attrs }`; an attribute whose value is a tuple ("block", dict) is a nested block."""
    pad = "  " * indent
    out = [f"{pad}{head} {{"]
    plain = [k for k, v in attrs.items() if not isinstance(v, tuple)]
    width = max((len(k) for k in plain), default=0)
    for k, v in attrs.items():
        if isinstance(v, tuple):
            out.append(tf_block(k, v[1], indent + 1))
        else:
            out.append(f"{pad}  {k.ljust(width)} = {hcl(v, indent + 1)}")
    out.append(pad + "}")
    return "\n".join(out)


def tf_name(name):
    return name.replace("-", "_").lower()


TF_HEADER = """\
# The prod account's application roles (111122223333), applied by terraform-runner.
# Generated by examples/generate_estate.py from the same model as the IAM snapshot.

terraform {
  required_version = ">= 1.9"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.33"
    }
  }
}

provider "aws" {
  region              = "us-east-1"
  allowed_account_ids = ["111122223333"]
}"""


def write_terraform(authz):
    """terraform/iam.tf: the application roles terraform-runner plans every weekday (GetRole and
    ListAttachedRolePolicies on exactly these four) plus reports-exporter, which its apply created on 11-11,
    with their policies, attachments and instance profile, and the IRSA service account; all taken from the
    IAM snapshot so code and account agree. terraform/CODEOWNERS names who reviews it."""
    managed_roles = ["ec2-web-app", "github-actions-deploy", "irsa-orders-api", "lambda-orders-processor",
                     "reports-exporter"]
    descriptions = {"reports-exporter": "ECS task role for the nightly reports exporter"}
    roles = {r["RoleName"]: r for r in authz["RoleDetailList"]}
    policies = {p["Arn"]: p for p in authz["Policies"]}
    lp = local_policies()
    blocks = [TF_HEADER]
    local = []
    for name in managed_roles:
        r = roles[name]
        rn = tf_name(name)
        attrs = {"name": name}
        if r["Path"] != "/":
            attrs["path"] = r["Path"]
        if name in descriptions:
            attrs["description"] = descriptions[name]
        attrs["assume_role_policy"] = JsonEncode(r["AssumeRolePolicyDocument"])
        if r["Tags"]:
            attrs["tags"] = {t["Key"]: t["Value"] for t in r["Tags"]}
        blocks.append(tf_block(f'resource "aws_iam_role" "{rn}"', attrs))
        for p in r["RolePolicyList"]:
            blocks.append(tf_block(f'resource "aws_iam_role_policy" "{rn}_{tf_name(p["PolicyName"])}"', {
                "name": p["PolicyName"], "role": Ref(f"aws_iam_role.{rn}.id"),
                "policy": JsonEncode(p["PolicyDocument"])}))
        for a in r["AttachedManagedPolicies"]:
            arn = a["PolicyArn"]
            if arn.startswith("arn:aws:iam::aws:"):
                target = arn
            else:
                target = Ref(f"aws_iam_policy.{tf_name(a['PolicyName'])}.arn")
                if arn not in local:
                    local.append(arn)
            blocks.append(tf_block(
                f'resource "aws_iam_role_policy_attachment" "{rn}_{tf_name(a["PolicyName"])}"',
                {"role": Ref(f"aws_iam_role.{rn}.name"), "policy_arn": target}))
        for ip in r["InstanceProfileList"]:
            blocks.append(tf_block(f'resource "aws_iam_instance_profile" "{tf_name(ip["InstanceProfileName"])}"',
                                   {"name": ip["InstanceProfileName"], "role": Ref(f"aws_iam_role.{rn}.name")}))
    for arn in local:
        p = policies[arn]
        default = next(v for v in p["PolicyVersionList"] if v["IsDefaultVersion"])
        attrs = {"name": p["PolicyName"]}
        if lp[p["PolicyName"]]["desc"]:
            attrs["description"] = lp[p["PolicyName"]]["desc"]
        attrs["policy"] = JsonEncode(default["Document"])
        blocks.append(tf_block(f'resource "aws_iam_policy" "{tf_name(p["PolicyName"])}"', attrs))
    blocks.append(tf_block('resource "kubernetes_service_account_v1" "orders_api"', {"metadata": ("block", {
        "name": "orders-api", "namespace": "orders", "labels": {"app": "orders-api", "team": "orders"},
        "annotations": {"eks.amazonaws.com/role-arn": Ref("aws_iam_role.irsa_orders_api.arn")}})}))
    path = os.path.join(OUT, "terraform", "iam.tf")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n\n".join(blocks) + "\n")
    with open(os.path.join(OUT, "terraform", "CODEOWNERS"), "w", encoding="utf-8", newline="\n") as f:
        f.write(CODEOWNERS)
    return len(blocks) - 1


# Who reviews the Terraform (GitHub semantics: the last matching rule wins). bob@ has left (people.csv) but
# still owns iam.tf, as he still owns svc-ci-legacy, svc-backup, cross-account-deployer (tags) and
# ci/jenkins-deploy-sa (annotation).
CODEOWNERS = """\
# Code owners for the prod account's Terraform. The last matching rule wins.
*           @acme/platform
*.tf        @acme/platform alice@acme.example
/iam.tf     @acme/platform @acme/security bob@acme.example
"""

# The people directory: an HR export reduced to these columns; everyone the estate names by e-mail.
PEOPLE = [
    ("email", "name", "team", "status", "manager", "start_date"),
    ("alice@acme.example", "Alice Moreau", "platform", "active", "", "2023-02-06"),
    ("bob@acme.example", "Bob Lindqvist", "platform", "departed", "alice@acme.example", "2021-08-02"),
    ("carol@acme.example", "Carol Nguyen", "orders", "active", "", "2022-04-19"),
    ("dave@acme.example", "Dave Okafor", "payments", "active", "carol@acme.example", "2024-01-08"),
    ("erin@acme.example", "Erin Walsh", "security", "active", "", "2020-10-12"),
]


def write_people():
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerows(PEOPLE)
    with open(os.path.join(OUT, "people.csv"), "w", encoding="utf-8", newline="") as f:
        f.write(buf.getvalue())
    return len(PEOPLE) - 1


# ---------------------------------------------------------------------------
def verify():
    n_gz = 0
    for root, _, files in os.walk(OUT):
        for fn in files:
            p = os.path.join(root, fn)
            if fn.endswith(".json.gz"):
                with gzip.open(p, "rb") as f:
                    recs = json.loads(f.read())["Records"]
                times = [r["eventTime"] for r in recs]
                assert times == sorted(times), p
                n_gz += 1
            elif fn.endswith(".json"):
                with open(p, encoding="utf-8") as f:
                    json.load(f)
            elif fn.endswith(".jsonl"):
                with open(p, encoding="utf-8") as f:
                    for line in f:
                        json.loads(line)
    # key-id decoding round trips
    for k in list(KEYS.values()):
        assert account_from_key(k["id"]) == PROD
    assert account_from_key(TEMP_KEY) == PROD
    assert account_from_key(TOOLING_DEPLOY_ROLE_ID) == TOOLING
    assert account_from_key(UNKNOWN_VENDOR_ROLE_ID) == UNKNOWN
    for acct in (PROD, TOOLING, UNKNOWN, "000000000001", "999999999999"):
        for _ in range(50):
            assert account_from_key(make_key("AKIA", acct)) == acct
    return n_gz


def main():
    gen_all_aws()
    ct_counts, n_files = write_cloudtrail()
    n_lookup, n_dup = write_lookup_events()
    authz = build_authz()
    # The AI agent's roles join the snapshot; the Terraform (built from `authz`) does not manage them.
    agent_roles, agent_records, agent_traces, agent_file = agent_estate.build(sys.modules[__name__])
    snapshot = dict(authz, RoleDetailList=authz["RoleDetailList"] + agent_roles)
    write_json(os.path.join(OUT, "aws", PROD, "iam-authorization-details.json"), snapshot)
    n_cr = write_credential_report()
    snap = build_k8s_snapshot()
    write_json(os.path.join(OUT, "k8s", "prod-eks", "rbac-snapshot.json"), snap, sort_keys=True)
    n_audit = build_audit()
    n_fn = write_lambda_functions()
    n_tf = write_terraform(authz)
    n_people = write_people()
    n_agent_ct, n_spans = agent_estate.write(sys.modules[__name__], agent_records, agent_traces, agent_file)
    mcp_records, mcp_lines, mcp_file = agent_estate.build_mcp(sys.modules[__name__])
    n_mcp_ct, n_mcp_lines = agent_estate.write_mcp(sys.modules[__name__], mcp_records, mcp_lines, mcp_file)
    n_gz = verify()
    assert n_gz == n_files + 2
    kinds = {}
    for it in snap["items"]:
        kinds[it["kind"]] = kinds.get(it["kind"], 0) + 1
    print(f"cloudtrail: {sum(ct_counts.values())} records in {n_files} files {ct_counts}; "
          f"kms events kept out of the trail: {sum(1 for e in EVENTS if not e['trail'])}")
    print(f"lookup-events: {n_lookup} events ({n_dup} duplicate S3 records, {n_lookup - n_dup} not in trail)")
    print(f"credential report rows: {n_cr}; k8s snapshot items: {kinds}; audit lines: {n_audit}")
    print(f"lambda functions: {n_fn}; terraform resources: {n_tf}; people: {n_people}")
    print(f"ai agent: {n_agent_ct} cloudtrail records in 1 file, {n_spans} spans")
    print(f"claude desktop: {n_mcp_ct} cloudtrail records in 1 file, {n_mcp_lines} MCP log lines")


if __name__ == "__main__":
    main()
