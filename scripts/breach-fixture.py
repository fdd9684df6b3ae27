#!/usr/bin/env python3
"""Creates N IAM users on an AWS endpoint (moto), each with one access key written to a
Secrets Manager secret of its own (JSON), under a fresh IAM path: the estate a breach
rotation benchmark rotates. Prints the path prefix. Needs boto3 (moto's venv has it) and
AWS_ENDPOINT_URL; never run it against a real account."""
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
endpoint = os.environ["AWS_ENDPOINT_URL"]
tag = f"bench{int(time.time())}"
prefix = f"/{tag}/"
iam = boto3.client("iam", endpoint_url=endpoint)
sm = boto3.client("secretsmanager", endpoint_url=endpoint)


def one(i):
    user = f"{tag}-u{i:04d}"
    iam.create_user(UserName=user, Path=prefix)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    sm.create_secret(
        Name=f"{tag}/u{i:04d}",
        SecretString=json.dumps(
            {
                "aws_access_key_id": key["AccessKeyId"],
                "aws_secret_access_key": key["SecretAccessKey"],
            }
        ),
    )


with ThreadPoolExecutor(8) as pool:
    list(pool.map(one, range(n)))
print(prefix)
