"""What metrics the code exports, and what metrics a PromQL expression names.

Shared by the alert-rule and dashboard tests: a rule or panel against a metric nobody
exports never fires and never draws, and looks healthy doing it. The exports are read from
the source (every `prometheus_client` metric constructed with a literal name), so a metric
added anywhere in the three service packages is known without editing this file.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("operator_data", "gateway", "p2apst_adapter")

# Labels Prometheus attaches to every scraped series, and series it makes itself.
TARGET_LABELS = frozenset({"job", "instance"})
PROMETHEUS_SERIES = {"up": frozenset[str]()}

# The sample names each prometheus_client type exposes for a metric called `name`.
_SUFFIXES = {
    "Gauge": ("",),
    "Counter": ("_total", "_created"),
    "Histogram": ("_bucket", "_sum", "_count", "_created"),
    "Summary": ("_sum", "_count", "_created"),
    "Info": ("_info",),
    "Enum": ("",),
}
_LABELNAMES_POSITION = 2  # Gauge(name, documentation, labelnames, ...)

_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "inf", "nan", "start", "end"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_RANGE = re.compile(r"\[[^\]]*\]")
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_SELECTOR = re.compile(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][A-Za-z0-9_:]*)(\s*\()?")


def exported_metrics(root: Path = ROOT) -> dict[str, frozenset[str]]:
    """Every sample name the service packages export, with the label names it carries."""
    found: dict[str, frozenset[str]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                metric = _metric_call(node)
                if metric is not None:
                    kind, name, labels = metric
                    for suffix in _SUFFIXES[kind]:
                        found[name + suffix] = labels
    return found


def _metric_call(node: ast.AST) -> tuple[str, str, frozenset[str]] | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    kind = (
        func.id
        if isinstance(func, ast.Name)
        else func.attr
        if isinstance(func, ast.Attribute)
        else None
    )
    if kind not in _SUFFIXES:
        return None
    name_node = node.args[0] if node.args else _keyword(node, "name")
    if not (isinstance(name_node, ast.Constant) and isinstance(name_node.value, str)):
        return None
    labels_node = (
        node.args[_LABELNAMES_POSITION]
        if len(node.args) > _LABELNAMES_POSITION
        else _keyword(node, "labelnames")
    )
    labels: set[str] = set()
    if isinstance(labels_node, ast.List | ast.Tuple):
        labels = {
            item.value
            for item in labels_node.elts
            if isinstance(item, ast.Constant) and isinstance(item.value, str)
        }
    name = name_node.value
    if kind == "Counter":
        name = name.removesuffix("_total")
    return kind, name, frozenset(labels)


def _keyword(node: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg == name), None)


@dataclass
class Names:
    """The metric names an expression selects, the labels it matches on each, and the
    labels it groups or joins by."""

    metrics: dict[str, set[str]] = field(default_factory=dict)
    grouping: set[str] = field(default_factory=set)


def names_in(expr: str) -> Names:
    """The metrics named in a PromQL expression (a light reading, not a parser: strings,
    ranges and Grafana variables are dropped first; promtool checks the syntax)."""
    names = Names()
    text = _GRAFANA_VARIABLE.sub("", _RANGE.sub("", _STRING.sub('""', expr)))
    for match in _LABEL_LIST.finditer(text):
        names.grouping.update(part.strip() for part in match.group(2).split(",") if part.strip())
    text = _LABEL_LIST.sub(" ", text)
    for match in _SELECTOR.finditer(text):
        labels = set(_MATCHER.findall(match.group(2)))
        if match.group(1) is not None:
            names.metrics.setdefault(match.group(1), set()).update(labels)
        else:  # {__name__="..."} names a metric we cannot see after the strings are gone
            raise AssertionError(f"selector without a metric name in {expr!r}")
    text = _SELECTOR.sub(" ", text)
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call is None and word.lower() not in _KEYWORDS:
            names.metrics.setdefault(word, set())
    return names


def problems(expr: str, exported: dict[str, frozenset[str]]) -> list[str]:
    """What in `expr` is not exported: unknown metrics, labels a metric does not carry."""
    known = {**PROMETHEUS_SERIES, **exported}
    every_label = TARGET_LABELS.union(*known.values())
    names = names_in(expr)
    found: list[str] = []
    if not names.metrics:
        found.append(f"{expr!r} names no metric")
    for metric, labels in sorted(names.metrics.items()):
        if metric not in known:
            found.append(f"{metric} is not exported by {', '.join(PACKAGES)}")
            continue
        for label in sorted(labels - known[metric] - TARGET_LABELS):
            found.append(f"{metric} has no label {label!r} (it has {sorted(known[metric])})")
    for label in sorted(names.grouping - every_label):
        found.append(f"no exported metric has the label {label!r} grouped on")
    return found


def promtool() -> str:
    """The promtool binary (Debian `prometheus`); CI (PINTAR_REQUIRE_SERVICES=1) fails
    without it, elsewhere the test skips."""
    path = shutil.which("promtool")
    if path is not None:
        return path
    message = "promtool is not installed (Debian package prometheus, scripts/apt-packages.txt)"
    if os.environ.get("PINTAR_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{message} and PINTAR_REQUIRE_SERVICES=1")
    pytest.skip(message)
