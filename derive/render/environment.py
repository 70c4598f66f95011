"""Jinja2 environments: one per output kind, made fresh per render (no shared mutable state)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import jinja2


def template_dir() -> Path:
    """Inside an installed wheel the templates sit in the package; in a checkout, at the top."""
    packaged = Path(str(resources.files("derive"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


def text_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def latex_environment() -> jinja2.Environment:
    """Delimiters that never meet TeX's braces: ((( value ))) and ((* block *))."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir()),
        undefined=jinja2.StrictUndefined,
        block_start_string="((*",
        block_end_string="*))",
        variable_start_string="(((",
        variable_end_string=")))",
        comment_start_string="((=",
        comment_end_string="=))",
        line_comment_prefix="%%",
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
