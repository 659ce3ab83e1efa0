"""Uploads a release folder (scripts/release.sh) to s3://bucket/prefix/.

Usage: release-upload.py FOLDER s3://BUCKET/PREFIX

Each file goes up with its SHA-256 as S3's checksum, so the Terraform module can read the
zips' hashes back (Lambda's source_code_hash) and S3 refuses a corrupted upload. A release is
immutable: an object already at a key is left when it has the same checksum and refused when it
differs. Credentials, region and endpoint come from the AWS SDK's usual sources
(AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL...).
"""

import base64
import hashlib
import os
import sys

import boto3
import botocore.exceptions


def sha256_base64(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode()


def existing_checksum(s3, bucket, key):
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except botocore.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("ChecksumSHA256", "")


def main(folder, destination):
    if not destination.startswith("s3://"):
        sys.exit(f"release-upload: {destination} is not an s3:// URI; give s3://bucket/prefix")
    bucket, _, prefix = destination[len("s3://"):].partition("/")
    s3 = boto3.client("s3", region_name=os.environ.get("AWS_REGION") or None)
    uploaded = kept = 0
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            key = "/".join(filter(None, [prefix, os.path.relpath(path, folder)]))
            checksum = sha256_base64(path)
            present = existing_checksum(s3, bucket, key)
            if present == checksum:
                kept += 1
                continue
            if present is not None:
                sys.exit(
                    f"release-upload: s3://{bucket}/{key} already holds a different file; "
                    "a release is never replaced: bump the version in Cargo.toml"
                )
            with open(path, "rb") as body:
                s3.put_object(
                    Bucket=bucket,
                    Key=key,
                    Body=body,
                    ChecksumAlgorithm="SHA256",
                    ChecksumSHA256=checksum,
                )
            uploaded += 1
    print(f"release-upload: s3://{bucket}/{prefix}/: {uploaded} uploaded, {kept} already there")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    try:
        main(sys.argv[1], sys.argv[2])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
        sys.exit(f"release-upload: {error}")
