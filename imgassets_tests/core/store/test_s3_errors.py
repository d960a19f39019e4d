"""S3 errors a user meets, against the moto server with IAM authentication switched on: each
names the endpoint and bucket, and none shows the secret key."""

from __future__ import annotations

import json

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication

from imgassets.core.store.s3 import (
    S3AccessDeniedError,
    S3BucketError,
    S3ConnectionError,
    S3CredentialsError,
    S3ObjectStore,
)
from imgassets_tests.conftest import S3_ACCESS_KEY, S3_SECRET_KEY, free_port

READ_ONLY = {"Version": "2012-10-17", "Statement": [
    # moto names the HEAD-bucket action s3:HeadBucket (AWS and MinIO check s3:ListBucket)
    {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:HeadBucket", "s3:GetBucketLocation"],
     "Resource": "*"}]}


@pytest.fixture(scope="module")
def reader_keys(s3_endpoint) -> tuple[str, str]:
    """Access keys of an IAM user that may only read."""
    iam = boto3.client("iam", endpoint_url=f"http://{s3_endpoint}", region_name="us-east-1",
                       aws_access_key_id=S3_ACCESS_KEY, aws_secret_access_key=S3_SECRET_KEY)
    iam.create_user(UserName="reader")
    policy = iam.create_policy(PolicyName="read-only", PolicyDocument=json.dumps(READ_ONLY))
    iam.attach_user_policy(UserName="reader", PolicyArn=policy["Policy"]["Arn"])
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _assert_clear(error: Exception, endpoint: str, bucket: str, secret: str) -> None:
    message = str(error)
    assert endpoint in message and bucket in message
    assert secret not in message and secret not in repr(error)


def test_unreachable_endpoint():
    endpoint = f"127.0.0.1:{free_port()}"
    with pytest.raises(S3ConnectionError, match="endpoint unreachable") as err:
        S3ObjectStore(endpoint, "key", S3_SECRET_KEY, "bucket-x", retries=0)
    _assert_clear(err.value, endpoint, "bucket-x", S3_SECRET_KEY)


def test_bad_credentials(s3_endpoint, reader_keys):
    S3ObjectStore(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, "creds-bucket")
    with enable_iam_authentication(), pytest.raises(S3CredentialsError, match="bad credentials") as err:
        S3ObjectStore(s3_endpoint, "AKIAWRONGWRONGWRONG1", S3_SECRET_KEY, "creds-bucket")
    _assert_clear(err.value, s3_endpoint, "creds-bucket", S3_SECRET_KEY)


def test_access_denied_on_write(s3_endpoint, reader_keys):
    S3ObjectStore(s3_endpoint, S3_ACCESS_KEY, S3_SECRET_KEY, "denied-bucket")
    with enable_iam_authentication():
        store = S3ObjectStore(s3_endpoint, *reader_keys, "denied-bucket")
        with pytest.raises(S3AccessDeniedError, match="cannot put objects/x: access denied") as err:
            store.put_bytes("objects/x", b"data")
    _assert_clear(err.value, s3_endpoint, "denied-bucket", reader_keys[1])


def test_missing_bucket_without_permission_to_create(s3_endpoint, reader_keys):
    with enable_iam_authentication(), pytest.raises(S3BucketError, match="does not exist and these credentials may not create it") as err:
        S3ObjectStore(s3_endpoint, *reader_keys, "never-created")
    _assert_clear(err.value, s3_endpoint, "never-created", reader_keys[1])


def test_repr_and_describe_hide_the_secret(s3_store):
    assert S3_SECRET_KEY not in repr(s3_store) and S3_SECRET_KEY not in s3_store.describe()
    assert s3_store.describe().startswith("S3 bucket t-")
