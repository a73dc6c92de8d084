#!/usr/bin/env python3
"""Validate rendered Kubernetes manifests against the API's own OpenAPI schemas.

Offline and strict: the schemas are the swagger.json shipped in the k8s.io/kubernetes
Go module (downloaded through the Go module proxy by scripts/chart-check.sh), unknown
fields are rejected, and int-or-string / quantity fields accept both forms, as the
API server does.

Usage: validate-manifests.py SWAGGER_JSON MANIFEST.yaml [...]   ("-" reads stdin)
Exit status 1 if any document is invalid or of an unknown kind.
"""
import json
import sys

import jsonschema
import yaml

FLEXIBLE = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}


def load_definitions(path):
    with open(path) as f:
        defs = json.load(f)["definitions"]
    kinds = {}
    for name, d in defs.items():
        if name in FLEXIBLE:
            defs[name] = FLEXIBLE[name]
            continue
        if d.get("type") == "object" and "properties" in d and "additionalProperties" not in d:
            d["additionalProperties"] = False
        for gvk in d.get("x-kubernetes-group-version-kind", []):
            api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds.setdefault((api, gvk["kind"]), name)
    return defs, kinds


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    defs, kinds = load_definitions(argv[1])
    checked = failed = 0
    for path in argv[2:]:
        text = sys.stdin.read() if path == "-" else open(path).read()
        for doc in yaml.safe_load_all(text):
            if not doc:
                continue
            checked += 1
            key = (doc.get("apiVersion"), doc.get("kind"))
            name = f"{key[1]} {doc.get('metadata', {}).get('name', '?')} ({path})"
            if key not in kinds:
                print(f"FAIL {name}: unknown apiVersion/kind {key[0]}/{key[1]}")
                failed += 1
                continue
            schema = {"$ref": f"#/definitions/{kinds[key]}", "definitions": defs}
            errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(doc), key=lambda e: list(e.path))
            if errors:
                failed += 1
                for e in errors[:10]:
                    where = ".".join(str(p) for p in e.path) or "(root)"
                    print(f"FAIL {name}: {where}: {e.message}")
            else:
                print(f"ok   {name}")
    print(f"{checked - failed} valid, {failed} invalid")
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
