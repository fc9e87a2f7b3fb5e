"""The commands the reports print for runs the store lacks: copy-pasteable, naming the store's own folders.

A printed command must work when pasted in any folder, so it names the corpus folder, the feature
cache and the results store the stored runs used: the corpus folder and the cache from the runs'
records (``config.root``, ``config.cache``; runs written before serbench recorded the cache fall
back to the ``--cache`` given to the report), the store as an absolute path.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from serbench.reports.collect import Collection, SystemSpec
from serbench.settings import runs_root

#: What a command says for the corpus folder when neither the store nor the experiment file names it.
ROOT_PLACEHOLDER = "ROOT"


def experiment_ref(col: Collection) -> str:
    """How a command names the collection's experiment: a shipped file by its name, another by its path."""
    from serbench.systems.experiment import recipes_dir

    exp = col.experiment
    if exp is None:
        return "jiang2019"
    if exp.path is None:
        return exp.name
    shipped = recipes_dir()
    if shipped is not None and exp.path.resolve().parent == shipped.resolve() and exp.path.stem == exp.name:
        return exp.name
    return str(exp.path.resolve())


def _recorded(col: Collection, key: str) -> str | None:
    """The value of ``config[key]`` the stored runs agree on, or None (none recorded, or they differ)."""
    found = {str((r.record.get("config") or {}).get(key)) for r in col.runs.values()
             if (r.record.get("config") or {}).get(key)}
    return found.pop() if len(found) == 1 else None


def corpus_root(col: Collection) -> str:
    """The corpus folder the stored runs read (their records agree on one), else the file's [roots], else ROOT."""
    root = _recorded(col, "root")
    if root is not None:
        return root
    found = col.experiment.root_of(col.corpus) if col.experiment is not None else None
    return str(found) if found is not None else ROOT_PLACEHOLDER


def store_cache(col: Collection, cache: str | Path | None = None) -> str | None:
    """The feature cache the stored runs read (recorded in their ``config.cache``), else ``cache``, else None."""
    recorded = _recorded(col, "cache")
    if recorded is not None:
        return recorded
    return str(Path(cache).expanduser().resolve()) if cache else None


def produce_command(spec: "SystemSpec | str | list[str]", col: Collection, runs: str | Path | None = None,
                    cache: str | Path | None = None) -> str:
    """The ``serbench run`` command that would produce the run(s) the experiment declares as ``spec`` (a spec, a
    stored name or several names, run by one ``--only a,b``), with the store's ``--root``, ``--cache`` and
    ``--runs`` (ROOT = the corpus folder when neither the store nor the file says)."""
    if isinstance(spec, SystemSpec):
        name = spec.name
    elif isinstance(spec, str):
        name = spec
    else:
        name = ",".join(spec)
    feature_cache = store_cache(col, cache)
    store = runs_root(runs).resolve()
    opts = (f" --cache {shlex.quote(feature_cache)}" if feature_cache else "") + f" --runs {shlex.quote(str(store))}"
    root = corpus_root(col)
    return (f"serbench run {shlex.quote(experiment_ref(col))} --corpus {col.corpus} "
            f"--root {root if root == ROOT_PLACEHOLDER else shlex.quote(root)} --only {shlex.quote(name)}{opts}")


__all__ = ["experiment_ref", "corpus_root", "store_cache", "produce_command", "ROOT_PLACEHOLDER"]
