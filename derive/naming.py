"""Every name in one place: component symbols (fixed, for JSON and code) and block names.

Display names that follow a course's notation live in `derive.notation`; the names here never change.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from derive.activations import Activation


def component(block: str, i: int) -> str:
    """x_1, y_2, yhat_1, z1_3, h2_1, delta2_1 (1-based)."""
    return f"{block}_{i}"


def weight(layer: int, i: int, j: int) -> str:
    """Row i, column j of W{layer} as the convention stores it."""
    return f"W{layer}_{i}_{j}"


def bias(layer: int, i: int) -> str:
    return f"b{layer}_{i}"


def activation_block(layer: int, last: bool) -> str:
    return "yhat" if last else f"h{layer}"


def input_block(layer: int) -> str:
    """The block a layer reads: x for layer 1, h{l-1} after."""
    return "x" if layer == 1 else f"h{layer - 1}"


def delta(layer: int) -> str:
    return f"delta{layer}"


def upstream(layer: int) -> str:
    """∂L/∂h{layer}, the gradient arriving at a hidden layer's activations, shaped like h{layer}."""
    return f"dL_dh{layer}"


def derivative_block(layer: int) -> str:
    """The vector σ′(z{l}), the diagonal of ∂h{l}/∂z{l}."""
    return f"dact{layer}"


LOSS_GRADIENT = "gL"  # ∂L/∂ŷ as a vector
BATCH_ONES = "ones"  # the code's vector of ones, one per example: 1ᵀ Δ sums Δ over the batch


def jacobian(of: str, wrt: str) -> str:
    """A chain factor's name, d{of}/d{wrt}; weights are flattened: dz1/dW1 means ∂z1/∂vec(W1)."""
    return f"d{of}/d{wrt}"


def gradient(param: str) -> str:
    """dW1, db2: the code's names for gradients."""
    return f"d{param}"


def gradient_block(param: str) -> str:
    """The block name of ∂L/∂W1 (shaped by the layout)."""
    return f"dL_d{param}"


def vec_gradient_block(layer: int) -> str:
    """∂L/∂vec(W{layer}), the 1 × mn row of the chain rule."""
    return f"dL_dvecW{layer}"


# ------------------------------------------------------------------------------------------------
# Display names: how each block and component is written, in a course's notation, as text or LaTeX.


_GREEK_TEXT = dict(zip(
    ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau "
     "upsilon phi chi psi omega").split(),
    "αβγδεζηθικλμνξοπρστυφχψω",
))
_SUP = str.maketrans("0123456789()+-−=aeoixnhjlmrstuvwzLN", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁺⁻⁻⁼ᵃᵉᵒⁱˣⁿʰʲˡᵐʳˢᵗᵘᵛʷᶻᴸᴺ")
_SUB = str.maketrans("0123456789,ijkmprln", "₀₁₂₃₄₅₆₇₈₉,ᵢⱼₖₘₚᵣₗₙ")
_SUB_CHARS = "₀₁₂₃₄₅₆₇₈₉,ᵢⱼₖₘₚᵣₗₙ"

_COMPONENT = re.compile(r"(?P<block>x|y|yhat|(?:z|h|b|delta|dact|dL_dh)\d+)_(?P<i>\d+)"
                        r"|W(?P<l>\d+)_(?P<wi>\d+)_(?P<wj>\d+)")
_SCALAR_ROLES = {"z": "pre", "h": "post"}  # the names of activations.Z and activations.H
_LAYERED = re.compile(r"(?P<role>z|h|b|W|delta|dact|J|dL_dh)(?P<l>\d+)")
_WIDTH = re.compile(r"width(?P<l>\d+)")  # the symbolic widths of index notation: n_{l−1}, n_l, n_{l+1}


def letter_text(letter: str) -> str:
    hat = letter.endswith("hat") and len(letter) > 3
    base = letter[:-3] if hat else letter
    if base.lower() in _GREEK_TEXT:
        base = _GREEK_TEXT[base.lower()] if base.islower() else _GREEK_TEXT[base.lower()].upper()
    # Precomposed where Unicode has it (ŷ, ô): terminals draw those better than a combining hat.
    return unicodedata.normalize("NFC", base + "\u0302") if hat else base


def letter_latex(letter: str, bold: bool = False) -> str:
    hat = letter.endswith("hat") and len(letter) > 3
    base = letter[:-3] if hat else letter
    if base.lower() in _GREEK_TEXT:
        base = "\\" + base
        if bold:
            base = rf"\boldsymbol{{{base}}}"
    elif bold:
        base = rf"\mathbf{{{base}}}"
    return rf"\hat{{{base}}}" if hat else base


# User formulas are written f, g, φ, ψ, χ in order of first appearance, skipping letters the notation
# already uses: two different formulas never share a name, and a formula used twice keeps one.
_USER_FUNCTION_NAMES = ("f", "g", "φ", "ψ", "χ")


def function_names(activations: Sequence[Activation], taken: Collection[str] = ()) -> tuple[str, ...]:
    """Per layer, the name its activation is written with: σ, relu, tanh, … or a letter for a user formula."""
    free = [name for name in _USER_FUNCTION_NAMES if name not in taken]
    user: dict[object, str] = {}
    out = []
    for act in activations:
        if not act.user_defined:
            out.append(act.symbol)
            continue
        if act.formula not in user:
            k = len(user)
            user[act.formula] = free[k] if k < len(free) else f"f{k + 1}"
        out.append(user[act.formula])
    return tuple(out)


@dataclass(frozen=True)
class Display:
    """Names in one course's notation. `notation` is a spec.Notation; `functions` the activation names."""

    notation: object
    depth: int
    functions: tuple[str, ...]  # per layer, the name its activation is written with (σ, relu, tanh, f)
    labels: tuple[tuple[int, str], ...] = ()  # layer numbers written otherwise: ((1, "l"), (2, "l+1"))
    convention: str = "column"
    sizes: object | None = None  # a sizes.Sizes where a small instance stands for a wide network

    def side(self, n: int) -> int:
        """A side of a block (an identity's size) at the real width."""
        return self.sizes.dimension(n) if self.sizes is not None else n

    # -- pieces ------------------------------------------------------------------------------------

    def label(self, l: int) -> str:
        if l in dict(self.labels):
            return dict(self.labels)[l]
        out = self.notation.output_layer
        return out if out and l == self.depth else str(l)

    def _index(self, l: int, latex: bool, extra: str = "") -> str:
        """The layer index as the notation writes it; `extra` rides inside (g^[1 z])."""
        lab, style = self.label(l), self.notation.index_style
        if latex:
            lab = lab.replace("−", "-")
            if style == "paren":
                return f"^{{({lab}{extra})}}"
            if style == "bracket":
                return f"^{{[{lab}{extra}]}}"
            return f"_{{{lab}{extra}}}"
        if style == "subscript":
            if (lab + extra).isdigit():
                return (lab + extra).translate(_SUB)
            return f"_{lab}{extra}" if len(lab + extra) == 1 else f"_({lab}{extra})"  # h_(l−1), not h_l−1
        if style == "bracket":  # Unicode has no superscript brackets
            return f"^[{lab}{extra}]"
        sup = f"({lab}{extra})".translate(_SUP)
        return sup if all(c in "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾⁺⁻ᵃᵉᵒⁱˣⁿʰʲˡᵐʳˢᵗᵘᵛʷᶻᴸᴺ" for c in sup) else f"^({lab}{extra})"

    def letter(self, role: str, latex: bool, bold: bool = False) -> str:
        value = getattr(self.notation, role)
        return letter_latex(value, bold) if latex else letter_text(value)

    def _role(self, role: str) -> str:
        return {"z": "pre", "h": "post", "b": "bias", "W": "weight"}[role]

    def _output_indexed(self) -> bool:
        """The output written as the last layer's activation, a^[3], when the notation gives it the
        activations' letter (seed 001)."""
        return self.notation.output == self.notation.post

    def _pre_named(self, l: int) -> bool:
        """The last layer's pre-activation has a letter of its own (seed 004's o = W^(o) h^(2))."""
        return bool(self.notation.output_pre) and l == self.depth

    def row_named(self, name: str) -> bool:
        """∂L/∂ŷ and ∂L/∂h name the Jacobian's row; under the column convention the vector block of the
        same entries is then its transpose, (∂L/∂h)ᵀ. In ∇ and g notation the name is the vector's."""
        return (self.notation.backward == "delta" and self.convention == "column"
                and (name == LOSS_GRADIENT or name.startswith("dL_dh")))

    def column_named(self, name: str) -> bool:
        """∇_vec(W) L names a column, so the chain rule's row ∂L/∂vec(W) is written (∇_vec(W) L)ᵀ."""
        return self.notation.backward == "nabla" and self.convention == "column" and name.startswith("dL_dvecW")

    # -- blocks --------------------------------------------------------------------------------------

    def block(self, name: str, latex: bool = False, transposed: bool = False) -> str:
        """x, z⁽¹⁾, W⁽²⁾, δ⁽¹⁾, σ′(z⁽¹⁾), ∂L/∂W⁽¹⁾ ... for every block name the engine uses. A row-named
        block (`row_named`) is written with ᵀ unless `transposed` asks for its row."""
        if self.row_named(name) or self.column_named(name):
            text = self._gradient_block(name, latex)
            if transposed:
                return text
            return rf"\left({text}\right)^{{\top}}" if latex else f"({text})ᵀ"
        return self._gradient_block(name, latex) if name == LOSS_GRADIENT or name.startswith("dL_d") \
            else self._block(name, latex)

    def _gradient_block(self, name: str, latex: bool) -> str:
        n = self.notation
        if name == LOSS_GRADIENT:
            return self.gradient_of(self.block("yhat", latex), latex, layer_role=("a", self.depth))
        if name.startswith("dL_dvecW"):
            w = self.block("W" + name.removeprefix("dL_dvecW"), latex)
            inner = rf"\operatorname{{vec}}({w})" if latex else f"vec({w})"
            grad = self.gradient_of(inner, latex, layer_role=("W", int(name.removeprefix("dL_dvecW"))))
            if n.backward == "g":
                return rf"\operatorname{{vec}}({grad})" if latex else f"vec({grad})"
            return grad
        param = name.removeprefix("dL_d")
        m = _LAYERED.fullmatch(param)
        assert m is not None, name
        return self.gradient_of(self.block(param, latex), latex, layer_role=(m["role"], int(m["l"])))

    def _block(self, name: str, latex: bool) -> str:
        n = self.notation
        simple = {"x": "input", "y": "target", "yhat": "output"}
        if name == "yhat" and self._output_indexed():
            return self.letter("post", latex, bold=True) + self._index(self.depth, latex)
        if name in simple:
            return self.letter(simple[name], latex, bold=True)
        m = _LAYERED.fullmatch(name)
        if not m:
            return name
        role, l = m["role"], int(m["l"])
        if role == "delta":
            z = self.block(f"z{l}", latex)
            if n.backward == "delta":
                return (r"\boldsymbol{\delta}" if latex else "δ") + self._index(l, latex)
            return self.gradient_of(z, latex, layer_role=("z", l))
        if role == "dact":
            return self.derivative(l, self.block(f"z{l}", latex), latex)
        if role == "J":
            return (r"\mathbf{J}" if latex else "J") + self._index(l, latex)
        if role == "h" and l == self.depth:
            return self.block("yhat", latex)
        if role == "z" and self._pre_named(l):
            return self.letter("output_pre", latex, bold=True)
        return self.letter(self._role(role), latex, bold=True) + self._index(l, latex)

    def gradient_of(self, wrt: str, latex: bool, layer_role: tuple[str, int]) -> str:
        n = self.notation
        loss = self.letter("loss", latex)
        if n.backward == "g":  # g^[l z], g^[l W], ... as seed 001 writes them
            role, l = layer_role
            letter = {"a": n.post, "h": n.post, "z": n.pre, "W": n.weight, "b": n.bias}.get(role, role)
            extra = (r"\," if latex else " ") + (letter_latex(letter) if latex else letter_text(letter))
            return "g" + self._index(l, latex, extra)
        if n.backward == "nabla":
            return rf"\nabla_{{{wrt}}} {loss}" if latex else f"∇_{wrt} {loss}"
        return rf"\frac{{\partial {loss}}}{{\partial {wrt}}}" if latex else f"∂{loss}/∂{wrt}"

    def partial(self, of: str, wrt: str, latex: bool, inline: bool = False) -> str:
        """∂(of)/∂(wrt) for scalars and blocks alike; `inline` writes LaTeX's with a slash."""
        if latex and inline:
            return rf"\partial {of}/\partial {wrt}"
        return rf"\frac{{\partial {of}}}{{\partial {wrt}}}" if latex else f"∂{of}/∂{wrt}"

    def derivative(self, l: int, arg: str, latex: bool) -> str:
        """σ′(z), or for relu the notation's choice: 1[z > 0], relu′(z), max(0, sign(z))."""
        f = self.functions[l - 1]
        if f == "relu" and self.notation.relu_prime == "indicator":
            return rf"\mathbf{{1}}[{arg} > 0]" if latex else f"1[{arg} > 0]"
        if f == "relu" and self.notation.relu_prime == "sign":
            return rf"\max(0, \operatorname{{sign}}({arg}))" if latex else f"max(0, sign({arg}))"
        return f"{self.function(l, latex)}'({arg})" if latex else f"{self.function(l, latex)}′({arg})"

    def function(self, l: int, latex: bool) -> str:
        f = self.functions[l - 1]
        if not latex:
            return f
        return {"σ": r"\sigma", "φ": r"\varphi", "ψ": r"\psi", "χ": r"\chi", "σ_l": r"\sigma_l"}.get(
            f, rf"\operatorname{{{f}}}" if len(f) > 1 else f)

    def jacobian(self, of: str, wrt: str, latex: bool = False, inline: bool = False) -> str:
        top = self.letter("loss", latex) if of == "L" else self.block(of, latex)
        bottom = self.block(wrt, latex)
        if wrt.startswith("W"):
            bottom = rf"\operatorname{{vec}}({bottom})" if latex else f"vec({bottom})"
        return self.partial(top, bottom, latex, inline)

    def width(self, l: int, latex: bool) -> str:
        """n with the layer's label: n_l, n_{l+1}."""
        lab = self.label(l).replace("−", "-" if latex else "−")
        if latex:
            return f"n_{{{lab}}}"
        return "n" + (lab.translate(_SUB) if all(c in "0123456789ijk" for c in lab) else
                      f"_{lab}" if len(lab) == 1 else f"_({lab})")

    # -- components ------------------------------------------------------------------------------

    def _head(self, block: str, latex: bool) -> str:
        """What an entry of a block is written with, before its index: W⁽¹⁾, δ⁽²⁾, ŷ, z⁽¹⁾."""
        lm = _LAYERED.fullmatch(block)
        if block == "yhat" and self._output_indexed():
            return self.letter("post", latex) + self._index(self.depth, latex)
        if block in ("x", "y", "yhat"):
            return self.letter({"x": "input", "y": "target", "yhat": "output"}[block], latex)
        if not lm:
            return block
        role, l = lm["role"], int(lm["l"])
        if role == "delta" and self.notation.backward == "delta":
            return (r"\delta" if latex else "δ") + self._index(l, latex)
        if role == "h" and l == self.depth:
            return self._head("yhat", latex)
        if role == "z" and self._pre_named(l):
            return self.letter("output_pre", latex)
        if role == "W":
            return self.letter("weight", latex) + self._index(l, latex)
        if role in ("z", "h", "b"):
            return self.letter(self._role(role), latex) + self._index(l, latex)
        return self.block(block, latex)

    def _subscripted(self, head: str, indices: tuple[str, ...], latex: bool) -> str:
        sep = "," if any(len(i) > 1 for i in indices) else ""
        if latex:
            # A layer written as a subscript leaves no room for the unit's: join them.
            if head.endswith("}") and "_{" in head and self.notation.index_style == "subscript":
                return head[:-1] + "," + sep.join(indices) + "}"
            if "\\frac" in head or "\\nabla" in head:
                return rf"\left({head}\right)_{{{sep.join(indices)}}}"
            return f"{head}_{{{sep.join(indices)}}}"
        sub = sep.join(indices).translate(_SUB)
        if any(c not in _SUB_CHARS for c in sub):
            sub = "_" + sep.join(indices)
        if "/" in head or " " in head:
            return f"({head}){sub}"
        if self.notation.index_style == "subscript" and not head[-1].isalpha():
            return head + "," + sub.lstrip("_")
        if self.notation.index_style == "subscript" and "_" in head:  # a layer written l: a_l,i
            return head + "," + sep.join(indices)
        return head + sub

    def subscript(self, head: str, indices: tuple[str, ...]) -> str:
        """head with indices below, in Unicode where it has the letters: δᵢⱼ, Σₘ."""
        sub = "".join(indices).translate(_SUB)
        return head + (sub if all(c in _SUB_CHARS for c in sub) else "_" + "".join(indices))

    def component(self, name: str, latex: bool = False, inline: bool = False) -> str:
        """x₁, W⁽¹⁾₁₂, ŷ₂, z⁽¹⁾₃ (LaTeX: W^{(1)}_{12}); z and h, the variables of an activation's scalar
        formula, in the notation's letters (σ′(s) = z(1 − z) where s is the pre-activation); widths of
        index notation as n_l; other names are returned unchanged."""
        if name in _SCALAR_ROLES:
            return self.letter(_SCALAR_ROLES[name], latex)
        w = _WIDTH.fullmatch(name)
        if w:
            return self.width(int(w["l"]), latex)
        m = _COMPONENT.fullmatch(name)
        if not m:
            return name
        if m["l"]:
            return self._subscripted(self._head(f"W{m['l']}", latex), (m["wi"], m["wj"]), latex)
        return self.entry(m["block"], (m["i"],), latex, inline)

    def entry(self, block: str, indices: tuple[str, ...], latex: bool = False, inline: bool = False) -> str:
        """Entry `indices` of a block, for general entries (i, j, k) and components alike. An entry of
        a gradient is the derivative by that entry: ∂L/∂h⁽¹⁾₁ (seeds 001 and 004 write them so)."""
        lm = _LAYERED.fullmatch(block)
        if lm and lm["role"] == "dact":
            l = int(lm["l"])
            return self.derivative(l, self._subscripted(self._head(f"z{l}", latex), indices, latex), latex)
        loss = self.letter("loss", latex)
        of = None
        if block == LOSS_GRADIENT:
            of = self._subscripted(self._head("yhat", latex), indices, latex)
        elif lm and lm["role"] == "dL_dh":
            of = self._subscripted(self._head(f"h{lm['l']}", latex), indices, latex)
        elif lm and lm["role"] == "delta" and self.notation.backward != "delta":
            of = self._subscripted(self._head(f"z{lm['l']}", latex), indices, latex)
        if of is not None:
            # with a slash inside a matrix, in parentheses: (∂L/∂a₁) h₁ is not ∂L/∂(a₁ h₁)
            text = self.partial(loss, of, latex, inline)
            return f"({text})" if inline and latex else text
        return self._subscripted(self._head(block, latex), indices, latex)
