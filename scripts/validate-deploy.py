#!/usr/bin/env python3
"""Validates deploy/ against the real schemas (run by scripts/validate-deploy.sh, in its venv).

* deploy/k8s/*.yaml: built-in kinds with kubernetes-validate (strict: unknown fields are errors);
  the CloudNativePG and Barman Cloud kinds against the openAPIV3Schema of their CRDs, vendored in
  deploy/schemas/crds/ (made strict the same way: an unknown field is an error, as with
  `kubectl apply --validate=strict`); kustomization.yaml lists exactly the manifests, all in its
  namespace; with KUSTOMIZE_RENDERED (scripts/validate-deploy.sh sets it to the output of
  `kubectl kustomize deploy/k8s`) the rendered objects are validated too.
* deploy/compose.yaml: the Compose Specification JSON schema (deploy/schemas/compose-spec.json),
  plus references (depends_on, secrets, configs, volumes) that the schema cannot check.
* The broker's configuration in them (TOML files, the ConfigMap, COZO_<SECTION>__<KEY> variables)
  names only keys that exist in src/config.rs: the broker refuses unknown keys at start.
* A few properties the issue asks for: non-root, read-only root filesystem, no capabilities,
  /readyz and /healthz probes.
* deploy/schemas/fixtures/*: known-bad files that MUST fail (the validator's own test).

Prints one line per file and exits 1 if anything is wrong.
"""

import json
import os
import re
import sys
import urllib.parse

import jsonschema
import kubernetes_validate
import yaml

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPLOY = os.path.join(ROOT, "deploy")
SCHEMAS = os.path.join(DEPLOY, "schemas")
# The oldest Kubernetes the manifests support (preStop `sleep` needs 1.30) and a recent one.
K8S_VERSIONS = os.environ.get("K8S_VERSIONS", "1.30.0 1.34.0").split()

CRDS = {
    ("postgresql.cnpg.io/v1", "Cluster"): "postgresql.cnpg.io_v1_Cluster.json",
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): "postgresql.cnpg.io_v1_ScheduledBackup.json",
    ("barmancloud.cnpg.io/v1", "ObjectStore"): "barmancloud.cnpg.io_v1_ObjectStore.json",
}
DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def rel(path):
    return os.path.relpath(path, ROOT)


def strict(schema):
    """An object schema with properties rejects other fields, unless the CRD keeps unknown fields."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


_crd_validators = {}


def crd_validator(key):
    if key not in _crd_validators:
        with open(os.path.join(SCHEMAS, "crds", CRDS[key])) as f:
            schema = strict(json.load(f))
        _crd_validators[key] = jsonschema.Draft7Validator(schema)
    return _crd_validators[key]


_config_keys = None


def config_keys():
    """{section: {key: rust type}} from the structs of src/config.rs (`[section] key` ↔ field)."""
    global _config_keys
    if _config_keys is None:
        with open(os.path.join(ROOT, "src", "config.rs")) as f:
            src = f.read()
        structs = {m.group(1): m.group(2) for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", src, re.S)}
        fields = {
            name: dict(re.findall(r"^\s*pub (\w+): ([^\n]+?),\s*(?://.*)?$", body, re.M))
            for name, body in structs.items()
        }
        _config_keys = {section: fields.get(ty, {}) for section, ty in fields["Config"].items()}
        if not _config_keys or not all(_config_keys.values()):
            raise SystemExit("validate-deploy: cannot read the configuration structs of src/config.rs")
    return _config_keys


def type_errors(where_, value, rust):
    rust = re.sub(r"^Option<(.*)>$", r"\1", rust)
    ok = {
        "bool": lambda v: isinstance(v, bool),
        "String": lambda v: isinstance(v, str),
        "Url": lambda v: isinstance(v, str) and re.match(r"^https?://", v) is not None,
        "PathBuf": lambda v: isinstance(v, str),
        "SocketAddr": lambda v: isinstance(v, str) and re.match(r"^[^\s]+:\d+$", v) is not None,
        "PathList": lambda v: isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)),
    }.get(rust)
    if ok is None and re.match(r"^[iu](8|16|32|64|size)$", rust):
        ok = lambda v: isinstance(v, int) and not isinstance(v, bool)
    if ok is None and rust.startswith("Vec<"):
        ok = lambda v: isinstance(v, list)
    if ok is None and "Map<" in rust:
        ok = lambda v: isinstance(v, dict)
    if ok is not None and not ok(value):
        return [f"{where_}: {value!r} is not a valid {rust}"]
    return []


def toml_config_errors(text, label):
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return [f"{label}: TOML: {e}"]
    keys, errs = config_keys(), []
    for section, table in cfg.items():
        if section not in keys:
            errs.append(f"{label}: [{section}] is not a configuration section (src/config.rs)")
            continue
        if not isinstance(table, dict):
            errs.append(f"{label}: {section} must be a table")
            continue
        for key, value in table.items():
            if key not in keys[section]:
                errs.append(f"{label}: [{section}] {key} is not a configuration key (src/config.rs)")
            else:
                errs += type_errors(f"{label}: [{section}] {key}", value, keys[section][key])
    return errs


def env_config_errors(name, label):
    """COZO_<SECTION>__<KEY> must name a key; COZO_ variables without `__` are not settings."""
    if not name.startswith("COZO_") or "__" not in name:
        return []
    parts = name[len("COZO_"):].lower().split("__")
    keys = config_keys()
    if len(parts) < 2 or parts[0] not in keys or parts[1] not in keys[parts[0]]:
        return [f"{label}: {name} does not name a configuration key (src/config.rs)"]
    return []


def where(err):
    return ".".join(str(p) for p in err.absolute_path) or "(root)"


def short(msg, n=300):
    return msg if len(msg) <= n else msg[: n - 3] + "..."


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def check_metadata(doc):
    md = doc.get("metadata")
    if not isinstance(md, dict) or not isinstance(md.get("name"), str):
        return ["metadata.name: missing"]
    errs = []
    if not DNS1123.match(md["name"]) or len(md["name"]) > 253:
        errs.append(f"metadata.name: {md['name']!r} is not a DNS-1123 name")
    ns = md.get("namespace")
    if ns is not None and (not isinstance(ns, str) or not DNS1123.match(ns)):
        errs.append(f"metadata.namespace: {ns!r} is not a DNS-1123 label")
    return errs


def policy_errors(doc):
    """What the issue requires of the broker's workloads, beyond schema validity."""
    errs = []
    if doc.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        return errs
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    psc = pod.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        errs.append("spec.template.spec.securityContext.runAsNonRoot must be true")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        sc = c.get("securityContext", {})
        name = c.get("name")
        if sc.get("readOnlyRootFilesystem") is not True:
            errs.append(f"container {name}: readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            errs.append(f"container {name}: allowPrivilegeEscalation must be false")
        if "ALL" not in sc.get("capabilities", {}).get("drop", []):
            errs.append(f"container {name}: capabilities must drop ALL")
        if "memory" not in c.get("resources", {}).get("limits", {}):
            errs.append(f"container {name}: needs a memory limit")
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        errs += database_tls_errors(c)
    if doc.get("kind") == "Deployment":
        for c in pod.get("containers", []):
            ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
            live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
            if ready != "/readyz" or live != "/healthz":
                errs.append(f"container {c.get('name')}: readiness must GET /readyz, liveness /healthz")
    return errs


def database_tls_errors(c):
    """A container's COZO_DATABASE__URL must verify the server: sslmode=verify-full with an
    sslrootcert file from one of the container's volume mounts (deploy/README.md)."""
    name = c.get("name")
    mounts = [m.get("mountPath", "").rstrip("/") + "/" for m in c.get("volumeMounts", [])]
    for e in c.get("env", []):
        if e.get("name") != "COZO_DATABASE__URL":
            continue
        value = e.get("value")
        if not isinstance(value, str):
            return [f"container {name}: COZO_DATABASE__URL must be a value with sslmode=verify-full "
                    "and sslrootcert (a bare secret URI is not verified TLS)"]
        query = dict(urllib.parse.parse_qsl(value.partition("?")[2]))
        errs = []
        if query.get("sslmode") != "verify-full":
            errs.append(f"container {name}: COZO_DATABASE__URL needs sslmode=verify-full, "
                        f"not {query.get('sslmode')!r}")
        root = query.get("sslrootcert", "")
        if not any(root.startswith(m) for m in mounts):
            errs.append(f"container {name}: COZO_DATABASE__URL sslrootcert {root!r} is not in a "
                        "volume mount of the container")
        return errs
    return []


_k8s_validators = {}


def k8s_validator(api, kind, k8s_version):
    """The strict schema kubernetes_validate.validate() uses, but reporting every error, not the
    first (same lookup as kubernetes_validate.utils.validate, pinned in requirements.txt)."""
    key = (api, kind, k8s_version)
    if key not in _k8s_validators:
        from referencing import Registry, Resource
        from kubernetes_validate import utils

        version = [v for v in utils.all_versions() if utils.major_minor(v) <= utils.major_minor(k8s_version)][-1]
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api)
        schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
        try:
            schema = utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", k8s_version)
        except FileNotFoundError:
            raise kubernetes_validate.SchemaNotFoundError(version=k8s_version, kind=kind, api_version=api)
        defs = utils.schema_contents(f"{schema_dir}/_definitions.json", k8s_version)
        registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
        _k8s_validators[key] = jsonschema.Draft202012Validator(schema, registry=registry)
    return _k8s_validators[key]


def validate_k8s_doc(doc):
    """Returns (description, errors)."""
    if not isinstance(doc, dict) or "apiVersion" not in doc or "kind" not in doc:
        return "?", ["not a Kubernetes object (apiVersion and kind are required)"]
    api, kind = doc["apiVersion"], doc["kind"]
    md = doc.get("metadata") or {}
    desc = f"{api} {kind} {md.get('namespace', '-')}/{md.get('name', '?')}"
    errs = check_metadata(doc)
    if (api, kind) in CRDS:
        v = crd_validator((api, kind))
        errs += [f"{where(e)}: {short(e.message)}" for e in sorted(v.iter_errors(doc), key=str)]
        return desc + " (CRD schema)", errs
    for version in K8S_VERSIONS:
        try:
            v = k8s_validator(api, kind, version)
        except kubernetes_validate.SchemaNotFoundError:
            errs.append(f"no schema for {api} {kind} in Kubernetes {version} nor in deploy/schemas/crds/")
            continue
        errs += [f"{where(e)}: {short(e.message)} (Kubernetes {version})" for e in sorted(v.iter_errors(doc), key=str)]
    errs += policy_errors(doc)
    errs += broker_config_errors(doc)
    return desc + f" (Kubernetes {' and '.join(K8S_VERSIONS)}, strict)", errs


def broker_config_errors(doc):
    errs = []
    if doc.get("kind") == "ConfigMap":
        for key, text in (doc.get("data") or {}).items():
            if key.endswith(".toml"):
                errs += toml_config_errors(text, f"data.{key}")
    if doc.get("kind") == "Secret":
        for key in list((doc.get("stringData") or {})) + list((doc.get("data") or {})):
            errs += env_config_errors(key, f"Secret key {key}")
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for c in pod.get("initContainers", []) + pod.get("containers", []):
        for e in c.get("env", []):
            errs += env_config_errors(e.get("name", ""), f"container {c.get('name')} env")
    return errs


def validate_k8s_file(path):
    try:
        docs = load_all(path)
    except yaml.YAMLError as e:
        return [f"YAML: {e}"], []
    if not docs:
        return ["no documents"], []
    errors, descs = [], []
    for i, doc in enumerate(docs):
        desc, errs = validate_k8s_doc(doc)
        descs.append(desc)
        errors += [f"[doc {i + 1}: {desc}] {e}" for e in errs]
    return errors, descs


def validate_kustomization(path, k8s_dir):
    with open(path) as f:
        k = yaml.safe_load(f)
    errs = []
    listed = k.get("resources", [])
    for r in listed:
        if not os.path.isfile(os.path.join(k8s_dir, r)):
            errs.append(f"resources: {r} does not exist")
            continue
        # `kubectl apply -f deploy/k8s/FILE` must land where `apply -k` does.
        for doc in load_all(os.path.join(k8s_dir, r)):
            ns = (doc.get("metadata") or {}).get("namespace")
            if doc.get("kind") != "Namespace" and ns != k.get("namespace"):
                errs.append(f"{r}: {doc.get('kind')} {doc.get('metadata', {}).get('name')} is in namespace {ns!r}, not {k.get('namespace')!r}")
    present = sorted(
        f for f in os.listdir(k8s_dir) if f.endswith((".yaml", ".yml")) and f != os.path.basename(path)
    )
    for f in present:
        if f not in listed:
            errs.append(f"resources: {f} is in {rel(k8s_dir)} but not listed")
    return errs


_compose_validator = None


def compose_errors(path):
    global _compose_validator
    if _compose_validator is None:
        with open(os.path.join(SCHEMAS, "compose-spec.json")) as f:
            _compose_validator = jsonschema.Draft7Validator(json.load(f))
    try:
        docs = load_all(path)
    except yaml.YAMLError as e:
        return [f"YAML: {e}"]
    if len(docs) != 1:
        return ["a compose file is one YAML document"]
    doc = docs[0]
    errs = [f"{where(e)}: {short(e.message)}" for e in sorted(_compose_validator.iter_errors(doc), key=str)]
    if errs or not isinstance(doc, dict):
        return errs
    services = doc.get("services", {})
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                errs.append(f"services.{name}.depends_on: no service {dep!r}")
        for section in ("secrets", "configs"):
            for s in svc.get(section, []):
                src = s if isinstance(s, str) else s.get("source")
                if src not in (doc.get(section) or {}):
                    errs.append(f"services.{name}.{section}: {src!r} is not defined at the top level")
        for v in svc.get("volumes", []):
            src = v.split(":")[0] if isinstance(v, str) else v.get("source")
            if isinstance(v, dict) and v.get("type") not in (None, "volume"):
                continue
            if src and not src.startswith((".", "/", "~", "$")) and src not in (doc.get("volumes") or {}):
                errs.append(f"services.{name}.volumes: named volume {src!r} is not defined")
        env = svc.get("environment") or {}
        names = env.keys() if isinstance(env, dict) else [e.split("=", 1)[0] for e in env]
        for n in names:
            errs += env_config_errors(n, f"services.{name}.environment")
        if "build" in svc and svc.get("read_only") is not True:
            errs.append(f"services.{name}: our images run with read_only: true")
    return errs


def main():
    failed = 0

    def report(ok, path, what, errs=()):
        nonlocal failed
        print(f"{'ok  ' if ok else 'FAIL'} {rel(path)}: {what}")
        for e in errs:
            print(f"       {e}")
        if not ok:
            failed += 1

    k8s_dir = os.path.join(DEPLOY, "k8s")
    for name in sorted(os.listdir(k8s_dir)):
        path = os.path.join(k8s_dir, name)
        if not name.endswith((".yaml", ".yml")):
            continue
        if name == "kustomization.yaml":
            errs = validate_kustomization(path, k8s_dir)
            report(not errs, path, "kustomization lists every manifest", errs)
            continue
        errs, descs = validate_k8s_file(path)
        report(not errs, path, "; ".join(descs) or "invalid", errs)

    rendered = os.environ.get("KUSTOMIZE_RENDERED")
    if rendered:
        errs, descs = validate_k8s_file(rendered)
        report(not errs, k8s_dir, f"kustomize build: {len(descs)} objects", errs)
        if any(d.split()[2].split("/")[0] != "cozo" for d in descs if not d.startswith("v1 Namespace")):
            report(False, k8s_dir, "kustomize build: every namespaced object must be in namespace cozo")

    path = os.path.join(DEPLOY, "container.toml")
    with open(path) as f:
        errs = toml_config_errors(f.read(), "container.toml")
    report(not errs, path, "configuration keys and types of src/config.rs", errs)

    path = os.path.join(DEPLOY, "compose.yaml")
    errs = compose_errors(path)
    report(not errs, path, "Compose Specification schema, references, configuration keys", errs)

    # The validator's own test: every fixture must be refused.
    fixtures = os.path.join(SCHEMAS, "fixtures")
    for name in sorted(os.listdir(fixtures)):
        path = os.path.join(fixtures, name)
        if name.startswith("bad-compose"):
            errs = compose_errors(path)
        else:
            errs, _ = validate_k8s_file(path)
        with open(path) as f:
            expected = [l.split(":", 1)[1].strip() for l in f if l.startswith("# expect:")]
        missing = [x for x in expected if not any(x in e for e in errs)]
        if not errs:
            report(False, path, "known-bad fixture was ACCEPTED: the validator is broken")
        elif not expected or missing:
            report(False, path, "refused, but not for the expected reasons", [f"expected: {x}" for x in missing] + errs)
        else:
            report(True, path, f"refused as expected ({len(errs)} errors, including: {'; '.join(expected)})")

    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
