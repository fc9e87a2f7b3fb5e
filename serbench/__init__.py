"""serbench: speech emotion recognition benchmarking.

Data flows corpora -> features -> experiments (baselines, deep) -> reports.
The public API is re-exported here; the implementation lives in the subpackages.
"""
__version__ = "0.1.0"

from serbench.errors import AudioError, CorpusError, SerbenchError  # noqa: E402

__all__ = ["__version__", "SerbenchError", "AudioError", "CorpusError"]
