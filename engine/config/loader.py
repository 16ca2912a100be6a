"""Loading the one YAML config file: `${ENV}` expansion, validation, every problem with file:line."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from provisioner.engine.config.hints import bare_refs, yaml_hint
from provisioner.engine.config.kafka import SECRET_KEYS
from provisioner.engine.config.keys import describe, did_you_mean
from provisioner.engine.config.paths import PathKeys, resolve_paths
from provisioner.engine.config.redact import env_values, redacted
from provisioner.engine.config.schema import Config, SourceConfig, TargetConfig
from provisioner.engine.config.writeback import writeback_problems
from provisioner.engine.config.yamlsafe import BoundedAliases
from provisioner.engine.contracts.models import Worker
from provisioner.engine.kit.templating import Condition, Template, TemplateError, attributes_of

# What a condition or template may read from `worker`: its fields and its properties.
WORKER_FIELDS = frozenset(Worker.model_fields) | {n for n, v in vars(Worker).items() if isinstance(v, property)}

# ${NAME} or ${NAME:-default}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# A connector's own check of its settings (the sources registry supplies it): problems at keys.
SettingsCheck = Callable[[Mapping[str, Any], set[str]], list[tuple[tuple[Any, ...], str]]]


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Every problem in a config file at once, each with file, line and key."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class _LineLoader(BoundedAliases, yaml.SafeLoader):
    """Records the line of every key so errors can point at it, and every key given twice (YAML
    would silently keep the last: a second `policies:` block would replace the first)."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[tuple[str, int, int]] = []


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, Any]:
    mapping = loader.construct_mapping(node, deep=True)
    lines: dict[str, int] = {}
    for k, _ in node.value:
        if isinstance(k, yaml.ScalarNode):
            line = k.start_mark.line + 1
            if str(k.value) in lines:
                loader.duplicates.append((str(k.value), lines[str(k.value)], line))
            lines.setdefault(str(k.value), line)
    return _Located({str(k): v for k, v in mapping.items()}, lines, node.start_mark.line + 1)


class _Located(dict):
    """A dict that remembers where its keys stood in the file."""

    def __init__(self, data: dict[str, Any], lines: dict[str, int], line: int):
        super().__init__(data)
        self.lines = lines
        self.line = line


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_of(data: Any, loc: tuple[Any, ...]) -> int | None:
    line = getattr(data, "line", None)
    node = data
    for part in loc:
        if isinstance(node, _Located) and str(part) in node.lines:
            line = node.lines[str(part)]
            node = node[str(part)]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
            line = getattr(node, "line", line)
        else:
            break
    return line


def _expand_env(
    node: Any,
    path: tuple[Any, ...],
    missing: list[tuple[tuple[Any, ...], str]],
    spared: frozenset[str],
    environ: Mapping[str, str],
) -> Any:
    """Unset references under the top-level blocks in `spared` (sources, targets) are left as they
    are: a command that never talks to those systems needs none of their secrets."""
    if isinstance(node, dict):
        for key in list(node):
            node[key] = _expand_env(node[key], (*path, key), missing, spared, environ)
        return node
    if isinstance(node, list):
        return [_expand_env(v, (*path, i), missing, spared, environ) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:

        def sub(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name not in environ and default is not None:
                return default
            if name not in environ and path[:1] and path[0] in spared:
                return match.group(0)
            if name not in environ:
                missing.append((path, name))
                return ""
            return environ[name]

        return _ENV_REF.sub(sub, node)
    return node


def _drop_unset_tokens(data: dict[str, Any]) -> None:
    """A command that reads the engine's state, or speaks for one token holder (`approvals approve`,
    `provisioner mcp`), needs no one else's API token: a token whose ${VAR} is unset here is left
    out, so it names nobody (it is never its own literal text)."""
    api = data.get("api")
    if not isinstance(api, dict):
        return
    if isinstance(api.get("token"), str) and _ENV_REF.search(api["token"]):
        del api["token"]
    tokens = api.get("tokens")
    if isinstance(tokens, list):
        tokens[:] = [t for t in tokens if not (isinstance(t, dict) and _ENV_REF.search(str(t.get("token", ""))))]


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")


def load_config(
    path: str | Path,
    settings_check: SettingsCheck | None = None,
    *,
    target_check: SettingsCheck | None = None,
    path_keys: PathKeys | None = None,
    secrets: bool | Collection[str] = True,
    warn: Callable[[Problem], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read, expand and validate; raises ConfigError listing every problem. `settings_check` and
        `target_check` validate each source's and target's own settings, `path_keys` names a source's
        settings that are file paths (the CLI passes the registries'). Relative paths resolve against
        the config file's directory. `secrets`: True, False (none of the sources', targets' or API tokens'), or the
    blocks whose secrets are needed, e.g. ("sources",); see `_expand_env`. `warn` hears what is valid
    but probably not meant (`$VAR` without braces is sent as written). `environ`: the variables
    `${...}` reads (None: this process's); a reference to one it lacks is kept as written anywhere,
    so a config from someone else (an agent's proposed config) reads none of this process's secrets."""
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([Problem(file, None, "", f"cannot read: {exc.strerror}")]) from None
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([Problem(file, mark.line + 1 if mark else None, "", yaml_hint(exc, text))]) from None
    finally:
        loader.dispose()
    if data is None or data == {}:
        raise ConfigError([Problem(file, None, "", "the file is empty: a config needs at least a source or target")])
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, "", "the top level must be a mapping")])
    problems = [
        Problem(file, second, key, f"duplicate key (first at line {first}); YAML would keep only the last")
        for key, first, second in loader.duplicates
    ]
    problems += [
        Problem(file, _line_of(data, loc), _key(loc), "a secret is never written in the file: use ${VARIABLE}")
        for loc in _written_secrets(data)
    ]
    for loc, name in bare_refs(data) if warn is not None else ():
        assert warn is not None
        warn(
            Problem(
                file,
                _line_of(data, loc),
                _key(loc),
                f"${name} is sent as written: to use the variable write ${{{name}}}",
            )
        )
    missing: list[tuple[tuple[Any, ...], str]] = []
    spared = frozenset() if secrets is True else frozenset({"sources", "targets", "api"} - set(secrets or ()))
    if environ is not None:
        spared = frozenset(data)
    _expand_env(data, (), missing, spared, os.environ if environ is None else environ)
    if "api" in spared:
        _drop_unset_tokens(data)
    unset = [
        Problem(file, _line_of(data, loc), _key(loc), f"environment variable {name} is not set")
        for loc, name in missing
    ]
    resolve_paths(data, Path(path).absolute().parent, path_keys)
    config: Config | None = None
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        for loc, message in describe(Config, exc.errors()):
            problems.append(Problem(file, _line_of(data, loc), _key(loc), message))
    problems.extend(_cross_check(data, file, settings_check, target_check))
    problems = [p for p in problems if not _repeats(p, missing)] + unset
    problems.sort(key=lambda p: p.line or 0)
    if problems:
        from_env = env_values(m.group(1) for m in _ENV_REF.finditer(text))
        raise ConfigError([replace(p, message=redacted(p.message, from_env)) for p in problems])
    assert config is not None
    return config


def _repeats(problem: Problem, missing: list[tuple[tuple[Any, ...], str]]) -> bool:
    """A missing variable is one problem: what the schema or a connector then says of its empty
    value at that key, or of its block needing that key ("needs a base_url"), repeats it."""
    return any(
        problem.key == _key(loc) or (problem.key == _key(loc[:-1]) and str(loc[-1]) in problem.message)
        for loc, _ in missing
    )


def _written_secrets(data: Any) -> list[tuple[Any, ...]]:
    """Kafka credentials given as literals rather than `${ENV}` references (before expansion): a
    config file is copied, committed and shown; a password in it leaks with it."""
    kafka = data.get("kafka") if isinstance(data, dict) else None
    found = []
    for block, key in SECRET_KEYS:
        holder = kafka.get(block) if isinstance(kafka, dict) else None
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and value and not _ENV_REF.search(value):
            found.append(("kafka", block, key))
    return found


def _items(data: Any, key: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(key) if isinstance(data, dict) else None
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)] if isinstance(value, list) else []


def _cross_check(
    data: Any, file: str, settings_check: SettingsCheck | None, target_check: SettingsCheck | None
) -> list[Problem]:
    """What the schema cannot say: unique names, references to real targets, expressions that compile.

    Works on the raw data, so these problems are reported together with the schema's own."""
    problems = []

    def problem(loc: tuple[Any, ...], message: str) -> None:
        problems.append(Problem(file, _line_of(data, loc), _key(loc), message))

    def compiles(loc: tuple[Any, ...], source: Any, kind: type[Template] | type[Condition], owner: str) -> None:
        if isinstance(source, str):
            try:
                compiled = kind(source)
            except TemplateError as exc:
                problem(loc, f"{owner}: {exc}")
                return
            for name in attributes_of(compiled.tree, "worker"):
                if name not in WORKER_FIELDS:
                    hint = did_you_mean(name, WORKER_FIELDS)
                    problem(loc, f"{owner}: worker has no field {name!r}{hint} in {source!r}")

    for kind in ("sources", "targets", "policies"):
        seen: set[str] = set()
        for i, item in _items(data, kind):
            if item.get("name") in seen:
                problem((kind, i, "name"), f"duplicate name {item['name']!r}")
            seen.add(str(item.get("name")))
    targets = {str(t.get("name")) for _, t in _items(data, "targets")}
    known = ", ".join(sorted(targets)) or "none"
    for i, policy in _items(data, "policies"):
        owner = f"policy {policy.get('name')!r}"
        compiles(("policies", i, "when"), policy.get("when"), Condition, owner)
        for j, grant in _items(policy, "grant"):
            if "target" in grant and grant["target"] not in targets:
                problem(("policies", i, "grant", j, "target"), f"unknown target {grant['target']!r} (known: {known})")
            for k, group in enumerate(grant.get("groups") or []):
                compiles(("policies", i, "grant", j, "groups", k), group, Template, owner)
        for j, denied in enumerate(policy.get("deny") or []):
            if denied not in targets:
                problem(("policies", i, "deny", j), f"unknown target {denied!r} (known: {known})")
    for kind, check, common in (
        ("sources", settings_check, SourceConfig.model_fields),
        ("targets", target_check, TargetConfig.model_fields),
    ):
        for i, item in _items(data, kind) if check else []:
            assert check is not None
            for loc, message in check(item, set(common)):
                problem((kind, i, *loc), f"{kind[:-1]} {item.get('name')!r}: {message}")
    for i, target in _items(data, "targets"):
        mapping = target.get("mapping")
        for path, source in mapping.items() if isinstance(mapping, dict) else []:
            compiles(("targets", i, "mapping", path), source, Template, f"target {target.get('name')!r}")
    for loc, message in writeback_problems(data) if isinstance(data, dict) else []:
        problem(loc, message)
    for i, test in _items(data, "tests"):
        expect = test.get("expect")
        for name in expect if isinstance(expect, dict) else {}:
            if name not in targets:
                problem(("tests", i, "expect", name), f"unknown target {name!r} (known: {known})")
    return problems
