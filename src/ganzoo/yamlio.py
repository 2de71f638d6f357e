"""Reading recipe text: any bytes give a mapping or one ``GanzooError``, never another exception.

``yaml.safe_load`` constructs no objects from tags, but on its own it accepts duplicate keys (the last one
silently wins), aliases that expand without bound (a "billion laughs" document), text in any encoding it is
handed, and nesting deep enough to exhaust the stack. Here: UTF-8 (or UTF-16/32 with a byte-order mark) only;
a duplicate key is an error naming it and its line; aliases may expand to at most ``MAX_NODES`` values.
"""

from __future__ import annotations

import codecs
import re

import yaml

from .errors import GanzooError

MAX_NODES = 100_000
MAX_BYTES = 10_000_000


class _Loader(yaml.SafeLoader):
    """safe_load's loader, refusing duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base`: merged keys may be overridden, that is no duplicate
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, f"a key that is a {type(key).__name__}",
                                                        key_node.start_mark) from None
            if key in seen:
                raise DuplicateKey(f"duplicate key '{key}' (lines {seen[key] + 1} and {key_node.start_mark.line + 1})")
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


class DuplicateKey(Exception):
    pass


# Numbers as YAML 1.2 reads them (its core schema), not YAML 1.1: `010` is ten (1.1: octal eight), `1:30` is text
# (1.1: ninety), `1e-4` is a number (1.1: text, for want of a dot), `0o17` and `0x1f` are octal and hex.
_INT, _FLOAT = "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"
_Loader.yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT)]
                                   for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver(_INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789"))
_Loader.add_implicit_resolver(
    _FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


def _int(loader, node) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _float(loader, node) -> float:
    text = loader.construct_scalar(node).lower()
    return float(text.replace(".inf", "inf").replace(".nan", "nan"))


_Loader.add_constructor(_INT, _int)
_Loader.add_constructor(_FLOAT, _float)


def decode(data: bytes, where: str) -> str:
    if len(data) > MAX_BYTES:
        raise GanzooError(f"{where}: {len(data)} bytes is not a recipe (over {MAX_BYTES // 1_000_000} MB)")
    for bom, codec in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF16_LE, "utf-16"),
                       (codecs.BOM_UTF16_BE, "utf-16"), (codecs.BOM_UTF8, "utf-8-sig")):
        if data.startswith(bom):
            break
    else:
        codec = "utf-8"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as exc:
        raise GanzooError(f"{where}: not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); save the recipe as UTF-8") from None
    if "\x00" in text:
        raise GanzooError(f"{where}: not a text file (it contains NUL characters)")
    return text


def _expanded_size(node, memo: dict, depth: int = 0) -> int:
    """How many values the node stands for once every alias is expanded (shared nodes counted each time)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if depth > 500:
        raise GanzooError("nested more than 500 levels deep")
    memo[key] = 1  # a node that contains itself (a recursive alias) counts once here; it is refused below
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(n, memo, depth + 1) for n in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_NODES + 1)
    return memo[key]


def _recursive(node, path: set) -> bool:
    if id(node) in path:
        return True
    if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
        path.add(id(node))
        children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
        found = any(_recursive(n, path) for n in children)
        path.discard(id(node))
        return found
    return False


def load(text: str, where: str):
    """The YAML document in ``text`` as Python data; every problem is a ``GanzooError`` naming ``where``."""
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if _expanded_size(node, {}) > MAX_NODES:
                raise GanzooError(f"{where}: its aliases expand to more than {MAX_NODES:,} values; a recipe needs far fewer")
            if _recursive(node, set()):
                raise GanzooError(f"{where}: an alias refers to the node that contains it (a recursive structure)")
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except DuplicateKey as exc:
        raise GanzooError(f"{where}: {exc}; give each key once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise GanzooError(f"{where}: not valid YAML{at}: {problem}") from None
    except RecursionError:
        raise GanzooError(f"{where}: nested too deeply to be a recipe") from None
    except (ValueError, OverflowError, TypeError) as exc:  # e.g. a timestamp out of range
        raise GanzooError(f"{where}: a value YAML cannot represent here: {exc}") from None
