#!/usr/bin/env python3
"""Runs an operation script through the official DAX client (amazon-dax-client,
pinned in scripts/install-test-tools) and prints one JSON line per operation:
{"ok": {...}} with the response's data fields in DynamoDB JSON (B as hex), or
{"error": "<DynamoDB error code>"}. The Rust side (dax/tests/support/mod.rs) runs
the same script through mangactl-dax and prints the same shape.

Usage: driver.py ENDPOINT_URL SCRIPT.json
Static test credentials (testing/testing), region us-east-1. For daxs:// the
test CA is passed through SSL_CERT_FILE (Python's default TLS context reads it).
"""
import json
import sys

from amazondax import AmazonDaxClient
from botocore.exceptions import ClientError

FIELDS = ("Item", "Items", "Count", "ScannedCount", "LastEvaluatedKey", "Attributes",
          "Responses", "UnprocessedKeys", "UnprocessedItems")
SNAKE = {"GetItem": "get_item", "PutItem": "put_item", "DeleteItem": "delete_item", "Query": "query",
         "UpdateItem": "update_item", "BatchGetItem": "batch_get_item", "BatchWriteItem": "batch_write_item"}


def from_json(v):
    """DynamoDB JSON (B as hex) to the boto3 client's shape."""
    if isinstance(v, dict):
        if len(v) == 1:
            (t, x), = v.items()
            if t == "B":
                return {"B": bytes.fromhex(x)}
            if t == "BS":
                return {"BS": [bytes.fromhex(b) for b in x]}
            if t in ("M",):
                return {"M": {k: from_json(s) for k, s in x.items()}}
            if t == "L":
                return {"L": [from_json(s) for s in x]}
            if t in ("S", "N", "SS", "NS", "BOOL", "NULL"):
                return {t: x}
        return {k: from_json(s) for k, s in v.items()}
    return v


def to_json(v):
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {k: to_json(s) for k, s in v.items()}
    if isinstance(v, list):
        return [to_json(s) for s in v]
    return v


def item(i):
    return {a: from_json(av) for a, av in i.items()}


def request_items(op, items):
    """BatchGetItem's and BatchWriteItem's RequestItems, in the script's order."""
    out = {}
    for table, r in items.items():
        if op == "BatchGetItem":
            out[table] = dict(r, Keys=[item(k) for k in r["Keys"]])
        else:
            out[table] = [{"PutRequest": {"Item": item(w["PutRequest"]["Item"])}} if "PutRequest" in w
                          else {"DeleteRequest": {"Key": item(w["DeleteRequest"]["Key"])}} for w in r]
    return out


def params(op, p):
    out = {}
    for k, v in p.items():
        if k == "RequestItems":
            out[k] = request_items(op, v)
        elif k in ("Key", "Item", "ExclusiveStartKey"):
            out[k] = {a: from_json(av) for a, av in v.items()}
        elif k == "ExpressionAttributeValues":
            out[k] = {a: from_json(av) for a, av in v.items()}
        else:
            out[k] = v
    return out


def main():
    url, script = sys.argv[1], sys.argv[2]
    ops = json.load(open(script))
    client = AmazonDaxClient(
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    try:
        for op in ops:
            try:
                r = getattr(client, SNAKE[op["op"]])(**params(op["op"], op["params"]))
                print(json.dumps({"ok": {k: to_json(r[k]) for k in FIELDS if k in r}}, sort_keys=True))
            except ClientError as e:
                print(json.dumps({"error": e.response.get("Error", {}).get("Code")}))
            sys.stdout.flush()
    finally:
        client.close()


if __name__ == "__main__":
    main()
