"""What a user copies from the README and docs/ must exist: flags, config keys, API names.

Every ``ccgraph ...`` command shown (in code blocks and inline code) is checked against the
argparse parser, every backticked ``section.key`` against the pydantic models, and every Python
block is parsed: its ``ccgraph`` imports must resolve and its calls of ccgraph functions must
bind to their signatures (positional count and keyword names). Running the snippets needs the
shared data and the text model, so that is left to the docs sweep; this keeps the spelling honest.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import shlex
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ccgraph.cli import build_parser
from ccgraph.config import Config

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SPAN = re.compile(r"`([^`]+)`")
# Dotted names in backticks that are neither config keys nor importable ccgraph names.
NOT_KEYS = {"graph.npz"}


def _blocks(text: str, *langs: str) -> list[str]:
    return [m.group(2) for m in FENCE.finditer(text) if m.group(1) in langs]


def _without_blocks(text: str) -> str:
    return FENCE.sub("", text)


def _spans(text: str) -> list[str]:
    """Inline code outside fenced blocks, whitespace collapsed (a span may wrap a line)."""
    prose = _without_blocks(text).replace("``", "")  # empty spans (config.md's defaults)
    return [" ".join(span.split()) for span in SPAN.findall(prose)]


def _commands(text: str) -> list[str]:
    """``ccgraph ...`` command lines in code blocks and inline code."""
    found = []
    for block in _blocks(text, "", "bash", "sh", "console"):
        for line in block.splitlines():
            for part in re.split(r"&&|\|", line.split("#", 1)[0]):
                if part.strip().startswith("ccgraph "):
                    found.append(part.strip())
    for span in _spans(text):
        if span.startswith("ccgraph "):
            found.append(span)
    return found


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _unknown_flags(command: str, parser: argparse.ArgumentParser) -> list[str]:
    try:
        tokens = shlex.split(command)[1:]
    except ValueError:  # an unbalanced quote in prose
        tokens = command.split()[1:]
    bad, current = [], parser
    for tok in tokens:
        subs = _subparsers(current)
        if tok in subs:
            current = subs[tok]
            continue
        if tok.startswith("--") or re.fullmatch(r"-[a-zA-Z]", tok):
            flag = tok.split("=", 1)[0].rstrip(".,;:)]")
            if flag not in current._option_string_actions:
                bad.append(flag)
    return bad


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_of(arg)
        if found is not None:
            return found
    return None


def _is_config_key(key: str) -> bool:
    model: type[BaseModel] | None = Config
    for part in key.split("."):
        if model is None or part not in model.model_fields:
            return False
        model = _model_of(model.model_fields[part].annotation)
    return True


def _is_api_name(dotted: str) -> bool:
    """``ccgraph.<dotted>`` is a module or an attribute of one (``propagate.spread_tags``)."""
    parts = ["ccgraph", *dotted.split(".")]
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def _config_keys(text: str) -> list[str]:
    sections = "|".join(Config.model_fields)
    pattern = re.compile(rf"^((?:{sections})(?:\.[A-Za-z_]\w*)+)(?:\s*[=:].*)?$")
    keys = []
    for span in _spans(text):
        m = pattern.match(span.strip("'\""))
        if m:
            keys.append(m.group(1))
    for command in _commands(text):
        keys += [m.group(1) for m in re.finditer(r"--set\s+'?([a-z_]+(?:\.\w+)+)=", command)]
    return keys


def _resolve(expr: ast.expr, names: dict[str, Any]) -> Any:
    if isinstance(expr, ast.Name):
        return names.get(expr.id)
    if isinstance(expr, ast.Attribute):
        base = _resolve(expr.value, names)
        return None if base is None else getattr(base, expr.attr, None)
    return None


def _python_problems(code: str) -> list[str]:
    tree = ast.parse(code)
    names: dict[str, Any] = {}
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ccgraph":
                    names[alias.asname or alias.name.split(".")[0]] = importlib.import_module(
                        alias.name.split(".")[0]
                    )
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ccgraph"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                if not hasattr(module, alias.name):
                    problems.append(f"`from {node.module} import {alias.name}`: no such name")
                else:
                    names[alias.asname or alias.name] = getattr(module, alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = _resolve(node.func, names)
        if func is None or not callable(func) or not hasattr(func, "__module__"):
            continue
        if not str(getattr(func, "__module__", "")).startswith("ccgraph"):
            continue
        try:
            sig = inspect.signature(func)
        except (TypeError, ValueError):
            continue
        args = [None] * len(node.args)
        kwargs = {kw.arg: None for kw in node.keywords if kw.arg is not None}
        try:
            sig.bind(*args, **kwargs)
        except TypeError as exc:
            problems.append(f"`{ast.unparse(node)[:60]}...`: {exc}")
    return problems


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_cli_flags_exist(doc: Path) -> None:
    parser = build_parser()
    text = doc.read_text(encoding="utf-8")
    bad = {cmd: flags for cmd in _commands(text) if (flags := _unknown_flags(cmd, parser))}
    assert not bad, f"{doc.name}: flags that `ccgraph ... --help` does not list: {bad}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_config_keys_exist(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    bad = sorted(
        {
            key
            for key in _config_keys(text)
            if key not in NOT_KEYS and not _is_config_key(key) and not _is_api_name(key)
        }
    )
    assert not bad, f"{doc.name}: neither config keys (docs/config.md) nor ccgraph names: {bad}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_python_snippets_match_the_api(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    problems = [p for block in _blocks(text, "python") for p in _python_problems(block)]
    assert not problems, f"{doc.name}: {problems}"


def test_the_checks_catch_drift() -> None:
    """The three checks flag a misspelt flag, key and keyword (they can fail)."""
    parser = build_parser()
    assert _unknown_flags("ccgraph run CONFIG --sett a=1", parser) == ["--sett"]
    assert _unknown_flags("ccgraph experiment plan RUN R --rule random", parser) == []
    assert _unknown_flags("ccgraph experiment plan RUN R --rules random", parser) == ["--rules"]
    assert not _is_config_key("graph.kk") and _is_config_key("propagate.tags.alpha")
    assert _is_api_name("propagate.spread_tags") and not _is_api_name("propagate.spread_tagz")
    assert _python_problems("from ccgraph.graph import build_knn_graph\nbuild_knn_graph(e, kk=1)")
    assert _python_problems("from ccgraph.graph import build_knn_graf")
    assert not _python_problems(
        "from ccgraph.graph import build_knn_graph\nbuild_knn_graph(e, k=1)"
    )
