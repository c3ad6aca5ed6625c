"""Emails as template sets: templates/emails/<name>/{subject.txt, body.txt, body.html}, rendered with Jinja2, the
stylesheet a template asks for inlined once, when it is loaded. The "emails" template engine in settings uses
this environment, so every email (the digest here, subscribers' own) is rendered the same way."""

import re
from dataclasses import dataclass
from datetime import date
from functools import cache

import css_inline
import jinja2
from django.conf import settings

from newsletter.emails.mime import TemplatedEmail
from papers.text import drop_unsafe

TEMPLATE_DIR = settings.BASE_DIR / "templates"
EMAIL_CSS = TEMPLATE_DIR / "emails" / "email.css"


@dataclass
class RenderedEmail:
    subject: str
    text: str
    html: str


# --- Templates: CSS inlined once, when a template is loaded -------------------------------------------

JINJA_CONSTRUCT = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
PLACEHOLDER = re.compile(r"<!--jinja(\d+)-->|&lt;!--jinja(\d+)--&gt;|jinja(\d+)placeholder")
ROW_WRAPPER = re.compile(r"^\s*<table[^>]*>|</table>\s*$|</?tbody>")
ROW_FRAGMENT = re.compile(r"^\s*(?:<!--jinja\d+-->\s*)*<tr[\s>]", re.IGNORECASE)


def _protect(source: str) -> tuple[str, list[str]]:
    """Jinja constructs → HTML comments between tags (they stay in place, even inside tables) or plain
    words inside a tag's attributes, so an HTML parser leaves them where they are."""
    out: list[str] = []
    pieces: list[str] = []
    position = 0
    for match in JINJA_CONSTRUCT.finditer(source):
        out.append(source[position : match.start()])
        position = match.end()
        if match.group(0).startswith("{#"):
            continue  # a template comment renders as nothing
        pieces.append(match.group(0))
        so_far = "".join(out)
        inside_tag = so_far.rfind("<") > so_far.rfind(">")
        out.append(f"jinja{len(pieces) - 1}placeholder" if inside_tag else f"<!--jinja{len(pieces) - 1}-->")
    out.append(source[position:])
    return "".join(out), pieces


def inline_css(source: str, css: str) -> str:
    """The template source with `css` inlined into style attributes; @media rules stay in a <style> block.
    Runs once per template per process, never per message."""
    protected, pieces = _protect(source)
    if "<html" in protected.lower():
        inlined = css_inline.CSSInliner(keep_at_rules=True, minify_css=True, extra_css=css).inline(protected)
    elif ROW_FRAGMENT.match(protected):
        # Table rows parse only inside a table: wrap them for the parser, unwrap them after.
        wrapped = css_inline.CSSInliner(minify_css=True).inline_fragment(f"<table>{protected}</table>", css)
        inlined = ROW_WRAPPER.sub("", wrapped)
    else:
        inlined = css_inline.CSSInliner(minify_css=True).inline_fragment(protected, css)
    found: set[int] = set()

    def restore(match: re.Match) -> str:
        index = int(next(g for g in match.groups() if g is not None))
        found.add(index)
        return pieces[index]

    restored = PLACEHOLDER.sub(restore, inlined)
    if len(found) != len(pieces):
        raise jinja2.TemplateError("CSS inlining lost part of the template: keep Jinja out of <style> and MSO comments")
    return restored


# A template asks for a stylesheet (a path under templates/) with a comment on its first line:
# {#- css: emails/email.css -#}
CSS_REQUEST = re.compile(r"\A\s*\{#-?\s*css:\s*(\S+?)\s*-?#\}")


class InliningLoader(jinja2.FileSystemLoader):
    """Loads templates from disk; a template whose first line asks for a stylesheet gets it inlined."""

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str | None, object]:
        source, filename, uptodate = super().get_source(environment, template)
        request = CSS_REQUEST.match(source)
        if request:
            stylesheet = (TEMPLATE_DIR / request.group(1)).resolve()
            if not stylesheet.is_relative_to(TEMPLATE_DIR.resolve()):
                raise jinja2.TemplateError(f"{template}: stylesheet outside the templates: {request.group(1)}")
            source = inline_css(source[request.end() :], stylesheet.read_text())
        return source, filename, uptodate


def environment(**options: object) -> jinja2.Environment:
    """The emails' Jinja2 environment, one per process. Also the "emails" template engine's (TEMPLATES in
    settings), whose options are ours already: Django's defaults for them are not used."""
    return _environment()


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=InliningLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )


def one_line(subject: str) -> str:
    """A Subject: one line whatever the template did, and nothing `drop_unsafe` drops (a NUL or a bidi override
    from a paper title would otherwise reach the header)."""
    return " ".join(drop_unsafe(subject).split())


def render_email(name: str, context: dict) -> RenderedEmail:
    env = environment()
    subject = env.get_template(f"emails/{name}/subject.txt").render(context)
    return RenderedEmail(
        subject=one_line(subject),
        text=env.get_template(f"emails/{name}/body.txt").render(context),
        html=env.get_template(f"emails/{name}/body.html").render(context),
    )


def render_template(name: str, context: dict) -> str:
    """`Template.render` without merging the environment's globals into every context (Jinja's
    `shared=True`): the per-reader templates use none, and the merge is a large part of a small render."""
    template = _template(name)
    return "".join(template.root_render_func(template.new_context(context, shared=True)))


@cache
def _template(name: str) -> jinja2.Template:
    return environment().get_template(name)  # compiled once per process (auto_reload is off)


def build_message(rendered: RenderedEmail, to: str, headers: dict[str, str] | None = None) -> TemplatedEmail:
    message = TemplatedEmail(
        subject=rendered.subject, body=rendered.text, from_email=settings.DIGEST_FROM_EMAIL, to=[to], headers=headers
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def site_link(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def archive_path(day: date) -> str:
    return f"/digests/{day:%Y-%m-%d}/"
