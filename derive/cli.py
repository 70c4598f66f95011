"""`derive`: show, latex, numpy, check, build, presets.

Every problem with the input is one line on stderr, `derive: where: problem`, and exit status 2.
Files are written whole or not at all (written beside the target, then renamed over it).
"""

from __future__ import annotations

import argparse
import keyword
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from derive.errors import DeriveError, GeneratedCodeError
from derive.files import write_atomically
from derive.progress import Progress

# A generated module named like one of these would shadow it: `import numpy` (or NumPy's own `import math`)
# would find the generated file first when it lies in the working directory.
_SHADOWED = frozenset({*sys.stdlib_module_names, "numpy", "derive", "sympy", "torch", "jinja2"})


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line and exit 2, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise DeriveError(message, "command line")


def _add_spec_arguments(p: argparse.ArgumentParser, many: bool = False) -> None:
    if many:
        p.add_argument("specs", nargs="+", metavar="SPEC", help="preset names or TOML files")
        return
    p.add_argument("spec", nargs="?", metavar="SPEC", help="a preset name or a TOML file")
    quick = p.add_argument_group("a quick spec without a file")
    quick.add_argument("--input", type=int, dest="input_width", help="width of x")
    quick.add_argument("--layers", help="UNITS:ACTIVATION,... e.g. 2:relu,1:identity")
    quick.add_argument("--loss", help="sse | half_sse | mse | bce | mean_bce | ce")
    quick.add_argument("--target", help="vector | index")
    quick.add_argument("--batch", help="mean | sum")
    quick.add_argument("--convention", help="column | row")
    quick.add_argument("--layout", help="gradient | numerator")
    quick.add_argument("--vec", help="row-major | column-major")
    quick.add_argument("--no-bias", action="store_true", help="layers without bias")
    quick.add_argument("--name", help="a name for the network")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="derive", description="Backpropagation derived step by step, and checked.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    show = sub.add_parser("show", help="print the derivation")
    _add_spec_arguments(show)
    show.add_argument("--json", action="store_true", help="the machine-readable derivation")
    show.add_argument("--max-side", type=int, default=6, help="matrix side shown before eliding (default 6)")

    latex = sub.add_parser("latex", help="write a LaTeX handout")
    _add_spec_arguments(latex)
    latex.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.tex")
    latex.add_argument("--pdf", action="store_true", help="also compile it with pdflatex")
    latex.add_argument("--exercise", action="store_true", help="a problem sheet and a solution sheet")
    latex.add_argument("--variant", type=int, help="a reproducible variant of the exercise, for one student")
    latex.add_argument("--max-side", type=int, default=6, help="matrix side shown before eliding (default 6)")

    numpy = sub.add_parser("numpy", help="write a NumPy module of gradient functions")
    _add_spec_arguments(numpy)
    numpy.add_argument("-o", "--output", required=True, type=Path, metavar="FILE.py")

    check = sub.add_parser("check", help="check generated gradients against finite differences (and torch)")
    _add_spec_arguments(check)
    check.add_argument("--seed", type=int, default=0, help="seed of the random test points")

    build = sub.add_parser("build", help="handout, PDF and module for each SPEC into DIR/<name>/")
    _add_spec_arguments(build, many=True)
    build.add_argument("--out", required=True, type=Path, metavar="DIR")
    build.add_argument("--pdf", action="store_true", help="compile the handouts too")

    presets = sub.add_parser("presets", help="list the built-in specs, or print one's TOML to start a spec from")
    presets.add_argument("--toml", metavar="NAME", help="print this preset's TOML (derive presets --toml "
                                                          "two-layer-relu > my-net.toml)")
    return parser


def _spec(args: argparse.Namespace):
    from derive.spec import load_spec, spec_from_flags

    quick = {k: getattr(args, k) for k in ("loss", "target", "batch", "convention", "layout", "vec", "name")}
    if args.spec is not None:
        if args.input_width is not None or args.layers is not None or any(v is not None for v in quick.values()):
            raise DeriveError("give either SPEC or the quick-spec flags, not both", "command line")
        spec = load_spec(args.spec)
    else:
        spec = spec_from_flags(args.input_width, args.layers, no_bias=args.no_bias, **quick)
    _warn(spec, args.spec or "command line")
    return spec


def _warn(spec, where: str) -> None:
    """A spec that works but cannot mean what it says: one line on stderr, and the command goes on."""
    from derive.domain import loss_domain

    warning = loss_domain(spec)
    if warning is not None:
        units = ", ".join(f"yhat_{k}" for k in range(1, spec.layers[-1].units + 1))
        sys.stderr.write(f"derive: warning: {where}: {warning.text(units)}\n")


def _check_max_side(value: int) -> int:
    if value < 3:
        raise DeriveError(f"--max-side must be at least 3, got {value}", "command line")
    return value


def cmd_show(args: argparse.Namespace) -> int:
    from derive.derivation import derive_shown

    max_side = _check_max_side(args.max_side)
    spec = _spec(args)
    PROGRESS(f"deriving {spec.name}")
    derivation = derive_shown(spec, max_side)
    PROGRESS("writing it out")
    if args.json:
        from derive.render.json import render_json

        text = render_json(derivation)
    else:
        from derive.render.text import render_text

        text = render_text(derivation, max_side=max_side)
    PROGRESS.clear()
    sys.stdout.write(text)
    return 0 if derivation.verified else 1


def cmd_presets(args: argparse.Namespace) -> int:
    from derive.spec import load_preset, preset_names, preset_text

    names = preset_names()
    if args.toml is not None:
        if args.toml not in names:
            raise DeriveError(f"no such preset; presets: {', '.join(names)}", args.toml)
        sys.stdout.write(preset_text(args.toml))
        return 0
    width = max(len(n) for n in names)
    for name in names:
        spec = load_preset(name)
        sys.stdout.write(f"{name.ljust(width)}  {spec.description or spec.title}\n")
    return 0


def cmd_latex(args: argparse.Namespace) -> int:
    from derive.render.latex import write_handouts

    _check_max_side(args.max_side)
    if args.variant is not None and not args.exercise:
        raise DeriveError("--variant applies to --exercise sheets", "command line")
    if args.variant is not None and args.variant < 0:
        raise DeriveError(f"--variant must be 0 or more, got {args.variant}", "command line")
    _require_suffix(args.output, ".tex")
    written = write_handouts(_spec(args), args.output, pdf=args.pdf, exercise=args.exercise,
                             variant=args.variant, max_side=args.max_side, progress=PROGRESS)
    PROGRESS.clear()
    for path in written:
        sys.stdout.write(f"wrote {path}\n")
    return 0


def cmd_numpy(args: argparse.Namespace) -> int:
    from derive.render.numpy import numpy_source

    _require_suffix(args.output, ".py")
    stem = args.output.stem
    if keyword.iskeyword(stem):
        raise DeriveError(f"{stem!r} is a Python keyword, which `import` cannot take ({stem}_.py, say)",
                          str(args.output))
    if stem in _SHADOWED:
        raise DeriveError(f"{stem!r} is the name of a module Python or NumPy imports; a file of that name would "
                          f"be imported in its place ({stem}_grads.py, say)", str(args.output))
    if not stem.isidentifier():
        suggestion = re.sub(r"\W", "_", stem if stem[:1].isalpha() else f"_{stem}")
        raise DeriveError(f"{stem!r} is not a name `import` can take: letters, digits and _, not first a digit "
                          f"({suggestion}.py, say)", str(args.output))
    write_atomically(args.output, numpy_source(_spec(args)))
    sys.stdout.write(f"wrote {args.output}\n")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from derive.verify import check_spec

    spec = _spec(args)
    PROGRESS(f"checking {spec.name}: generating the module, sampling points, comparing gradients")
    report = check_spec(spec, seed=args.seed)
    PROGRESS.clear()
    sys.stdout.write(report.table())
    return 0 if report.ok else 1


def cmd_build(args: argparse.Namespace) -> int:
    from derive.build import build_all

    written = build_all(args.specs, args.out, pdf=args.pdf, progress=PROGRESS)
    PROGRESS.clear()
    for path in written:
        sys.stdout.write(f"wrote {path}\n")
    return 0


def _require_suffix(path: Path, suffix: str) -> None:
    if path.suffix != suffix:
        raise DeriveError(f"the output file must end in {suffix}", str(path))


COMMANDS = {"show": cmd_show, "presets": cmd_presets, "latex": cmd_latex, "numpy": cmd_numpy,
            "check": cmd_check, "build": cmd_build}


# One line on a terminal saying what a long command is doing; silent when stderr is not a terminal.
PROGRESS = Progress()


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except DeriveError as err:
        PROGRESS.clear()
        sys.stderr.write(f"derive: {err}\n")
        return 2
    except GeneratedCodeError as err:
        sys.stderr.write(f"derive: {err}\n")
        return 1
    except BrokenPipeError:  # `derive show ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        PROGRESS.clear()
        # Files are written as sets with the interrupt held back while they switch (files.write_set):
        # whatever was interrupted, each set is the old one or the new one.
        sys.stderr.write("derive: interrupted; no file was left half-written, and files written together "
                         "are all new or all as they were\n")
        return 130


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM ends the run as SIGINT does: cleanly, with one line


def run() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    sys.exit(main())
