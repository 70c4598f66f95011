"""The network spec: the only place where user input is checked.

A spec comes from a TOML file, a preset (a TOML file shipped in the package), or CLI flags turned into
the same dictionary. Every key is checked here, once; everything downstream trusts the record.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import sympy as sp

from derive.activations import ACTIVATIONS, DEFAULT_LEAKY_SLOPE, Activation, get_activation
from derive.errors import DeriveError
from derive.losses import LOSSES, Loss, get_loss

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
GREEK = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho "
         "sigma tau upsilon phi chi psi omega").split()
# A notation letter: one Latin letter or a Greek letter's name, optionally with a hat (yhat → ŷ).
LETTER_PATTERN = re.compile(rf"(?:[A-Za-z]|{'|'.join(GREEK)}|{'|'.join(g.capitalize() for g in GREEK)})(?:hat)?")

CHOICES = {
    "convention": ("column", "row"),
    "layout": ("gradient", "numerator"),
    "vec": ("row-major", "column-major"),
    "target": ("vector", "index"),
    "batch": ("mean", "sum"),
    "backward": ("delta", "g", "nabla"),
    "index_style": ("paren", "bracket", "subscript"),
    "relu_prime": ("indicator", "prime", "sign"),
}


@dataclass(frozen=True)
class Notation:
    """Display letters; the JSON's component symbol names never change with these."""

    input: str = "x"
    pre: str = "z"          # pre-activation (seed 002 writes s, seed 003 a)
    post: str = "h"         # activation (seed 002 writes z, seed 001 a)
    output: str = "yhat"
    target: str = "y"
    weight: str = "W"
    bias: str = "b"
    loss: str = "L"
    backward: str = "delta"  # delta: δ⁽ˡ⁾; g: g^[l z]; nabla: ∇_z L
    index_style: str = "paren"
    output_layer: str = ""  # a name for the last layer's index, e.g. "o" for W^(o)
    output_pre: str = ""    # a letter of its own for the last pre-activation, e.g. "o" (o = W^(o) h^(2))
    relu_prime: str = "prime"
    activation_names: bool = True


@dataclass(frozen=True)
class Display:
    """Which of the seeds' teaching devices a handout shows (each once, at one layer)."""

    chains: bool = False        # every parameter's chain of Jacobians, the part that is δ marked (seed 000)
    paths: bool = True          # the sum over paths at one hidden unit, then stacked (seeds 001, 003, 004)
    unit: bool = False          # one hidden unit derived with scalars before stacking (seed 001)
    dependency: bool = True     # which entries of a Jacobian are zero, and why, before its values (seed 000)
    weight_column: bool = True  # the column of the flattened-weight Jacobian for one weight (seed 004)
    flattened_row: bool = True  # the 1 × mn row of ∂L/∂vec(W) before it is regrouped (seed 000)
    index_form: bool = True     # one generic entry of every step, in index notation, at any size (seed 002)
    full_layers: bool = False   # every hidden layer written out in full, not only the first of its kind
    focus_layer: int = 0        # the layer the one-off devices use; 0: the first, going backward, whose
                                # weight has two rows and two columns


@dataclass(frozen=True)
class LayerSpec:
    units: int
    activation: str = "identity"
    bias: bool = True
    slope: str | None = None  # leaky_relu only

    def resolve(self) -> Activation:
        slope = sp.Rational(self.slope) if self.slope is not None else None
        return get_activation(self.activation, slope)


@dataclass(frozen=True)
class LossSpec:
    kind: str = "half_sse"
    target: str = "vector"
    batch: str = "mean"

    def resolve(self) -> Loss:
        return get_loss(self.kind)


@dataclass(frozen=True)
class Example:
    """Worked numbers, exact: inputs and every parameter as SymPy rationals (classes 1-based)."""

    x: tuple[sp.Rational, ...]
    y: tuple[sp.Rational, ...] | int
    params: tuple[tuple[str, tuple[tuple[sp.Rational, ...], ...]], ...]

    def param(self, name: str) -> tuple[tuple[sp.Rational, ...], ...]:
        return dict(self.params)[name]


@dataclass(frozen=True)
class NetworkSpec:
    input: int
    layers: tuple[LayerSpec, ...]
    loss: LossSpec = LossSpec()
    name: str = "network"
    title: str = ""
    convention: str = "column"
    layout: str = "gradient"
    vec: str = "row-major"
    notation: Notation = field(default_factory=Notation)
    example: Example | None = None
    description: str = ""
    display: Display = field(default_factory=Display)

    @property
    def widths(self) -> tuple[int, ...]:
        return (self.input, *(layer.units for layer in self.layers))

    def to_dict(self) -> dict[str, Any]:
        """The spec with every default filled in, under the TOML's own keys."""
        out: dict[str, Any] = {
            "name": self.name, "title": self.title, "input": self.input,
            "convention": self.convention, "layout": self.layout, "vec": self.vec,
            "layer": [{k: (float(sp.Rational(v)) if k == "slope" else v) for k, v in asdict(layer).items()
                       if v is not None} for layer in self.layers],
            "loss": asdict(self.loss),
            "notation": asdict(self.notation),
            "display": asdict(self.display),
        }
        if self.description:
            out["description"] = self.description
        if self.example is not None:
            ex = self.example
            out["example"] = {
                "x": [str(v) for v in ex.x],
                "y": ex.y if isinstance(ex.y, int) else [str(v) for v in ex.y],
                **{name: [[str(v) for v in row] for row in rows] for name, rows in ex.params},
            }
        return out


# ----------------------------------------------------------------------------------------------
# Checking a parsed dictionary

_TOP_KEYS = ("name", "title", "description", "input", "convention", "layout", "vec", "layer", "loss",
             "notation", "display", "example")
_LAYER_KEYS = ("units", "activation", "bias", "slope")
_LOSS_KEYS = ("kind", "target", "batch")
_NOTATION_KEYS = tuple(Notation.__dataclass_fields__)
_DISPLAY_KEYS = tuple(Display.__dataclass_fields__)


def _unknown_keys(table: dict[str, Any], valid: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid)}"
            raise DeriveError(f"unknown key {key!r}{hint}", where)


def _int(value: Any, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DeriveError(f"must be a whole number, got {value!r}", where)
    if value < minimum:
        raise DeriveError(f"must be at least {minimum}, got {value}", where)
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DeriveError(f"must be a string, got {value!r}", where)
    return value


def _line(value: Any, where: str) -> str:
    """One line of printable text: a title or description is quoted in every output, and a line
    break or control character would break a docstring or a terminal's display."""
    text = _str(value, where)
    if not text.isprintable():
        odd = next(ch for ch in text if not ch.isprintable())
        raise DeriveError(f"must be one line of printable text, and has {odd!r}", where)
    return text


def _choice(value: Any, key: str, where: str) -> str:
    value = _str(value, where)
    if value not in CHOICES[key]:
        raise DeriveError(f"{value!r} is not one of {', '.join(CHOICES[key])}", where)
    return value


def _layer(table: Any, where: str) -> LayerSpec:
    if not isinstance(table, dict):
        raise DeriveError("must be a table with at least 'units'", where)
    _unknown_keys(table, _LAYER_KEYS, where)
    if "units" not in table:
        raise DeriveError("missing 'units'", where)
    units = _int(table["units"], f"{where}.units")
    activation = _str(table.get("activation", "identity"), f"{where}.activation").strip()
    bias = table.get("bias", True)
    if not isinstance(bias, bool):
        raise DeriveError(f"must be true or false, got {bias!r}", f"{where}.bias")
    slope = None
    if "slope" in table:
        if activation != "leaky_relu":
            raise DeriveError("'slope' applies only to activation = \"leaky_relu\"", f"{where}.slope")
        raw = table["slope"]
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise DeriveError(f"must be a number, got {raw!r}", f"{where}.slope")
        slope = str(sp.Rational(str(raw)))
    elif activation == "leaky_relu":
        slope = str(DEFAULT_LEAKY_SLOPE)
    if activation == "softmax" and units == 1:
        raise DeriveError("a softmax over one unit is always 1: its output, and every gradient through it, is "
                          "constant; give the layer two units or more", f"{where}.units")
    spec = LayerSpec(units, activation, bias, slope)
    try:
        spec.resolve()  # unknown names and malformed expressions fail here, with the layer named
    except DeriveError as err:
        raise err.at(f"{where}.activation") from None
    return spec


def _notation(table: Any, where: str) -> Notation:
    if not isinstance(table, dict):
        raise DeriveError("must be a table", where)
    _unknown_keys(table, _NOTATION_KEYS, where)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        at = f"{where}.{key}"
        if key in ("backward", "index_style", "relu_prime"):
            values[key] = _choice(raw, key, at)
        elif key == "activation_names":
            if not isinstance(raw, bool):
                raise DeriveError(f"must be true or false, got {raw!r}", at)
            values[key] = raw
        elif key in ("output_layer", "output_pre"):
            text = _str(raw, at)
            if text and not LETTER_PATTERN.fullmatch(text):
                raise DeriveError(f"{text!r} is not a letter or a Greek letter's name", at)
            values[key] = text
        else:
            text = _str(raw, at)
            if not LETTER_PATTERN.fullmatch(text):
                raise DeriveError(f"{text!r} is not a letter, a Greek letter's name, or either + 'hat'", at)
            values[key] = text
    notation = Notation(**values)
    _distinct_letters(notation, table, where)
    return notation


_LETTER_ROLES = ("input", "pre", "post", "target", "weight", "bias", "loss")
_INDEX_LETTERS = ("i", "j", "k", "l", "m", "p", "r", "L")  # index notation's indices, and L for the output layer


def _distinct_letters(n: Notation, given: dict[str, Any], where: str) -> None:
    """Two roles written with one letter would say two things at once (h⁽¹⁾ = relu(h⁽¹⁾)): refused, naming
    the role the spec set (or the later one)."""
    def refuse(role: str, other: str, letter: str) -> None:
        blame, rest = (role, other) if role in given else (other, role)
        raise DeriveError(f"{blame} and {rest} are both written {letter!r}: each role needs a letter of its own",
                          f"{where}.{blame}")

    seen: dict[str, str] = {}
    for role in _LETTER_ROLES:
        letter = getattr(n, role)
        if letter in seen:
            refuse(role, seen[letter], letter)
        seen[letter] = role
    if n.output in seen and seen[n.output] != "post":  # ŷ written a^[3] as the activations' letter: fine
        refuse("output", seen[n.output], n.output)
    if n.output_pre and (n.output_pre in seen or n.output_pre == n.output):
        refuse("output_pre", seen.get(n.output_pre, "output"), n.output_pre)
    reserved = {"g": "g", "delta": "delta"}.get(n.backward)
    for role in (*_LETTER_ROLES, "output", "output_pre"):
        if reserved and getattr(n, role) == reserved:
            raise DeriveError(f"{reserved!r} writes the gradients in backward = {n.backward!r}; give {role} another "
                              "letter", f"{where}.{role}")
    if n.output_layer in _INDEX_LETTERS:
        raise DeriveError(f"{n.output_layer!r} is an index of the index notation; name the output layer otherwise",
                          f"{where}.output_layer")


def _display(table: Any, depth: int, where: str) -> Display:
    if not isinstance(table, dict):
        raise DeriveError("must be a table", where)
    _unknown_keys(table, _DISPLAY_KEYS, where)
    values: dict[str, Any] = {}
    for key, raw in table.items():
        at = f"{where}.{key}"
        if key == "focus_layer":
            values[key] = _int(raw, at, minimum=0)
            if values[key] > depth:
                raise DeriveError(f"there is no layer {values[key]}: the network has {depth}", at)
        else:
            if not isinstance(raw, bool):
                raise DeriveError(f"must be true or false, got {raw!r}", at)
            values[key] = raw
    return Display(**values)


def _number(value: Any, where: str) -> sp.Rational:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DeriveError(f"must be a number, got {value!r}", where)
    return sp.Rational(str(value))  # 0.1 is one tenth, exactly, as the author wrote it


def _vector(value: Any, n: int, where: str) -> tuple[sp.Rational, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise DeriveError(f"must be a list of {n} numbers", where)
    return tuple(_number(v, f"{where}[{i + 1}]") for i, v in enumerate(value))


def _matrix(value: Any, shape: tuple[int, int], where: str) -> tuple[tuple[sp.Rational, ...], ...]:
    rows, cols = shape
    if not isinstance(value, list) or len(value) != rows:
        raise DeriveError(f"must be {rows} rows of {cols} numbers (shape {rows}×{cols})", where)
    return tuple(_vector(row, cols, f"{where}[{i + 1}]") for i, row in enumerate(value))


def _example(table: Any, input_width: int, layers: tuple[LayerSpec, ...], loss: LossSpec,
             convention: str, where: str) -> Example:
    if not isinstance(table, dict):
        raise DeriveError("must be a table", where)
    expected = ["x", "y"]
    widths = (input_width, *(layer.units for layer in layers))
    shapes: dict[str, tuple[int, int]] = {}
    for l, layer in enumerate(layers, start=1):
        n_in, n_out = widths[l - 1], widths[l]
        shapes[f"W{l}"] = (n_out, n_in) if convention == "column" else (n_in, n_out)
        expected.append(f"W{l}")
        if layer.bias:
            expected.append(f"b{l}")
    _unknown_keys(table, tuple(expected), where)
    for key in expected:
        if key not in table:
            raise DeriveError(f"missing {key!r}", where)
    x = _vector(table["x"], input_width, f"{where}.x")
    k = widths[-1]
    if loss.target == "index":
        label = table["y"]
        if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= k:
            raise DeriveError(f"must be a class label from 1 to {k}, got {label!r}", f"{where}.y")
        y: tuple[sp.Rational, ...] | int = label
    else:
        y = _vector(table["y"], k, f"{where}.y")
    params = []
    for l, layer in enumerate(layers, start=1):
        params.append((f"W{l}", _matrix(table[f"W{l}"], shapes[f"W{l}"], f"{where}.W{l}")))
        if layer.bias:
            params.append((f"b{l}", (_vector(table[f"b{l}"], widths[l], f"{where}.b{l}"),)))
    return Example(x, y, tuple(params))


def spec_from_dict(data: dict[str, Any], where: str = "spec") -> NetworkSpec:
    """Check every key of a parsed spec; the first problem found is raised with its location."""
    _unknown_keys(data, _TOP_KEYS, where)
    name = _str(data.get("name", "network"), f"{where}: name")
    if not NAME_PATTERN.fullmatch(name):
        raise DeriveError(f"{name!r} is not a name: use letters, digits, '_' and '-'", f"{where}: name")
    title = _line(data.get("title", ""), f"{where}: title")
    description = _line(data.get("description", ""), f"{where}: description")
    if "input" not in data:
        raise DeriveError("missing 'input' (the width of x)", where)
    input_width = _int(data["input"], f"{where}: input")
    options = {key: _choice(data.get(key, CHOICES[key][0]), key, f"{where}: {key}")
               for key in ("convention", "layout", "vec")}
    raw_layers = data.get("layer")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise DeriveError("needs at least one [[layer]] table", where)
    layers = tuple(_layer(t, f"{where}: layer {i}") for i, t in enumerate(raw_layers, start=1))

    raw_loss = data.get("loss", {})
    if not isinstance(raw_loss, dict):
        raise DeriveError("must be a table", f"{where}: loss")
    _unknown_keys(raw_loss, _LOSS_KEYS, f"{where}: loss")
    kind = _str(raw_loss.get("kind", "half_sse"), f"{where}: loss.kind")
    if kind not in LOSSES:
        raise DeriveError(f"unknown loss {kind!r}; valid: {', '.join(LOSSES)}", f"{where}: loss.kind")
    loss = LossSpec(kind, _choice(raw_loss.get("target", "vector"), "target", f"{where}: loss.target"),
                    _choice(raw_loss.get("batch", "mean"), "batch", f"{where}: loss.batch"))
    _check_loss_fits(loss, layers, where)

    notation = _notation(data.get("notation", {}), f"{where}: notation")
    display = _display(data.get("display", {}), len(layers), f"{where}: display")
    example = None
    if "example" in data:
        example = _example(data["example"], input_width, layers, loss, options["convention"],
                           f"{where}: example")
    return NetworkSpec(input_width, layers, loss, name, title, options["convention"], options["layout"],
                       options["vec"], notation, example, description, display)


def _check_loss_fits(loss: LossSpec, layers: tuple[LayerSpec, ...], where: str) -> None:
    last = layers[-1].activation
    if loss.target == "index" and loss.kind != "ce":
        raise DeriveError("target = \"index\" (a class label) needs kind = \"ce\"", f"{where}: loss.target")
    if get_loss(loss.kind).needs_probabilities and last in ACTIVATIONS and last not in ("sigmoid", "softmax"):
        raise DeriveError(
            f"loss {loss.kind!r} takes logs of the outputs, so the last layer needs sigmoid or softmax "
            f"(it has {last!r})", f"{where}: layer {len(layers)}.activation")


# ----------------------------------------------------------------------------------------------
# Where specs come from


def load_spec_file(path: Path) -> NetworkSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DeriveError("no such file", str(path)) from None
    except (OSError, UnicodeDecodeError) as err:
        raise DeriveError(f"cannot read: {getattr(err, 'strerror', None) or err}", str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise DeriveError(f"invalid TOML: {err}", str(path)) from None
    return spec_from_dict(data, str(path))


def preset_names() -> list[str]:
    folder = resources.files("derive") / "presets"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    """A preset's TOML, comments and all: a spec to start from."""
    return (resources.files("derive") / "presets" / f"{name}.toml").read_text(encoding="utf-8")


def load_preset(name: str) -> NetworkSpec:
    return spec_from_dict(tomllib.loads(preset_text(name)), f"preset {name}")


def load_spec(source: str) -> NetworkSpec:
    """SPEC on the command line: a path to a TOML file, or a preset's name."""
    path = Path(source)
    if path.is_file() or source.endswith(".toml") or "/" in source:
        return load_spec_file(path)
    if source in preset_names():
        return load_preset(source)
    raise DeriveError(f"no such file or preset; presets: {', '.join(preset_names())}", source)


def _top_level_items(text: str) -> list[str]:
    """Split at commas outside parentheses, so that `2:Max(z, z/4),1:identity` is two layers."""
    items, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    return [*items, text[start:]]


def spec_from_flags(input_width: int | None, layers: str | None, **options: Any) -> NetworkSpec:
    """`--input 2 --layers 2:relu,1:identity --loss half_sse`, checked by the same code as files."""
    if input_width is None or not layers:
        raise DeriveError("give a SPEC (preset or file), or both --input and --layers", "command line")
    table: list[dict[str, Any]] = []
    for i, item in enumerate(_top_level_items(layers), start=1):
        units, _, activation = item.strip().partition(":")
        try:
            width = int(units)
        except ValueError:
            raise DeriveError(f"{item!r} is not UNITS:ACTIVATION", f"--layers item {i}") from None
        layer: dict[str, Any] = {"units": width, "activation": activation or "identity"}
        if options.get("no_bias"):
            layer["bias"] = False
        table.append(layer)
    data: dict[str, Any] = {"input": input_width, "layer": table}
    for key in ("name", "convention", "layout", "vec"):
        if options.get(key) is not None:
            data[key] = options[key]
    loss = {k: options[o] for k, o in (("kind", "loss"), ("target", "target"), ("batch", "batch"))
            if options.get(o) is not None}
    if loss:
        data["loss"] = loss
    return spec_from_dict(data, "command line")
