"""Settings a Spark run refuses, checked before any work (`run_spark`, `ccgraph validate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccgraph.exceptions import ConfigError

if TYPE_CHECKING:
    from ccgraph.config import Config

__all__ = ["check_spark_config", "modalities"]


def modalities(cfg: Config) -> list[str]:
    """The embedding types ``cfg`` enables, of ``text``, ``image`` and ``precomputed``."""
    e = cfg.embed
    on = (("text", e.text.enabled), ("image", e.image.kind != "none"),
          ("precomputed", bool(e.precomputed.path)))  # fmt: skip
    return [m for m, enabled in on if enabled]


def check_spark_config(cfg: Config) -> None:
    """Refuse settings the Spark engine does not implement, before any work.

    ``run_spark`` calls it before starting a session, and ``ccgraph validate`` for a config
    with ``execution.engine: spark``, so that "valid" means the run will not stop on them.

    Parameters
    ----------
    cfg
        A validated config.

    Raises
    ------
    ConfigError
        Naming the setting: ``graph.weighting`` other than ``cosine``, a
        ``propagate.tags.tagprop_weight``, a ``propagate.tags.cluster_prior`` with tags enabled,
        or not exactly one of ``embed.text`` / ``embed.image`` / ``embed.precomputed``.
    """
    if cfg.graph.weighting != "cosine":
        raise ConfigError("execution.engine: spark supports `graph.weighting: cosine` only")
    if cfg.propagate.tags.tagprop_weight is not None:
        raise ConfigError(
            "execution.engine: spark does not blend TagProp's votes into the tags; got "
            f"propagate.tags.tagprop_weight={cfg.propagate.tags.tagprop_weight!r}: set it to "
            "null, or run this config with execution.engine: local"
        )
    if cfg.propagate.tags.enabled and cfg.propagate.tags.cluster_prior > 0:
        raise ConfigError(
            "execution.engine: spark does not mix a cluster prior into the tag seeds; got "
            f"propagate.tags.cluster_prior={cfg.propagate.tags.cluster_prior}: set it to 0, or "
            "run this config with execution.engine: local"
        )
    enabled = modalities(cfg)
    if len(enabled) != 1:
        raise ConfigError(
            f"execution.engine: spark runs one modality; the config enables {enabled or 'none'} "
            "(disable all but one of embed.text / embed.image / embed.precomputed)"
        )
