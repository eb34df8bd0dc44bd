from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from ccgraph.config import (
    Config,
    PropagateConfig,
    apply_overrides,
    config_reference,
    load_config,
)
from ccgraph.exceptions import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_minimal_config_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data: {path: cat.csv}\n"))
    assert cfg.graph.k == 15
    assert cfg.seed == 0
    assert cfg.execution.engine == "local"
    assert cfg.resolve(cfg.data.path) == tmp_path.resolve() / "cat.csv"


def test_unknown_key_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`graph\.kk`: unknown key"):
        load_config(write(tmp_path, "data: {path: x}\ngraph: {kk: 3}\n"))


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`graph\.k`.*got 'many'"):
        load_config(write(tmp_path, "data: {path: x}\ngraph: {k: many}\n"))


def test_out_of_range_names_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`propagate\.tags\.alpha`.*less than 1"):
        load_config(write(tmp_path, "data: {path: x}\npropagate: {tags: {alpha: 1.5}}\n"))


def test_bad_choice_lists_allowed(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`data\.format`.*'auto', 'openverse'"):
        load_config(write(tmp_path, "data: {path: x, format: xml}\n"))


def test_missing_data_section(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`data`: required key is missing"):
        load_config(write(tmp_path, "seed: 1\n"))


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "empty"), ("- a\n- b\n", "mapping"), ("data: [unclosed\n", "not valid YAML")],
)
def test_unusable_files(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(write(tmp_path, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_non_utf8_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_bytes(b"data: {path: \xff\xfe}\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(p)


def test_overrides_parse_yaml_values(tmp_path: Path) -> None:
    cfg = load_config(
        write(tmp_path, "data: {path: x}\n"),
        ["graph.k=30", "cluster.resolutions=[0.5, 2]", "propagate.tags.enabled=false"],
    )
    assert cfg.graph.k == 30
    assert cfg.cluster.resolutions == [0.5, 2.0]
    assert cfg.propagate.tags.enabled is False


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["graph.k"])
    raw = {"graph": {"k": 1}}
    out = apply_overrides(raw, ["graph.k=2"])
    assert raw["graph"]["k"] == 1 and out["graph"]["k"] == 2  # input not mutated


def test_override_of_unknown_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`graph\.kay`"):
        load_config(write(tmp_path, "data: {path: x}\n"), ["graph.kay=3"])


def test_docs_config_is_current() -> None:
    doc = REPO / "docs" / "config.md"
    assert doc.read_text() == config_reference(), (
        "docs/config.md is stale: run `python -m ccgraph.config > docs/config.md`"
    )


def test_every_field_documented() -> None:
    def walk(model: type) -> None:
        for name, f in model.model_fields.items():  # type: ignore[attr-defined]
            assert f.description, f"{model.__name__}.{name} has no description"
            ann = f.annotation
            if isinstance(ann, type) and hasattr(ann, "model_fields"):
                walk(ann)

    walk(Config)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    assert isinstance(raw, dict)
    load_config(path)


@pytest.mark.parametrize(
    ("yaml_text", "match"),
    [
        ("cluster: {resolutions: [1.0, -1.0]}", r"`cluster\.resolutions`: every resolution .*> 0"),
        ("cluster: {resolutions: [.nan]}", r"`cluster\.resolutions`: every resolution .*finite"),
        ("cluster: {resolutions: [0]}", r"`cluster\.resolutions`: every resolution"),
        ("graph: {k: 5, min_degree: 6}", r"`graph\.min_degree`: must be at most `graph\.k` \(5\)"),
        ("data: {path: x, tags: {drop_patterns: ['([']}}", r"`data\.tags\.drop_patterns`: '\(\['"),
        ("data: {path: x, tags_sep: ''}", r"`data\.tags_sep`: .*at least 1 character"),
        ("data: {path: x, columns: {colour: c}}", r"`data\.columns`: unknown fields \['colour'\]"),
        ("data: {path: x, columns: {title: ' '}}", r"`data\.columns`: empty column names"),
        (
            "cluster: {resolutions: [0.5, 1.0], default_level: 2}",
            r"`cluster\.default_level`: must be 'auto' or a level in \[0, 1\]",
        ),
        (
            "graph: {fusion: {weights: {txt: 1.0}}}",
            r"`graph\.fusion\.weights`: unknown modalities \['txt'\]",
        ),
        (
            "graph: {fusion: {weights: {image: -1}}}",
            r"`graph\.fusion\.weights`: every weight must be a finite number >= 0",
        ),
        (
            "propagate: {tags: {machine_weight: 2}}",
            r"`propagate\.tags\.machine_weight`: must be 'accuracy' or a number in \(0, 1\]",
        ),
        (
            "cluster: {objective: surprise, resolutions: [0.5, 1.0]}",
            r"`cluster\.resolutions`: `cluster\.objective: surprise` has no resolution",
        ),
        ("cluster: {default_level: -1}", r"`cluster\.default_level`: .*level in \[0, 2\]"),
    ],
)
def test_values_the_stages_would_refuse_fail_at_load(
    tmp_path: Path, yaml_text: str, match: str
) -> None:
    # before: these passed validation and failed mid-run naming the API parameter
    # (`resolutions[0]`, `min_degree`, `hygiene.drop_patterns`, `tags_sep`, `columns`)
    text = yaml_text if yaml_text.startswith("data:") else f"data: {{path: x}}\n{yaml_text}\n"
    with pytest.raises(ConfigError, match=rf"c\.yaml: {match}") as info:
        load_config(write(tmp_path, text))
    assert "Value error" not in str(info.value)


def test_min_degree_checked_against_an_overridden_k(tmp_path: Path) -> None:
    path = write(tmp_path, "data: {path: x}\ngraph: {k: 5, min_degree: 4}\n")
    assert load_config(path).graph.min_degree == 4
    with pytest.raises(ConfigError, match=r"`graph\.min_degree`: must be at most `graph\.k` \(3\)"):
        load_config(path, ["graph.k=3"])


def test_a_key_given_twice_is_refused_with_its_lines(tmp_path: Path) -> None:
    # before: PyYAML kept the last `graph` section and silently dropped the first
    text = "data: {path: x}\ngraph: {k: 5}\ncluster: {}\ngraph: {mutual: false}\n"
    with pytest.raises(
        ConfigError,
        match=r"c\.yaml: line 4, column 1: .*key 'graph' is given twice \(first on line 2\)",
    ):
        load_config(write(tmp_path, text))
    with pytest.raises(ConfigError, match=r"key 'k' is given twice"):
        load_config(write(tmp_path, "data: {path: x}\ngraph:\n  k: 5\n  k: 6\n"))
    merged = load_config(
        write(tmp_path, "data: {path: x}\ngraph: {<<: {k: 3, mutual: false}, k: 5}\n")
    )
    assert (merged.graph.k, merged.graph.mutual) == (5, False)  # a merge key may be overridden


def test_true_is_not_a_number(tmp_path: Path) -> None:
    # before: pydantic read `k: true` as k = 1
    with pytest.raises(ConfigError, match=r"`graph\.k`: must be a number, not true / false"):
        load_config(write(tmp_path, "data: {path: x}\ngraph: {k: true}\n"))
    with pytest.raises(ConfigError, match=r"`cluster\.n_iterations`: must be a number"):
        load_config(write(tmp_path, "data: {path: x}\ncluster: {n_iterations: false}\n"))
    assert (
        load_config(write(tmp_path, "data: {path: x}\ngraph: {mutual: no}\n")).graph.mutual is False
    )


def test_a_section_with_every_key_commented_out_means_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, "data: {path: x}\ngraph:\n  # k: 30\npropagate:\n"))
    assert cfg.graph.k == 15 and cfg.propagate.tags.enabled


@pytest.mark.parametrize("value", ["[]", "''", "[a, '']"])
def test_empty_data_path_is_refused_at_load(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r"`data\.path`: must name a catalog file"):
        load_config(write(tmp_path, f"data: {{path: {value}}}\n"))


def test_a_union_error_is_one_line_per_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "data: {path: 3}\n"))
    msg = str(info.value)
    assert msg.count("\n") == 0, msg
    assert re.search(
        r"`data\.path`: Input should be a valid string, or input should be a valid list", msg
    )


@pytest.mark.parametrize("value", ["|", ">", "#", ",", "[", "{", "&", "*", "-", "?", ":", "@"])
def test_override_with_a_yaml_indicator_character_keeps_the_character(value: str) -> None:
    # before: `--set data.tags_sep=|` read as '' ("String should have at least 1 character");
    # `,` `[` `:` ... were "not valid YAML" (a multi-line parser dump), `-` read as [None]
    assert apply_overrides({}, [f"data.tags_sep={value}"])["data"]["tags_sep"] == value
    assert apply_overrides({}, ["data.limit=null"])["data"]["limit"] is None
    assert apply_overrides({}, ["data.limit=~"])["data"]["limit"] is None


def test_override_that_is_not_yaml_is_one_line_with_the_quoting_hint() -> None:
    with pytest.raises(
        ConfigError, match=r"--set graph\.k: the value '\[1,2' is not valid"
    ) as info:
        apply_overrides({}, ["graph.k=[1,2"])
    assert "\n" not in str(info.value) and "quote it" in str(info.value)


def test_a_previous_run_that_is_not_a_run_is_refused_before_any_work(tmp_path: Path) -> None:
    # before: the pipeline read the catalog, built the graph and clustered, then failed
    import ccgraph
    from ccgraph.config import check_previous_run

    (tmp_path / "cat.csv").write_text("id,title\na,x\n")
    (tmp_path / "notes").mkdir()
    path = write(tmp_path, "data: {path: cat.csv}\ncluster: {previous_run: notes}\n")
    with pytest.raises(ConfigError, match=r"`cluster\.previous_run`: .*notes is not a ccgraph run"):
        check_previous_run(load_config(path))
    with pytest.raises(ConfigError, match=r"`cluster\.previous_run`: .*notes is not a ccgraph run"):
        ccgraph.run(path, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_huge_or_aliased_value_gives_a_short_message(tmp_path: Path) -> None:
    # before: a YAML alias bomb (or a pasted table) under a key put its whole repr in the
    # message: 39 MB and 11 s at six levels of nine
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 7)]
    text = "data: {path: x}\ngraph:\n  k:\n" + "".join(f"    {line}\n" for line in lines)
    with pytest.raises(ConfigError, match=r"`graph\.k`: Input should be a valid integer") as info:
        load_config(write(tmp_path, text))
    assert len(str(info.value)) < 1000
    many = "data: {path: x}\ncluster: {resolutions: [" + ", ".join(["a"] * 50) + "]}\n"
    with pytest.raises(ConfigError, match=r"\.\.\. and 40 more problems") as info:
        load_config(write(tmp_path, many))
    assert str(info.value).count("\n") == 10


def test_a_folder_given_as_config_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"is a folder, not a config file"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"x\n", r"not a readable Parquet file"),  # a corrupt file
        (None, r"has no `id` and `cluster_l<N>` columns"),  # Parquet, but not a run's items
    ],
)
def test_a_previous_run_with_unreadable_items_is_refused_before_any_work(
    tmp_path: Path, content: bytes | None, match: str
) -> None:
    import pandas as pd

    from ccgraph.config import check_previous_run

    prev = tmp_path / "prev"
    prev.mkdir()
    if content is None:
        pd.DataFrame({"name": ["a"], "value": [1]}).to_parquet(prev / "items.parquet")
    else:
        (prev / "items.parquet").write_bytes(content)
    path = write(tmp_path, "data: {path: cat.csv}\ncluster: {previous_run: prev}\n")
    with pytest.raises(ConfigError, match=r"`cluster\.previous_run`: .*" + match):
        check_previous_run(load_config(path))


@pytest.mark.parametrize(
    ("section", "alpha", "tol"),
    [("tags", 0.99999, 1e-4), ("popularity", 1 - 1e-12, 1e-10)],
)
def test_alpha_too_close_to_one_for_tol_is_refused_early(section, alpha, tol):
    # before: accepted; the run then stopped the propagation after one sweep (wrong scores,
    # zero popularity confidences) without a warning
    with pytest.raises(ValidationError, match=r"tol <= \(1 - alpha\) / 10"):
        PropagateConfig.model_validate({section: {"alpha": alpha, "tol": tol}})
    ok = PropagateConfig.model_validate({section: {"alpha": alpha, "tol": (1 - alpha) / 20}})
    assert getattr(ok, section).alpha == alpha
