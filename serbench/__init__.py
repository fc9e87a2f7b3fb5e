"""serbench: speech emotion recognition benchmarking.

Data flows corpora -> features -> experiments (baselines, deep) -> reports.
The public API is re-exported here; the implementation lives in the subpackages.
``serbench.load_model(dir)`` (a model bundle from ``serbench train``) loads on first use,
so ``import serbench`` stays light.
"""
__version__ = "0.1.0"

from serbench.errors import AudioError, CorpusError, SerbenchError  # noqa: E402


def __getattr__(name: str):
    if name == "load_model":
        from serbench.bundles.model import load_model

        return load_model
    raise AttributeError(f"module 'serbench' has no attribute {name!r}")


__all__ = ["__version__", "SerbenchError", "AudioError", "CorpusError", "load_model"]
