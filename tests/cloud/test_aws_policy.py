"""The S3 session policy: exactly the statements of the checklist, escaped, compact, and never empty."""

from __future__ import annotations

import json

import pytest

from lakegate.cloud.aws import policy
from lakegate.cloud.locations import Location

# The whole session policy for s3://bucket/tables/t1 (also what the vendor must send to STS).
T1_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": ["arn:aws:s3:::bucket/tables/t1/*", "arn:aws:s3:::bucket/tables/t1"],
        },
        {
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": ["arn:aws:s3:::bucket"],
            "Condition": {"StringLike": {"s3:prefix": ["tables/t1", "tables/t1/", "tables/t1/*"]}},
        },
        {"Effect": "Allow", "Action": ["s3:GetBucketLocation"], "Resource": ["arn:aws:s3:::bucket"]},
    ],
}


def test_read_policy_for_a_table_directory() -> None:
    assert policy.read_policy([Location.parse("s3://bucket/tables/t1")]) == T1_POLICY


def test_no_write_or_wildcard_action_is_ever_granted() -> None:
    doc = policy.read_policy(
        [Location.parse("s3://b/p"), Location.parse("s3://c/q")], ["arn:aws:kms:r:1:key/k"]
    )
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    assert actions == {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "kms:Decrypt",
    }
    assert all(s["Effect"] == "Allow" for s in doc["Statement"])


def test_one_statement_set_per_location() -> None:
    doc = policy.read_policy([Location.parse("s3://b1/x"), Location.parse("s3a://b2/y/")])
    assert len(doc["Statement"]) == 6
    assert doc["Statement"][3]["Resource"] == ["arn:aws:s3:::b2/y/*", "arn:aws:s3:::b2/y"]


def test_bucket_root_lists_only_that_bucket() -> None:
    doc = policy.read_policy([Location.parse("s3://whole")])
    assert doc["Statement"][0]["Resource"] == ["arn:aws:s3:::whole/*"]
    assert doc["Statement"][1] == {
        "Effect": "Allow",
        "Action": ["s3:ListBucket"],
        "Resource": ["arn:aws:s3:::whole"],
    }


def test_nothing_granted_means_deny_all() -> None:
    assert policy.read_policy([]) == {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    }


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain/path", "plain/path"),
        ("a*b", "a${*}b"),
        ("what?", "what${?}"),
        ("cost$", "cost${$}"),
        ("${aws:username}", "${$}{aws:username}"),
        ("**??$$", "${*}${*}${?}${?}${$}${$}"),
        ("ünïcode €", "ünïcode €"),
    ],
)
def test_iam_escape(raw: str, escaped: str) -> None:
    assert policy.iam_escape(raw) == escaped


def test_wildcards_in_paths_are_escaped_everywhere() -> None:
    # Built directly: in a URL, "?" would start a query string.
    doc = policy.read_policy([Location("s3", "b", "we*rd?/$x")], ["arn:aws:kms:r:1:key/k"])
    text = json.dumps(doc)
    assert "we${*}rd${?}/${$}x" in text
    for statement in doc["Statement"]:
        for resource in statement["Resource"]:
            # The only unescaped wildcard left is the trailing "/*" that means "objects below".
            bare = resource.replace("${*}", "").replace("${?}", "")
            assert "?" not in bare and "*" not in bare.removesuffix("/*")
    assert doc["Statement"][1]["Condition"]["StringLike"]["s3:prefix"] == [
        "we${*}rd${?}/${$}x",
        "we${*}rd${?}/${$}x/",
        "we${*}rd${?}/${$}x/*",
    ]


def test_quotes_and_braces_cannot_inject_statements() -> None:
    crafted = 't1"},{"Effect":"Allow","Action":"*","Resource":"*"},{"x":"'
    doc = json.loads(policy.to_json(policy.read_policy([Location.parse("s3://b/" + crafted)])))
    assert len(doc["Statement"]) == 3
    assert all(s["Effect"] == "Allow" and s["Action"] != "*" for s in doc["Statement"])
    assert doc["Statement"][0]["Resource"][1] == "arn:aws:s3:::b/" + policy.iam_escape(crafted)


def test_kms_decrypt_is_scoped_to_s3_and_these_objects() -> None:
    doc = policy.read_policy([Location.parse("s3://b/t")], ["arn:aws:kms:us-east-1:111:key/abc"])
    assert doc["Statement"][3] == {
        "Effect": "Allow",
        "Action": ["kms:Decrypt"],
        "Resource": ["arn:aws:kms:us-east-1:111:key/abc"],
        "Condition": {
            "StringLike": {
                "kms:ViaService": "s3.*.amazonaws.com",
                "kms:EncryptionContext:aws:s3:arn": [
                    "arn:aws:s3:::b",
                    "arn:aws:s3:::b/t/*",
                    "arn:aws:s3:::b/t",
                ],
            }
        },
    }


def test_partition_follows_the_role() -> None:
    assert policy.partition_of("arn:aws-cn:iam::123:role/r") == "aws-cn"
    assert policy.partition_of("arn:aws:iam:::role/r") == "aws"
    assert policy.partition_of(None) == "aws"
    doc = policy.read_policy([Location.parse("s3://b/t")], partition="aws-us-gov")
    assert doc["Statement"][0]["Resource"][0] == "arn:aws-us-gov:s3:::b/t/*"


def test_serialized_compact_and_within_the_sts_limit() -> None:
    text = policy.to_json(policy.read_policy([Location.parse("s3://bucket/tables/t1")]))
    assert " " not in text and "\n" not in text
    assert len(text) < policy.MAX_PLAINTEXT
    assert json.loads(text)["Statement"][0]["Action"] == ["s3:GetObject", "s3:GetObjectVersion"]


def test_non_s3_location_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"^not an S3 location: gs://b/t$"):
        policy.read_policy([Location.parse("gs://b/t")])
