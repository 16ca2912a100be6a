"""Validation errors worded for a person: an unknown key says which key was probably meant."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

Located = tuple[tuple[Any, ...], str]


def did_you_mean(name: Any, known: Iterable[str]) -> str:
    """' (did you mean 'poll_interval'?)' for 'pol_interval', or nothing when no name is close."""
    close = difflib.get_close_matches(str(name), sorted(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_key(key: Any, known: Iterable[str]) -> str:
    """'unknown key 'pol_interval' (did you mean 'poll_interval'?)'."""
    return f"unknown key {str(key)!r}" + did_you_mean(key, known)


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold: Model, Model | None, list[Model], dict[str, Model]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, dict, tuple, set, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _models(arg)]
    return []


def _tag(model: type[BaseModel]) -> Any:
    """The value that picks this model in a tagged union: its one single-valued Literal field
    (`style: Literal["page"]`, `type: Literal["basic"]`), or None."""
    for field in model.model_fields.values():
        if typing.get_origin(field.annotation) is typing.Literal and len(typing.get_args(field.annotation)) == 1:
            return typing.get_args(field.annotation)[0]
    return None


def _walk(model: type[BaseModel], loc: Sequence[Any]) -> tuple[tuple[Any, ...], list[type[BaseModel]]]:
    """A location as the YAML has it and the models it leads to. Pydantic puts the chosen tag of a
    tagged union in the location (`paging.link_header.next`); the YAML has no such key, so it is
    dropped and the models narrowed to the tagged one (list indexes and dict keys are skipped)."""
    current, kept = [model], []
    for part in loc:
        # Right after a union's field comes the tag, even one that is also a key (`type: header`).
        tagged = [c for c in current if _tag(c) == part]
        if len(current) > 1 and tagged:
            current = tagged
            continue
        kept.append(part)
        if isinstance(part, int):
            continue
        found = [m for c in current if part in c.model_fields for m in _models(c.model_fields[part].annotation)]
        if found:
            current = found
    return tuple(kept), current


def fields_at(model: type[BaseModel], loc: Sequence[Any]) -> set[str]:
    """The keys a model accepts at a location inside it."""
    return {name for c in _walk(model, loc)[1] for name in c.model_fields}


def describe(model: type[BaseModel], errors: list[ErrorDetails], known: Iterable[str] = ()) -> list[Located]:
    """Pydantic's errors as (location, message); `known` adds keys accepted next to the model's own
    at its top level (a source entry's common keys)."""
    extra = set(known)
    described = []
    for error in errors:
        loc = _walk(model, error["loc"])[0]
        if error["type"] == "extra_forbidden" and loc:
            accepted = fields_at(model, error["loc"][:-1]) | (extra if len(loc) == 1 else set())
            described.append((loc, unknown_key(loc[-1], accepted)))
        elif error["type"] == "union_tag_invalid":  # `style: cursor` of a paging block, say
            described.append(_unknown_tag(loc, error.get("ctx") or {}))
        else:
            # Our own validators' messages, without pydantic's "Value error, " in front of them
            described.append((loc, error["msg"].removeprefix("Value error, ")))
    return described


def _unknown_tag(loc: tuple[Any, ...], ctx: dict[str, Any]) -> Located:
    """The tag of a tagged union that names none of its members, told at the tag's own key."""
    key = str(ctx.get("discriminator", "")).strip("'")
    known = [tag.strip(" '") for tag in str(ctx.get("expected_tags", "")).split(",")]
    tag = ctx.get("tag")
    return (*loc, key), f"unknown {key} {tag!r}{did_you_mean(tag, known)}; known: {', '.join(known)}"
