"""LaTeX in titles and abstracts as readable Unicode: `$\\alpha^2$` → α², `\\emph{x}` → x.

Applied at ingest (papers are stored as readers should read them) and again, as a no-op on clean text, when
an email or page shows a paper.
"""

import re
from functools import cache

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

WHITESPACE = re.compile(r"\s+")

# $$display$$, $inline$ (neither starting at nor stopping at an escaped \$), \(inline\).
MATH = re.compile(r"\$\$(.+?)\$\$|(?<!\\)\$((?:[^$\\]|\\.)+?)\$|\\\((.+?)\\\)", re.DOTALL)
MACRO = re.compile(r"\\([A-Za-z]+)")
# Abbreviation macros authors define for themselves; the space after them belongs to the sentence.
ABBREVIATIONS = {"eg": "e.g.", "ie": "i.e.", "etal": "et al.", "wrt": "w.r.t.", "etc": "etc.", "vs": "vs."}
ABBREVIATION = re.compile(r"\\(" + "|".join(ABBREVIATIONS) + r")\b\.?")
UNESCAPED_PERCENT = re.compile(r"(?<!\\)%")  # in LaTeX a comment; in an abstract "95%" means percent
UNESCAPED_AMPERSAND = re.compile(r"(?<!\\)&")  # an alignment tab in LaTeX, "and" in an abstract
# Three plain words in a row do not occur in a formula; between two dollar signs they mean prices.
PROSE = re.compile(r"(?:(?<![\\\w])[A-Za-z]{2,}[,;.]?\s+){3}")
UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")
# A dollar sign before an amount followed by a word ("$5 and", "$3.50, or") is a price even when a formula
# follows later in the sentence ("$5 and $\\beta$"), where pairing dollar signs would make "5 and " math.
PRICE = re.compile(r"(?<![\\$\w])\$(?=\d[\d.,]*[,;.]?\s+[A-Za-z]{2,}\b)")
SCRIPT_GROUP = re.compile(r"([\^_])(\{([^{}]*)\}|([A-Za-z0-9+\-=()]))")
SUPERSCRIPT = dict(
    zip("0123456789+-=()abcdefghijklmnoprstuvwxyzT", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖʳˢᵗᵘᵛʷˣʸᶻᵀ", strict=True)
)
SUBSCRIPT = dict(zip("0123456789+-=()aeoxhklmnpstij", "₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎ₐₑₒₓₕₖₗₘₙₚₛₜᵢⱼ", strict=True))
# Macros whose arguments are references or layout, not words a reader needs.
# The parts of a text the LaTeX parser must read: math, macros with their {arguments}, escapes like \\%.
GROUP = r"\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}"
FRAGMENT = re.compile(
    r"\$(?:[^$\\]|\\.)*\$"  # math, as _math left it
    rf"|\\[A-Za-z]+\*?(?:\s*(?:\[[^\]]*\])?\s*{GROUP})*"  # \macro[opt]{arg}{arg}
    rf"|\\[^A-Za-z\s](?:{GROUP}|[A-Za-z])?"  # \% \& \$ and accents: \"{u}, \'e
    rf"|{GROUP}"  # a bare group: T\"{U}LU's {U}, {\i}
)
DROPPED_MACROS = ("cite", "citep", "citet", "ref", "eqref", "label", "footnote", "vspace", "hspace")


@cache
def _latex_converter() -> tuple[LatexNodes2Text, frozenset[str]]:
    context = get_default_latex_context_db()
    context.add_context_category(
        "paper-text",
        prepend=True,
        macros=[MacroTextSpec(name, simplify_repl="") for name in DROPPED_MACROS]
        + [MacroTextSpec(name, simplify_repl="%s") for name in ("texttt", "textsf", "textrm", "textup", "text")],
    )
    known = frozenset(spec.macroname for spec in context.iter_macro_specs())
    return LatexNodes2Text(latex_context=context, math_mode="text"), known


def _scripts(match: re.Match) -> str:
    """`^2` → ², `_{ij}` → ᵢⱼ when every character has a Unicode form; otherwise left for the converter."""
    table = SUPERSCRIPT if match.group(1) == "^" else SUBSCRIPT
    chars = match.group(3) if match.group(3) is not None else match.group(4)
    if chars and all(c in table for c in chars):
        return "".join(table[c] for c in chars)
    return match.group(0)


def _math(match: re.Match) -> str:
    body = next(g for g in match.groups() if g is not None)
    if PROSE.search(body):  # "$800 per sample and ... $5": two prices, not a formula
        return match.group(0).replace("$", "\\$")
    return "$" + SCRIPT_GROUP.sub(_scripts, body) + "$"


def latex_to_unicode(text: str) -> str:
    """Readable Unicode from text with LaTeX in it (`$\\alpha^2$` → α², `\\emph{x}` → x).
    Text without LaTeX comes back unchanged; LaTeX the converter cannot read loses its backslashes."""
    if "\\" not in text and "$" not in text:
        return text
    converter, known = _latex_converter()
    source = ABBREVIATION.sub(lambda m: ABBREVIATIONS[m.group(1)], text)
    source = MATH.sub(_math, PRICE.sub(r"\\$", source))
    dollars = [m.start() for m in UNESCAPED_DOLLAR.finditer(source)]
    if len(dollars) % 2:  # one dollar sign left without a partner: a price, not the start of a formula
        source = source[: dollars[-1]] + "\\" + source[dollars[-1] :]
    # A macro the converter does not know, standing alone, is usually a name the authors defined (\OM).
    source = MACRO.sub(lambda m: m.group(0) if m.group(1) in known else m.group(1), source)
    source = UNESCAPED_AMPERSAND.sub(r"\\&", UNESCAPED_PERCENT.sub(r"\\%", source))
    # Only the LaTeX itself goes through the parser: an abstract is mostly plain prose, and parsing all of
    # it made LaTeX the slowest step of ingest. Text with stray braces or tildes is read whole, as before.
    if "{" in FRAGMENT.sub("", source) or "}" in FRAGMENT.sub("", source) or "~" in source:
        converted = _convert(converter, source)
    else:
        converted = FRAGMENT.sub(lambda m: _convert(converter, m.group(0)), source)
    return WHITESPACE.sub(" ", converted).strip()


def _convert(converter: LatexNodes2Text, source: str) -> str:
    try:
        return converter.latex_to_text(source)
    except Exception:  # noqa: BLE001 - malformed LaTeX from a feed must not stop a digest
        return MACRO.sub(r"\1", source).replace("$", "").replace("{", "").replace("}", "")
