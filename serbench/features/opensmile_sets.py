"""openSMILE functionals (IS09, IS10, eGeMAPS v02, ComParE 2016) via the ``opensmile`` package.

Each utterance is the 16 kHz mono float32 signal of :func:`serbench.audio.load_audio`,
so every corpus is analysed at the rate the challenge configurations were designed
for. For 16 kHz mono PCM files the values equal ``opensmile.Smile(...).process_file``
exactly (tested). ``opensmile`` quantizes the signal to 16 bit (``x * 32768`` cast to
int16); the signal is clipped to that range first so that a resampling overshoot
above full scale cannot wrap around to the opposite sign.

openSMILE returns float32; the cache stores float32, so no precision is lost.
"""
from __future__ import annotations

import warnings

import numpy as np

from serbench.audio import TARGET_SR
from serbench.features.registry import Extractor, FeatureSetError

#: serbench name -> (opensmile.FeatureSet member name, number of functionals).
OPENSMILE_SETS: dict[str, tuple[str, int]] = {
    "IS09": ("IS09", 384),
    "IS10": ("IS10", 1582),
    "eGeMAPS": ("eGeMAPSv02", 88),
    "ComParE": ("ComParE_2016", 6373),
}
#: opensmile.FeatureSet member -> its value (the configuration file), part of the cache key.
#: Written out so that keying a set (e.g. a fully cached extraction) does not import
#: opensmile; a test checks it against the installed package.
CONFIGS: dict[str, str] = {
    "IS09": "is09-13/IS09_emotion",
    "IS10": "is09-13/IS10_paraling_compat",
    "eGeMAPSv02": "egemaps/v02/eGeMAPSv02",
    "ComParE_2016": "compare/ComParE_2016",
}

#: The wrapper's own version: bump when the way the signal is prepared changes.
WRAPPER_VERSION = "1"
_INT16_MAX = 32767 / 32768


class OpenSmileBackend:
    """Registry backend for one openSMILE configuration at the functionals level."""

    def __init__(self, name: str) -> None:
        if name not in OPENSMILE_SETS:
            raise FeatureSetError(f"{name!r} is not an openSMILE set; choose from {', '.join(OPENSMILE_SETS)}")
        self.name = name
        self.member, self.n_features = OPENSMILE_SETS[name]
        self.version = WRAPPER_VERSION
        self.params = {"config": CONFIGS[self.member], "level": "functionals", "sample_rate": TARGET_SR}
        self._names: list[str] | None = None

    @property
    def opensmile_set(self) -> object:
        """The ``opensmile.FeatureSet`` member (imports opensmile)."""
        import opensmile

        return opensmile.FeatureSet[self.member]

    def libraries(self) -> dict[str, str]:
        # The installed distribution's version, read without importing the package.
        from importlib.metadata import PackageNotFoundError, version

        try:
            return {"opensmile": version("opensmile")}
        except PackageNotFoundError:
            raise FeatureSetError(f"{self.name} needs the opensmile package: pip install opensmile") from None

    def feature_names(self) -> list[str]:
        if self._names is None:
            self._names = list(self.make_extractor().feature_names)
        return self._names

    def make_extractor(self) -> "OpenSmileExtractor":
        return OpenSmileExtractor(self.opensmile_set, self.n_features)


class OpenSmileExtractor:
    """Holds one ``opensmile.Smile``; call it as ``extractor(signal, sr) -> float64 (D,)``.

    Too-short input (shorter than openSMILE's first window) gives all-NaN, which the
    extraction loop records as status ``'nan'``; openSMILE's warning about it is
    silenced here because the status carries the information per file.
    """

    def __init__(self, opensmile_set: object, n_features: int) -> None:
        import opensmile

        self.smile = opensmile.Smile(feature_set=opensmile_set,
                                     feature_level=opensmile.FeatureLevel.Functionals)
        self.feature_names: list[str] = list(self.smile.feature_names)
        if len(self.feature_names) != n_features:
            raise FeatureSetError(
                f"opensmile {opensmile.__version__} gives {len(self.feature_names)} features for "
                f"{opensmile_set}, serbench expects {n_features}; install opensmile>=2.6"
            )

    def __call__(self, signal: np.ndarray, sample_rate: int) -> np.ndarray:
        x = np.clip(np.asarray(signal, dtype=np.float32), -1.0, _INT16_MAX)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Segment too short", category=UserWarning)
            y = self.smile(x, sample_rate)  # (channels=1, features, frames=1) at the functionals level
        return np.asarray(y, dtype=np.float64).reshape(-1)


def make(name: str) -> Extractor:
    """A standalone extractor for one openSMILE set (``'IS09'``, ``'IS10'``, ``'eGeMAPS'``, ``'ComParE'``)."""
    return OpenSmileBackend(name).make_extractor()
