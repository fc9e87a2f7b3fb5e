"""Deep models of Jiang et al.: AlexNet segment CNN + SRU over segment features, and ablations.

>>> from serbench.deep import run_deep
>>> res = run_deep("casia", "/data/casia", segments=5, model="cnn-sru", profile="fast")  # doctest: +SKIP
>>> res.summary["wa"], res.run_dir                                                     # doctest: +SKIP

Modules: :mod:`~serbench.deep.alexnet` (torchvision-named AlexNet, ``load_pretrained``),
:mod:`~serbench.deep.sru` (SRU, equations 3-7), :mod:`~serbench.deep.models` (CNN+SRU and
the ``cnn`` / ``sru`` ablations), :mod:`~serbench.deep.profiles` (``paper``, ``fast``,
``tiny``), :mod:`~serbench.deep.data` (segment inputs, normalization),
:mod:`~serbench.deep.train` (checkpointed training stage), :mod:`~serbench.deep.run`.
"""
from serbench.deep.alexnet import AlexNet, PretrainedError, load_pretrained
from serbench.deep.models import MODELS, CNNSRU, SRUClassifier, build_cnn, build_sru, cnn_utterance_probs
from serbench.deep.profiles import PROFILES, Profile, ProfileError, get_profile, parse_sets
from serbench.deep.run import FROM_SCRATCH, DeepRunError, RunResult, resolve_device, run_deep, system_name
from serbench.deep.sru import SRU

__all__ = [
    "AlexNet", "PretrainedError", "load_pretrained", "SRU", "SRUClassifier", "CNNSRU", "MODELS",
    "build_cnn", "build_sru", "cnn_utterance_probs", "PROFILES", "Profile", "ProfileError", "get_profile",
    "parse_sets", "run_deep", "RunResult", "DeepRunError", "resolve_device", "system_name", "FROM_SCRATCH",
]
