#!/usr/bin/env python3
"""Checks recorded HTTP exchanges against an OpenAPI 3.1 document.

usage: check-openapi.py DOC.json SAMPLES.jsonl

Each line of SAMPLES is one exchange: {"method", "template" (the full path template, e.g.
/api/v1/devices/{device_id}), "status", "content_type", "body" (text), and optionally
"request_content_type" and "request_body" (text)}. For each: the path and method must be in the
document and the status among its responses; a JSON answer must be documented as
application/json and validate against its schema (JSON Schema 2020-12, $ref resolved against
the document's components); another answer's media type must be documented. A 2xx exchange's
JSON request body must validate against the operation's requestBody schema. Every schema in
the document must itself be valid. Prints one line per failure and exits 1 if there is any.
"""
import json
import sys

import jsonschema

Validator = jsonschema.Draft202012Validator


def media_type(content_type):
    return (content_type or "").split(";")[0].strip().lower()


def operations(doc):
    """{(METHOD, full template): operation}; a path's own servers[0] replace the document's."""
    base = doc.get("servers", [{"url": "/"}])[0]["url"]
    ops = {}
    for path, item in doc["paths"].items():
        prefix = item.get("servers", [{"url": base}])[0]["url"].rstrip("/")
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options"):
                ops[(method.upper(), prefix + path)] = op
    return ops


def schemas_of(doc):
    """Every schema the document holds, with where it is."""
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        yield f"components.schemas.{name}", schema
    for (method, path), op in operations(doc).items():
        for param in op.get("parameters", []):
            yield f"{method} {path} parameter {param['name']}", param.get("schema", {})
        for ctype, media in op.get("requestBody", {}).get("content", {}).items():
            yield f"{method} {path} requestBody {ctype}", media.get("schema", {})
        for status, resp in op.get("responses", {}).items():
            for ctype, media in resp.get("content", {}).items():
                yield f"{method} {path} {status} {ctype}", media.get("schema", {})


def validate(doc, schema, value):
    """The first error of `value` against `schema`, or None; #/components/... resolve in doc."""
    root = dict(schema)
    root["components"] = doc.get("components", {})
    errors = sorted(Validator(root).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    e = errors[0]
    where = "/".join(str(p) for p in e.absolute_path) or "(the body)"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"at {where}: {e.message}{more}"


def check_sample(doc, ops, s):
    name = f"{s['method']} {s['template']} -> {s['status']}"
    op = ops.get((s["method"], s["template"]))
    if op is None:
        return [f"{name}: no such path and method in the document"]
    failures = []
    responses = op.get("responses", {})
    resp = responses.get(str(s["status"]))
    if resp is None:
        return [f"{name}: status not documented (documented: {', '.join(sorted(responses))})"]
    content = resp.get("content", {})
    got_type = media_type(s.get("content_type"))
    if content and got_type not in content:
        failures.append(f"{name}: content type {got_type or '(none)'} is not documented "
                        f"({', '.join(content)})")
    elif got_type == "application/json":
        try:
            body = json.loads(s["body"])
        except ValueError as e:
            failures.append(f"{name}: the body is not JSON: {e}")
        else:
            error = validate(doc, content["application/json"].get("schema", {}), body)
            if error:
                failures.append(f"{name}: the answer does not match its schema {error}; body: "
                                f"{s['body'][:300]}")
    if 200 <= int(s["status"]) < 300:
        failures += check_request(doc, op, name, s)
    return failures


def check_request(doc, op, name, s):
    sent = s.get("request_body") or ""
    body_doc = op.get("requestBody")
    if not sent:
        if body_doc and body_doc.get("required"):
            return [f"{name}: accepted without the body the document requires"]
        return []
    if body_doc is None:
        return [f"{name}: accepted a request body the document does not describe"]
    sent_type = media_type(s.get("request_content_type"))
    content = body_doc.get("content", {})
    if sent_type not in content:
        return [f"{name}: accepted a {sent_type} body; documented: {', '.join(content)}"]
    if sent_type != "application/json":
        return []
    error = validate(doc, content[sent_type].get("schema", {}), json.loads(sent))
    if error:
        return [f"{name}: the request it accepted does not match the requestBody schema {error}"]
    return []


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as f:
        doc = json.load(f)
    failures = []
    for where, schema in schemas_of(doc):
        try:
            Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            failures.append(f"the schema of {where} is invalid: {e.message}")
    ops = operations(doc)
    count = 0
    with open(argv[2], encoding="utf-8") as f:
        for line in f:
            if line.strip():
                count += 1
                failures += check_sample(doc, ops, json.loads(line))
    for failure in failures:
        print(failure)
    print(f"check-openapi: {count} samples, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
