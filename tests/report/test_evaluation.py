from __future__ import annotations

from ccgraph.report._evaluation import format_value, markdown_to_html, metrics_tables


def test_markdown_tables_headings_lists_and_escaping():
    md = "\n".join(
        [
            "# Held-out tags",
            "",
            "Some *emphasis* and `code` <script>alert(1)</script>.",
            "",
            "| method | P@5 |",
            "| --- | ---: |",
            "| ccgraph | 0.41 |",
            "| kNN <vote> | 0.35 |",
            "",
            "- one",
            "- two & three",
            "",
            "```",
            "<raw>",
            "```",
        ]
    )
    out = markdown_to_html(md)
    assert "<h3>Held-out tags</h3>" in out
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<em>emphasis</em>" in out and "<code>code</code>" in out
    assert "<caption>Held-out tags</caption>" in out
    assert out.count("<tr>") == 3 and "<td>kNN &lt;vote&gt;</td>" in out
    assert "<ul><li>one</li><li>two &amp; three</li></ul>" in out
    assert "<pre>&lt;raw&gt;</pre>" in out
    assert markdown_to_html("###### deep").startswith("<h6>")  # capped


def test_metrics_tables_flatten_methods_and_scalars():
    metrics = {
        "protocol": "items",
        "repeats": 3,
        "methods": {
            "ccgraph": {"precision@5": 0.41, "ci": [0.38, 0.44]},
            "knn_vote": {"precision@5": 0.35, "ci": [0.31, 0.39]},
        },
        "per_repeat": [{"seed": 0, "p": 0.4}, {"seed": 1, "p": 0.42, "extra": "x"}],
        "clusters": {"nmi": 0.5},
    }
    tables = {t.caption: t for t in metrics_tables(metrics, "M")}
    assert tables["M"].rows == [["protocol", "items"], ["repeats", "3"]]
    methods = tables["M: methods"]
    assert methods.columns == ["", "precision@5", "ci"]
    assert methods.rows == [
        ["ccgraph", "0.41", "[0.38, 0.44]"],
        ["knn_vote", "0.35", "[0.31, 0.39]"],
    ]
    assert tables["M: per_repeat"].columns == ["seed", "p", "extra"]
    assert tables["M: per_repeat"].rows[0] == ["0", "0.4", ""]
    assert tables["M: clusters"].rows == [["nmi", "0.5"]]
    assert metrics_tables([1, 2])[0].rows == [["1"], ["2"]]


def test_format_value():
    assert format_value(float("nan")) == "n/a"
    assert format_value(None) == "" and format_value(True) == "True"
    assert format_value(123456) == "123,456" and format_value(0.000123456) == "0.000123"
