"""``run_evaluation``: the evaluation harness.

Hide tags, rebuild what depends on them, run every method on the same split, score, and
aggregate with bootstrap intervals.

Leakage rule: in each repeat the hidden tags are removed from the seed tags *and* from every
text that is embedded (:func:`~ccgraph.evaluate.splits.strip_hidden_text`), and the embeddings
and graph are rebuilt from the scrubbed catalog, so no method sees a hidden tag.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from ccgraph._random import RngLike, as_generator
from ccgraph.config import Config, EvaluateConfig, load_config
from ccgraph.containers import Catalog
from ccgraph.evaluate._inputs import (
    GraphSource,
    build_seeds,
    cluster_coherence,
    load_catalog,
    popularity_study,
    spread_kwargs,
    tagprop_settings,
)
from ccgraph.evaluate.methods import METHODS, MethodInputs, MethodSkipped, run_method
from ccgraph.evaluate.output import EvaluationResult, check_writable, write_result
from ccgraph.evaluate.scoring import build_truth, score_tags, source_vocabulary, summarise
from ccgraph.evaluate.splits import make_splits, strip_hidden_text
from ccgraph.exceptions import ConfigError, DataQualityWarning, InputError

__all__ = ["run_evaluation"]

log = logging.getLogger(__name__)

Source = Config | str | Path | tuple[Any, ...]


def _settings(base: EvaluateConfig, updates: Mapping[str, Any]) -> EvaluateConfig:
    data = {**base.model_dump(), **{k: v for k, v in updates.items() if v is not None}}
    try:
        return EvaluateConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"evaluate.{loc}: {first['msg']}; got {first.get('input')!r}") from None


def _warn_k_above_vocabulary(k: Sequence[int], n_rankable: int, only_source: str | None) -> bool:
    """Warn when a cut-off exceeds the tags that can be ranked: precision@k is then meaningless.

    With ``k`` above the vocabulary every method, random included, ranks (nearly) every tag and
    ``hits / k`` is capped by the vocabulary, not by the method; recall@k and AP are unaffected.
    Returns whether it warned.
    """
    over = sorted(kk for kk in set(k) if kk > n_rankable)
    if over:
        what = f"{only_source}-tag vocabulary" if only_source else "visible tag vocabulary"
        warnings.warn(
            f"`evaluate.k` {over} exceeds the {what} ({n_rankable} tags): precision@k = hits / k "
            f"is then at most {n_rankable}/k for every method, random too, and cannot tell them "
            f"apart; use cut-offs of at most {n_rankable}",
            DataQualityWarning,
            stacklevel=3,
        )
    return bool(over)


def _check_settings(settings: EvaluateConfig) -> None:
    """Settings pydantic cannot check field by field: something to run, k, the reference."""
    if not settings.k:
        raise ConfigError("`evaluate.k` lists no cut-off; give at least one, e.g. [1, 5, 10]")
    if settings.protocol == "planetoid":
        return  # the planetoid harness has its own fixed method list
    run = [*settings.methods, *settings.baselines]
    if not run:
        raise ConfigError(
            "`evaluate.methods` and `evaluate.baselines` are both empty: nothing to evaluate"
        )
    if settings.reference not in METHODS:
        raise ConfigError(
            f"`evaluate.reference` {settings.reference!r} is not a method; name one of "
            f"{', '.join(sorted(METHODS))}"
        )
    if settings.reference not in run:
        log.warning(
            "`evaluate.reference` %r is not among the methods run (%s): no paired "
            "comparisons; add it to `evaluate.baselines` to get them",
            settings.reference,
            ", ".join(run),
        )


def run_evaluation(
    source: Source,
    *,
    protocol: str | None = None,
    hide_fraction: float | None = None,
    only_source: str | None = None,
    repeats: int | None = None,
    k: Sequence[int] | None = None,
    methods: Sequence[str] | None = None,
    baselines: Sequence[str] | None = None,
    reference: str | None = None,
    depth: int | None = None,
    n_boot: int | None = None,
    rng: RngLike = None,
    out: str | Path | None = None,
) -> EvaluationResult:
    """Evaluate tag inference (or node classification) against held-out data.

    Parameters
    ----------
    source
        A :class:`~ccgraph.config.Config` or YAML path (the catalog, embeddings and graph are
        rebuilt per repeat exactly as ``ccgraph run`` builds them), or a tuple
        ``(catalog, graph)``, ``(catalog, embeddings)`` or ``(catalog, graph, embeddings)``
        of ready inputs. Ready inputs are used as given: the caller vouches that they do not
        encode the hidden tags (e.g. an image-only graph).
    protocol, hide_fraction, only_source, repeats, k, methods, baselines, reference, depth
        Override the config's ``evaluate`` section (see ``docs/config.md``).
    n_boot
        Bootstrap resamples (``evaluate.bootstrap``).
    rng
        Seed or Generator; default the config's ``seed``.
    out
        Directory for ``metrics.json``, ``per_repeat.parquet`` and ``evaluation.md``; default
        ``<output.dir>/evaluation`` for a config, nothing written for ready inputs.

    Returns
    -------
    EvaluationResult
        Per-repeat table, summary with 95 % CIs, paired comparisons with the reference,
        reliability tables and run information.
    """
    cfg: Config | None = None
    ready: tuple[Any, ...] | None = None
    if isinstance(source, (str, Path)):
        cfg = load_config(source)
    elif isinstance(source, Config):
        cfg = source
    elif isinstance(source, tuple) and 2 <= len(source) <= 3:
        ready = source
    else:
        raise InputError(
            "`source` must be a Config, a YAML path, or (catalog, graph[, embeddings])"
        )
    base = cfg.evaluate if cfg is not None else EvaluateConfig.model_validate({})
    settings = _settings(
        base,
        {
            "protocol": protocol,
            "hide_fraction": hide_fraction,
            "only_source": only_source,
            "repeats": repeats,
            "k": list(k) if k is not None else None,
            "methods": list(methods) if methods is not None else None,
            "baselines": list(baselines) if baselines is not None else None,
            "reference": reference,
            "depth": depth,
            "bootstrap": n_boot,
        },
    )
    _check_settings(settings)
    if max(settings.k) > settings.depth:
        raise ConfigError(f"evaluate.k has {max(settings.k)} > evaluate.depth {settings.depth}")
    seed = rng if rng is not None else (cfg.seed if cfg is not None else 0)
    gen = as_generator(seed)
    target = _out_dir(cfg, out)
    if target is not None:
        check_writable(target)  # before the work, not after it
    started = time.perf_counter()
    if settings.protocol == "planetoid":
        from ccgraph.evaluate.planetoid_harness import run_planetoid

        if cfg is None:
            raise InputError("the planetoid protocol needs a config with `evaluate.dataset`")
        result = run_planetoid(cfg, settings, rng=gen)
    else:
        result = _run_tags(cfg, ready, settings, gen)
    result.info["seconds"] = round(time.perf_counter() - started, 2)
    if target is not None:
        result = write_result(result, target)
    return result


def _out_dir(cfg: Config | None, out: str | Path | None) -> Path | None:
    if out is not None:
        return Path(out).expanduser().resolve()
    if cfg is None:
        return None
    from ccgraph._stages import resolve_out_dir

    return resolve_out_dir(cfg, None) / "evaluation"


def _run_tags(
    cfg: Config | None,
    ready: tuple[Any, ...] | None,
    settings: EvaluateConfig,
    gen: np.random.Generator,
) -> EvaluationResult:
    catalog: Catalog = load_catalog(cfg, settings) if cfg is not None else ready[0]  # type: ignore[index]
    if not isinstance(catalog, Catalog):
        raise InputError("the first of the ready inputs must be a Catalog")
    tags = catalog.tags
    if cfg is not None:
        tags = tags[tags["source"].isin(cfg.propagate.tags.sources)]
    if tags.empty:
        raise InputError("the catalog has no tags to hide")
    protocol = "items" if settings.protocol == "captions" else settings.protocol
    splits = make_splits(
        tags,
        protocol=protocol,
        fraction=settings.hide_fraction,
        repeats=settings.repeats,
        only_source=settings.only_source,
        rng=gen,
    )
    graphs = GraphSource(cfg, ready)
    names = list(dict.fromkeys([*settings.methods, *settings.baselines]))
    k_nb = settings.baseline_k or (cfg.graph.k if cfg is not None else 15)
    pooled, tag_rows, repeat_rows, reliab, counts, clusters = [], [], [], [], [], []
    skipped: dict[str, str] = {}
    popularity: dict[str, Any] = {}
    warned_k = False
    for r, split in enumerate(splits):
        items = (
            strip_hidden_text(catalog.items, split.hidden) if settings.strip_text else catalog.items
        )
        scrubbed = Catalog(items, split.visible, catalog.rejects, dict(catalog.params))
        graph, features = graphs(scrubbed)
        seeds = build_seeds(scrubbed, cfg)
        cand = (
            source_vocabulary(split.visible, seeds, settings.only_source)
            if settings.only_source
            else None
        )
        truth = build_truth(split.hidden, seeds, candidates=cand)
        if not warned_k and len(truth.rows):
            n_rankable = int(cand.sum()) if cand is not None else seeds.n_tags
            warned_k = _warn_k_above_vocabulary(settings.k, n_rankable, settings.only_source)
        counts.append(
            {
                "repeat": r,
                "seed": split.seed,
                "items": len(catalog.ids),
                "hidden_items": len(split.hidden_items),
                "evaluated_items": len(truth.rows),
                "hidden_pairs": truth.n_hidden,
                "out_of_vocabulary_pairs": truth.n_oov,
                "visible_vocabulary": seeds.n_tags,
                "edges": graph.n_edges,
            }
        )
        clusters.append({"repeat": r, **cluster_coherence(graph, seeds, split.seed)})
        if r == 0 and cfg is not None and cfg.propagate.popularity.enabled:
            popularity = popularity_study(graph, catalog, cfg, settings, split.seed)
        if not len(truth.rows):
            log.warning("repeat %d: no hidden tag is in the visible vocabulary", r)
            continue
        inputs = MethodInputs(
            graph,
            seeds,
            features,
            depth=settings.depth,
            k_neighbors=k_nb,
            seed=split.seed,
            spread=spread_kwargs(cfg),
            tagprop=tagprop_settings(cfg, k_nb),
        )
        for name in names:
            t0 = time.perf_counter()
            try:
                res = run_method(name, inputs)
            except MethodSkipped as exc:
                skipped[name] = str(exc)
                continue
            except ImportError as exc:
                skipped[name] = f"not available: {exc}"
                continue
            per_item, corpus, per_tag, rel = score_tags(
                res,
                seeds,
                truth,
                k=settings.k,
                depth=settings.depth,
                n_bins=settings.calibration_bins,
                candidates=cand,
            )
            per_item.insert(0, "item", seeds.ids[truth.rows])
            per_item.insert(0, "method", name)
            per_item.insert(0, "repeat", r)
            pooled.append(per_item)
            tag_rows.append(per_tag.assign(repeat=r, method=name))
            reliab.append(rel.assign(repeat=r, method=name))
            means = per_item.drop(columns=["repeat", "method", "item", "n_relevant"]).mean()
            secs = time.perf_counter() - t0
            for metric, value in [*means.items(), *corpus.items(), ("seconds", secs)]:
                repeat_rows.append(
                    {
                        "repeat": r,
                        "seed": split.seed,
                        "method": name,
                        "metric": metric,
                        "value": float(value),
                        "n_items": len(truth.rows),
                    }
                )
    if not pooled:
        raise InputError(
            "nothing could be scored: no repeat hid a tag that also stays visible on other "
            f"items; lower `evaluate.hide_fraction` ({settings.hide_fraction}) or "
            "`data.tags.min_count`, or use a catalog with more tagged items"
        )
    per_repeat = pd.DataFrame(repeat_rows)
    all_items = pd.concat(pooled, ignore_index=True)
    summary, comparisons = summarise(
        all_items,
        pd.concat(tag_rows, ignore_index=True),
        per_repeat[per_repeat["metric"] != "seconds"],
        reference=settings.reference,
        n_boot=settings.bootstrap,
        rng=gen,
    )
    info = {
        "protocol": settings.protocol,
        "dataset": settings.dataset,
        "settings": settings.model_dump(mode="json"),
        "counts": counts,
        "skipped": skipped,
        "graph": dict(graph.params) if graph is not None else {},
        "text_rebuilt_per_repeat": graphs.text_dependent,
        "clusters": clusters,
        "popularity": popularity,
    }
    return EvaluationResult(
        summary=summary,
        comparisons=comparisons,
        per_repeat=per_repeat,
        per_item=all_items,
        reliability=pd.concat(reliab, ignore_index=True),
        info=info,
    )
