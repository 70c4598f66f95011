"""`derive build`: for each spec, the handout (.tex, and .pdf on request), the NumPy module and the
printed derivation, into DIR/<name>/. `outputs/` in the repository is exactly this, for every preset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from derive.derivation import derive_shown
from derive.errors import DeriveError
from derive.exercise import variant_spec
from derive.files import write_set
from derive.render.json import render_json
from derive.render.latex import find_pdflatex, render_exercise, render_handout, run_pdflatex
from derive.render.numpy import numpy_source
from derive.render.text import render_text
from derive.spec import load_spec

# Presets that also get an exercise sheet and its solution in outputs/.
EXERCISE_PRESETS = ("two-layer-relu", "relu-softmax-label")


def build_files(source: str) -> dict[str, str]:
    """File name -> content for one spec (a preset name or a TOML path)."""
    spec = load_spec(source)
    d = derive_shown(spec)
    stem = spec.name.replace("-", "_")
    files = {
        f"{spec.name}.tex": render_handout(d),
        f"{stem}.py": numpy_source(spec),
        f"{spec.name}.txt": render_text(d),
        f"{spec.name}.json": render_json(d),
    }
    if spec.name in EXERCISE_PRESETS:
        # numbers of their own: the handout's would give the answers away
        sheet, solution = render_exercise(derive_shown(variant_spec(spec, 1)), 1)
        files[f"{spec.name}-exercise.tex"] = sheet
        files[f"{spec.name}-exercise-solution.tex"] = solution
    return files


def build_all(sources: list[str], out: Path, pdf: bool = False,
              progress: Callable[[str], None] = lambda message: None) -> list[Path]:
    if pdf:
        find_pdflatex()
    if out.exists() and not out.is_dir():
        raise DeriveError("is not a directory", str(out))
    names: dict[str, str] = {}
    for source in sources:  # every spec checked before anything is written
        name = load_spec(source).name
        if name in names:
            raise DeriveError(f"{source!r} and {names[name]!r} both have the name {name!r}, so both would be written "
                              f"to {out / name}; give one another `name`", "derive build")
        names[name] = source
    # Every file of every spec is made (and every PDF compiled) before one is written; then they are
    # written as one set: an interrupt or a LaTeX error leaves the folders as they were.
    outputs: dict[Path, str | bytes] = {}
    for k, source in enumerate(sources, start=1):
        name = load_spec(source).name
        progress(f"[{k}/{len(sources)}] {name}: deriving")
        for filename, content in sorted(build_files(source).items()):
            outputs[out / name / filename] = content
            if pdf and filename.endswith(".tex"):
                tex = out / name / filename
                progress(f"[{k}/{len(sources)}] {name}: compiling {tex.with_suffix('.pdf').name}")
                outputs[tex.with_suffix(".pdf")] = run_pdflatex(content, str(tex))[0]
    for folder in sorted({path.parent for path in outputs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DeriveError(f"cannot create: {err.strerror}", str(folder)) from None
    return write_set(outputs)
