"""watches.yaml: the same fields, defaults, path resolution and errors as ansible-operator v1.42.3.

The real operator reads the file with sigs.k8s.io/yaml into a struct: `${VAR}`/`$VAR` are
expanded first (undefined ones stay literal), keys match case-insensitively, unknown keys are
ignored, a value of the wrong type is an error, and every path must exist at start-up. The
runner does the same and also logs each ignored key, because a misspelt field silently taking
its default is a common surprise.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from testbed.runner.goformat import DurationError, expand, parse_duration

log = logging.getLogger("watches")

DEFAULT_MAX_RUNNER_ARTIFACTS = 20
LABEL_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


class WatchesError(Exception):
    """watches.yaml cannot be used; the message names the entry and the field."""


@dataclass(frozen=True, order=True)
class GVK:
    group: str
    version: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def __str__(self) -> str:
        # Go's schema.GroupVersionKind.String(), which the operator's messages use.
        return f"{self.group}/{self.version}, Kind={self.kind}"

    def env_suffix(self) -> str:
        """`<KIND>_<GROUP>` as in MAX_CONCURRENT_RECONCILES_<KIND>_<GROUP>."""
        return f"{self.kind}_{self.group}".upper().replace(".", "_")


@dataclass
class Finalizer:
    name: str = ""
    playbook: str = ""
    role: str = ""
    vars: dict[str, Any] = field(default_factory=dict)


@dataclass
class Watch:
    gvk: GVK
    playbook: str = ""
    role: str = ""
    vars: dict[str, Any] = field(default_factory=dict)
    max_runner_artifacts: int = DEFAULT_MAX_RUNNER_ARTIFACTS
    reconcile_period_ns: int = 0
    manage_status: bool = True
    watch_dependent_resources: bool = True
    watch_cluster_scoped_resources: bool = False
    snake_case_parameters: bool = True
    watch_annotations_changes: bool = False
    mark_unsafe: bool = False
    selector: dict[str, Any] = field(default_factory=dict)
    blacklist: list[GVK] = field(default_factory=list)
    finalizer: Finalizer | None = None
    max_concurrent_reconciles: int = 1
    ansible_verbosity: int = 2

    @property
    def path(self) -> str:
        """What runs: the playbook when both are set (as the operator's runner does)."""
        return self.playbook or self.role


# Field name (lower case, as Go's encoding/json matches keys case-insensitively) -> (name, type).
_WATCH_FIELDS = {
    "group": ("group", str),
    "version": ("version", str),
    "kind": ("kind", str),
    "playbook": ("playbook", str),
    "role": ("role", str),
    "vars": ("vars", dict),
    "maxrunnerartifacts": ("maxRunnerArtifacts", int),
    "reconcileperiod": ("reconcilePeriod", "duration"),
    "managestatus": ("manageStatus", bool),
    "watchdependentresources": ("watchDependentResources", bool),
    "watchclusterscopedresources": ("watchClusterScopedResources", bool),
    "snakecaseparameters": ("snakeCaseParameters", bool),
    "watchannotationschanges": ("watchAnnotationsChanges", bool),
    "markunsafe": ("markUnsafe", bool),
    "selector": ("selector", dict),
    "blacklist": ("blacklist", list),
    "finalizer": ("finalizer", dict),
}
_FINALIZER_FIELDS = {
    "name": ("name", str),
    "playbook": ("playbook", str),
    "role": ("role", str),
    "vars": ("vars", dict),
}
_NOT_IN_WATCHES = {
    "maxconcurrentreconciles": "--max-concurrent-reconciles or MAX_CONCURRENT_RECONCILES_<KIND>_<GROUP>",
    "maxworkers": "--max-concurrent-reconciles or MAX_CONCURRENT_RECONCILES_<KIND>_<GROUP>",
    "ansibleverbosity": "--ansible-verbosity or ANSIBLE_VERBOSITY_<KIND>_<GROUP>",
}
_TYPE_NAMES = {str: "a string", bool: "true or false", int: "an integer", dict: "a mapping", list: "a list"}


def _json_compatible(value: Any) -> Any:
    """What the value becomes after sigs.k8s.io/yaml's YAML -> JSON step and Go's float64 numbers."""
    if isinstance(value, dict):
        return {_json_key(k): _json_compatible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_compatible(v) for v in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _typed(where: str, name: str, kind: Any, value: Any) -> Any:
    if kind == "duration":
        if not isinstance(value, str):
            raise WatchesError(f"{where}: '{name}' must be a duration string such as \"30s\", got {value!r}")
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise WatchesError(f"{where}: '{name}': {exc}") from exc
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        raise WatchesError(f"{where}: '{name}' must be {_TYPE_NAMES[kind]}, got {value!r}")
    return value


def _fields(where: str, entry: dict[str, Any], known: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The entry's known fields by canonical name; null values count as absent, as in Go."""
    found: dict[str, Any] = {}
    for key, value in entry.items():
        lowered = str(key).lower()
        if lowered in known:
            name, kind = known[lowered]
            if value is not None:
                found[name] = _typed(where, name, kind, value)
        elif lowered in _NOT_IN_WATCHES:
            log.warning(
                "%s: '%s' cannot be set in watches.yaml and is ignored; use %s",
                where,
                key,
                _NOT_IN_WATCHES[lowered],
            )
        else:
            log.warning("%s: unknown field '%s' is ignored (as ansible-operator ignores it)", where, key)
    return found


def _possible_role_paths(root: str, role: str) -> list[str]:
    """Go `getPossibleRolePaths`: absolute path, FQCN collection role, ANSIBLE_ROLES_PATH, ./roles."""
    if os.path.isabs(role) or not role:
        return [role]
    candidates: list[str] = []
    fqcn = role.split(".")
    if len(fqcn) == 3:
        collections = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "")
        if not collections:
            collections = "/usr/share/ansible/collections:" + os.path.join(
                os.path.expanduser("~"), ".ansible/collections"
            )
        for parent in collections.split(":"):
            candidates.append(_join(parent, "ansible_collections", fqcn[0], fqcn[1], "roles", fqcn[2]))
    roles_path = os.environ.get("ANSIBLE_ROLES_PATH", "")
    if roles_path:
        for parent in roles_path.split(":"):
            candidates.append(_join(parent, role))
            candidates.append(_join(parent, "roles", role))
    candidates.append(_join(root, "roles", role))
    return candidates


def _join(*parts: str) -> str:
    """Go `filepath.Join`: empty parts dropped, result cleaned."""
    kept = [p for p in parts if p]
    return os.path.normpath(os.path.join(*kept)) if kept else ""


def _resolve_role(root: str, role: str) -> str:
    for candidate in _possible_role_paths(root, role):
        if os.path.exists(candidate):
            return candidate
    return role


def _full_path(root: str, path: str) -> str:
    return _join(root, path) if path and not os.path.isabs(path) else path


def _verify_ansible_path(playbook: str, role: str) -> str | None:
    """Go `verifyAnsiblePath`: the error message, or None."""
    if playbook:
        return None if os.path.exists(playbook) else f"playbook: {playbook} was not found"
    if role:
        return None if os.path.exists(role) else f"role: {role} was not found"
    return "must specify Role or Playbook"


def _selector(where: str, raw: dict[str, Any]) -> dict[str, Any]:
    """A metav1.LabelSelector, validated as LabelSelectorAsSelector would."""
    selector = _fields(
        f"{where} selector",
        raw,
        {"matchlabels": ("matchLabels", dict), "matchexpressions": ("matchExpressions", list)},
    )
    for key, value in selector.get("matchLabels", {}).items():
        if not isinstance(value, str):
            raise WatchesError(f"{where}: selector.matchLabels.{key} must be a string, got {value!r}")
    for expr in selector.get("matchExpressions", []):
        if not isinstance(expr, dict):
            raise WatchesError(f"{where}: selector.matchExpressions items must be mappings, got {expr!r}")
        operator = expr.get("operator")
        values = expr.get("values") or []
        if operator not in LABEL_SELECTOR_OPERATORS:
            raise WatchesError(
                f"{where}: selector.matchExpressions operator {operator!r} is not one of "
                f"{', '.join(LABEL_SELECTOR_OPERATORS)}"
            )
        if operator in ("In", "NotIn") and not values:
            raise WatchesError(f"{where}: selector.matchExpressions operator {operator} needs values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise WatchesError(f"{where}: selector.matchExpressions operator {operator} takes no values")
    return selector


def _int_env(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        log.info("Could not parse environment variable %s=%r as an integer; using %d", name, value, default)
        return default


def max_concurrent_reconciles(gvk: GVK, default: int) -> int:
    """MAX_CONCURRENT_RECONCILES_<KIND>_<GROUP>, else the deprecated WORKER_<KIND>_<GROUP>, else default."""
    name = f"MAX_CONCURRENT_RECONCILES_{gvk.env_suffix()}"
    deprecated = f"WORKER_{gvk.env_suffix()}"
    if name in os.environ:
        value = _int_env(name, default)
    elif deprecated in os.environ:
        log.info("Environment variable %s is deprecated, use %s instead", deprecated, name)
        value = _int_env(deprecated, default)
    else:
        value = default
    return value if value > 0 else default


def ansible_verbosity(gvk: GVK, default: int) -> int:
    value = _int_env(f"ANSIBLE_VERBOSITY_{gvk.env_suffix()}", default)
    return value if 0 <= value <= 7 else default


def _watch(where: str, raw: dict[str, Any], root: str, max_workers: int, verbosity: int) -> Watch:
    f = _fields(where, raw, _WATCH_FIELDS)
    gvk = GVK(f.get("group", ""), f.get("version", ""), f.get("kind", ""))
    if not gvk.version:
        raise WatchesError(f"invalid GVK: {gvk}: version must not be empty")
    if not gvk.kind:
        raise WatchesError(f"invalid GVK: {gvk}: kind must not be empty")
    where = f"{where} ({gvk})"
    watch = Watch(
        gvk=gvk,
        playbook=_full_path(root, f.get("playbook", "")),
        role=_resolve_role(root, f["role"]) if f.get("role") else "",
        vars=_json_compatible(f.get("vars", {})),
        max_runner_artifacts=f.get("maxRunnerArtifacts") or DEFAULT_MAX_RUNNER_ARTIFACTS,
        reconcile_period_ns=f.get("reconcilePeriod", 0),
        manage_status=f.get("manageStatus", True),
        watch_dependent_resources=f.get("watchDependentResources", True),
        watch_cluster_scoped_resources=f.get("watchClusterScopedResources", False),
        snake_case_parameters=f.get("snakeCaseParameters", True),
        watch_annotations_changes=f.get("watchAnnotationsChanges", False),
        mark_unsafe=f.get("markUnsafe", False),
        selector=_selector(where, f["selector"]) if "selector" in f else {},
        max_concurrent_reconciles=max_concurrent_reconciles(gvk, max_workers),
        ansible_verbosity=ansible_verbosity(gvk, verbosity),
    )
    for item in f.get("blacklist", []):
        if not isinstance(item, dict):
            raise WatchesError(
                f"{where}: blacklist items must be mappings of group/version/kind, got {item!r}"
            )
        b = _fields(f"{where} blacklist", item, {k: _WATCH_FIELDS[k] for k in ("group", "version", "kind")})
        watch.blacklist.append(GVK(b.get("group", ""), b.get("version", ""), b.get("kind", "")))
    if "finalizer" in f:
        fin = _fields(f"{where} finalizer", f["finalizer"], _FINALIZER_FIELDS)
        watch.finalizer = Finalizer(
            name=fin.get("name", ""),
            playbook=_full_path(root, fin.get("playbook", "")),
            role=_resolve_role(root, fin["role"]) if fin.get("role") else "",
            vars=_json_compatible(fin.get("vars", {})),
        )
    return watch


def _validate(watch: Watch) -> None:
    error = _verify_ansible_path(watch.playbook, watch.role)
    if error:
        raise WatchesError(f"Invalid ansible path for GVK: {watch.gvk}: {error}")
    fin = watch.finalizer
    if fin is not None:
        if not fin.name:
            raise WatchesError(f"Invalid finalizer for GVK: {watch.gvk}: finalizer must have name")
        error = _verify_ansible_path(fin.playbook, fin.role)
        if error and not fin.vars:
            raise WatchesError(f"Invalid ansible path on Finalizer for GVK: {watch.gvk}: {error}")


def load(path: str, max_workers: int, verbosity: int, root: str | None = None) -> list[Watch]:
    """Read, expand, parse and validate a watches file (Go `watches.Load`)."""
    root = root or os.getcwd()
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise WatchesError(f"Failed to get config file {path}: {exc.strerror}") from exc
    text = expand(text, lambda name: os.environ.get(name, "${" + name + "}"))
    try:
        entries = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise WatchesError(f"Failed to unmarshal config {path}: {exc}") from exc
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise WatchesError(f"Failed to unmarshal config {path}: the file must be a list of watches")
    watches: list[Watch] = []
    for index, raw in enumerate(entries, start=1):
        where = f"{path} entry {index}"
        if not isinstance(raw, dict):
            raise WatchesError(f"{where}: each watch must be a mapping, got {raw!r}")
        watches.append(_watch(where, raw, root, max_workers, verbosity))
    seen: set[GVK] = set()
    for watch in watches:
        if watch.gvk in seen:
            raise WatchesError(f"duplicate GVK: {watch.gvk}")
        seen.add(watch.gvk)
        _validate(watch)
    return watches
