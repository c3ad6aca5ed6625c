"""CSS is inlined into the email templates once, when they are loaded, without disturbing the Jinja in them."""

import jinja2
import pytest

from newsletter.emails import templates

CSS = ".cell { padding: 4px; color: #111; } a { color: blue; } @media (prefers-color-scheme: dark) { .cell { color: #eee !important; } }"  # noqa: E501
DOCUMENT = """<!DOCTYPE html><html><head><title>{{ title }}</title></head><body>
<table>{% for row in rows %}<tr><td class="cell"><a href="{{ row.url }}">{{ row.name }}</a></td></tr>
{% endfor %}</table>
</body></html>"""


def test_jinja_survives_inlining_in_text_attributes_tables_and_the_title():
    inlined = templates.inline_css(DOCUMENT, CSS)
    assert '{% for row in rows %}<tbody><tr><td class="cell" style="padding:4px;color:#111">' in inlined
    assert '<a href="{{ row.url }}" style="color:blue">{{ row.name }}</a>' in inlined
    assert "@media (prefers-color-scheme: dark)" in inlined  # kept in a <style> block for clients that read it
    html = (
        jinja2.Environment(autoescape=True)
        .from_string(inlined)
        .render(title="A <b> title", rows=[{"url": "https://x.org/?a=1&b=2", "name": "<x>"}])
    )
    assert "<title>A &lt;b&gt; title</title>" in html
    assert '<a href="https://x.org/?a=1&amp;b=2" style="color:blue">&lt;x&gt;</a>' in html


def test_table_rows_of_a_partial_keep_their_cells():
    inlined = templates.inline_css('{% macro row(x) %}<tr><td class="cell">{{ x }}</td></tr>{% endmacro %}', CSS)
    assert (
        inlined
        == '{% macro row(x) %}<tr><td class="cell" style="padding:4px;color:#111">{{ x }}</td></tr>{% endmacro %}'
    )


def test_a_template_asks_for_its_stylesheet_and_nothing_outside_the_templates(tmp_path):
    env = jinja2.Environment(loader=templates.InliningLoader(templates.TEMPLATE_DIR), autoescape=True)
    source = env.loader.get_source(env, "emails/digest/body.html")[0]
    assert "{#- css:" not in source and 'class="footer" style="' in source
    (tmp_path / "evil.html").write_text("{#- css: ../../etc/passwd -#}<p>x</p>")
    outside = jinja2.Environment(loader=templates.InliningLoader(tmp_path), autoescape=True)
    with pytest.raises(jinja2.TemplateError):
        outside.get_template("evil.html")
