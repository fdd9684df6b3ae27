"""Formats and small helpers both estate generators share: time as each platform writes it,
ids, and IAM policy documents.

`R` is the generator's random source; each generator sets it (`estate_formats.R = R`) to
its own seeded `random.Random` before calling anything, so its output stays deterministic
and byte-identical across runs.
"""
import base64
import random
import uuid
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
R = random.Random(0)

B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def account_from_key(key_id):
    """Decode the account id embedded in an AWS key / unique id (AKIA, ASIA, AROA ...)."""
    raw = base64.b32decode(key_id[4:20])
    z = int.from_bytes(raw[:6], "big")
    return str((z & 0x7FFFFFFFFF80) >> 7).zfill(12)


def uid():
    return str(uuid.UUID(int=R.getrandbits(128), version=4))


def rand_str(n, alphabet=ALNUM):
    return "".join(R.choice(alphabet) for _ in range(n))


def ct(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def cli(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def ampm(dt):
    h = dt.hour % 12 or 12
    return f"{h}:{dt:%M:%S} {'AM' if dt.hour < 12 else 'PM'}"


def sts_exp(dt):  # STS credentials.expiration as CloudTrail renders it
    return f"{dt:%b} {dt.day}, {dt.year}, {ampm(dt)}"


def k8s_us(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def k8s_s(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def jit(t, lo, hi):
    return t + timedelta(seconds=R.randint(lo, hi))


def d(y, mo, dd, h=10, mi=0, s=0):
    return datetime(y, mo, dd, h, mi, s, tzinfo=UTC)


def doc(*stmts):
    return {"Version": "2012-10-17", "Statement": list(stmts)}


def allow(action, resource="*", **extra):
    s = {"Effect": "Allow", "Action": action, "Resource": resource}
    s.update(extra)
    return s
